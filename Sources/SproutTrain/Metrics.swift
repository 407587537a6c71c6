import Foundation
import SproutTensor

/// Classification results over a dataset split.
public struct Evaluation: Sendable, Codable {
    public var count: Int
    public var loss: Double
    public var top1: Double
    public var top5: Double
    /// confusion[truth][prediction]
    public var confusion: [[Int]]
    public var classNames: [String]
    /// Each image's outcome in evaluation order (nil when not recorded): what `sprout compare`
    /// pairs between runs and the error report pages through.
    public var samples: SampleOutcomes?
    /// Sequence recognisers: character error rate, edit operations, the most frequent
    /// confusions (`top1` is then the share of sequences read exactly, `top5` unused).
    public var sequence: SequenceMetrics?

    public struct ClassMetrics: Sendable, Codable {
        public var name: String, precision: Double, recall: Double, f1: Double, support: Int
    }

    public var perClass: [ClassMetrics] {
        confusion.indices.map { c in
            let tp = Double(confusion[c][c])
            let predicted = Double(confusion.map { $0[c] }.reduce(0, +))
            let actual = Double(confusion[c].reduce(0, +))
            let p = predicted > 0 ? tp / predicted : 0, r = actual > 0 ? tp / actual : 0
            return ClassMetrics(name: c < classNames.count ? classNames[c] : "\(c)", precision: p, recall: r,
                                f1: p + r > 0 ? 2 * p * r / (p + r) : 0, support: Int(actual))
        }
    }
}

/// Every evaluated image's label and three most probable classes, in evaluation order.
public struct SampleOutcomes: Sendable, Codable, Equatable {
    public var labels: [Int] = []
    /// The three most probable classes (fewer when there are fewer), most probable first.
    public var top3: [[Int]] = []
    /// Their softmax probabilities.
    public var top3Probabilities: [[Float]] = []

    public init() {}

    public var count: Int { labels.count }
    public var predictions: [Int] { top3.map { $0.first ?? -1 } }
    public var correct: [Bool] { zip(top3, labels).map { $0.first == $1 } }
    /// The probability of the predicted class.
    public var confidence: [Float] { top3Probabilities.map { $0.first ?? 0 } }
}

/// Accumulates loss, top-1/top-5 hits and the confusion matrix batch by batch.
public struct EvaluationAccumulator {
    public private(set) var count = 0
    var lossSum = 0.0, top1Hits = 0, top5Hits = 0
    var confusion: [[Int]]
    let classNames: [String]
    var samples = SampleOutcomes()

    public init(classNames: [String]) {
        self.classNames = classNames
        confusion = Array(repeating: Array(repeating: 0, count: classNames.count), count: classNames.count)
    }

    /// logits [n, C]; `loss` the batch's mean loss.
    public mutating func add(logits: Tensor, labels: [Int], loss: Float) {
        let n = labels.count, c = logits.shape[1]
        lossSum += Double(loss) * Double(n)
        count += n
        let k = min(5, c)
        logits.withData { p in
            for i in 0..<n {
                let row = p.baseAddress! + i * c
                let truth = labels[i]
                var best = 0
                for j in 1..<c where row[j] > row[best] { best = j }
                if best == truth { top1Hits += 1 }
                // Rank of the true class: classes scoring strictly higher (ties favour the truth).
                var higher = 0
                for j in 0..<c where row[j] > row[truth] { higher += 1 }
                if higher < k { top5Hits += 1 }
                if truth < confusion.count && best < confusion.count { confusion[truth][best] += 1 }
                // Softmax probabilities of the three best classes.
                let peak = row[best]
                var total: Float = 0
                for j in 0..<c { total += expf(row[j] - peak) }
                var top: [Int] = []
                for _ in 0..<min(3, c) {
                    var pick = -1
                    for j in 0..<c where !top.contains(j) && (pick < 0 || row[j] > row[pick]) { pick = j }
                    top.append(pick)
                }
                samples.labels.append(truth)
                samples.top3.append(top)
                samples.top3Probabilities.append(top.map { expf(row[$0] - peak) / total })
            }
        }
    }

    public var result: Evaluation {
        Evaluation(count: count, loss: count > 0 ? lossSum / Double(count) : .nan,
                   top1: count > 0 ? Double(top1Hits) / Double(count) : 0,
                   top5: count > 0 ? Double(top5Hits) / Double(count) : 0,
                   confusion: confusion, classNames: classNames, samples: samples)
    }
}
