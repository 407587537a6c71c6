import Foundation
import Testing
import SproutNN
import SproutTensor

/// The inference graph (folded batch norms, fused activations and residual sums, blocked
/// layouts end to end) computes what the layers compute: every zoo model's output agrees
/// with its layer-by-layer forward within 1e-4 of the output's largest magnitude.
@Suite struct InferencePlanTests {
    static let oneDNN = InferenceGraph(inputShape: [1, 4, 4]) != nil

    /// Random running statistics and affine parameters, so folding has something to fold.
    static func randomizeNorms(_ model: any Layer, seed: UInt64) {
        var g = SeededGenerator(seed: seed)
        for (name, p) in model.namedParameters {
            let n = p.value.count
            if name.hasSuffix("running_mean") || name.hasSuffix("runningMean") {
                p.value = Tensor.normal([n], generator: &g) * 0.1
            } else if name.hasSuffix("running_var") || name.hasSuffix("runningVariance") {
                p.value = Tensor.uniform([n], low: 0.5, high: 1.5, generator: &g)
            }
        }
    }

    static func check(_ name: String, input: [Int], width: Float = 1, batch: Int = 3) throws {
        seedEverything(7)
        let model = try Zoo.build(name, inputShape: input, classes: 10, width: width)
        var g = SeededGenerator(seed: 11)
        let x = Tensor.normal([batch] + input, generator: &g)
        (model as? any TrainingDataInitializable)?.initialize(fromTrainingImages: x)
        randomizeNorms(model, seed: 3)
        model.eval()
        let expected = withoutGradient { model.forward(x) }
        let plan = try InferencePlan.make(model, inputShape: input)
        let got = try plan(x)
        #expect(got.shape == expected.shape, "\(name)")
        let scale = expected.scalars.map(abs).max() ?? 1
        let worst = zip(got.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-4 * max(scale, 1e-3), "\(name): largest difference \(worst) for outputs up to \(scale)")
    }

    @Test(.enabled(if: oneDNN, "oneDNN is not available"),
          arguments: [("mlp", [1, 28, 28]), ("mnist-cnn", [1, 28, 28]), ("mnist-bn", [1, 28, 28]), ("lenet5", [1, 28, 28]),
                      ("tf-cifar10", [3, 24, 24]), ("tf-cifar10-nolrn", [3, 24, 24]), ("resnet9", [3, 32, 32]),
                      ("airbench", [3, 32, 32]), ("airbench-muon", [3, 32, 32]), ("resnet18-cifar", [3, 32, 32])])
    func smallModelsAgreeWithTheirLayers(_ name: String, _ input: [Int]) throws {
        try Self.check(name, input: input)
    }

    /// The 224-px families at a smaller side (same layers; the graph is built per shape).
    @Test(.enabled(if: oneDNN, "oneDNN is not available"),
          arguments: ["resnet18", "resnet50", "mobilenet-v2", "efficientnet-lite0"])
    func photoModelsAgreeWithTheirLayers(_ name: String) throws {
        try Self.check(name, input: [3, 64, 64], width: name == "mobilenet-v2" ? 0.5 : 1, batch: 2)
    }

    /// Batches larger than one plan run in chunks of powers of two (32 + 4 + 1 here).
    @Test(.enabled(if: oneDNN, "oneDNN is not available"))
    func oddBatchesRunInChunks() throws {
        try Self.check("resnet9", input: [3, 16, 16], width: 0.25, batch: 37)
    }

    @Test(.enabled(if: oneDNN, "oneDNN is not available"))
    func recurrentModelsAreRefusedByName() throws {
        let model = try Zoo.build("crnn", inputShape: [1, 32, 64], classes: 10)
        #expect(throws: InferencePlan.Unsupported.self) { try InferencePlan.make(model, inputShape: [1, 32, 64]) }
        do { _ = try InferencePlan.make(model, inputShape: [1, 32, 64]) } catch {
            #expect("\(error)".contains("CRNN"), "\(error)")
        }
    }
}
