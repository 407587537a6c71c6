import Testing
import SproutNN
@testable import SproutOptim
import SproutTensor

/// A one-parameter "model" so the optimizers' arithmetic can be checked by hand.
final class Scalar: Layer {
    let w: Parameter
    var isTraining = true
    init(_ values: [Float]) { w = Parameter(Tensor(values)) }
    func forward(_ x: Tensor) -> Tensor { x }
    var ownParameters: [(name: String, parameter: Parameter)] { [("w", w)] }
}

func gradients(_ model: Scalar, _ g: [Float]) -> Gradients {
    Gradients(parameters: [model.w], tensors: [Tensor(g)])
}

@Suite struct OptimizerTests {
    @Test func sgdWithMomentumFollowsPyTorch() {
        let m = Scalar([1.0])
        let sgd = SGD(for: m, learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
        // PyTorch: d = g + wd·w; b = μ·b + d (b = d at first); w -= lr·b
        sgd.update(along: gradients(m, [0.5]))   // d = 0.51, b = 0.51, w = 0.949
        #expect(abs(m.w.value.scalars[0] - 0.949) < 1e-6)
        sgd.update(along: gradients(m, [0.5]))   // d = 0.50949, b = 0.459 + 0.50949 = 0.96849, w = 0.852151
        #expect(abs(m.w.value.scalars[0] - 0.852151) < 1e-6)
    }

    @Test func nesterov() {
        let m = Scalar([1.0])
        let sgd = SGD(for: m, learningRate: 0.1, momentum: 0.9, nesterov: true)
        sgd.update(along: gradients(m, [1]))   // b = 1, d = 1 + 0.9 = 1.9, w = 0.81
        #expect(abs(m.w.value.scalars[0] - 0.81) < 1e-6)
        sgd.update(along: gradients(m, [1]))   // b = 1.9, d = 1 + 1.71 = 2.71, w = 0.539
        #expect(abs(m.w.value.scalars[0] - 0.539) < 1e-6)
    }

    @Test func decoupledWeightDecayShrinksWeightsDirectly() {
        let m = Scalar([2.0])
        let sgd = SGD(for: m, learningRate: 0.5, weightDecay: 0.1, decoupledWeightDecay: true)
        sgd.update(along: gradients(m, [0]))
        #expect(abs(m.w.value.scalars[0] - (2 - 0.5 * 0.1 * 2)) < 1e-6)
    }

    @Test func adamFirstStepsAreLearningRateSized() {
        let m = Scalar([1.0, -1.0])
        let adam = Adam(for: m, learningRate: 0.01)
        adam.update(along: gradients(m, [3, -0.001]))
        // Bias-corrected first step: m̂/√v̂ = sign(g).
        #expect(abs(m.w.value.scalars[0] - 0.99) < 1e-5)
        #expect(abs(m.w.value.scalars[1] - (-0.99)) < 1e-4)
    }

    @Test func adamWDecouplesDecay() {
        let m = Scalar([1.0])
        let adamw = AdamW(for: m, learningRate: 0.1, weightDecay: 0.5)
        adamw.update(along: gradients(m, [0]))
        #expect(abs(m.w.value.scalars[0] - 0.95) < 1e-6)
    }

    @Test func parameterOverridesAndGroups() {
        let a = Scalar([1.0]), b = Scalar([1.0])
        b.w.weightDecay = 1
        let sgd = SGD(groups: [ParameterGroup([a.w], learningRateScale: 2), ParameterGroup([b.w])], learningRate: 0.1)
        sgd.update(along: Gradients(parameters: [a.w, b.w], tensors: [Tensor([1]), Tensor([1])]))
        #expect(abs(a.w.value.scalars[0] - 0.8) < 1e-6)     // lr × 2
        #expect(abs(b.w.value.scalars[0] - 0.8) < 1e-6)     // g + wd·w = 2
    }

    /// airbench's batch-norm biases: 64× the learning rate, 1/64 the decay, so that the
    /// shrink per step (lr·wd·w) equals that of a parameter with neither.
    @Test func weightDecayScaleKeepsTheShrinkPerStep() {
        let plain = Scalar([1.0]), fast = Scalar([1.0])
        fast.w.learningRateScale = 64
        fast.w.weightDecayScale = 1.0 / 64
        let sgd = SGD(groups: [ParameterGroup([plain.w, fast.w])], learningRate: 0.01, weightDecay: 0.5)
        sgd.update(along: Gradients(parameters: [plain.w, fast.w], tensors: [Tensor([0]), Tensor([0])]))
        #expect(abs(plain.w.value.scalars[0] - (1 - 0.01 * 0.5)) < 1e-7)
        #expect(abs(fast.w.value.scalars[0] - plain.w.value.scalars[0]) < 1e-7)
    }

    @Test func schedules() {
        let tf = ExponentialDecay(initial: 0.1, decaySteps: 100, decayRate: 0.1, staircase: true)
        #expect(tf.learningRate(at: 99) == 0.1)
        #expect(abs(tf.learningRate(at: 100) - 0.01) < 1e-8)
        let smooth = ExponentialDecay(initial: 1, decaySteps: 10, decayRate: 0.5, staircase: false)
        #expect(abs(smooth.learningRate(at: 5) - Float(0.5).squareRoot()) < 1e-6)
        let cycle = PiecewiseLinear.oneCycle(totalSteps: 100, peak: 1, warmupFraction: 0.2)
        #expect(cycle.learningRate(at: 0) == 0)
        #expect(cycle.learningRate(at: 10) == 0.5)
        #expect(cycle.learningRate(at: 20) == 1)
        #expect(abs(cycle.learningRate(at: 60) - 0.5) < 1e-6)
        #expect(cycle.learningRate(at: 500) == 0)
        // airbench's shape: 0.2 → 1 over 23%, then down to 0.07.
        let airbench = PiecewiseLinear.oneCycle(totalSteps: 100, peak: 2, warmupFraction: 0.23, start: 0.4, end: 0.14)
        #expect(abs(airbench.learningRate(at: 0) - 0.4) < 1e-6 && airbench.learningRate(at: 23) == 2)
        #expect(abs(airbench.learningRate(at: 100) - 0.14) < 1e-6)
        let cosine = CosineDecay(initial: 1, totalSteps: 100)
        #expect(cosine.learningRate(at: 0) == 1)
        #expect(abs(cosine.learningRate(at: 50) - 0.5) < 1e-6)
        #expect(abs(cosine.learningRate(at: 100)) < 1e-6)
    }

    @Test func emaUsesTensorFlowsNumUpdatesRule() {
        let m = Scalar([0])
        let ema = ExponentialMovingAverage(model: m, decay: 0.9999)
        #expect(abs(ema.currentDecay - 0.1) < 1e-7)   // (1 + 0)/(10 + 0)
        m.w.value = Tensor([10])
        ema.update()                                   // 0.1·0 + 0.9·10
        #expect(abs(ema.shadow["w"]!.scalars[0] - 9) < 1e-5)
        #expect(abs(ema.currentDecay - 2.0 / 11) < 1e-7)
        ema.withAveragedWeights { #expect(abs(m.w.value.scalars[0] - 9) < 1e-5) }
        #expect(m.w.value.scalars[0] == 10)
    }

    @Test func clippingByGlobalNorm() {
        let m = Scalar([0, 0])
        var g = gradients(m, [3, 4])
        let norm = clipGradients(&g, maxNorm: 1)
        #expect(norm == 5)
        #expect(abs(g.globalNorm - 1) < 1e-6)
    }

    @Test func stateRoundTrip() throws {
        let m = Scalar([1, 2])
        let sgd = SGD(for: m, learningRate: 0.1, momentum: 0.9)
        sgd.update(along: gradients(m, [1, 1]))
        let names = [ObjectIdentifier(m.w): "w"]
        let state = sgd.stateTensors(names: names)
        let other = SGD(for: m, learningRate: 0.1, momentum: 0.9)
        try other.loadState(state, names: names)
        #expect(other.step == 1)
        #expect(other.stateTensors(names: names)["w.momentum"]?.scalars == state["w.momentum"]?.scalars)
    }
}
