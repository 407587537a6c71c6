import SproutNN
import SproutTensor

/// Muon (Keller Jordan, 2024; airbench94_muon's optimizer for convolution filters): momentum
/// SGD whose update for a filter bank, seen as a matrix [out, in·kh·kw], is replaced by an
/// approximately orthogonal matrix with the same singular vectors (a few Newton–Schulz
/// steps), so that every direction of the filter space moves at the same rate. As in
/// airbench94_muon, each filter bank is first rescaled to Frobenius norm √out (its filters
/// have unit norm on average); there is no weight decay. Meant for the 2-D and 4-D weights;
/// biases, batch-norm parameters and the classifier stay with SGD or Adam.
public final class Muon: GroupedOptimizer, Optimizer {
    public var momentum: Float
    public var nesterov: Bool
    /// Newton–Schulz steps and the quintic's coefficients (chosen for the slope at zero, not
    /// for convergence: singular values end up in about [0.7, 1.2], which trains as well).
    public var steps = 3
    public var coefficients: (a: Float, b: Float, c: Float) = (3.4445, -4.7750, 2.0315)
    /// Rescale each weight to Frobenius norm √out before its step (airbench94_muon does).
    public var renormalizesWeights = true

    public init(groups: [ParameterGroup], learningRate: Float, momentum: Float = 0.6, nesterov: Bool = true) {
        precondition(!nesterov || momentum > 0, "Muon: Nesterov momentum needs momentum > 0")
        (self.momentum, self.nesterov) = (momentum, nesterov)
        super.init(groups: groups, learningRate: learningRate, weightDecay: 0, bufferNames: ["momentum"])
    }

    //   b ← μ·b + g;  d = g + μ·b (Nesterov) or b;  W ← W·√out / ‖W‖;  W ← W − lr·NS(d as [out, rest])
    public func update(along gradients: Gradients) {
        withoutGradient {
            for (p, g, lr, _) in settings(gradients) {
                precondition(p.value.rank >= 2, "Muon: \(p.value.shape) is not a matrix or a filter bank; give it to SGD or Adam")
                var b = takeBuffers(p, count: 1)[0]
                b = momentum * b + g
                let d = nesterov ? g + momentum * b : b
                store([b], for: p)
                let out = p.value.shape[0]
                var w = p.value
                if renormalizesWeights {
                    let norm = (w * w).sum().scalar.squareRoot()
                    w = w * (Float(out).squareRoot() / norm)
                }
                let matrix = d.reshaped(to: [out, d.count / out])
                let update = orthogonalized(matrix, steps: steps, coefficients: coefficients).reshaped(to: w.shape)
                p.value = w - lr * update
            }
        }
        step += 1
    }
}

/// An approximately orthogonal matrix with G's singular vectors, by the quintic Newton–Schulz
/// iteration X ← aX + (bXXᵀ + c(XXᵀ)²)X on G/‖G‖ (so that every singular value starts ≤ 1),
/// run on the wide orientation so that XXᵀ is the smaller product.
//   G: [m, n] → [m, n]
public func orthogonalized(_ g: Tensor, steps: Int = 3, coefficients k: (a: Float, b: Float, c: Float) = (3.4445, -4.7750, 2.0315),
                           epsilon: Float = 1e-7) -> Tensor {
    precondition(g.rank == 2, "orthogonalized: needs a matrix, got \(g.shape)")
    let tall = g.shape[0] > g.shape[1]
    let norm = (g * g).sum().scalar.squareRoot()
    var x = g * (1 / (norm + epsilon))
    if tall { x = x.transposed() }
    for _ in 0..<steps {
        let a = matmul(x, x, transposeB: true)                    // [m, m]
        let b = k.b * a + k.c * matmul(a, a)
        x = k.a * x + matmul(b, x)
    }
    return tall ? x.transposed() : x
}

/// Several optimizers over disjoint parameters, stepping together: airbench94_muon trains its
/// filters with Muon and everything else with Nesterov SGD, each group at its own rate. The
/// set's `learningRate` is the run's schedule as a multiplier (1 at the start); each member
/// runs at its base rate times it. A member with `decaySteps` follows its own linear decay to
/// 0 over that many steps instead and is frozen after them (airbench's whitening bias, trained
/// for the first three epochs only).
public final class OptimizerSet: Optimizer {
    public struct Member {
        public let optimizer: any Optimizer
        public let baseLearningRate: Float
        public let decaySteps: Int?
        public init(_ optimizer: any Optimizer, baseLearningRate: Float, decaySteps: Int? = nil) {
            (self.optimizer, self.baseLearningRate, self.decaySteps) = (optimizer, baseLearningRate, decaySteps)
        }
    }
    public let members: [Member]
    public var learningRate: Float = 1
    public private(set) var step = 0

    public init(_ members: [Member]) { self.members = members }

    public func update(along gradients: Gradients) {
        for m in members {
            if let d = m.decaySteps {
                guard step < d else { continue }
                m.optimizer.learningRate = m.baseLearningRate * (1 - Float(step) / Float(d))
            } else {
                m.optimizer.learningRate = m.baseLearningRate * learningRate
            }
            m.optimizer.update(along: gradients)
        }
        step += 1
    }

    public func stateTensors(names: [ObjectIdentifier: String]) -> [String: Tensor] {
        var out: [String: Tensor] = ["step": Tensor(Float(step))]
        for (i, m) in members.enumerated() {
            for (k, v) in m.optimizer.stateTensors(names: names) { out["\(i).\(k)"] = v }
        }
        return out
    }

    public func loadState(_ state: [String: Tensor], names: [ObjectIdentifier: String]) throws {
        guard let s = state["step"] else { throw OptimizerError.missingState("step") }
        step = Int(s.scalar)
        for (i, m) in members.enumerated() {
            var mine: [String: Tensor] = [:]
            for (k, v) in state where k.hasPrefix("\(i).") { mine[String(k.dropFirst("\(i).".count))] = v }
            try m.optimizer.loadState(mine, names: names)
        }
    }
}
