import Foundation
import Testing
@testable import SproutTensor

/// Checks every recorded gradient of `f` against central finite differences.
/// The scalar differentiated is L = Σ R ⊙ f(inputs) for a fixed random R, evaluated in
/// Double so that the differences are not drowned in Float32 round-off.
func expectGradientsMatchFiniteDifferences(
    _ inputs: [Tensor], epsilon: Float = 1e-2, relativeTolerance: Double = 1e-2, absoluteTolerance: Double = 2e-3,
    maxElementsPerInput: Int = 60, sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Tensor]) -> Tensor
) {
    let probe = withoutGradient { f(inputs) }
    var g = SeededGenerator(seed: 1234)
    let r = Tensor.normal(probe.shape, generator: &g)
    func loss(_ xs: [Tensor]) -> Double {
        let y = withoutGradient { f(xs) }
        return zip(y.scalars, r.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }
    let (_, grads) = valueWithGradient(at: inputs) { xs in (f(xs) * r).sum() }
    for (k, input) in inputs.enumerated() {
        let n = input.count
        let stride = max(1, n / maxElementsPerInput)
        for i in Swift.stride(from: 0, to: n, by: stride) {
            var plus = inputs, minus = inputs
            var xp = input, xm = input
            xp.withMutableData { $0[i] += epsilon }
            xm.withMutableData { $0[i] -= epsilon }
            plus[k] = xp
            minus[k] = xm
            let numeric = (loss(plus) - loss(minus)) / (2 * Double(epsilon))
            let analytic = Double(grads[k].scalars[i])
            let ok = abs(numeric - analytic) <= absoluteTolerance + relativeTolerance * max(abs(numeric), abs(analytic))
            #expect(ok, "input \(k) element \(i): analytic \(analytic), numeric \(numeric)", sourceLocation: sourceLocation)
            if !ok { return }
        }
    }
}

/// Random tensor with values kept away from 0 by at least `gap` (for ops with a kink at 0).
func randomAwayFromZero(_ shape: [Int], seed: UInt64, gap: Float = 0.1) -> Tensor {
    var g = SeededGenerator(seed: seed)
    let t = Tensor.normal(shape, generator: &g)
    return Tensor(shape: shape, scalars: t.scalars.map { $0 >= 0 ? $0 + gap : $0 - gap })
}

func randn(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
    var g = SeededGenerator(seed: seed)
    return Tensor.normal(shape, std: std, generator: &g)
}

/// Element-wise closeness: |a − b| ≤ atol + rtol·|b|.
func expectClose(_ a: Tensor, _ b: Tensor, rtol: Float = 1e-4, atol: Float = 1e-5, _ what: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.shape == b.shape, "\(what): shape \(a.shape) vs \(b.shape)", sourceLocation: sourceLocation)
    guard a.shape == b.shape else { return }
    let x = a.scalars, y = b.scalars
    var worst = 0, worstErr: Float = 0
    for i in x.indices {
        let err = abs(x[i] - y[i]) - (atol + rtol * abs(y[i]))
        if err > worstErr { worstErr = err; worst = i }
    }
    #expect(worstErr <= 0, "\(what): element \(worst) is \(x[worst]), expected \(y[worst])", sourceLocation: sourceLocation)
}

// MARK: - PyTorch fixtures (scripts/make_fixtures.py)

struct FixtureTensor: Decodable {
    let shape: [Int]
    let data: [Double]
    var tensor: Tensor { Tensor(shape: shape, scalars: data.map(Float.init)) }
}

enum JSONValue: Decodable {
    case number(Double), string(String), array([JSONValue]), bool(Bool)
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Double.self) { self = .number(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else { self = .array(try c.decode([JSONValue].self)) }
    }
    var number: Double? { if case let .number(v) = self { return v }; return nil }
    var string: String? { if case let .string(v) = self { return v }; return nil }
    var bool: Bool? { if case let .bool(v) = self { return v }; return nil }
    var ints: [Int]? { if case let .array(a) = self { return a.compactMap { $0.number.map(Int.init) } }; return nil }
}

struct FixtureCase: Decodable {
    let name: String
    let params: [String: JSONValue]
    let inputs: [String: FixtureTensor]
    let dy: FixtureTensor
    let output: FixtureTensor
    let grads: [String: FixtureTensor]
    let labels: [Int]?
    let targets: [[Int]]?
    let input_lengths: [Int]?
    let class_weights: FixtureTensor?
    let running_mean: FixtureTensor?
    let running_var: FixtureTensor?
    let mean: FixtureTensor?
    let `var`: FixtureTensor?
}

struct FixtureFile: Decodable {
    let generator: String
    let cases: [FixtureCase]
}

func loadFixtures(_ name: String) throws -> [FixtureCase] {
    let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
                           "fixture \(name).json is missing: run scripts/make_fixtures.py")
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    return try decoder.decode(FixtureFile.self, from: Data(contentsOf: url)).cases
}

/// Runs `f` on the fixture's inputs (in `order`), compares the output and every gradient of
/// Σ output ⊙ dy with PyTorch's at 1e-4 relative.
func checkAgainstFixture(_ c: FixtureCase, order: [String], rtol: Float = 1e-4, atol: Float = 1e-4,
                         sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Tensor]) -> Tensor) {
    let inputs = order.map { c.inputs[$0]!.tensor }
    let dy = c.dy.tensor
    let out = withoutGradient { f(inputs) }
    expectClose(out, c.output.tensor, rtol: rtol, atol: atol, "\(c.name) output", sourceLocation: sourceLocation)
    let (_, grads) = valueWithGradient(at: inputs) { xs in (f(xs) * dy).sum() }
    for (name, g) in zip(order, grads) {
        guard let expected = c.grads[name] else { continue }
        expectClose(g, expected.tensor, rtol: rtol, atol: atol, "\(c.name) d\(name)", sourceLocation: sourceLocation)
    }
}
