import Testing
@testable import SproutTensor

/// Finite-difference checks of every differentiable op, on awkward shapes: batch 1, odd
/// sizes, stride 2, padding, channel counts that are not a multiple of 8.
@Suite struct GradientCheckTests {
    let a = randn([3, 1, 5], seed: 1)
    let b = randn([1, 4, 5], seed: 2)

    @Test func arithmeticWithBroadcasting() {
        let positive = Tensor(shape: [1, 4, 5], scalars: randn([20], seed: 3).scalars.map { abs($0) + 0.5 })
        expectGradientsMatchFiniteDifferences([a, b]) { $0[0] + $0[1] }
        expectGradientsMatchFiniteDifferences([a, b]) { $0[0] - $0[1] }
        expectGradientsMatchFiniteDifferences([a, b]) { $0[0] * $0[1] }
        expectGradientsMatchFiniteDifferences([a, positive]) { $0[0] / $0[1] }
        expectGradientsMatchFiniteDifferences([a]) { -$0[0] * 3 + 1 }
    }

    @Test func minimumMaximumClampWhere() {
        let x = randn([2, 3, 4], seed: 4), y = randn([2, 3, 4], seed: 5) + 0.05
        expectGradientsMatchFiniteDifferences([x, y]) { maximum($0[0], $0[1]) }
        expectGradientsMatchFiniteDifferences([x, y]) { minimum($0[0], $0[1]) }
        let awayFromEdges = randomAwayFromZero([2, 7], seed: 6, gap: 0.05)
        expectGradientsMatchFiniteDifferences([awayFromEdges]) { clamp($0[0], min: -0.5, max: 0.5) * 1 }
        let cond = greater(randn([2, 3, 4], seed: 7), Tensor(0))
        expectGradientsMatchFiniteDifferences([x, randn([3, 1], seed: 8)]) { `where`(cond, $0[0], $0[1]) }
    }

    @Test func unaryMath() {
        let positive = Tensor(shape: [2, 3], scalars: randn([6], seed: 9).scalars.map { abs($0) + 0.5 })
        let x = randomAwayFromZero([2, 5], seed: 10)
        expectGradientsMatchFiniteDifferences([x]) { exp($0[0]) }
        expectGradientsMatchFiniteDifferences([positive]) { log($0[0]) }
        expectGradientsMatchFiniteDifferences([positive]) { sqrt($0[0]) }
        expectGradientsMatchFiniteDifferences([positive]) { pow($0[0], 1.7) }
        expectGradientsMatchFiniteDifferences([positive, randn([2, 3], seed: 11)]) { pow($0[0], $0[1]) }
        expectGradientsMatchFiniteDifferences([x]) { abs($0[0]) }
    }

    @Test func activations() {
        let x = randomAwayFromZero([2, 3, 3], seed: 12)
        expectGradientsMatchFiniteDifferences([x]) { relu($0[0]) }
        expectGradientsMatchFiniteDifferences([x]) { leakyRelu($0[0], negativeSlope: 0.2) }
        expectGradientsMatchFiniteDifferences([x]) { elu($0[0], alpha: 0.7) }
        expectGradientsMatchFiniteDifferences([x]) { gelu($0[0]) }
        expectGradientsMatchFiniteDifferences([x]) { gelu($0[0], approximate: true) }
        expectGradientsMatchFiniteDifferences([x]) { sigmoid($0[0]) }
        expectGradientsMatchFiniteDifferences([x]) { tanh($0[0]) }
        expectGradientsMatchFiniteDifferences([x, Tensor([0.1, -0.3, 0.25])]) { prelu($0[0], slope: $0[1]) }
    }

    @Test func softmaxFamily() {
        let x = randn([3, 7], seed: 13)
        expectGradientsMatchFiniteDifferences([x]) { softmax($0[0]) }
        expectGradientsMatchFiniteDifferences([x]) { logSoftmax($0[0]) }
        expectGradientsMatchFiniteDifferences([randn([2, 3, 4], seed: 14)]) { softmax($0[0], alongAxis: 1) }
        expectGradientsMatchFiniteDifferences([randn([2, 3, 4], seed: 15)]) { logSoftmax($0[0], alongAxis: 1) }
    }

    @Test func losses() {
        let logits = randn([5, 3], seed: 16)
        let labels = [0, 2, 1, 1, 0]
        expectGradientsMatchFiniteDifferences([logits]) { crossEntropy(logits: $0[0], labels: labels) }
        expectGradientsMatchFiniteDifferences([logits]) {
            crossEntropy(logits: $0[0], labels: labels, labelSmoothing: 0.1, classWeights: Tensor([1, 2, 0.5]))
        }
        expectGradientsMatchFiniteDifferences([logits]) { nllLoss(logSoftmax($0[0]), labels: labels) }
        expectGradientsMatchFiniteDifferences([logits, randn([5, 3], seed: 17)]) { mseLoss($0[0], $0[1]) }
    }

    @Test func reductions() {
        let x = randn([2, 3, 4], seed: 18)
        expectGradientsMatchFiniteDifferences([x]) { $0[0].sum() }
        expectGradientsMatchFiniteDifferences([x]) { $0[0].sum(alongAxes: [0, 2]) }
        expectGradientsMatchFiniteDifferences([x]) { $0[0].mean(alongAxes: [1], keepingDimensions: true) }
        // Values 0.1 apart, so that the perturbation never changes which element wins.
        let spread = Tensor(shape: [2, 3, 4], scalars: (0..<24).map { Float(($0 * 7) % 24) * 0.1 })
        expectGradientsMatchFiniteDifferences([spread]) { $0[0].max(alongAxes: [2]) }
        expectGradientsMatchFiniteDifferences([spread]) { $0[0].min(alongAxes: [0, 1]) }
        expectGradientsMatchFiniteDifferences([x]) { $0[0].variance(alongAxes: [0, 2]) }
        expectGradientsMatchFiniteDifferences([x]) { $0[0].variance(alongAxes: [1], unbiased: true) }
        expectGradientsMatchFiniteDifferences([randn([1, 3, 5, 3], seed: 19)]) { globalAvgPool2d($0[0]) }
        let planes = Tensor(shape: [1, 3, 5, 3], scalars: (0..<45).map { Float(($0 * 11) % 45) * 0.1 })
        expectGradientsMatchFiniteDifferences([planes]) { globalMaxPool2d($0[0]) }
    }

    @Test func shapeOps() {
        let x = randn([2, 3, 4], seed: 21)
        expectGradientsMatchFiniteDifferences([x]) { $0[0].reshaped(to: [4, -1]) * 2 }
        expectGradientsMatchFiniteDifferences([x]) { $0[0].permuted([2, 0, 1]) }
        expectGradientsMatchFiniteDifferences([x]) { $0[0].transposed() }
        expectGradientsMatchFiniteDifferences([x]) { $0[0].slice(1..<2, alongAxis: 0) }
        expectGradientsMatchFiniteDifferences([x]) { $0[0].slice(1..<4, alongAxis: 2) }
        expectGradientsMatchFiniteDifferences([x, randn([2, 1, 4], seed: 22)]) { Tensor.concatenate([$0[0], $0[1]], alongAxis: 1) }
        expectGradientsMatchFiniteDifferences([x]) { $0[0].flipped(alongAxes: [0, 2]) }
        expectGradientsMatchFiniteDifferences([x]) { $0[0].broadcast(to: [2, 2, 3, 4]) }
        let img = randn([1, 2, 3, 4], seed: 23)
        expectGradientsMatchFiniteDifferences([img]) { $0[0].padded(top: 1, bottom: 2, left: 0, right: 3) }
        expectGradientsMatchFiniteDifferences([img]) { $0[0].padded(top: 2, bottom: 1, left: 3, right: 2, mode: .reflect) }
    }

    @Test func matmul() {
        expectGradientsMatchFiniteDifferences([randn([3, 5], seed: 24), randn([5, 2], seed: 25)]) { SproutTensor.matmul($0[0], $0[1]) }
        expectGradientsMatchFiniteDifferences([randn([5, 3], seed: 26), randn([2, 5], seed: 27)]) {
            SproutTensor.matmul($0[0], $0[1], transposeA: true, transposeB: true)
        }
        expectGradientsMatchFiniteDifferences([randn([2, 3, 5], seed: 28), randn([2, 5, 4], seed: 29)]) { SproutTensor.matmul($0[0], $0[1]) }
        expectGradientsMatchFiniteDifferences([randn([2, 3, 5], seed: 30), randn([4, 5], seed: 31)]) {
            SproutTensor.matmul($0[0], $0[1], transposeB: true)
        }
        expectGradientsMatchFiniteDifferences([randn([2, 5, 3], seed: 32), randn([5, 4], seed: 33)]) {
            SproutTensor.matmul($0[0], $0[1], transposeA: true)
        }
    }

    @Test(arguments: [
        (stride: 1, padding: Padding.same, groups: 1),
        (stride: 2, padding: Padding.same, groups: 1),
        (stride: 1, padding: Padding.valid, groups: 1),
        (stride: 2, padding: Padding.explicit(top: 1, left: 0, bottom: 0, right: 2), groups: 1),
        (stride: 1, padding: Padding.same, groups: 3),
        (stride: 2, padding: Padding.same, groups: 6),
    ])
    func conv2d(stride: Int, padding: Padding, groups: Int) {
        let x = randn([1, 6, 7, 5], seed: 34)
        let k = groups == 6 ? 12 : 9  // 6 groups: depthwise with multiplier 2
        let w = randn([k, 6 / groups, 3, 3], seed: 35, std: 0.3)
        let b = randn([w.shape[0]], seed: 36)
        expectGradientsMatchFiniteDifferences([x, w, b]) {
            SproutTensor.conv2d($0[0], weight: $0[1], bias: $0[2], stride: (stride, stride), padding: padding, groups: groups)
        }
    }

    @Test func pooling() {
        // Distinct values so that max-pool winners do not change under the perturbation.
        let x = Tensor(shape: [1, 3, 5, 7], scalars: (0..<105).map { Float(($0 * 37) % 105) * 0.1 })
        expectGradientsMatchFiniteDifferences([x], epsilon: 1e-3) { maxPool2d($0[0], kernelSize: (3, 3), stride: (2, 2), padding: .same) }
        expectGradientsMatchFiniteDifferences([x], epsilon: 1e-3) { maxPool2d($0[0], kernelSize: (2, 3), stride: (1, 2)) }
        expectGradientsMatchFiniteDifferences([x]) { avgPool2d($0[0], kernelSize: (3, 3), stride: (2, 2), padding: .same) }
        expectGradientsMatchFiniteDifferences([x]) {
            avgPool2d($0[0], kernelSize: (2, 2), stride: (2, 1), padding: .symmetric(1, 1), countIncludesPadding: true)
        }
    }

    @Test func normalization() {
        let x = randn([2, 3, 3, 5], seed: 37, std: 2)
        expectGradientsMatchFiniteDifferences([x, Tensor([1, 0.5, -2]), Tensor([0.1, 0, 0.3])]) {
            batchNorm($0[0], weight: $0[1], bias: $0[2]).output
        }
        expectGradientsMatchFiniteDifferences([randn([4, 3], seed: 38)]) { batchNorm($0[0], weight: nil, bias: nil).output }
        expectGradientsMatchFiniteDifferences([x, Tensor([1, 0.5, -2]), Tensor([0.1, 0, 0.3])]) {
            batchNormInference($0[0], mean: Tensor([0.1, -0.2, 0.3]), variance: Tensor([1, 2, 0.5]), weight: $0[1], bias: $0[2])
        }
        let y = randn([2, 11, 2, 3], seed: 39)
        expectGradientsMatchFiniteDifferences([y]) { localResponseNorm($0[0], depthRadius: 4, bias: 1, alpha: 0.001 / 9, beta: 0.75) }
        expectGradientsMatchFiniteDifferences([y]) { localResponseNorm($0[0], depthRadius: 2, bias: 2, alpha: 0.2, beta: 0.6) }
    }

    @Test func dropoutUsesOneMaskPerCall() {
        let x = randn([4, 6], seed: 40)
        // The mask is fixed by the seed, so the op is linear in x with that mask.
        expectGradientsMatchFiniteDifferences([x]) { xs in
            var g = SeededGenerator(seed: 7)
            return dropout(xs[0], probability: 0.3, generator: &g)
        }
    }
}

/// Several outputs of one recorded op, slices summed into one gradient buffer, stacking.
@Suite struct MultiOutputTapeTests {
    @Test func unstackedAndStackedAreInversesWithGradients() {
        let x = randn([3, 4, 2], seed: 7)
        let parts = x.unstacked(alongAxis: 1)
        #expect(parts.count == 4 && parts[2].shape == [3, 2])
        #expect(Tensor.stacked(parts, alongAxis: 1).scalars == x.scalars)
        // Outputs used unequally, one not at all: each slice's gradient lands in its place.
        expectGradientsMatchFiniteDifferences([x]) { xs in
            let p = xs[0].unstacked(alongAxis: 1)
            return Tensor.stacked([p[0] * p[1], exp(p[3]), p[0]], alongAxis: 2)
        }
    }

    @Test func sliceGradientsAccumulateIntoOneBuffer() {
        // Per-time-step slicing as a recurrent layer does it, with overlapping ranges.
        let x = randn([2, 6, 3], seed: 8)
        expectGradientsMatchFiniteDifferences([x]) { xs in
            var h = xs[0].slice(0..<1, alongAxis: 1)
            for t in 1..<6 { h = tanh(h + xs[0].slice(t..<(t + 1), alongAxis: 1)) * xs[0].slice((t - 1)..<t, alongAxis: 1) }
            return h + xs[0].slice(2..<5, alongAxis: 1).sum(alongAxes: [1], keepingDimensions: true)
        }
    }

    @Test func anUnusedOutputGetsNoGradientAndTheTapeStillFrees() {
        let x = randn([4, 3], seed: 9)
        let (_, g) = valueWithGradient(at: x) { x in x.unstacked(alongAxis: 0)[1].sum() }
        #expect(g.scalars == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    }
}
