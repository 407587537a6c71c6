import SproutData
import SproutNN
import SproutTensor

/// What a model is trained for, as a value the trainer is given: the loss of the model's
/// output against a batch's targets, what the training log counts on the way, and how a
/// checkpoint is evaluated. Classification (cross-entropy, top-1/top-5, confusion matrix)
/// is one; a sequence objective (CTC) or a multi-label one plugs in the same way.
public protocol Objective {
    /// The scalar to minimise; `output` is recorded for gradients.
    func loss(output: Tensor, batch: Batch) -> Tensor
    /// Sums over the batch that the training log reports, each divided by the batch size
    /// (e.g. "accuracy": correct predictions). Computed without gradients.
    func metricSums(output: Tensor, batch: Batch) -> [String: Double]
    /// The model (in evaluation mode, nothing recorded) on every batch of `loader`.
    func evaluate(_ model: any Layer, on loader: DataLoader, testTimeAugmentation: TestTimeAugmentation) -> Evaluation
    /// The per-sample mean of a loss value `loss` returned for `count` samples, for the log
    /// (a summed loss is divided back).
    func meanLoss(_ loss: Float, count: Int) -> Float
}

extension Objective {
    public func meanLoss(_ loss: Float, count: Int) -> Float { loss }
}

/// Single-label classification: cross-entropy (optional label smoothing and class
/// weights) on logits [N, classes]; accuracy while training; loss, top-1, top-5, per-class
/// precision/recall/F1 and the confusion matrix when evaluating.
public struct Classification: Objective {
    public var labelSmoothing: Float
    public var classWeights: Tensor?
    /// The loss summed over the batch instead of averaged (airbench's learning rates assume it).
    public var summed: Bool
    /// With test-time augmentation: only this share of each batch, its least confident images
    /// (lowest top probability of the plain view), gets the extra views (nil: all of them).
    public var augmentedFraction: Float?

    public init(labelSmoothing: Float = 0, classWeights: Tensor? = nil, summed: Bool = false, augmentedFraction: Float? = nil) {
        self.labelSmoothing = labelSmoothing
        self.classWeights = classWeights
        self.summed = summed
        self.augmentedFraction = augmentedFraction
    }

    public func loss(output: Tensor, batch: Batch) -> Tensor {
        let mean = crossEntropy(logits: output, labels: batch.labels, labelSmoothing: labelSmoothing, classWeights: classWeights)
        return summed ? mean * Float(batch.count) : mean
    }

    public func meanLoss(_ loss: Float, count: Int) -> Float { summed ? loss / Float(max(count, 1)) : loss }

    public func metricSums(output: Tensor, batch: Batch) -> [String: Double] {
        ["accuracy": Double(zip(output.argmax(alongAxis: 1), batch.labels).filter { $0 == $1 }.count)]
    }

    public func evaluate(_ model: any Layer, on loader: DataLoader, testTimeAugmentation: TestTimeAugmentation) -> Evaluation {
        var acc = EvaluationAccumulator(classNames: loader.dataset.classNames)
        withoutGradient {
            for batch in loader.epoch(0) {
                let logits = self.logits(model, batch.images, testTimeAugmentation: testTimeAugmentation)
                let loss = crossEntropy(logits: logits, labels: batch.labels, classWeights: classWeights)
                acc.add(logits: logits, labels: batch.labels, loss: loss.scalar)
            }
        }
        return acc.result
    }

    /// The logits of `images` with test-time augmentation for all of them, or, with
    /// `augmentedFraction`, for the least confident share only (the rest keep the plain view).
    //   images: [N, C, H, W] → [N, classes]
    func logits(_ model: any Layer, _ images: Tensor, testTimeAugmentation views: TestTimeAugmentation) -> Tensor {
        guard views != .none, let fraction = augmentedFraction, fraction < 1 else { return views.logits(model, images) }
        let plain = model(images)
        let (n, classes) = (plain.shape[0], plain.shape[1])
        let chosen = Int((Float(n) * max(0, fraction)).rounded(.up))
        guard chosen > 0 else { return plain }
        let probabilities = softmax(plain, alongAxis: 1).scalars
        let confidence = (0..<n).map { i in probabilities[(i * classes)..<((i + 1) * classes)].max()! }
        let uncertain = (0..<n).sorted { confidence[$0] < confidence[$1] || (confidence[$0] == confidence[$1] && $0 < $1) }.prefix(chosen)
        let per = images.count / n
        let source = images.scalars
        var subset = [Float](); subset.reserveCapacity(chosen * per)
        for i in uncertain { subset += source[(i * per)..<((i + 1) * per)] }
        let augmented = views.logits(model, Tensor(shape: [chosen] + Array(images.shape.dropFirst()), scalars: subset)).scalars
        var out = plain.scalars
        for (k, i) in uncertain.enumerated() {
            for c in 0..<classes { out[i * classes + c] = augmented[k * classes + c] }
        }
        return Tensor(shape: plain.shape, scalars: out)
    }
}
