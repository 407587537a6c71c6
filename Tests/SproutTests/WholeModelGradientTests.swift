import Foundation
import Testing
import SproutNN
import SproutTensor

/// One training step of whole zoo nets against PyTorch (llm.c's test_gpt2 idea): the same
/// weights, input and labels on both sides (scripts/make_fixtures.py writes the PyTorch
/// mirror's loss and, for every trainable parameter, the gradient's sum, sum of squares and
/// sampled entries), batch norm in training mode, Sprout's fused and blocked-layout kernels.
@Suite struct WholeModelGradientTests {
    struct Parameter: Decodable {
        let name: String, shape: [Int], offset: Double, scale: Double
        let sum: Double, sum_squares: Double, indices: [Int], values: [Double]
        /// How far PyTorch's own float32 step is from this double reference.
        let float32_error: Double, float32_sum_squares_error: Double
    }
    struct Case: Decodable { let name: String; let input_shape: [Int]; let labels: [Int]; let loss: Double; let parameters: [Parameter] }
    struct File: Decodable { let generator: String; let cases: [Case] }

    static func load(_ model: String) throws -> Case {
        let url = try #require(Bundle.module.url(forResource: "models", withExtension: "json", subdirectory: "Fixtures"),
                               "Fixtures/models.json is missing: run scripts/make_fixtures.py")
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        return try #require(file.cases.first { $0.name == model })
    }

    @Test(arguments: ["tf-cifar10", "resnet9"])
    func oneTrainingStepMatchesPyTorch(model name: String) throws {
        let reference = try Self.load(name)
        let shape = reference.input_shape
        let model = try Zoo.build(name, inputShape: Array(shape.dropFirst()), classes: 10)
        let params = model.trainableParameters
        #expect(params.map(\.shape) == reference.parameters.map(\.shape), "the PyTorch mirror's parameters differ in order or shape")
        guard params.map(\.shape) == reference.parameters.map(\.shape) else { return }
        for (k, (p, r)) in zip(params, reference.parameters).enumerated() {
            let values = (0..<p.value.count).map { Float(r.offset + r.scale * sin(0.731 * Double($0) + 0.4 * Double(k))) }
            p.value = Tensor(shape: p.shape, scalars: values)
        }
        let count = shape.reduce(1, *)
        let x = Tensor(shape: shape, scalars: (0..<count).map { Float(1.5 * sin(0.37 * Double($0))) })
        model.train()
        let (loss, grads) = valueWithGradient(of: model) { m in crossEntropy(logits: m(x), labels: reference.labels) }
        #expect(abs(Double(loss.scalar) - reference.loss) <= 1e-5 * abs(reference.loss), "loss \(loss.scalar) vs PyTorch \(reference.loss)")
        // Sprout computes in float32: it must be as close to the double reference as PyTorch's
        // own float32 step is (within 4×), and never further than 1e-4 where that is tiny.
        for (g, r) in zip(grads.tensors, reference.parameters) {
            let v = g.scalars.map(Double.init)
            let sampled = r.indices.map { v[$0] }
            let error = zip(sampled, r.values).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
                / r.values.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(error <= 4 * r.float32_error + 1e-4,
                    "\(name) \(r.name): sampled entries off by \(error) (relative), PyTorch float32 by \(r.float32_error)")
            let sumSquares = v.reduce(0) { $0 + $1 * $1 }
            let squaresError = abs(sumSquares - r.sum_squares) / r.sum_squares
            // PyTorch's Σg² error is signed and may cancel by chance; 2× the entries' error bounds it too.
            #expect(squaresError <= 4 * max(r.float32_sum_squares_error, 2 * r.float32_error) + 1e-4,
                    "\(name) \(r.name): Σg² off by \(squaresError) (relative), PyTorch float32 by \(r.float32_sum_squares_error)")
            let rms = (r.sum_squares / Double(v.count)).squareRoot()
            #expect(abs(v.reduce(0, +) - r.sum) <= (4 * r.float32_error + 1e-3) * rms * Double(v.count).squareRoot(),
                    "\(name) \(r.name): Σg \(v.reduce(0, +)) vs PyTorch \(r.sum)")
        }
    }
}
