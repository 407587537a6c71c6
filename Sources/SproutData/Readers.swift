import CSTB
import Foundation

/// MNIST-family IDX files: `idx3` images (magic 2051) and `idx1` labels (magic 2049),
/// big-endian headers, raw or gzip-wrapped.
public enum IDX {
    static func bigEndian(_ b: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(b[offset]) << 24 | UInt32(b[offset + 1]) << 16 | UInt32(b[offset + 2]) << 8 | UInt32(b[offset + 3])
    }

    /// Reads an image file and its label file into one dataset.
    public static func load(images imagePath: String, labels labelPath: String, classNames: [String]) throws -> ImageDataset {
        try decode(images: readFile(imagePath), labels: readFile(labelPath), imagePath: imagePath, labelPath: labelPath,
                   classNames: classNames)
    }

    /// The same from the files' bytes (already inflated); the paths only name them in errors.
    ///   images: magic 2051, count, height, width (big-endian UInt32), then count×height×width bytes
    ///   labels: magic 2049, count, then count bytes
    public static func decode(images img: [UInt8], labels lab: [UInt8], imagePath: String, labelPath: String,
                              classNames: [String]) throws -> ImageDataset {
        guard img.count >= 16 else { throw DatasetError.truncated(imagePath, expectedBytes: 16, foundBytes: img.count) }
        let magic = bigEndian(img, 0)
        guard magic == 2051 else { throw DatasetError.badMagic(imagePath, expected: 2051, found: magic) }
        let (n, h, w) = (Int(bigEndian(img, 4)), Int(bigEndian(img, 8)), Int(bigEndian(img, 12)))
        guard h > 0, w > 0 else { throw DatasetError.malformed(imagePath, reason: "image size \(h)×\(w)") }
        // Three 32-bit fields can multiply past Int64: that would trap instead of refusing the file.
        let (pixels, o1) = n.multipliedReportingOverflow(by: h)
        let (total, o2) = pixels.multipliedReportingOverflow(by: w)
        guard !o1, !o2, total <= Int.max - 16 else {
            throw DatasetError.malformed(imagePath, reason: "header announces \(n) images of \(h)×\(w), more bytes than any file holds")
        }
        let expected = 16 + total
        guard img.count >= expected else { throw DatasetError.truncated(imagePath, expectedBytes: expected, foundBytes: img.count) }
        guard img.count == expected else {
            throw DatasetError.malformed(imagePath, reason: "\(img.count - expected) bytes after the \(n) images the header announces")
        }

        guard lab.count >= 8 else { throw DatasetError.truncated(labelPath, expectedBytes: 8, foundBytes: lab.count) }
        let lmagic = bigEndian(lab, 0)
        guard lmagic == 2049 else { throw DatasetError.badMagic(labelPath, expected: 2049, found: lmagic) }
        let ln = Int(bigEndian(lab, 4))
        guard lab.count >= 8 + ln else { throw DatasetError.truncated(labelPath, expectedBytes: 8 + ln, foundBytes: lab.count) }
        guard ln == n else { throw DatasetError.countMismatch(images: imagePath, labels: labelPath, imageCount: n, labelCount: ln) }
        var labels = [Int32](repeating: 0, count: n)
        for i in 0..<n {
            let l = Int(lab[8 + i])
            guard l < classNames.count else { throw DatasetError.labelOutOfRange(labelPath, index: i, label: l, classes: classNames.count) }
            labels[i] = Int32(l)
        }
        return ImageDataset(pixels: Array(img[16...]), labels: labels, channels: 1, height: h, width: w,
                            classNames: classNames, source: imagePath)
    }
}

public enum DatasetSplit: String, Sendable, CaseIterable { case train, test }

/// MNIST and Fashion-MNIST from a directory of the official file names (with or without .gz).
public enum MNIST {
    public static let digitNames = (0..<10).map(String.init)
    public static let fashionNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    public static func load(directory: String, split: DatasetSplit, fashion: Bool = false) throws -> ImageDataset {
        let prefix = split == .train ? "train" : "t10k"
        func find(_ base: String) throws -> String {
            for name in [base + ".gz", base] {
                let path = (directory as NSString).appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: path) { return path }
            }
            throw DatasetError.fileNotFound((directory as NSString).appendingPathComponent(base + "[.gz]"))
        }
        return try IDX.load(images: find("\(prefix)-images-idx3-ubyte"), labels: find("\(prefix)-labels-idx1-ubyte"),
                            classNames: fashion ? fashionNames : digitNames)
    }
}

/// CIFAR-10 and CIFAR-100 in the official binary format.
public enum CIFAR {
    /// CIFAR-10: `data_batch_1.bin` … `data_batch_5.bin` (train) or `test_batch.bin`; records
    /// of 1 label byte + 3072 pixel bytes (R, G, B planes of 32×32). Missing batches of the
    /// training set are an error unless `batches` names the ones to read.
    public static func load10(directory: String, split: DatasetSplit, batches: [Int]? = nil) throws -> ImageDataset {
        let names = split == .test ? ["test_batch.bin"] : (batches ?? Array(1...5)).map { "data_batch_\($0).bin" }
        let classNames = try readClassNames((directory as NSString).appendingPathComponent("batches.meta.txt"),
                                            fallback: ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"])
        var pixels: [UInt8] = [], labels: [Int32] = []
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            let (p, l) = try readRecords(path, labelBytes: 1, labelIndex: 0, classes: classNames.count)
            pixels += p
            labels += l
        }
        return ImageDataset(pixels: pixels, labels: labels, channels: 3, height: 32, width: 32,
                            classNames: classNames, source: (directory as NSString).appendingPathComponent(names.joined(separator: ",")))
    }

    /// CIFAR-100: `train.bin` or `test.bin`, records of coarse label, fine label, 3072 pixels.
    public static func load100(directory: String, split: DatasetSplit, fine: Bool = true) throws -> ImageDataset {
        let path = (directory as NSString).appendingPathComponent(split == .train ? "train.bin" : "test.bin")
        let metaName = fine ? "fine_label_names.txt" : "coarse_label_names.txt"
        let classNames = try readClassNames((directory as NSString).appendingPathComponent(metaName),
                                            fallback: (0..<(fine ? 100 : 20)).map(String.init))
        let (p, l) = try readRecords(path, labelBytes: 2, labelIndex: fine ? 1 : 0, classes: classNames.count)
        return ImageDataset(pixels: p, labels: l, channels: 3, height: 32, width: 32, classNames: classNames, source: path)
    }

    static func readRecords(_ path: String, labelBytes: Int, labelIndex: Int, classes: Int) throws -> ([UInt8], [Int32]) {
        try decodeRecords(readFile(path, gunzip: false), path: path, labelBytes: labelBytes, labelIndex: labelIndex, classes: classes)
    }

    /// Pixels (record after record, planes of 32×32) and labels of a batch file's bytes.
    static func decodeRecords(_ bytes: [UInt8], path: String, labelBytes: Int, labelIndex: Int,
                              classes: Int) throws -> ([UInt8], [Int32]) {
        let record = labelBytes + 3072
        guard !bytes.isEmpty else { throw DatasetError.truncated(path, expectedBytes: record, foundBytes: 0) }
        guard bytes.count % record == 0 else {
            throw DatasetError.truncated(path, expectedBytes: (bytes.count / record + 1) * record, foundBytes: bytes.count)
        }
        let n = bytes.count / record
        var pixels = [UInt8](repeating: 0, count: n * 3072), labels = [Int32](repeating: 0, count: n)
        try bytes.withUnsafeBufferPointer { src in
            try pixels.withUnsafeMutableBufferPointer { dst in
                for i in 0..<n {
                    let l = Int(src[i * record + labelIndex])
                    guard l < classes else { throw DatasetError.labelOutOfRange(path, index: i, label: l, classes: classes) }
                    labels[i] = Int32(l)
                    (dst.baseAddress! + i * 3072).update(from: src.baseAddress! + i * record + labelBytes, count: 3072)
                }
            }
        }
        return (pixels, labels)
    }

    /// One class name per non-empty line; the fallback when the file is absent.
    static func readClassNames(_ path: String, fallback: [String]) throws -> [String] {
        guard FileManager.default.fileExists(atPath: path) else { return fallback }
        return try decodeClassNames(readFile(path, gunzip: false), path: path, expected: fallback.count)
    }

    static func decodeClassNames(_ bytes: [UInt8], path: String, expected: Int) throws -> [String] {
        let text = String(decoding: bytes, as: UTF8.self)
        let names = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard names.count == expected else {
            throw DatasetError.malformed(path, reason: "\(names.count) class names, expected \(expected)")
        }
        return names
    }
}

/// A folder of labelled photos: ROOT/<class>/*.jpg|png|… (class = folder name, sorted), or
/// ROOT/train/<class>/* beside ROOT/val/<class>/* (the ImageNet and PyTorch-tutorial layout).
/// Each image is decoded (`ImageDecoder`), turned upright, converted to RGB (or grey when
/// `channels` = 1), resized so its shorter side is `size`, and centre-cropped to size×size.
/// Hidden files and files that are not images are ignored; names may hold spaces and Unicode.
public enum ImageFolder {
    public static let extensions: Set<String> = ["png", "jpg", "jpeg", "jpe", "gif", "bmp", "webp"]

    public struct LoadReport: Sendable { public var skipped: [(path: String, reason: String)] = [] }

    /// The two layouts a photo folder comes in.
    public enum Layout: Equatable, Sendable {
        /// ROOT/<class>/*: validation is split off by the caller.
        case classes(root: String)
        /// ROOT/train/<class>/* and ROOT/val/<class>/* (also `validation`).
        case trainValidation(train: String, validation: String)
    }

    public static func layout(of root: String) -> Layout {
        let subfolders = Set(directories(in: root))
        if subfolders.contains("train"), let v = ["val", "validation", "valid"].first(where: subfolders.contains) {
            let train = (root as NSString).appendingPathComponent("train")
            if !directories(in: train).isEmpty {
                return .trainValidation(train: train, validation: (root as NSString).appendingPathComponent(v))
            }
        }
        return .classes(root: root)
    }

    /// Visible subdirectories, sorted by name.
    public static func directories(in path: String) -> [String] { listDirectory(path, directories: true) }

    /// The image files of one class folder, sorted (hidden and non-image files left out).
    public static func imageFiles(in dir: String) -> [String] {
        imageNames(in: dir).map { (dir as NSString).appendingPathComponent($0) }
    }

    /// The image file names of one class folder, sorted.
    static func imageNames(in dir: String) -> [String] {
        listDirectory(dir, directories: false).filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) }
    }

    public static func load(root: String, size: Int, channels: Int = 3, skipBadImages: Bool = false,
                            classNames fixedClasses: [String]? = nil) throws -> (dataset: ImageDataset, report: LoadReport) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else { throw DatasetError.fileNotFound(root) }
        let classes = fixedClasses ?? directories(in: root)
        var pixels: [UInt8] = [], labels: [Int32] = []
        var report = LoadReport()
        for (label, name) in classes.enumerated() {
            let dir = (root as NSString).appendingPathComponent(name)
            var usable = 0
            for path in imageFiles(in: dir) {
                do {
                    pixels += try decodeImage(path: path, size: size, channels: channels)
                    labels.append(Int32(label))
                    usable += 1
                } catch let error as DatasetError where skipBadImages {
                    report.skipped.append((path, error.description))
                }
            }
            // A class that cannot be learned is an error, not a silently smaller problem.
            if usable == 0 && fm.fileExists(atPath: dir) {
                throw DatasetError.emptyClass(dir)
            }
        }
        guard !labels.isEmpty else { throw DatasetError.emptyFolder(root) }
        return (ImageDataset(pixels: pixels, labels: labels, channels: channels, height: size, width: size,
                             classNames: classes, source: root), report)
    }

    /// Decodes a PNG/JPEG file to `channels`×size×size bytes (planar, like the tensors).
    public static func decodeImage(path: String, size: Int, channels: Int = 3) throws -> [UInt8] {
        let bytes = try readFile(path, gunzip: false)
        return try decodeImage(bytes: bytes, size: size, channels: channels, name: path)
    }

    /// Decodes image bytes (e.g. an HTTP body) to planar `channels`×size×size bytes: upright
    /// (EXIF orientation), shorter side resized to `size`, centre square.
    public static func decodeImage(bytes: [UInt8], size: Int, channels: Int = 3, name: String = "image") throws -> [UInt8] {
        precondition(channels == 1 || channels == 3, "decodeImage: channels must be 1 or 3")
        let image = try ImageDecoder.decode(bytes, channels: channels, atLeast: size, name: name)
        let (w, h) = (Int32(image.width), Int32(image.height))
        // Shorter side to `size`, then the centre square.
        let scale = Double(size) / Double(min(w, h))
        let rw = max(size, Int((Double(w) * scale).rounded())), rh = max(size, Int((Double(h) * scale).rounded()))
        var resized: [UInt8]
        if rw == Int(w) && rh == Int(h) {
            // Already the size: copy exactly (the resampling filter would blur it even at 1:1).
            resized = image.pixels
        } else {
            resized = [UInt8](repeating: 0, count: rw * rh * channels)
            let ok = image.pixels.withUnsafeBufferPointer { data in
                resized.withUnsafeMutableBufferPointer { out in
                    stbir_resize_uint8(data.baseAddress, w, h, 0, out.baseAddress, Int32(rw), Int32(rh), 0, Int32(channels))
                }
            }
            guard ok != 0 else { throw DatasetError.undecodableImage(name, reason: "resize failed") }
        }
        let (x0, y0) = ((rw - size) / 2, (rh - size) / 2)
        var planar = [UInt8](repeating: 0, count: channels * size * size)
        for c in 0..<channels {
            for y in 0..<size {
                for x in 0..<size {
                    planar[(c * size + y) * size + x] = resized[((y0 + y) * rw + x0 + x) * channels + c]
                }
            }
        }
        return planar
    }

    /// Decodes a picture of one line of text to a grey `height` × `width` canvas, as the
    /// line datasets draw them: light strokes on black. Scaled to the height (or, if it is
    /// wider than the canvas at that scale, to the width, centred vertically), left-aligned,
    /// the rest black. Dark-on-light pictures (ink on paper: a mean above one half) are
    /// inverted first.
    public static func decodeLine(bytes: [UInt8], height: Int, width: Int, name: String = "image") throws -> [UInt8] {
        let image = try ImageDecoder.decode(bytes, channels: 1, atLeast: 1, name: name)
        let (w, h) = (image.width, image.height)
        guard w > 0 && h > 0 else { throw DatasetError.undecodableImage(name, reason: "empty image") }
        var pixels = image.pixels
        if pixels.reduce(0, { $0 + Int($1) }) > 128 * pixels.count { pixels = pixels.map { 255 - $0 } }
        let scale = min(Double(height) / Double(h), Double(width) / Double(w))
        let rw = max(1, min(width, Int((Double(w) * scale).rounded()))), rh = max(1, min(height, Int((Double(h) * scale).rounded())))
        var resized = pixels
        if rw != w || rh != h {
            resized = [UInt8](repeating: 0, count: rw * rh)
            let ok = pixels.withUnsafeBufferPointer { data in
                resized.withUnsafeMutableBufferPointer { out in
                    stbir_resize_uint8(data.baseAddress, Int32(w), Int32(h), 0, out.baseAddress, Int32(rw), Int32(rh), 0, 1)
                }
            }
            guard ok != 0 else { throw DatasetError.undecodableImage(name, reason: "resize failed") }
        }
        var canvas = [UInt8](repeating: 0, count: height * width)
        let top = (height - rh) / 2
        for y in 0..<rh { for x in 0..<rw { canvas[(top + y) * width + x] = resized[y * rw + x] } }
        return canvas
    }
}

/// Writes images with stb_image_write.
public enum ImageWriter {
    /// Planar bytes [channels, height, width] → a PNG file.
    public static func writePNG(planar: [UInt8], channels: Int, height: Int, width: Int, to path: String) throws {
        precondition(planar.count == channels * height * width, "writePNG: \(planar.count) bytes for \(channels)×\(height)×\(width)")
        var interleaved = [UInt8](repeating: 0, count: planar.count)
        for c in 0..<channels { for i in 0..<(height * width) { interleaved[i * channels + c] = planar[c * height * width + i] } }
        let ok = interleaved.withUnsafeBufferPointer {
            stbi_write_png(path, Int32(width), Int32(height), Int32(channels), $0.baseAddress, Int32(width * channels))
        }
        guard ok != 0 else { throw DatasetError.unreadable(path, reason: "PNG write failed") }
    }

    public enum Format: Sendable { case png, jpeg(quality: Int) }

    /// Planar bytes [channels, height, width] → PNG or JPEG file contents in memory.
    public static func encode(planar: [UInt8], channels: Int, height: Int, width: Int, format: Format) -> [UInt8] {
        precondition(planar.count == channels * height * width, "encode: \(planar.count) bytes for \(channels)×\(height)×\(width)")
        var interleaved = [UInt8](repeating: 0, count: planar.count)
        for c in 0..<channels { for i in 0..<(height * width) { interleaved[i * channels + c] = planar[c * height * width + i] } }
        final class Sink { var bytes: [UInt8] = [] }
        let sink = Sink()
        let write: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, Int32) -> Void = { context, data, size in
            let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
            sink.bytes.append(contentsOf: UnsafeRawBufferPointer(start: data, count: Int(size)))
        }
        let context = Unmanaged.passUnretained(sink).toOpaque()
        interleaved.withUnsafeBufferPointer { px in
            switch format {
            case .png:
                _ = stbi_write_png_to_func(write, context, Int32(width), Int32(height), Int32(channels), px.baseAddress,
                                           Int32(width * channels))
            case .jpeg(let quality):
                _ = stbi_write_jpg_to_func(write, context, Int32(width), Int32(height), Int32(channels), px.baseAddress,
                                           Int32(quality))
            }
        }
        return withExtendedLifetime(sink) { sink.bytes }
    }
}
