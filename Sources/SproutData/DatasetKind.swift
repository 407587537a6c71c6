import Foundation

/// The datasets Sprout reads by name, each from its official files: the one place a kind
/// becomes a dataset (training, evaluation and `sprout data` all come here).
public enum DatasetKind: String, Codable, Sendable, CaseIterable {
    case mnist
    case fashionMNIST = "fashion-mnist"
    case cifar10, cifar100
    /// ROOT/<class>/*.png|jpg
    case folder
    /// Lines of 1–8 handwritten digits composed from MNIST's files (`DigitLines`); the
    /// targets are the digit strings.
    case mnistLines = "mnist-lines"
    /// Words rendered with the TrueType fonts at --data-dir (a .ttf or a directory of them),
    /// with noise and blur (`TextLines`); the targets are the words' characters.
    case textLines = "text-lines"

    /// Whether the samples' targets are label sequences (CTC) rather than one class each.
    public var isSequence: Bool { self == .mnistLines || self == .textLines }

    /// Where a fresh machine has it without a --data-dir (Debian's dataset-fashion-mnist).
    public var defaultDirectory: String? { self == .fashionMNIST ? "/usr/share/datasets/fashion-mnist" : nil }

    /// Whether the files include a held-out split (a folder's ROOT/val counts).
    public func hasTestSplit(directory: String) -> Bool {
        guard self == .folder else { return true }
        if case .trainValidation = ImageFolder.layout(of: directory) { return true }
        return false
    }

    /// Side that folder images are decoded to for training.
    public static let folderImageSize = 32

    /// The kind of the dataset in `directory`, from the official file names there.
    public static func detect(directory: String) -> DatasetKind {
        if PhotoPack.isPack(directory) { return .folder }
        let files = Set((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
        if files.contains("data_batch_1.bin") || files.contains("test_batch.bin") { return .cifar10 }
        if files.contains("train.bin") || files.contains("test.bin") { return .cifar100 }
        if files.contains(where: { $0.contains("-idx3-ubyte") }) {
            return directory.lowercased().contains("fashion") ? .fashionMNIST : .mnist
        }
        return .folder
    }

    /// One split from `directory`; images of a folder that do not decode are left out and
    /// listed in `skipped`.
    public func load(directory: String, split: DatasetSplit, folderImageSize: Int = folderImageSize, skipBadImages: Bool = true) throws
        -> (dataset: ImageDataset, skipped: [(path: String, reason: String)]) {
        switch self {
        case .mnist, .fashionMNIST:
            return (try MNIST.load(directory: directory, split: split, fashion: self == .fashionMNIST), [])
        case .mnistLines:
            // The digits the lines are composed from (`DigitLines` makes the lines).
            return (try MNIST.load(directory: directory, split: split), [])
        case .textLines:
            throw DatasetError.invalid("text-lines are rendered from fonts (TextLines), not read as images")
        case .cifar10: return (try CIFAR.load10(directory: directory, split: split), [])
        case .cifar100: return (try CIFAR.load100(directory: directory, split: split), [])
        case .folder:
            // ROOT/train + ROOT/val: the val folder is this dataset's held-out split ("test"),
            // with the training folder's classes.
            switch (ImageFolder.layout(of: directory), split) {
            case (.classes(let root), .train):
                let (dataset, report) = try ImageFolder.load(root: root, size: folderImageSize, skipBadImages: skipBadImages)
                return (dataset, report.skipped)
            case (.trainValidation(let train, _), .train):
                let (dataset, report) = try ImageFolder.load(root: train, size: folderImageSize, skipBadImages: skipBadImages)
                return (dataset, report.skipped)
            case (.trainValidation(let train, let validation), .test):
                let classes = ImageFolder.directories(in: train)
                let (dataset, report) = try ImageFolder.load(root: validation, size: folderImageSize, skipBadImages: skipBadImages,
                                                             classNames: classes)
                return (dataset, report.skipped)
            case (.classes, .test):
                throw DatasetError.noSplit(kind: rawValue, split: split.rawValue)
            }
        }
    }
}
