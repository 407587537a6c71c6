import Foundation
import SproutTensor

#if canImport(Glibc)
import Glibc
#endif

/// What can be wrong with a checkpoint file; each case names the file (and the tensor).
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(String)
    case truncated(String, reason: String)
    case badHeader(String, reason: String)
    case badTensor(String, tensor: String, reason: String)
    case missingTensor(String, tensor: String)
    case unexpectedTensor(String, tensor: String)
    case shapeMismatch(String, tensor: String, expected: [Int], found: [Int])
    case writeFailed(String, reason: String)
    case noCheckpoint(String)

    public var description: String {
        switch self {
        case .fileNotFound(let p): return "\(p): no such checkpoint file"
        case let .truncated(p, r): return "\(p): truncated checkpoint: \(r)"
        case let .badHeader(p, r): return "\(p): invalid safetensors header: \(r)"
        case let .badTensor(p, t, r): return "\(p): tensor '\(t)': \(r)"
        case let .missingTensor(p, t): return "\(p): tensor '\(t)' is missing (checkpoint of another architecture?)"
        case let .unexpectedTensor(p, t): return "\(p): tensor '\(t)' does not exist in this model (checkpoint of another architecture?)"
        case let .shapeMismatch(p, t, e, f): return "\(p): tensor '\(t)' has shape \(f), the model expects \(e)"
        case let .writeFailed(p, r): return "\(p): cannot write: \(r)"
        case .noCheckpoint(let d): return "\(d): no checkpoint found"
        }
    }
}

/// The safetensors format: u64 little-endian header length, a JSON header
/// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {…}}, then the raw
/// little-endian data. Writes are atomic (temporary file, fsync, rename); reads validate
/// every header field, shape, dtype and offset before touching the data.
public enum SafeTensors {
    public static func encode(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]) throws -> [UInt8] {
        var header: [String: Any] = [:]
        var offset = 0
        for (name, t) in tensors {
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.count * 4]] as [String: Any]
            offset += t.count * 4
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }  // pad so the data is 8-byte aligned
        var out = [UInt8]()
        out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out += $0 }
        out += json
        for (_, t) in tensors {
            t.withData { p in p.withMemoryRebound(to: UInt8.self) { out += $0 } }  // little-endian host
        }
        return out
    }

    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to path: String) throws {
        try writeAtomically(try encode(tensors, metadata: metadata), to: path)
    }

    public static func read(_ path: String) throws -> (tensors: [String: Tensor], order: [String], metadata: [String: String]) {
        guard FileManager.default.fileExists(atPath: path) else { throw CheckpointError.fileNotFound(path) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CheckpointError.truncated(path, reason: error.localizedDescription)
        }
        return try decode([UInt8](data), path: path)
    }

    public static func decode(_ bytes: [UInt8], path: String) throws -> (tensors: [String: Tensor], order: [String], metadata: [String: String]) {
        guard bytes.count >= 8 else { throw CheckpointError.truncated(path, reason: "\(bytes.count) bytes, less than the 8-byte header length") }
        let headerLength = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw CheckpointError.truncated(path, reason: "header of \(headerLength) bytes but only \(bytes.count - 8) follow")
        }
        guard headerLength <= 100 << 20 else { throw CheckpointError.badHeader(path, reason: "header length \(headerLength) is implausible") }
        let dataStart = 8 + Int(headerLength)
        let dataLength = bytes.count - dataStart
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart])) } catch {
            throw CheckpointError.badHeader(path, reason: "not JSON")
        }
        guard let header = object as? [String: Any] else { throw CheckpointError.badHeader(path, reason: "not a JSON object") }
        var metadata: [String: String] = [:]
        if let m = header["__metadata__"] {
            guard let dict = m as? [String: String] else { throw CheckpointError.badHeader(path, reason: "__metadata__ must map strings to strings") }
            metadata = dict
        }
        var entries: [(name: String, shape: [Int], begin: Int, end: Int)] = []
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any] else { throw CheckpointError.badTensor(path, tensor: name, reason: "entry is not an object") }
            guard let dtype = info["dtype"] as? String else { throw CheckpointError.badTensor(path, tensor: name, reason: "no dtype") }
            guard dtype == "F32" else { throw CheckpointError.badTensor(path, tensor: name, reason: "dtype \(dtype) is not supported (F32 only)") }
            guard let shape = (info["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  shape.count == (info["shape"] as? [Any])?.count, shape.allSatisfy({ $0 >= 0 }) else {
                throw CheckpointError.badTensor(path, tensor: name, reason: "shape must be a list of non-negative integers")
            }
            guard let offsets = (info["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }), offsets.count == 2 else {
                throw CheckpointError.badTensor(path, tensor: name, reason: "data_offsets must be [begin, end]")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin, end <= dataLength else {
                throw CheckpointError.badTensor(path, tensor: name, reason: "data_offsets [\(begin), \(end)] outside the \(dataLength) data bytes")
            }
            let expected = shape.reduce(1, *) * 4
            guard end - begin == expected else {
                throw CheckpointError.badTensor(path, tensor: name, reason: "\(end - begin) bytes for shape \(shape) (needs \(expected))")
            }
            entries.append((name, shape, begin, end))
        }
        entries.sort { $0.begin < $1.begin || ($0.begin == $1.begin && $0.name < $1.name) }
        for (a, b) in zip(entries, entries.dropFirst()) where b.begin < a.end {
            throw CheckpointError.badTensor(path, tensor: b.name, reason: "data overlaps tensor '\(a.name)'")
        }
        var tensors: [String: Tensor] = [:]
        for e in entries {
            var t = Tensor.zeros(e.shape)
            t.withMutableData { dst in
                bytes.withUnsafeBytes { raw in
                    UnsafeMutableRawBufferPointer(dst).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[(dataStart + e.begin)..<(dataStart + e.end)]))
                }
            }
            tensors[e.name] = t
        }
        return (tensors, entries.map(\.name), metadata)
    }
}

/// Removes the temporary files `writeAtomically` left in `directory` when a process was killed
/// mid-write (`.NAME.tmp-PID` of a process that no longer runs); returns their names.
@discardableResult
public func removeStaleTemporaries(in directory: String) -> [String] {
    let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    var removed: [String] = []
    for name in files where name.hasPrefix(".") {
        guard let marker = name.range(of: ".tmp-", options: .backwards), let pid = Int32(name[marker.upperBound...]),
              pid != getpid(), kill(pid, 0) != 0 && errno == ESRCH else { continue }
        if unlink((directory as NSString).appendingPathComponent(name)) == 0 { removed.append(name) }
    }
    return removed
}

/// Writes `bytes` to a temporary file beside `path`, fsyncs it, renames it over `path` and
/// fsyncs the directory: readers see the old file or the new one, never a mix.
public func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    let dir = (path as NSString).deletingLastPathComponent
    let tmp = (dir.isEmpty ? "." : dir) + "/." + (path as NSString).lastPathComponent + ".tmp-\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw CheckpointError.writeFailed(path, reason: String(cString: strerror(errno))) }
    var written = 0
    let ok = bytes.withUnsafeBytes { raw -> Bool in
        while written < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
            if n <= 0 { return false }
            written += n
        }
        return fsync(fd) == 0
    }
    close(fd)
    guard ok else {
        unlink(tmp)
        throw CheckpointError.writeFailed(path, reason: String(cString: strerror(errno)))
    }
    guard rename(tmp, path) == 0 else {
        unlink(tmp)
        throw CheckpointError.writeFailed(path, reason: String(cString: strerror(errno)))
    }
    let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
    if dfd >= 0 { fsync(dfd); close(dfd) }
}
