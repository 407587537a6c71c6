import SproutNN
import SproutTensor

/// Parameters that share a learning-rate multiplier and a weight decay.
public struct ParameterGroup {
    public var parameters: [Parameter]
    public var learningRateScale: Float
    /// nil: the optimizer's weight decay.
    public var weightDecay: Float?

    public init(_ parameters: [Parameter], learningRateScale: Float = 1, weightDecay: Float? = nil) {
        self.parameters = parameters
        self.learningRateScale = learningRateScale
        self.weightDecay = weightDecay
    }
}

/// Updates parameters in place from their gradients.
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    /// Updates taken so far.
    var step: Int { get }
    func update(along gradients: Gradients)
    /// Optimizer state (momentum buffers, moments, step) by name, for checkpoints.
    func stateTensors(names: [ObjectIdentifier: String]) -> [String: Tensor]
    func loadState(_ state: [String: Tensor], names: [ObjectIdentifier: String]) throws
}

public enum OptimizerError: Error, CustomStringConvertible {
    case missingState(String)
    case shapeMismatch(String, expected: [Int], found: [Int])
    public var description: String {
        switch self {
        case .missingState(let n): return "optimizer state '\(n)' is missing from the checkpoint"
        case let .shapeMismatch(n, e, f): return "optimizer state '\(n)' has shape \(f), expected \(e)"
        }
    }
}

/// Shared plumbing: groups, per-parameter settings, state buffers.
public class GroupedOptimizer {
    public var learningRate: Float
    public var weightDecay: Float
    public var groups: [ParameterGroup]
    public internal(set) var step = 0
    var buffers: [ObjectIdentifier: [Tensor]] = [:]
    let bufferNames: [String]

    init(groups: [ParameterGroup], learningRate: Float, weightDecay: Float, bufferNames: [String]) {
        self.groups = groups
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.bufferNames = bufferNames
    }

    /// (parameter, effective learning rate, effective weight decay) for each parameter with a gradient.
    func settings(_ gradients: Gradients) -> [(Parameter, Tensor, Float, Float)] {
        var result: [(Parameter, Tensor, Float, Float)] = []
        for group in groups {
            for p in group.parameters where p.isTrainable {
                guard let g = gradients[p] else { continue }
                precondition(g.shape == p.value.shape, "optimizer: gradient \(g.shape) for parameter \(p.value.shape)")
                let lr = learningRate * group.learningRateScale * (p.learningRateScale ?? 1)
                let wd = (p.weightDecay ?? group.weightDecay ?? weightDecay) * (p.weightDecayScale ?? 1)
                result.append((p, g, lr, wd))
            }
        }
        return result
    }

    /// The parameter's state buffers, taken out of the table (so that the update owns them
    /// uniquely and writes in place); hand them back with `store`.
    func takeBuffers(_ p: Parameter, count: Int) -> [Tensor] {
        if let b = buffers.removeValue(forKey: ObjectIdentifier(p)) { return b }
        return (0..<count).map { _ in p.value.zerosLike() }
    }

    func store(_ b: [Tensor], for p: Parameter) { buffers[ObjectIdentifier(p)] = b }

    public func stateTensors(names: [ObjectIdentifier: String]) -> [String: Tensor] {
        var out: [String: Tensor] = ["step": Tensor(Float(step))]
        for (id, list) in buffers {
            guard let name = names[id] else { continue }
            for (i, t) in list.enumerated() { out["\(name).\(bufferNames[i])"] = t }
        }
        return out
    }

    public func loadState(_ state: [String: Tensor], names: [ObjectIdentifier: String]) throws {
        guard let s = state["step"] else { throw OptimizerError.missingState("step") }
        step = Int(s.scalar)
        buffers = [:]
        for group in groups {
            for p in group.parameters where p.isTrainable {
                guard let name = names[ObjectIdentifier(p)] else { continue }
                var list: [Tensor] = []
                for b in bufferNames {
                    guard let t = state["\(name).\(b)"] else {
                        if step == 0 { continue }
                        throw OptimizerError.missingState("\(name).\(b)")
                    }
                    guard t.shape == p.value.shape else { throw OptimizerError.shapeMismatch("\(name).\(b)", expected: p.value.shape, found: t.shape) }
                    list.append(t)
                }
                if list.count == bufferNames.count { buffers[ObjectIdentifier(p)] = list }
            }
        }
    }
}

/// Stochastic gradient descent with momentum (PyTorch's formulation), Nesterov momentum,
/// and weight decay either coupled (added to the gradient, i.e. L2 regularisation) or
/// decoupled (SGDW: parameters shrink by lr·wd directly).
public final class SGD: GroupedOptimizer, Optimizer {
    public var momentum: Float
    public var nesterov: Bool
    public var decoupledWeightDecay: Bool

    public init(groups: [ParameterGroup], learningRate: Float, momentum: Float = 0, nesterov: Bool = false,
                weightDecay: Float = 0, decoupledWeightDecay: Bool = false) {
        precondition(!nesterov || momentum > 0, "SGD: Nesterov momentum needs momentum > 0")
        self.momentum = momentum
        self.nesterov = nesterov
        self.decoupledWeightDecay = decoupledWeightDecay
        super.init(groups: groups, learningRate: learningRate, weightDecay: weightDecay, bufferNames: ["momentum"])
    }

    public convenience init(for model: some Layer, learningRate: Float, momentum: Float = 0, nesterov: Bool = false,
                            weightDecay: Float = 0, decoupledWeightDecay: Bool = false) {
        self.init(groups: [ParameterGroup(model.trainableParameters)], learningRate: learningRate, momentum: momentum,
                  nesterov: nesterov, weightDecay: weightDecay, decoupledWeightDecay: decoupledWeightDecay)
    }

    //   g ← ∇ + wd·p (coupled);  b ← μ·b + g;  d = g + μ·b (Nesterov) or b;  p ← p − lr·d  (− lr·wd·p if decoupled)
    public func update(along gradients: Gradients) {
        for (p, g, lr, wd) in settings(gradients) {
            // A zero-initialised buffer gives PyTorch's b = g on the first step (no dampening).
            var b: Tensor? = momentum > 0 ? takeBuffers(p, count: 1).first : nil
            p.value.backend.sgdStep(&p.value, gradient: g, momentum: &b, learningRate: lr, weightDecay: wd,
                                             momentum: momentum, nesterov: nesterov, decoupled: decoupledWeightDecay)
            if let b { store([b], for: p) }
        }
        step += 1
    }
}

/// Adam (Kingma & Ba) with bias correction; `decoupledWeightDecay` gives AdamW.
public class Adam: GroupedOptimizer, Optimizer {
    public var beta1: Float, beta2: Float, epsilon: Float
    public var decoupledWeightDecay: Bool

    public init(groups: [ParameterGroup], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8, weightDecay: Float = 0, decoupledWeightDecay: Bool = false) {
        (self.beta1, self.beta2, self.epsilon, self.decoupledWeightDecay) = (beta1, beta2, epsilon, decoupledWeightDecay)
        super.init(groups: groups, learningRate: learningRate, weightDecay: weightDecay, bufferNames: ["exp_avg", "exp_avg_sq"])
    }

    public convenience init(for model: some Layer, learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                            epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.init(groups: [ParameterGroup(model.trainableParameters)], learningRate: learningRate, beta1: beta1,
                  beta2: beta2, epsilon: epsilon, weightDecay: weightDecay, decoupledWeightDecay: false)
    }

    //   m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  p ← p − lr·m̂/(√v̂ + ε)   (m̂, v̂ bias-corrected)
    public func update(along gradients: Gradients) {
        let t = Float(step + 1)
        let c1 = 1 - pow(beta1, t), c2 = 1 - pow(beta2, t)
        for (p, g, lr, wd) in settings(gradients) {
            var state = takeBuffers(p, count: 2)
            var v = state.removeLast(), m = state.removeLast()
            p.value.backend.adamStep(&p.value, gradient: g, m: &m, v: &v, learningRate: lr, beta1: beta1, beta2: beta2,
                                              epsilon: epsilon, weightDecay: wd, decoupled: decoupledWeightDecay,
                                              correction1: c1, correction2: c2)
            store([m, v], for: p)
        }
        step += 1
    }
}

/// Adam with decoupled weight decay (Loshchilov & Hutter).
public final class AdamW: Adam {
    public convenience init(for model: some Layer, learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                            epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        self.init(groups: [ParameterGroup(model.trainableParameters)], learningRate: learningRate, beta1: beta1,
                  beta2: beta2, epsilon: epsilon, weightDecay: weightDecay, decoupledWeightDecay: true)
    }
}

#if canImport(Glibc)
import Glibc
#endif
