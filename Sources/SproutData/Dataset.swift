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
    /// Datasets of photos of any size draw the geometric augmentation themselves (a random
    /// resized crop from the full-resolution photo, not from a small stored copy): they write
    /// sample `index` as floats in [0, 1], C × height × width, at `out` and return true. Others
    /// return false and the loader crops their stored bytes.
    func renderSample(_ index: Int, augmentation: Augmentation, generator: inout SeededGenerator,
                      into out: UnsafeMutablePointer<Float>) throws -> Bool
}

extension Dataset {
    public var classCount: Int { classNames.count }

    /// Samples per class (classification datasets; empty otherwise).
    public var classCounts: [Int] {
        guard case .classes(let labels) = targets(Array(0..<count)) else { return [] }
        var counts = [Int](repeating: 0, count: classCount)
        for l in labels where l < counts.count { counts[l] += 1 }
        return counts
    }

    public func renderSample(_ index: Int, augmentation: Augmentation, generator: inout SeededGenerator,
                             into out: UnsafeMutablePointer<Float>) throws -> Bool { false }
}

extension ImageDataset: Dataset {
    public func withPixels<R>(ofSample index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try pixels.withUnsafeBufferPointer { all in
            try body(UnsafeBufferPointer(rebasing: all[(index * imageSize)..<((index + 1) * imageSize)]))
        }
    }

    public func targets(_ indices: [Int]) -> Targets { .classes(indices.map { Int(labels[$0]) }) }
}
