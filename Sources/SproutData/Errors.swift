/// Everything that can be wrong with a dataset on disk; each case names the file.
public enum DatasetError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(String)
    case unreadable(String, reason: String)
    case badMagic(String, expected: UInt32, found: UInt32)
    case truncated(String, expectedBytes: Int, foundBytes: Int)
    case malformed(String, reason: String)
    case countMismatch(images: String, labels: String, imageCount: Int, labelCount: Int)
    case labelOutOfRange(String, index: Int, label: Int, classes: Int)
    case emptyFolder(String)
    case undecodableImage(String, reason: String)
    case corruptCompressedData(String, reason: String)
    case noSplit(kind: String, split: String)
    case emptyClass(String)
    /// A setting that cannot make this dataset (line lengths, sizes).
    case invalid(String)

    public var description: String {
        switch self {
        case .fileNotFound(let p): return "\(p): no such file"
        case let .noSplit(kind, split): return "dataset '\(kind)' has no \(split) split; use --split val"
        case .emptyClass(let p): return "\(p): class folder with no usable image"
        case .invalid(let m): return m
        case let .unreadable(p, r): return "\(p): cannot read: \(r)"
        case let .badMagic(p, e, f): return "\(p): wrong magic number \(f) (expected \(e)); not an IDX file of this kind"
        case let .truncated(p, e, f): return "\(p): truncated: expected \(e) bytes, found \(f)"
        case let .malformed(p, r): return "\(p): \(r)"
        case let .countMismatch(i, l, ic, lc): return "\(i) has \(ic) images but \(l) has \(lc) labels"
        case let .labelOutOfRange(p, i, l, c): return "\(p): label \(l) of record \(i) is outside 0..<\(c)"
        case .emptyFolder(let p): return "\(p): no class folders with images (expected ROOT/<class>/*.png|*.jpg)"
        case let .undecodableImage(p, r): return "\(p): cannot decode image: \(r)"
        case let .corruptCompressedData(p, r): return "\(p): corrupt gzip data: \(r)"
        }
    }
}
