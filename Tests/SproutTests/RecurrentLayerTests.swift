import Foundation
import Testing
import SproutNN
import SproutTensor

/// LSTM and GRU against `nn.LSTM` / `nn.GRU` (scripts/make_sequence_fixtures.py, float64):
/// PyTorch's state dict loaded by name, then the outputs, the final states and the gradient
/// of every parameter, the input and the initial state, at 1e-4 of each tensor's scale.
@Suite struct RecurrentLayerTests {
    struct Values: Decodable {
        let shape: [Int]
        let data: [Double]
        var tensor: Tensor { Tensor(shape: shape, scalars: data.map(Float.init)) }
    }
    struct Case: Decodable {
        let name, kind: String
        let input_size, hidden_size, layers: Int
        let bidirectional, batch_first: Bool
        let lengths: [Int]?
        let x, dy, dh, y, h_n: Values
        let c_n, dc, h0, c0: Values?
        let parameters, grads: [String: Values]
    }
    struct Fixture: Decodable { let generator: String; let cases: [Case] }
    static let fixture: Fixture = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/recurrent.json")
        return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }()

    func expectClose(_ a: Tensor, _ b: Tensor, _ what: String) {
        #expect(a.shape == b.shape, "\(what): shape \(a.shape) vs \(b.shape)")
        guard a.shape == b.shape else { return }
        let scale = max(b.scalars.map { abs($0) }.max() ?? 0, 1e-3)
        let worst = zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-4 * scale, "\(what): largest difference \(worst) at scale \(scale)")
    }

    func build(_ c: Case) -> any RecurrentLayer {
        c.kind == "LSTM"
            ? LSTM(inputSize: c.input_size, hiddenSize: c.hidden_size, layers: c.layers, bidirectional: c.bidirectional, batchFirst: c.batch_first)
            : GRU(inputSize: c.input_size, hiddenSize: c.hidden_size, layers: c.layers, bidirectional: c.bidirectional, batchFirst: c.batch_first)
    }

    @Test func everyCaseMatchesPyTorch() throws {
        #expect(Self.fixture.cases.count == 8)
        for c in Self.fixture.cases {
            let layer = build(c)
            // PyTorch's names, exactly: a state dict loads with nothing missing or left over.
            #expect(Set(layer.namedParameters.map(\.name)) == Set(c.parameters.keys), "\(c.name): parameter names")
            for (name, p) in layer.namedParameters { p.value = try #require(c.parameters[name]).tensor }
            let params = layer.namedParameters
            var inputs = [c.x.tensor] + params.map(\.parameter.value)
            if let h0 = c.h0 { inputs.append(h0.tensor) }
            if let c0 = c.c0 { inputs.append(c0.tensor) }
            let hasH0 = c.h0 != nil, hasC0 = c.c0 != nil
            func run(_ v: [Tensor]) -> (output: Tensor, state: RecurrentState) {
                for (k, p) in params.enumerated() { p.parameter.value = v[1 + k] }
                let h0 = hasH0 ? v[1 + params.count] : nil
                let c0 = hasC0 ? v[2 + params.count] : nil
                return layer.forward(v[0], state: h0.map { RecurrentState(hidden: $0, cell: c0) }, lengths: c.lengths)
            }
            let plain = withoutGradient { run(inputs) }
            expectClose(plain.output, c.y.tensor, "\(c.name) output")
            expectClose(plain.state.hidden, c.h_n.tensor, "\(c.name) h_n")
            if let cn = c.c_n { expectClose(try #require(plain.state.cell), cn.tensor, "\(c.name) c_n") }
            let (_, grads) = valueWithGradient(at: inputs) { v in
                let r = run(v)
                var total = (r.output * c.dy.tensor).sum() + (r.state.hidden * c.dh.tensor).sum()
                if let dc = c.dc, let cell = r.state.cell { total = total + (cell * dc.tensor).sum() }
                return total
            }
            expectClose(grads[0], try #require(c.grads["x"]).tensor, "\(c.name) dx")
            for (k, p) in params.enumerated() {
                expectClose(grads[1 + k], try #require(c.grads[p.name]).tensor, "\(c.name) d\(p.name)")
            }
            if hasH0 { expectClose(grads[1 + params.count], try #require(c.grads["h0"]).tensor, "\(c.name) dh0") }
            if hasC0 { expectClose(grads[2 + params.count], try #require(c.grads["c0"]).tensor, "\(c.name) dc0") }
        }
    }

    @Test func summaryNamesAndOutputShapes() {
        let lstm = LSTM(inputSize: 4, hiddenSize: 3)
        #expect(lstm.summaryName == "LSTM(4→3)")
        #expect(GRU(inputSize: 4, hiddenSize: 3, layers: 2, bidirectional: true).summaryName == "GRU(4→3, 2 layers, bidirectional)")
        #expect(lstm.forward(Tensor.zeros([5, 2, 4])).shape == [5, 2, 3])
        #expect(LSTM(inputSize: 4, hiddenSize: 3, bidirectional: true, batchFirst: true).forward(Tensor.zeros([2, 5, 4])).shape == [2, 5, 6])
    }
}
