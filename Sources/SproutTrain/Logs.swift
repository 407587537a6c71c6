import Foundation

/// TensorBoard event files (`events.out.tfevents.<time>.<host>`): TFRecord framing
/// (u64 length, masked CRC-32C of the length, data, masked CRC-32C of the data) around
/// hand-encoded `Event` protos carrying scalar summaries.
public final class TensorBoardWriter {
    public let path: String
    private let handle: FileHandle

    public init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let host = ProcessInfo.processInfo.hostName
        let time = Int(Date().timeIntervalSince1970)
        path = (directory as NSString).appendingPathComponent("events.out.tfevents.\(time).\(host).\(getpid())")
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw CheckpointError.writeFailed(path, reason: "cannot create the event file")
        }
        handle = h
        var event = Proto()
        event.double(1, Date().timeIntervalSince1970)
        event.string(3, "brain.Event:2")
        write(record: event.bytes)
    }

    /// Appends scalar summaries at `step`.
    public func add(scalars: [(tag: String, value: Float)], step: Int, wallTime: Double = Date().timeIntervalSince1970) {
        var summary = Proto()
        for (tag, value) in scalars {
            var v = Proto()
            v.string(1, tag)
            v.float(2, value)
            summary.message(1, v)
        }
        var event = Proto()
        event.double(1, wallTime)
        event.varint(2, UInt64(bitPattern: Int64(step)))
        event.message(5, summary)
        write(record: event.bytes)
    }

    public func flush() { try? handle.synchronize() }

    private func write(record data: [UInt8]) {
        var out = [UInt8]()
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
        out += length
        out += withUnsafeBytes(of: maskedCRC32C(length).littleEndian) { Array($0) }
        out += data
        out += withUnsafeBytes(of: maskedCRC32C(data).littleEndian) { Array($0) }
        handle.write(Data(out))
    }

    deinit { try? handle.close() }
}

/// The minimal protobuf wire encoding the Event messages need.
struct Proto {
    var bytes: [UInt8] = []
    mutating func key(_ field: Int, _ wire: Int) { varintRaw(UInt64(field << 3 | wire)) }
    mutating func varintRaw(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func varint(_ field: Int, _ v: UInt64) { key(field, 0); varintRaw(v) }
    mutating func double(_ field: Int, _ v: Double) { key(field, 1); withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
    mutating func float(_ field: Int, _ v: Float) { key(field, 5); withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
    mutating func string(_ field: Int, _ s: String) { key(field, 2); varintRaw(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
    mutating func message(_ field: Int, _ m: Proto) { key(field, 2); varintRaw(UInt64(m.bytes.count)); bytes += m.bytes }
}

private let crc32cTable: [UInt32] = (0..<256).map { i -> UInt32 in
    var c = UInt32(i)
    for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
    return c
}

/// CRC-32C (Castagnoli), as TFRecord uses.
public func crc32c(_ data: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in data { c = crc32cTable[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
    return c ^ 0xFFFF_FFFF
}

public func maskedCRC32C(_ data: [UInt8]) -> UInt32 {
    let c = crc32c(data)
    return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
}

/// One JSON object per line: {"step": …, "time": …, "<tag>": value, …}.
public final class JSONLWriter {
    public let path: String
    private let handle: FileHandle

    public init(path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: path) else { throw CheckpointError.writeFailed(path, reason: "cannot open") }
        h.seekToEndOfFile()
        (self.path, handle) = (path, h)
    }

    public func add(_ values: [String: Double], step: Int, extra: [String: String] = [:]) {
        var object: [String: Any] = ["step": step, "time": (Date().timeIntervalSince1970 * 1000).rounded() / 1000]
        for (k, v) in values { object[k] = v.isFinite ? v : String(describing: v) }
        for (k, v) in extra { object[k] = v }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        handle.write(data + Data([0x0a]))
    }

    public func flush() { try? handle.synchronize() }
    deinit { try? handle.close() }
}

/// "2026-11-29T12:34:56Z" for `date` (UTC), without Foundation's date formatters (whose ICU
/// backend crashed in this toolchain's release builds).
public func utcTimestamp(_ date: Date = Date(), compact: Bool = false) -> String {
    var t = time_t(date.timeIntervalSince1970)
    var parts = tm()
    gmtime_r(&t, &parts)
    let format = compact ? "%04d%02d%02dT%02d%02d%02dZ" : "%04d-%02d-%02dT%02d:%02d:%02dZ"
    return String(format: format, Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                  Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
}
