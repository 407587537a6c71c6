import CZlib

/// The entries of a zip archive held in memory: PyTorch's `torch.save` files (stored
/// entries, ZIP64 past 4 GiB) and Python wheels (deflated entries). Reads the central
/// directory only; an entry's bytes are located, checked against the archive's size and
/// inflated when asked for.
public struct ZipArchive {
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let file: String, reason: String
        public var description: String { "\(file): not a readable zip archive: \(reason)" }
    }
    struct Entry { let method: Int; let compressedSize: Int; let size: Int; let localHeader: Int }

    let bytes: [UInt8]
    let file: String
    private var entries: [String: Entry] = [:]
    /// Entry names in the directory's order.
    public private(set) var names: [String] = []

    public init(_ bytes: [UInt8], name file: String) throws {
        (self.bytes, self.file) = (bytes, file)
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        func fail(_ reason: String) -> Failure { Failure(file: file, reason: reason) }
        // The end-of-central-directory record is in the last 64 KiB + 22 bytes.
        guard bytes.count >= 22, let eocd = stride(from: bytes.count - 22, through: max(0, bytes.count - 65_557), by: -1)
            .first(where: { u32($0) == 0x0605_4B50 }) else { throw fail("no zip directory") }
        var count = u16(eocd + 10), at = u32(eocd + 16)
        // ZIP64: the real count and offset are in the ZIP64 end record.
        if count == 0xFFFF || at == 0xFFFF_FFFF, eocd >= 20, u32(eocd - 20) == 0x0706_4B50 {
            let record = u32(eocd - 20 + 8) | u32(eocd - 20 + 12) << 32
            guard record >= 0, record + 56 <= bytes.count, u32(record) == 0x0606_4B50 else { throw fail("damaged ZIP64 record") }
            count = u32(record + 32) | u32(record + 36) << 32
            at = u32(record + 48) | u32(record + 52) << 32
        }
        for _ in 0..<count {
            guard at >= 0, at + 46 <= bytes.count, u32(at) == 0x0201_4B50 else { throw fail("damaged zip directory") }
            let method = u16(at + 10), n = u16(at + 28), extra = u16(at + 30), comment = u16(at + 32)
            var compressed = u32(at + 20), size = u32(at + 24), local = u32(at + 42)
            guard at + 46 + n + extra <= bytes.count else { throw fail("damaged zip directory") }
            let name = String(decoding: bytes[(at + 46)..<(at + 46 + n)], as: UTF8.self)
            // ZIP64 extra field: 64-bit sizes and offset, present for each 32-bit field at its maximum.
            var e = at + 46 + n
            while e + 4 <= at + 46 + n + extra {
                let id = u16(e), length = u16(e + 2)
                if id == 0x0001 {
                    var p = e + 4
                    func next() -> Int? {
                        guard p + 8 <= e + 4 + length, p + 8 <= bytes.count else { return nil }
                        defer { p += 8 }
                        return u32(p) | u32(p + 4) << 32
                    }
                    if size == 0xFFFF_FFFF { size = next() ?? size }
                    if compressed == 0xFFFF_FFFF { compressed = next() ?? compressed }
                    if local == 0xFFFF_FFFF { local = next() ?? local }
                }
                e += 4 + length
            }
            entries[name] = Entry(method: method, compressedSize: compressed, size: size, localHeader: local)
            names.append(name)
            at += 46 + n + extra + comment
        }
    }

    /// The uncompressed bytes of entry `name` (stored or deflated).
    public func contents(_ name: String) throws -> [UInt8] {
        func fail(_ reason: String) -> Failure { Failure(file: file, reason: reason) }
        guard let e = entries[name] else { throw fail("the archive has no \(name)") }
        let h = e.localHeader
        guard h >= 0, h + 30 <= bytes.count, bytes[h] == 0x50, bytes[h + 1] == 0x4B, bytes[h + 2] == 3, bytes[h + 3] == 4 else {
            throw fail("damaged entry \(name)")
        }
        let start = h + 30 + (Int(bytes[h + 26]) | Int(bytes[h + 27]) << 8) + (Int(bytes[h + 28]) | Int(bytes[h + 29]) << 8)
        guard e.compressedSize >= 0, start + e.compressedSize <= bytes.count else { throw fail("entry \(name) is truncated") }
        let stored = Array(bytes[start..<(start + e.compressedSize)])
        switch e.method {
        case 0: return stored
        case 8:
            let out: [UInt8]
            do { out = try inflateStream(stored, path: "\(file): \(name)", raw: true, expectedSize: e.size) }
            catch let error as DatasetError { throw fail("\(name): \(error)") }
            guard out.count == e.size else { throw fail("\(name) inflates to \(out.count) bytes, the directory says \(e.size)") }
            return out
        default: throw fail("\(name) uses compression method \(e.method) (only stored and deflated entries are read)")
        }
    }
}
