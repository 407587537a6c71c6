import Foundation
import SproutData
import SproutNN
import SproutTensor

/// A recognised sequence: the labels, their text (each label's class name joined), one
/// confidence per character and the probability of the whole reading.
public struct Recognition: Sendable, Codable, Equatable {
    public var labels: [Int]
    /// Each label's class name (one character for digits and letters, but names may be longer).
    public var characters: [String]
    public var text: String
    /// Per character: the highest probability its class has over the frames aligned to it.
    public var confidences: [Float]
    /// The path's probability (greedy) or the labelling's (beam search: summed over its
    /// alignments in the beam).
    public var probability: Float
}

/// Turns per-frame class probabilities into label sequences (CTC: repeats merge, blanks drop).
public enum CTCDecoder {
    /// Greedy (best path): the most probable class per frame, then collapse.
    ///   probabilities: T × C row-major (softmax over C) → labels
    public static func greedy(_ probabilities: UnsafeBufferPointer<Float>, steps: Int, classes: Int, blank: Int) -> (labels: [Int], probability: Float) {
        var labels: [Int] = [], previous = -1
        var logProbability: Float = 0
        for t in 0..<steps {
            let row = probabilities.baseAddress! + t * classes
            var best = 0
            for c in 1..<classes where row[c] > row[best] { best = c }
            logProbability += logf(max(row[best], 1e-30))
            if best != blank && best != previous { labels.append(best) }
            previous = best
        }
        return (labels, expf(logProbability))
    }

    /// Prefix beam search of `width` (Hannun et al. 2014, without a language model): every
    /// frame extends each kept prefix by a blank, its last label or a new label, keeping the
    /// probability of ending in a blank and in a label apart so that repeats merge only
    /// across no blank.
    public static func beamSearch(_ probabilities: UnsafeBufferPointer<Float>, steps: Int, classes: Int, blank: Int,
                                  width: Int) -> (labels: [Int], probability: Float) {
        struct Score { var blank: Double = 0, label: Double = 0; var total: Double { blank + label } }
        var beams: [[Int]: Score] = [[]: Score(blank: 1, label: 0)]
        var scale: Double = 0
        for t in 0..<steps {
            let row = probabilities.baseAddress! + t * classes
            var next: [[Int]: Score] = [:]
            for (prefix, score) in beams {
                let pBlank = Double(row[blank])
                next[prefix, default: Score()].blank += score.total * pBlank
                for c in 0..<classes where c != blank {
                    let p = Double(row[c])
                    if p < 1e-6 { continue }
                    if let last = prefix.last, last == c {
                        // The same label again: merges with the prefix unless a blank came between.
                        next[prefix, default: Score()].label += score.label * p
                        next[prefix + [c], default: Score()].label += score.blank * p
                    } else {
                        next[prefix + [c], default: Score()].label += score.total * p
                    }
                }
            }
            // Keep the `width` most probable prefixes, renormalised (long lines underflow otherwise).
            let kept = next.sorted { $0.value.total > $1.value.total || ($0.value.total == $1.value.total && $0.key.lexicographicallyPrecedes($1.key)) }
                .prefix(max(1, width))
            let sum = kept.reduce(0) { $0 + $1.value.total }
            beams = Dictionary(uniqueKeysWithValues: kept.map { ($0.key, Score(blank: $0.value.blank / max(sum, 1e-300), label: $0.value.label / max(sum, 1e-300))) })
            scale += log(max(sum, 1e-300))
        }
        let best = beams.max { $0.value.total < $1.value.total || ($0.value.total == $1.value.total && $1.key.lexicographicallyPrecedes($0.key)) }!
        return (best.key, Float(exp(log(best.value.total) + scale)))
    }

    /// Each label's confidence: the best alignment of `labels` to the frames (Viterbi over
    /// the CTC lattice), then per label the highest probability on its frames.
    public static func confidences(of labels: [Int], _ probabilities: UnsafeBufferPointer<Float>, steps: Int, classes: Int,
                                   blank: Int) -> [Float] {
        guard !labels.isEmpty, steps > 0 else { return [] }
        let s = 2 * labels.count + 1
        func label(_ k: Int) -> Int { k % 2 == 0 ? blank : labels[k / 2] }
        func p(_ t: Int, _ c: Int) -> Float { logf(max(probabilities[t * classes + c], 1e-30)) }
        var score = [Float](repeating: -.infinity, count: steps * s)
        var from = [Int](repeating: -1, count: steps * s)
        score[0] = p(0, blank)
        if s > 1 { score[1] = p(0, label(1)) }
        for t in 1..<max(steps, 1) {
            for k in 0..<s {
                var best = score[(t - 1) * s + k], arg = k
                if k >= 1 && score[(t - 1) * s + k - 1] > best { best = score[(t - 1) * s + k - 1]; arg = k - 1 }
                if k >= 2 && k % 2 == 1 && label(k) != label(k - 2) && score[(t - 1) * s + k - 2] > best {
                    best = score[(t - 1) * s + k - 2]; arg = k - 2
                }
                if best > -.infinity { score[t * s + k] = best + p(t, label(k)); from[t * s + k] = arg }
            }
        }
        let last = (steps - 1) * s
        var k = s > 1 && score[last + s - 2] > score[last + s - 1] ? s - 2 : s - 1
        guard score[last + k] > -.infinity else { return Array(repeating: 0, count: labels.count) }
        var out = [Float](repeating: 0, count: labels.count)
        for t in Swift.stride(from: steps - 1, through: 0, by: -1) {
            if k % 2 == 1 { out[k / 2] = max(out[k / 2], probabilities[t * classes + label(k)]) }
            if t > 0 { k = from[t * s + k] }
        }
        return out
    }

    /// Greedy labels of every sequence of logits [N, T, C] (the best class per frame is the
    /// logits' argmax: no softmax needed), for the training log.
    public static func greedyLabels(logits: Tensor, blank: Int) -> [[Int]] {
        let (n, steps) = (logits.shape[0], logits.shape[1])
        let best = logits.reshaped(to: [n * steps, logits.shape[2]]).argmax(alongAxis: 1)
        return (0..<n).map { i in
            var labels: [Int] = [], previous = -1
            for c in best[(i * steps)..<((i + 1) * steps)] {
                if c != blank && c != previous { labels.append(c) }
                previous = c
            }
            return labels
        }
    }

    /// Decodes every sequence of logits [N, T, C] (softmax taken here).
    public static func decode(logits: Tensor, blank: Int, classNames: [String], beamWidth: Int = 1) -> [Recognition] {
        precondition(logits.rank == 3, "CTCDecoder.decode: logits must be [N, T, C], got \(logits.shape)")
        let (n, steps, classes) = (logits.shape[0], logits.shape[1], logits.shape[2])
        let probabilities = withoutGradient { softmax(logits, alongAxis: 2) }.scalars
        return probabilities.withUnsafeBufferPointer { all in
            (0..<n).map { i in
                let p = UnsafeBufferPointer(rebasing: all[(i * steps * classes)..<((i + 1) * steps * classes)])
                let (labels, probability) = beamWidth > 1
                    ? beamSearch(p, steps: steps, classes: classes, blank: blank, width: beamWidth)
                    : greedy(p, steps: steps, classes: classes, blank: blank)
                let characters = labels.map { $0 < classNames.count ? classNames[$0] : "?" }
                return Recognition(labels: labels, characters: characters, text: characters.joined(),
                                   confidences: confidences(of: labels, p, steps: steps, classes: classes, blank: blank),
                                   probability: probability)
            }
        }
    }
}

/// One edit of the alignment of a reading to the truth (nil: no character).
public struct EditOperation: Equatable, Sendable {
    public var truth: Int?
    public var predicted: Int?
}

/// Levenshtein distance with one optimal alignment's edits (substitutions, deletions,
/// insertions; matches left out).
public func editOperations(from truth: [Int], to predicted: [Int]) -> [EditOperation] {
    let (m, n) = (truth.count, predicted.count)
    var d = [[Int]](repeating: [Int](repeating: 0, count: n + 1), count: m + 1)
    for i in 0...m { d[i][0] = i }
    for j in 0...n { d[0][j] = j }
    if m > 0 && n > 0 {
        for i in 1...m {
            for j in 1...n {
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (truth[i - 1] == predicted[j - 1] ? 0 : 1))
            }
        }
    }
    var ops: [EditOperation] = []
    var (i, j) = (m, n)
    while i > 0 || j > 0 {
        if i > 0 && j > 0 && d[i][j] == d[i - 1][j - 1] + (truth[i - 1] == predicted[j - 1] ? 0 : 1) {
            if truth[i - 1] != predicted[j - 1] { ops.append(EditOperation(truth: truth[i - 1], predicted: predicted[j - 1])) }
            (i, j) = (i - 1, j - 1)
        } else if i > 0 && d[i][j] == d[i - 1][j] + 1 {
            ops.append(EditOperation(truth: truth[i - 1], predicted: nil))
            i -= 1
        } else {
            ops.append(EditOperation(truth: nil, predicted: predicted[j - 1]))
            j -= 1
        }
    }
    return ops.reversed()
}

/// What a sequence recogniser's evaluation counts.
public struct SequenceMetrics: Sendable, Codable, Equatable {
    public var sequences = 0
    public var exact = 0
    /// Characters of the truth, and edits (substitutions + deletions + insertions) to the readings.
    public var characters = 0
    public var substitutions = 0, deletions = 0, insertions = 0
    /// "truth→predicted" ("∅" for no character) with its count, most frequent first.
    public var confusions: [Confusion] = []
    /// Up to 20 sequences read wrong: truth, reading.
    public var errors: [[String]] = []

    public struct Confusion: Sendable, Codable, Equatable {
        public var truth: String, predicted: String, count: Int
    }

    public init() {}

    public var edits: Int { substitutions + deletions + insertions }
    /// Character error rate: edits ÷ characters of the truth.
    public var characterErrorRate: Double { Double(edits) / Double(max(characters, 1)) }
    public var sequenceAccuracy: Double { Double(exact) / Double(max(sequences, 1)) }
}

/// Sums a sequence evaluation batch by batch.
public struct SequenceAccumulator {
    public private(set) var metrics = SequenceMetrics()
    var confusionCounts: [String: Int] = [:]
    var lossSum = 0.0
    let classNames: [String]

    public init(classNames: [String]) { self.classNames = classNames }

    func name(_ c: Int?) -> String { c.map { $0 < classNames.count ? classNames[$0] : "?" } ?? "∅" }

    public mutating func add(truth: [Int], predicted: [Int]) {
        metrics.sequences += 1
        metrics.characters += truth.count
        if truth == predicted { metrics.exact += 1; return }
        if metrics.errors.count < 20 {
            metrics.errors.append([truth.map { name($0) }.joined(), predicted.map { name($0) }.joined()])
        }
        for op in editOperations(from: truth, to: predicted) {
            switch (op.truth, op.predicted) {
            case (.some, .some): metrics.substitutions += 1
            case (.some, nil): metrics.deletions += 1
            default: metrics.insertions += 1
            }
            confusionCounts["\(name(op.truth))\u{1F}\(name(op.predicted))", default: 0] += 1
        }
    }

    public mutating func addLoss(_ loss: Float, count: Int) { lossSum += Double(loss) * Double(count) }

    public var result: SequenceMetrics {
        var m = metrics
        m.confusions = confusionCounts.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.prefix(10).map {
            let parts = $0.key.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
            return SequenceMetrics.Confusion(truth: parts[0], predicted: parts[1], count: $0.value)
        }
        return m
    }

    public var meanLoss: Double { lossSum / Double(max(metrics.sequences, 1)) }
}

/// Sequence recognition with CTC: the model gives logits [N, T, C] (T frames, C classes of
/// which `blank` is the blank); the loss is CTC on their log-softmax, averaged over the
/// batch after dividing each sample's by its target length (PyTorch's `mean`), with
/// impossible alignments counted 0. Training reports exact sequences ("accuracy") and the
/// character error rate ("cer", greedy decoding); evaluation adds the edits and confusions.
public struct SequenceRecognition: Objective {
    public var blank: Int
    public var classNames: [String]
    /// Beam width for evaluation (1: greedy).
    public var beamWidth: Int

    public init(blank: Int, classNames: [String], beamWidth: Int = 1) {
        (self.blank, self.classNames, self.beamWidth) = (blank, classNames, beamWidth)
    }

    func frames(_ output: Tensor) -> Tensor {
        precondition(output.rank == 3, "SequenceRecognition: the model must give [N, T, classes] logits, got \(output.shape)")
        return logSoftmax(output.permuted([1, 0, 2]), alongAxis: 2)
    }

    public func loss(output: Tensor, batch: Batch) -> Tensor {
        ctcLoss(logProbabilities: frames(output), targets: batch.sequences, blank: blank, reduction: .mean, zeroInfinity: true)
    }

    public func metricSums(output: Tensor, batch: Batch) -> [String: Double] {
        var exact = 0.0, cer = 0.0
        for (read, truth) in zip(CTCDecoder.greedyLabels(logits: output, blank: blank), batch.sequences) {
            if read == truth { exact += 1 }
            cer += Double(editOperations(from: truth, to: read).count) / Double(max(truth.count, 1))
        }
        return ["accuracy": exact, "cer": cer]
    }

    public func evaluate(_ model: any Layer, on loader: DataLoader, testTimeAugmentation: TestTimeAugmentation) -> Evaluation {
        var acc = SequenceAccumulator(classNames: classNames)
        withoutGradient {
            for batch in loader.epoch(0) {
                let output = model(batch.images)
                acc.addLoss(loss(output: output, batch: batch).scalar, count: batch.count)
                for (r, truth) in zip(CTCDecoder.decode(logits: output, blank: blank, classNames: classNames, beamWidth: beamWidth),
                                      batch.sequences) {
                    acc.add(truth: truth, predicted: r.labels)
                }
            }
        }
        let m = acc.result
        var e = Evaluation(count: m.sequences, loss: acc.meanLoss, top1: m.sequenceAccuracy, top5: 0,
                           confusion: [], classNames: classNames)
        e.sequence = m
        return e
    }
}
