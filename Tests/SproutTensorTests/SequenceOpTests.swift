import Testing
@testable import SproutTensor

/// The recurrences and CTC: finite differences for every input (with per-sample lengths and
/// both directions), and PyTorch's `ctc_loss` (scripts/make_sequence_fixtures.py).
@Suite struct SequenceOpTests {
    @Test(arguments: [false, true])
    func lstmRecurrenceGradients(reverse: Bool) {
        let (t, n, h) = (4, 3, 2)
        let xp = randn([t, n, 4 * h], seed: 21), w = randn([4 * h, h], seed: 22) * 0.5
        let h0 = randn([n, h], seed: 23) * 0.5, c0 = randn([n, h], seed: 24) * 0.5
        for lengths in [nil, [4, 1, 3]] as [[Int]?] {
            // The output, the final hidden and the final cell all reach the checked value.
            expectGradientsMatchFiniteDifferences([xp, w, h0, c0]) { v in
                let r = lstmRecurrence(projections: v[0], weightHH: v[1], initialHidden: v[2], initialCell: v[3],
                                       lengths: lengths, reverse: reverse)
                return Tensor.concatenate([r.output.reshaped(to: [t * n, h]), r.hidden, r.cell * 0.7], alongAxis: 0)
            }
        }
    }

    @Test(arguments: [false, true])
    func gruRecurrenceGradients(reverse: Bool) {
        let (t, n, h) = (4, 3, 2)
        let xp = randn([t, n, 3 * h], seed: 31), w = randn([3 * h, h], seed: 32) * 0.5
        let b = randn([3 * h], seed: 33) * 0.5, h0 = randn([n, h], seed: 34) * 0.5
        for lengths in [nil, [2, 4, 0]] as [[Int]?] {
            expectGradientsMatchFiniteDifferences([xp, w, b, h0]) { v in
                let r = gruRecurrence(projections: v[0], weightHH: v[1], biasHH: v[2], initialHidden: v[3],
                                      lengths: lengths, reverse: reverse)
                return Tensor.concatenate([r.output.reshaped(to: [t * n, h]), r.hidden], alongAxis: 0)
            }
        }
    }

    @Test func lengthsActAsPackedSequences() {
        // A sample run alone at its own length equals that sample inside a padded batch.
        let (t, h) = (5, 3)
        let xp = randn([t, 2, 4 * h], seed: 41), w = randn([4 * h, h], seed: 42) * 0.5
        let zeros = Tensor.zeros([2, h])
        for reverse in [false, true] {
            let batch = lstmRecurrence(projections: xp, weightHH: w, initialHidden: zeros, initialCell: zeros,
                                       lengths: [5, 3], reverse: reverse)
            let alone = xp.slice(0..<3, alongAxis: 0).slice(1..<2, alongAxis: 1)
            let single = lstmRecurrence(projections: alone, weightHH: w, initialHidden: Tensor.zeros([1, h]),
                                        initialCell: Tensor.zeros([1, h]), reverse: reverse)
            expectClose(batch.output.slice(0..<3, alongAxis: 0).slice(1..<2, alongAxis: 1), single.output, atol: 1e-6, "outputs")
            expectClose(batch.hidden.slice(1..<2, alongAxis: 0), single.hidden, atol: 1e-6, "final hidden")
            #expect(batch.output.slice(3..<5, alongAxis: 0).slice(1..<2, alongAxis: 1).scalars.allSatisfy { $0 == 0 })
        }
    }

    @Test func ctcGradientsMatchFiniteDifferences() {
        let logits = randn([7, 3, 5], seed: 51)
        let targets = [[1, 2, 2], [3], [4, 1, 4, 1]]
        for reduction in [LossReduction.mean, .sum] {
            expectGradientsMatchFiniteDifferences([logits]) {
                ctcLoss(logProbabilities: logSoftmax($0[0], alongAxis: 2), targets: targets, inputLengths: [7, 5, 7], reduction: reduction)
            }
        }
        // On the log-probabilities themselves (not only through a log-softmax): the true gradient.
        let lp = logSoftmax(logits, alongAxis: 2)
        expectGradientsMatchFiniteDifferences([lp]) {
            ctcLoss(logProbabilities: $0[0], targets: targets, inputLengths: [7, 5, 7], reduction: .none)
        }
    }

    @Test func ctcMatchesPyTorch() throws {
        let cases = try loadFixtures("ctc")
        #expect(cases.count == 7)
        for c in cases {
            let targets = try #require(c.targets), lengths = try #require(c.input_lengths)
            let blank = Int(c.params["blank"]!.number!)
            let reduction = LossReduction(rawValue: c.params["reduction"]!.string!)!
            let zeroInfinity = c.params["zero_infinity"]!.bool!
            let f: ([Tensor]) -> Tensor = { xs in
                ctcLoss(logProbabilities: logSoftmax(xs[0], alongAxis: 2), targets: targets, inputLengths: lengths,
                        blank: blank, reduction: reduction, zeroInfinity: zeroInfinity)
            }
            let expected = c.output.tensor
            if expected.scalars.allSatisfy(\.isFinite) {
                checkAgainstFixture(c, order: ["logits"], f)
                continue
            }
            // A target too long for its input without zero_infinity: +∞ for that sample, as
            // PyTorch; PyTorch's gradient there is NaN, Sprout's 0 — the finite samples agree.
            let loss = withoutGradient { f([c.inputs["logits"]!.tensor]) }
            #expect(zip(loss.scalars, expected.scalars).allSatisfy { $0 == $1 || abs($0 - $1) <= 1e-4 * abs($1) }, "\(c.name): \(loss.scalars) vs \(expected.scalars)")
            let (_, grads) = valueWithGradient(at: [c.inputs["logits"]!.tensor]) { xs in (f(xs) * c.dy.tensor).sum() }
            let (n, classes) = (targets.count, c.inputs["logits"]!.shape[2])
            let got = grads[0].scalars, want = c.grads["logits"]!.tensor.scalars
            for i in got.indices where expected.scalars[(i / classes) % n].isFinite {
                #expect(abs(got[i] - want[i]) <= 1e-4 + 1e-4 * abs(want[i]), "\(c.name) dlogits[\(i)]: \(got[i]) vs \(want[i])")
            }
        }
    }

    @Test func ctcTargetTooLongWithZeroInfinityCountsZero() {
        #expect(ctcLoss(logProbabilities: logSoftmax(randn([3, 1, 4], seed: 1), alongAxis: 2), targets: [[1, 2, 3, 1]],
                        zeroInfinity: true).scalar == 0)
    }
}
