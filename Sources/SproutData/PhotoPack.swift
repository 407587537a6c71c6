import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A packed photo cache (as FFCV's): every photo of a folder decoded once, turned upright,
/// its shorter side reduced to a fixed size, and stored as raw RGB bytes in one file, so
/// repeated epochs read memory-mapped pixels instead of decoding JPEGs. Random resized crops
/// still come from the stored image, which keeps the photo's whole field of view.
///
/// Layout (little-endian): "SPRPACK1", the pixels of every image one after another, then
/// an index of 24 bytes per image (offset UInt64, width UInt32, height UInt32, label Int32,
/// split UInt32: 0 train, 1 validation), then a JSON header, then a trailer: index offset
/// UInt64, header length UInt64, "SPRPACK1".
public struct PhotoPack: PhotoSource {
    public static let magic = Array("SPRPACK1".utf8)

    public struct Header: Codable, Sendable {
        public var format = "sprout-photo-pack-1"
        public var classNames: [String]
        public var size: Int
        public var count: Int
        public var source: String
        /// Photos that did not decode and were left out.
        public var skipped: [String]
    }

    struct Entry { var offset: Int, width: Int, height: Int, label: Int32, split: Int }

    public let path: String
    public let header: Header
    private let data: Data
    private let entries: [Entry]

    public var count: Int { entries.count }
    public var classNames: [String] { header.classNames }
    public var labels: [Int32] { entries.map(\.label) }

    /// Whether `path` is a pack (by its first bytes).
    public static func isPack(_ path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        return (try? h.read(upToCount: 8)).map { [UInt8]($0) == magic } ?? false
    }

    /// Opens a pack (memory-mapped: pages are read as batches touch them).
    public static func open(_ path: String) throws -> PhotoPack {
        guard FileManager.default.fileExists(atPath: path) else { throw DatasetError.fileNotFound(path) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw DatasetError.unreadable(path, reason: error.localizedDescription)
        }
        func u64(_ at: Int) -> Int { data.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self))) } }
        func u32(_ at: Int) -> Int { data.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self))) } }
        guard data.count >= 32, [UInt8](data.prefix(8)) == magic, [UInt8](data.suffix(8)) == magic else {
            throw DatasetError.malformed(path, reason: "not a Sprout photo pack (make one with sprout data pack)")
        }
        let indexOffset = u64(data.count - 24), headerLength = u64(data.count - 16)
        let headerOffset = data.count - 24 - headerLength
        guard headerLength > 0, indexOffset >= 8, headerOffset >= indexOffset, (headerOffset - indexOffset) % 24 == 0 else {
            throw DatasetError.malformed(path, reason: "damaged trailer")
        }
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: data.subdata(in: headerOffset..<(headerOffset + headerLength))) } catch {
            throw DatasetError.malformed(path, reason: "damaged header: \(error)")
        }
        let n = (headerOffset - indexOffset) / 24
        guard n == header.count else { throw DatasetError.malformed(path, reason: "index holds \(n) images, header says \(header.count)") }
        var entries: [Entry] = []
        entries.reserveCapacity(n)
        for i in 0..<n {
            let at = indexOffset + 24 * i
            let e = Entry(offset: u64(at), width: u32(at + 8), height: u32(at + 12), label: Int32(truncatingIfNeeded: u32(at + 16)),
                          split: u32(at + 20))
            guard e.offset >= 8, e.offset + e.width * e.height * 3 <= indexOffset, Int(e.label) < header.classNames.count, e.label >= 0 else {
                throw DatasetError.malformed(path, reason: "index entry \(i) points outside the pixels")
            }
            entries.append(e)
        }
        return PhotoPack(path: path, header: header, data: data, entries: entries)
    }

    /// The images of one split (0: training, 1: validation), as a source.
    public func split(_ split: Int) -> PhotoPack {
        PhotoPack(path: path, header: header, data: data, entries: entries.filter { $0.split == split })
    }

    public var hasValidationSplit: Bool { entries.contains { $0.split == 1 } }

    public func name(of index: Int) -> String { "\(path)#\(index)" }
    public func encoded(_ index: Int) throws -> [UInt8] { [] }

    public func decoded(_ index: Int) throws -> DecodedImage? {
        let e = entries[index]
        let pixels = [UInt8](data[e.offset..<(e.offset + e.width * e.height * 3)])
        return DecodedImage(width: e.width, height: e.height, channels: 3, pixels: pixels)
    }

    public func subset(indices: [Int]) -> any PhotoSource {
        PhotoPack(path: path, header: header, data: data, entries: indices.map { entries[$0] })
    }

    /// Packs a photo folder (ROOT/<class>/* or ROOT/train + ROOT/val) into `output`, each photo
    /// with its shorter side reduced to `size` (smaller photos kept as they are), decoding on
    /// `threads` threads. Photos that do not decode are left out and listed. Written to a
    /// temporary file and renamed, so a pack on disk is always whole.
    @discardableResult
    public static func write(folder root: String, size: Int, to output: String, threads: Int = 2) throws -> Header {
        precondition(size > 0, "PhotoPack.write: size must be positive")
        var parts: [(PhotoFolder, Int)] = []
        switch ImageFolder.layout(of: root) {
        case .classes(let r): parts = [(try PhotoFolder.index(root: r), 0)]
        case .trainValidation(let t, let v):
            let train = try PhotoFolder.index(root: t)
            parts = [(train, 0), (try PhotoFolder.index(root: v, classNames: train.classNames), 1)]
        }
        let temporary = output + ".partial"
        _ = FileManager.default.createFile(atPath: temporary, contents: nil)
        guard let out = FileHandle(forWritingAtPath: temporary) else { throw DatasetError.unreadable(output, reason: "cannot create") }
        var entries: [Entry] = [], skipped: [String] = []
        var offset = 8
        do {
            try out.write(contentsOf: Data(magic))
            for (folder, split) in parts {
                // Chunks decoded in parallel, written in order.
                let chunk = 64 * max(1, threads)
                for start in stride(from: 0, to: folder.count, by: chunk) {
                    let n = min(chunk, folder.count - start)
                    let results = Mutex<[Int: Result<DecodedImage, Error>]>([:])
                    DispatchQueue.concurrentPerform(iterations: n) { k in
                        let i = start + k
                        let r = Result { reduced(try ImageDecoder.decode(try folder.encoded(i), channels: 3, atLeast: size,
                                                                            name: folder.path(of: i)), to: size) }
                        results.withLock { $0[k] = r }
                    }
                    let done = results.withLock { $0 }
                    for k in 0..<n {
                        switch done[k]! {
                        case .success(let image):
                            try out.write(contentsOf: Data(image.pixels))
                            entries.append(Entry(offset: offset, width: image.width, height: image.height,
                                                 label: folder.labels[start + k], split: split))
                            offset += image.pixels.count
                        case .failure(let error):
                            skipped.append("\(error)")
                        }
                    }
                }
            }
            let header = Header(classNames: parts[0].0.classNames, size: size, count: entries.count, source: root, skipped: skipped)
            var index = [UInt8]()
            index.reserveCapacity(entries.count * 24)
            func put64(_ v: Int) { withUnsafeBytes(of: UInt64(v).littleEndian) { index += $0 } }
            func put32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { index += $0 } }
            for e in entries {
                put64(e.offset); put32(UInt32(e.width)); put32(UInt32(e.height)); put32(UInt32(bitPattern: e.label)); put32(UInt32(e.split))
            }
            let json = try JSONEncoder().encode(header)
            let indexOffset = offset
            try out.write(contentsOf: Data(index))
            try out.write(contentsOf: json)
            index = []
            put64(indexOffset); put64(json.count)
            try out.write(contentsOf: Data(index + magic))
            try out.synchronize()
            try out.close()
            if FileManager.default.fileExists(atPath: output) { try FileManager.default.removeItem(atPath: output) }
            try FileManager.default.moveItem(atPath: temporary, toPath: output)
            return header
        } catch {
            try? out.close()
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    /// The image with its shorter side reduced to `size` (box-averaged, then resampled).
    static func reduced(_ image: DecodedImage, to size: Int) -> DecodedImage {
        var img = image.channels == 1 ? PhotoDataset.rgb(fromGrey: image) : image
        let shorter = min(img.width, img.height)
        guard shorter > size else { return img }
        let k = shorter / size
        if k >= 2 { img = PhotoDataset.boxReduced(img, by: k) }
        let scale = Double(size) / Double(min(img.width, img.height))
        let (w, h) = (max(1, Int((Double(img.width) * scale).rounded())), max(1, Int((Double(img.height) * scale).rounded())))
        guard (w, h) != (img.width, img.height) else { return img }
        var planar = [Float](repeating: 0, count: 3 * w * h)
        planar.withUnsafeMutableBufferPointer { out in
            PhotoDataset.resample(img, crop: (0, 0, Double(img.width), Double(img.height)), angle: 0, flip: false,
                                  width: w, height: h, into: out.baseAddress!)
        }
        var px = [UInt8](repeating: 0, count: 3 * w * h)
        for i in 0..<(w * h) { for c in 0..<3 { px[3 * i + c] = UInt8(max(0, min(255, (planar[c * w * h + i] * 255).rounded()))) } }
        return DecodedImage(width: w, height: h, channels: 3, pixels: px)
    }
}
