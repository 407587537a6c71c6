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
}

/// Single-label classification: cross-entropy (optional label smoothing and class
/// weights) on logits [N, classes]; accuracy while training; loss, top-1, top-5, per-class
/// precision/recall/F1 and the confusion matrix when evaluating.
public struct Classification: Objective {
    public var labelSmoothing: Float
    public var classWeights: Tensor?

    public init(labelSmoothing: Float = 0, classWeights: Tensor? = nil) {
        self.labelSmoothing = labelSmoothing
        self.classWeights = classWeights
    }

    public func loss(output: Tensor, batch: Batch) -> Tensor {
        crossEntropy(logits: output, labels: batch.labels, labelSmoothing: labelSmoothing, classWeights: classWeights)
    }

    public func metricSums(output: Tensor, batch: Batch) -> [String: Double] {
        ["accuracy": Double(zip(output.argmax(alongAxis: 1), batch.labels).filter { $0 == $1 }.count)]
    }

    public func evaluate(_ model: any Layer, on loader: DataLoader, testTimeAugmentation: TestTimeAugmentation) -> Evaluation {
        var acc = EvaluationAccumulator(classNames: loader.dataset.classNames)
        withoutGradient {
            for batch in loader.epoch(0) {
                let logits = testTimeAugmentation.logits(model, batch.images)
                let loss = crossEntropy(logits: logits, labels: batch.labels, classWeights: classWeights)
                acc.add(logits: logits, labels: batch.labels, loss: loss.scalar)
            }
        }
        return acc.result
    }
}
