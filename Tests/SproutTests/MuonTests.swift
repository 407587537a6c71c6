import Foundation
import Testing
import SproutNN
import SproutOptim
import SproutTensor

/// Muon against PyTorch reference steps (scripts/make_muon_fixture.py, float64): a wide and a
/// tall filter bank, three steps each from fixed gradients.
@Suite struct MuonTests {
    struct Case: Decodable { let shape: [Int]; let lr: Float; let momentum: Float; let weight: [Float]; let gradients: [[Float]]; let after: [[Float]] }
    struct Fixture: Decodable { let torch: String; let cases: [Case] }
    static let fixture: Fixture = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/muon.json")
        return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }()

    @Test func stepsMatchPyTorch() {
        for c in Self.fixture.cases {
            let p = Parameter(Tensor(shape: c.shape, scalars: c.weight))
            let muon = Muon(groups: [ParameterGroup([p])], learningRate: c.lr, momentum: c.momentum, nesterov: true)
            for (g, expected) in zip(c.gradients, c.after) {
                muon.update(along: Gradients(parameters: [p], tensors: [Tensor(shape: c.shape, scalars: g)]))
                let worst = zip(p.value.scalars, expected).map { abs($0 - $1) / max(1e-2, abs($1)) }.max()!
                #expect(worst < 1e-4, "\(c.shape) step \(muon.step): largest relative difference \(worst)")
            }
        }
    }

    /// The momentum buffer goes into checkpoints: a Muon restored from its state continues
    /// exactly as the one that was never stopped.
    @Test func stateRoundTrips() throws {
        let c = Self.fixture.cases[0]
        let p = Parameter(Tensor(shape: c.shape, scalars: c.weight))
        let muon = Muon(groups: [ParameterGroup([p])], learningRate: c.lr)
        muon.update(along: Gradients(parameters: [p], tensors: [Tensor(shape: c.shape, scalars: c.gradients[0])]))
        let names = [ObjectIdentifier(p): "w"]
        let q = Parameter(p.value)
        let restored = Muon(groups: [ParameterGroup([q])], learningRate: c.lr)
        try restored.loadState(muon.stateTensors(names: names), names: [ObjectIdentifier(q): "w"])
        let g = Tensor(shape: c.shape, scalars: c.gradients[1])
        muon.update(along: Gradients(parameters: [p], tensors: [g]))
        restored.update(along: Gradients(parameters: [q], tensors: [g]))
        #expect(p.value.scalars == q.value.scalars)
    }

    /// What the iteration is for: the update's singular values all land near 1 (in the
    /// quintic's band, about 0.7–1.2), whatever the gradient's spread of scales.
    @Test func theUpdateIsNearlyOrthogonal() {
        // A badly conditioned 6×20 matrix: rows scaled from 1 to 1/32.
        let g = Tensor(shape: [6, 20], scalars: (0..<120).map { i in sinf(Float(i * i % 977) * 0.61 + 1) * powf(0.5, Float(i / 20)) })
        let x = orthogonalized(g, steps: 5)
        let gram = matmul(x, x, transposeB: true).scalars     // XXᵀ = U S'² Uᵀ
        let diagonal = (0..<6).map { gram[$0 * 7] }
        #expect(diagonal.allSatisfy { $0 > 0.4 && $0 < 1.6 }, "\(diagonal) \(g.scalars.prefix(8))")
    }
}
