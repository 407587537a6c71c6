import ArgumentParser
import Foundation
import Sprout

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Describe, verify or fetch datasets.",
        subcommands: [DataInfo.self, DataVerify.self, DataGet.self, DataSample.self, DataPack.self])
}

extension DatasetKind {
    /// One split of the dataset at `path` (folders decoded at `folderSize`).
    func split(_ path: String, _ split: DatasetSplit, folderSize: Int = 64) throws -> ImageDataset {
        try load(directory: path, split: split, folderImageSize: folderSize).dataset
    }
}

struct DataInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Format, splits, counts, class balance and channel mean/std of a dataset directory.",
        discussion: "Example: sprout data info /usr/share/datasets/fashion-mnist")

    @Argument(help: "Dataset directory (IDX files, CIFAR binary batches, ROOT/<class>/images) or a photo pack.") var path: String
    @Flag(help: "Photo folders: list the files only (counts per class and split, indexing time and memory), decode nothing.") var namesOnly = false

    func run() throws {
        var splits: [(String, ImageDataset)] = []
        let format: String
        let kind = DatasetKind.detect(directory: path)
        switch kind {
        case .mnist, .fashionMNIST:
            format = kind == .fashionMNIST ? "Fashion-MNIST (IDX)" : "MNIST-style IDX"
            for split in DatasetSplit.allCases { if let d = try? kind.split(path, split) { splits.append((split.rawValue, d)) } }
            if splits.isEmpty { splits.append(("train", try kind.split(path, .train))) }
        case .cifar10:
            format = "CIFAR-10 binary"
            let batches = (1...5).filter { FileManager.default.fileExists(atPath: path + "/data_batch_\($0).bin") }
            if !batches.isEmpty { splits.append(("train", try CIFAR.load10(directory: path, split: .train, batches: batches))) }
            if FileManager.default.fileExists(atPath: path + "/test_batch.bin") { splits.append(("test", try CIFAR.load10(directory: path, split: .test))) }
        case .cifar100:
            format = "CIFAR-100 binary (fine labels)"
            for split in DatasetSplit.allCases { if let d = try? kind.split(path, split) { splits.append((split.rawValue, d)) } }
        case .folder:
            try describePhotos()
            return
        case .mnistLines, .textLines:
            // detect() names files, never lines; lines are made from an MNIST directory.
            throw CLIError("\(path): mnist-lines are composed from an MNIST directory; use sprout data sample \(path) --lines 5")
        }
        guard !splits.isEmpty else { throw CLIError("\(path): no dataset files found") }
        print("\(path): \(format)")
        for (name, d) in splits {
            let (mean, std) = d.channelStatistics()
            let fmt = { (v: [Float]) in v.map { String(format: "%.4f", $0) }.joined(separator: ", ") }
            print("  \(name): \(d.count) images of \(d.channels)×\(d.height)×\(d.width), \(d.classCount) classes; mean [\(fmt(mean))] std [\(fmt(std))]")
            let counts = d.classCounts
            let balance = zip(d.classNames, counts).map { "\($0) \($1)" }.joined(separator: ", ")
            print("    per class: \(balance)")
        }
    }
}

extension DataInfo {
    /// A photo folder or pack: the file lists (nothing held in memory but names), every
    /// photo's size from a 1/8-scale decode (which also finds truncated and corrupt files),
    /// channel statistics of those small decodes.
    func describePhotos() throws {
        var parts: [(String, any PhotoSource)] = []
        let residentBefore = residentBytes(), started = Date()
        if PhotoPack.isPack(path) {
            let pack = try PhotoPack.open(path)
            print("\(path): Sprout photo pack, shorter sides reduced to \(pack.header.size), from \(pack.header.source)")
            parts.append(("train", pack.split(0)))
            if pack.hasValidationSplit { parts.append(("val", pack.split(1))) }
            if !pack.header.skipped.isEmpty { print("left out when packing: \(pack.header.skipped.count) files, e.g. \(pack.header.skipped[0])") }
        } else {
            switch ImageFolder.layout(of: path) {
            case .classes(let root):
                print("\(path): photo folder (ROOT/<class>/*)")
                parts = [("all", try PhotoFolder.index(root: root))]
            case let .trainValidation(train, validation):
                print("\(path): photo folder (ROOT/train/<class>/* and ROOT/\((validation as NSString).lastPathComponent)/<class>/*)")
                let t = try PhotoFolder.index(root: train)
                parts = [("train", t), ("val", try PhotoFolder.index(root: validation, classNames: t.classNames))]
            }
        }
        let indexing = Date().timeIntervalSince(started)
        let files = parts.reduce(0) { $0 + $1.1.count }
        print(String(format: "  indexed %d files in %.2f s; index memory %.0f bytes per file (resident set +%.1f MB)", files, indexing,
                     parts.compactMap { ($0.1 as? PhotoFolder).map { $0.bytesPerFile * Double($0.count) } }.reduce(0, +) / Double(max(1, files)),
                     Double(residentBytes() - residentBefore) / 1e6))
        if namesOnly {
            for (name, source) in parts {
                print("  \(name): \(source.count) photos, \(source.classCount) classes")
                let counts = source.classCounts
                if source.classCount <= 50 {
                    print("    per class: \(zip(source.classNames, counts).map { "\($0) \($1)" }.joined(separator: ", "))")
                } else {
                    print("    per class: \(counts.min() ?? 0)–\(counts.max() ?? 0) photos")
                }
            }
            return
        }
        for (name, source) in parts {
            var widths: [Int] = [], heights: [Int] = [], unreadable: [String] = []
            var sum = [Double](repeating: 0, count: 3), sq = [Double](repeating: 0, count: 3), n = 0.0
            for i in 0..<source.count {
                do {
                    // A pack holds pixels; a file's size comes from its header, its pixels from a 1/8-scale decode.
                    let image: DecodedImage, size: (width: Int, height: Int)
                    if let d = try source.decoded(i) {
                        (image, size) = (d, (d.width, d.height))
                    } else {
                        let bytes = try source.encoded(i)
                        guard let s = ImageDecoder.uprightDimensions(bytes) else {
                            throw DatasetError.undecodableImage(source.name(of: i), reason: "unreadable header")
                        }
                        (image, size) = (try ImageDecoder.decode(bytes, channels: 3, atLeast: 1, name: source.name(of: i)), s)
                    }
                    widths.append(size.width)
                    heights.append(size.height)
                    for (k, v) in image.pixels.enumerated() { let x = Double(v) / 255; sum[k % 3] += x; sq[k % 3] += x * x }
                    n += Double(image.width * image.height)
                } catch {
                    unreadable.append("\(error)")
                }
            }
            let fmt = { (v: [Double]) in v.map { String(format: "%.4f", $0) }.joined(separator: ", ") }
            let mean = sum.map { $0 / max(n, 1) }
            let std = zip(sq, mean).map { (($0 / max(n, 1)) - $1 * $1).squareRoot() }
            print("  \(name): \(source.count) photos, \(source.classCount) classes; mean [\(fmt(mean))] std [\(fmt(std))]")
            print("    per class: \(zip(source.classNames, source.classCounts).map { "\($0) \($1)" }.joined(separator: ", "))")
            if !widths.isEmpty {
                widths.sort(); heights.sort()
                print("    sizes: width \(widths.first!)–\(widths.last!) (median \(widths[widths.count / 2])), height \(heights.first!)–\(heights.last!) (median \(heights[heights.count / 2]))")
            }
            if !unreadable.isEmpty {
                print("    unreadable: \(unreadable.count) files (skipped in training)")
                for u in unreadable.prefix(20) { print("      \(u)") }
            }
        }
    }
}

/// This process's resident set size, from /proc/self/statm.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}

struct DataPack: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Pack a photo folder into one file of decoded, reduced images for fast repeated epochs.",
        discussion: """
            Every photo is decoded once, turned upright and its shorter side reduced to --size; training on the pack \
            (sprout train --dataset folder --data-dir photos.pack) reads memory-mapped pixels instead of decoding JPEGs. \
            A ROOT/train + ROOT/val folder keeps both splits. Example: sprout data pack ~/photos --size 256 -o photos.pack
            """)

    @Argument(help: "Photo folder (ROOT/<class>/* or ROOT/train + ROOT/val).") var path: String
    @Option(help: "Shorter side of the stored images (smaller photos are kept as they are).") var size = 256
    @Option(name: .shortAndLong, help: "Pack file to write.") var output: String
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try threadOptions.apply()
        let started = Date()
        let header = try PhotoPack.write(folder: path, size: size, to: output, threads: Threading.count)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        print(String(format: "%@: %d photos, %d classes, %.1f MB, %.1f s", output, header.count, header.classNames.count,
                     Double(bytes) / 1e6, Date().timeIntervalSince(started)))
        if !header.skipped.isEmpty {
            print("left out \(header.skipped.count) files that do not decode:")
            for s in header.skipped.prefix(20) { print("  \(s)") }
        }
    }
}

struct DataVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the dataset files in a directory against their known MD5 checksums.",
        discussion: "Example: sprout data verify ../shared/data/cifar-10-batches-bin")

    @Argument(help: "Dataset directory.") var path: String

    func run() throws {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
        let fashion = path.lowercased().contains("fashion")
        var checked = 0, bad = 0  // files looked at, files that failed
        for file in files {
            let base = file.hasSuffix(".gz") ? String(file.dropLast(3)) : file
            let key = base.contains("-ubyte") ? "\(base)#\(fashion ? "fashion" : "mnist")" : base
            guard let expected = KnownChecksums.files[key] else { continue }
            let full = (path as NSString).appendingPathComponent(file)
            let bytes: [UInt8]
            do {
                bytes = try file.hasSuffix(".gz") ? gunzipFile(full) : [UInt8](Data(contentsOf: URL(fileURLWithPath: full)))
            } catch {
                print("FAIL  \(file): \(error)")
                checked += 1
                bad += 1
                continue
            }
            checked += 1
            let sum = md5(bytes)
            if sum == expected { print("ok    \(file)  md5 \(sum)\(file.hasSuffix(".gz") ? " (content)" : "")") } else {
                print("FAIL  \(file)  md5 \(sum), expected \(expected)")
                bad += 1
            }
        }
        guard checked > 0 else { throw CLIError("\(path): no files with known checksums") }
        print("\(checked - bad) of \(checked) files match")
        if bad > 0 { throw ExitCode(1) }
    }
}

struct DataGet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Download a dataset's official archive, check its MD5 and unpack it.",
        discussion: "Example: sprout data get cifar10 --dir ~/.cache/sprout")

    @Argument(help: "mnist, fashion-mnist, cifar10 or cifar100.") var name: String
    @Option(help: "Where to put it (default ~/.cache/sprout).") var dir: String?
    @Option(help: "Seconds to wait for the server before giving up.") var timeout: Double = 10
    @Option(help: "Base URL of a mirror holding the same files (default: the dataset's home).") var mirror: String?

    func run() throws {
        guard let source = DatasetSource.all[name] else {
            throw ValidationError("unknown dataset '\(name)' (\(DatasetSource.all.keys.sorted().joined(separator: ", ")))")
        }
        let target = dir ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache/sprout")
        let dest = (target as NSString).appendingPathComponent(name)
        try FileManager.default.createDirectory(atPath: dest, withIntermediateDirectories: true)
        let base = mirror.map { $0.hasSuffix("/") ? $0 : $0 + "/" } ?? source.base
        for file in source.files {
            let url = base + file.name
            let out = (dest as NSString).appendingPathComponent(file.name)
            print("downloading \(url)")
            do {
                let bytes = try download(url, timeout: timeout)
                let sum = md5(bytes)
                guard sum == file.md5 else { throw CLIError("\(url): md5 \(sum), expected \(file.md5); the download is corrupt") }
                try writeAtomically(bytes, to: out)
            } catch {
                throw CLIError("""
                    could not download \(url): \(error)
                    Manual steps: on a machine with internet access, download \(source.files.map { base + $0.name }.joined(separator: " "))
                    check the MD5 (\(source.files.map { "\($0.name) \($0.md5)" }.joined(separator: ", "))),
                    copy the files to \(dest)\(source.unpack ? " and unpack with: tar -xzf FILE -C \(dest)" : ""), then run: sprout data verify \(dest)
                    """)
            }
            if source.unpack {
                let tar = Process()
                tar.executableURL = URL(fileURLWithPath: "/bin/tar")
                tar.arguments = ["-xzf", out, "-C", dest]
                try tar.run()
                tar.waitUntilExit()
                guard tar.terminationStatus == 0 else { throw CLIError("tar could not unpack \(out)") }
            }
        }
        print("\(name) is in \(dest)")
    }

    func download(_ url: String, timeout: Double) throws -> [UInt8] {
        // curl from Debian: a clear failure within the timeout when there is no network.
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-fsSL", "--connect-timeout", "\(Int(timeout))", url]
        let pipe = Pipe(), errors = Pipe()
        curl.standardOutput = pipe
        curl.standardError = errors
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") else { throw CLIError("curl is not installed (apt-get install curl)") }
        try curl.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        curl.waitUntilExit()
        guard curl.terminationStatus == 0 else {
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw CLIError(message.isEmpty ? "curl exit \(curl.terminationStatus)" : message)
        }
        return [UInt8](data)
    }
}

struct DatasetSource {
    let base: String
    let files: [(name: String, md5: String)]
    let unpack: Bool

    static let all: [String: DatasetSource] = [
        "mnist": DatasetSource(base: "https://ossci-datasets.s3.amazonaws.com/mnist/", files: [
            ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"), ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
            ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"), ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        ], unpack: false),
        "fashion-mnist": DatasetSource(base: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", files: [
            ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"), ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"), ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
        ], unpack: false),
        "cifar10": DatasetSource(base: "https://www.cs.toronto.edu/~kriz/", files: [("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530")], unpack: true),
        "cifar100": DatasetSource(base: "https://www.cs.toronto.edu/~kriz/", files: [("cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8")], unpack: true),
    ]
}

struct DataSample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Write one image of a dataset as a PNG file (and print its label); with --lines, a line of digits composed from MNIST.",
        discussion: """
        Examples:
          sprout data sample /usr/share/datasets/fashion-mnist --split test --index 0 --output shoe.png
          sprout data sample ../shared/data/mnist --split train --lines 5 --index 3 --output line.png   (a 5-digit line, as mnist-lines trains on)
          sprout data sample /usr/share/fonts/truetype/dejavu --text --index 3 --output word.png     (a rendered word, as text-lines trains on)
        """)

    @Argument(help: "Dataset directory (IDX or CIFAR binary).") var path: String
    @Option(help: "train or test.") var split = "test"
    @Option(help: "Image index.") var index = 0
    @Option(help: "PNG file to write.") var output: String
    @Option(help: "Compose a line of this many MNIST digits (a count or a range such as 1-8) from the split, as mnist-lines does.") var lines: String?
    @Option(help: "With --lines or --text: the seed the lines are drawn from.") var seed: UInt64 = 0
    @Flag(help: "Render a word with the TrueType font(s) at the path (a .ttf file or a directory), as text-lines does.") var text = false
    @Option(help: "With --text: a word list, one per line (default: the built-in one).") var words: String?

    func run() throws {
        guard let which = DatasetSplit(rawValue: split) else { throw ValidationError("--split must be train or test") }
        if text {
            let fonts = try Font.load(path)
            let lengths = try RunData.lineLengths(lines ?? "1-12")
            let set = try TextLines(fonts: fonts, words: try words.map(TextLines.readWords) ?? TextLines.defaultWords, count: index + 1,
                                    maxLength: lengths.upperBound, seed: seed)
            let pixels = set.withPixels(ofSample: index) { Array($0) }
            try ImageWriter.writePNG(planar: pixels, channels: 1, height: set.height, width: set.width, to: output)
            print("\(output): text line \(index), \(set.height)×\(set.width), '\(set.text(of: index))' in \((set.fonts[set.lines[index].font].path as NSString).lastPathComponent)")
            return
        }
        if let lines {
            let lengths = try RunData.lineLengths(lines)
            let digits = try MNIST.load(directory: path, split: which)
            let set = try DigitLines(digits: digits, count: index + 1, lengths: lengths, seed: seed)
            let pixels = set.withPixels(ofSample: index) { Array($0) }
            try ImageWriter.writePNG(planar: pixels, channels: 1, height: set.height, width: set.width, to: output)
            print("\(output): line \(index) of \(split) digits, \(set.height)×\(set.width), text \(set.text(of: index))")
            return
        }
        let d = try DatasetKind.detect(directory: path).split(path, which)
        guard (0..<d.count).contains(index) else { throw ValidationError("--index \(index) outside 0..<\(d.count)") }
        let pixels = Array(d.pixels[(index * d.imageSize)..<((index + 1) * d.imageSize)])
        try ImageWriter.writePNG(planar: pixels, channels: d.channels, height: d.height, width: d.width, to: output)
        print("\(output): \(split) image \(index), label \(d.labels[index]) (\(d.classNames[Int(d.labels[index])]))")
    }
}
