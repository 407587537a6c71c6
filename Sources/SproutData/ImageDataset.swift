import SproutTensor

/// Images held in memory as bytes, [N, C, H, W], with integer labels and class names.
/// Every reader (IDX, CIFAR, image folders) produces one.
public struct ImageDataset: Sendable {
    public var pixels: [UInt8]
    public var labels: [Int32]
    public let channels: Int, height: Int, width: Int
    public var classNames: [String]
    /// Where the data came from, for messages and metadata.
    public var source: String

    public init(pixels: [UInt8], labels: [Int32], channels: Int, height: Int, width: Int, classNames: [String], source: String) {
        precondition(pixels.count == labels.count * channels * height * width,
                     "ImageDataset: \(pixels.count) bytes for \(labels.count) images of \(channels)×\(height)×\(width)")
        (self.pixels, self.labels, self.channels, self.height, self.width) = (pixels, labels, channels, height, width)
        self.classNames = classNames
        self.source = source
    }

    public var count: Int { labels.count }
    public var imageSize: Int { channels * height * width }
    public var shape: [Int] { [channels, height, width] }

    /// Images `range`, in order.
    public func subset(_ range: Range<Int>) -> ImageDataset {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "subset: \(range) outside 0..<\(count)")
        return ImageDataset(pixels: Array(pixels[(range.lowerBound * imageSize)..<(range.upperBound * imageSize)]),
                            labels: Array(labels[range]), channels: channels, height: height, width: width,
                            classNames: classNames, source: "\(source)[\(range.lowerBound)..<\(range.upperBound)]")
    }

    /// The deterministic hold-out split careful practitioners use when no test split is at
    /// hand: the last `validationCount` images validate, the rest train.
    public func splittingLast(_ validationCount: Int) -> (train: ImageDataset, validation: ImageDataset) {
        precondition(validationCount > 0 && validationCount < count,
                     "splittingLast: \(validationCount) validation images out of \(count)")
        return (subset(0..<(count - validationCount)), subset((count - validationCount)..<count))
    }

    /// Images `indices`, in that order.
    public func subset(indices: [Int]) -> ImageDataset {
        var px = [UInt8]()
        px.reserveCapacity(indices.count * imageSize)
        for i in indices { px += pixels[(i * imageSize)..<((i + 1) * imageSize)] }
        return ImageDataset(pixels: px, labels: indices.map { labels[$0] }, channels: channels, height: height, width: width,
                            classNames: classNames, source: source)
    }

    /// A seeded split in which every class keeps its share (`stratifiedSplitIndices`).
    public func stratifiedSplit(validationCount: Int, seed: UInt64) -> (train: ImageDataset, validation: ImageDataset) {
        let (train, validation) = stratifiedSplitIndices(labels: labels, classCount: classCount,
                                                         validationCount: validationCount, seed: seed)
        return (subset(indices: train), subset(indices: validation))
    }

    /// Images per class.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        for l in labels where Int(l) < counts.count { counts[Int(l)] += 1 }
        return counts
    }

    /// Per-channel mean and standard deviation of the pixels on a [0, 1] scale.
    public func channelStatistics() -> (mean: [Float], std: [Float]) {
        var sum = [Double](repeating: 0, count: channels), sq = [Double](repeating: 0, count: channels)
        let plane = height * width
        pixels.withUnsafeBufferPointer { p in
            for i in 0..<count {
                for c in 0..<channels {
                    let base = (i * channels + c) * plane
                    var s = 0.0, s2 = 0.0
                    for j in 0..<plane { let v = Double(p[base + j]) / 255; s += v; s2 += v * v }
                    sum[c] += s
                    sq[c] += s2
                }
            }
        }
        let n = Double(count * plane)
        let mean = sum.map { $0 / n }
        let std = zip(sq, mean).map { (($0 / n) - $1 * $1).squareRoot() }
        return (mean.map(Float.init), std.map(Float.init))
    }
}
