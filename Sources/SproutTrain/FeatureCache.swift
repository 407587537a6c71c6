import Foundation
import SproutData
import SproutNN
import SproutTensor

/// A frozen backbone's pooled features of every image of a dataset, computed once: training
/// the classifier on them costs a few milliseconds an epoch instead of a pass through the
/// backbone (Create ML's transfer learning). Each image is seen in its evaluation view (the
/// centre crop), and with `mirrored`, also as its mirror image — the one augmentation that
/// survives caching. A `Dataset` of [F, 1, 1] samples; sample `i` is image `i % n`, view `i / n`.
public final class FeatureCache: Dataset, @unchecked Sendable {
    public let images: any Dataset
    public let views: Int
    public let featureCount: Int
    private var values: [Float]
    public private(set) var isComputed = false
    /// Seconds `compute` took.
    public private(set) var seconds: Double = 0

    public init(images: any Dataset, featureCount: Int, mirrored: Bool) {
        self.images = images
        self.views = mirrored ? 2 : 1
        self.featureCount = featureCount
        values = []
    }

    public var count: Int { images.count * views }
    public var channels: Int { featureCount }
    public var height: Int { 1 }
    public var width: Int { 1 }
    public var classNames: [String] { images.classNames }

    public func targets(_ indices: [Int]) -> Targets { images.targets(indices.map { $0 % images.count }) }

    public func withPixels<R>(ofSample index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        preconditionFailure("FeatureCache holds floats: the loader renders its samples")
    }

    public func renderSample(_ index: Int, augmentation: Augmentation, generator: inout SeededGenerator,
                             into out: UnsafeMutablePointer<Float>) throws -> Bool {
        precondition(isComputed, "FeatureCache: compute(with:) first")
        values.withUnsafeBufferPointer { v in
            out.update(from: v.baseAddress! + index * featureCount, count: featureCount)
        }
        return true
    }

    /// Runs the backbone over `loader`'s batches (the images in their evaluation view, in
    /// order), in evaluation mode and without recording.
    public func compute(with model: any TransferableClassifier, loader: DataLoader) throws {
        let started = Date()
        let n = images.count, f = featureCount
        var result = [Float](repeating: 0, count: n * views * f)
        let wasTraining = model.isTraining
        model.eval()
        defer { model.setTraining(wasTraining) }
        try withoutGradient {
            for batch in loader.epoch(0) {
                if let error = loader.stoppingFailure { throw error }
                var outputs = [model.forwardFeatures(batch.images)]
                if views == 2 { outputs.append(model.forwardFeatures(batch.images.flipped(alongAxes: [3]))) }
                for (view, features) in outputs.enumerated() {
                    features.withData { src in
                        for (k, i) in batch.indices.enumerated() {
                            result.withUnsafeMutableBufferPointer { dst in
                                (dst.baseAddress! + (view * n + i) * f).update(from: src.baseAddress! + k * f, count: f)
                            }
                        }
                    }
                }
                try TensorMemory.checkLimit()
            }
        }
        values = result
        isComputed = true
        seconds = Date().timeIntervalSince(started)
    }
}
