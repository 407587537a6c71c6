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

/// Accumulates loss, top-1/top-5 hits and the confusion matrix batch by batch.
public struct EvaluationAccumulator {
    public private(set) var count = 0
    var lossSum = 0.0, top1Hits = 0, top5Hits = 0
    var confusion: [[Int]]
    let classNames: [String]

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
            }
        }
    }

    public var result: Evaluation {
        Evaluation(count: count, loss: count > 0 ? lossSum / Double(count) : .nan,
                   top1: count > 0 ? Double(top1Hits) / Double(count) : 0,
                   top5: count > 0 ? Double(top5Hits) / Double(count) : 0,
                   confusion: confusion, classNames: classNames)
    }
}
