import SproutTensor

/// What a batch is trained to predict.
public enum Targets: @unchecked Sendable {
    /// One class index per sample (single-label classification).
    case classes([Int])
    /// A label sequence per sample, of any length (sequence recognition with CTC): the
    /// lengths are the sequences' counts.
    case sequences([[Int]])
    /// Several labels at once per sample: [N, classes] of 0/1.
    case multiLabel(Tensor)

    public var count: Int {
        switch self {
        case .classes(let c): return c.count
        case .sequences(let s): return s.count
        case .multiLabel(let t): return t.shape.first ?? 0
        }
    }
}

/// Samples a `DataLoader` can batch: images of one size as bytes [C, H, W], each with a
/// target. `ImageDataset` (in memory) is one; a streaming photo folder is another kind.
public protocol Dataset: Sendable {
    var count: Int { get }
    var channels: Int { get }
    var height: Int { get }
    var width: Int { get }
    var classNames: [String] { get }
    /// Calls `body` with sample `index`'s pixels, channels × height × width bytes.
    func withPixels<R>(ofSample index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R
    /// The targets of these samples, in order.
    func targets(_ indices: [Int]) -> Targets
}

extension ImageDataset: Dataset {
    public func withPixels<R>(ofSample index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try pixels.withUnsafeBufferPointer { all in
            try body(UnsafeBufferPointer(rebasing: all[(index * imageSize)..<((index + 1) * imageSize)]))
        }
    }

    public func targets(_ indices: [Int]) -> Targets { .classes(indices.map { Int(labels[$0]) }) }
}
