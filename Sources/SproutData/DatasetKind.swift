/// The datasets Sprout reads by name, each from its official files: the one place a kind
/// becomes a dataset (training, evaluation and `sprout data` all come here).
public enum DatasetKind: String, Codable, Sendable, CaseIterable {
    case mnist
    case fashionMNIST = "fashion-mnist"
    case cifar10, cifar100
    /// ROOT/<class>/*.png|jpg
    case folder

    /// Where a fresh machine has it without a --data-dir (Debian's dataset-fashion-mnist).
    public var defaultDirectory: String? { self == .fashionMNIST ? "/usr/share/datasets/fashion-mnist" : nil }

    /// Whether the official files include a test split.
    public var hasTestSplit: Bool { self != .folder }

    /// Side that folder images are decoded to.
    public static let folderImageSize = 32

    /// One split from `directory`; images of a folder that do not decode are left out and
    /// listed in `skipped`.
    public func load(directory: String, split: DatasetSplit) throws -> (dataset: ImageDataset, skipped: [(path: String, reason: String)]) {
        switch self {
        case .mnist, .fashionMNIST:
            return (try MNIST.load(directory: directory, split: split, fashion: self == .fashionMNIST), [])
        case .cifar10: return (try CIFAR.load10(directory: directory, split: split), [])
        case .cifar100: return (try CIFAR.load100(directory: directory, split: split), [])
        case .folder:
            guard split == .train else { throw DatasetError.noSplit(kind: rawValue, split: split.rawValue) }
            let (dataset, report) = try ImageFolder.load(root: directory, size: Self.folderImageSize, skipBadImages: true)
            return (dataset, report.skipped)
        }
    }
}
