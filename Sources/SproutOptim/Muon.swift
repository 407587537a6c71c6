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
