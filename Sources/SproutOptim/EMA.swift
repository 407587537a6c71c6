import SproutNN
import SproutTensor

/// Exponential moving average of a model's weights (TensorFlow's
/// `ExponentialMovingAverage` with `num_updates`): the effective decay is
/// min(decay, (1 + t)/(10 + t)), so early averages are not dominated by the random start.
/// State tensors (batch-norm statistics) are copied, not averaged.
public final class ExponentialMovingAverage {
    public let decay: Float
    public let useNumUpdates: Bool
    public private(set) var updates = 0
    let named: [(name: String, parameter: Parameter)]
    public private(set) var shadow: [String: Tensor]

    public init(model: some Layer, decay: Float = 0.9999, useNumUpdates: Bool = true) {
        precondition((0..<1).contains(decay), "ExponentialMovingAverage: decay \(decay) outside [0, 1)")
        self.decay = decay
        self.useNumUpdates = useNumUpdates
        named = model.namedParameters
        shadow = Dictionary(uniqueKeysWithValues: named.map { ($0.name, $0.parameter.value.detached) })
    }

    /// The decay used by the next `update()`.
    public var currentDecay: Float {
        useNumUpdates ? min(decay, Float(1 + updates) / Float(10 + updates)) : decay
    }

    //   s ← d·s + (1 − d)·p   for trainable parameters; s ← p for state
    public func update() {
        let d = currentDecay
        for (name, p) in named {
            guard p.isTrainable else { shadow[name] = p.value.detached; continue }
            var s = shadow[name]!
            shadow[name] = nil  // keep the storage unique so the update is in place
            p.value.backend.movingAverage(&s, toward: p.value, decay: d)
            shadow[name] = s
        }
        updates += 1
    }

    /// Runs `body` with the averaged weights in the model, then puts the live ones back.
    public func withAveragedWeights<R>(_ body: () throws -> R) rethrows -> R {
        let live = named.map { $0.parameter.value }
        for (name, p) in named { p.value = shadow[name]! }
        defer { for ((_, p), v) in zip(named, live) { p.value = v } }
        return try body()
    }

    public func load(shadow values: [String: Tensor], updates: Int) {
        for (name, _) in named { if let v = values[name] { shadow[name] = v } }
        self.updates = updates
    }
}

/// Scales gradients so that their global L2 norm is at most `maxNorm`; returns the norm before clipping.
@discardableResult
public func clipGradients(_ gradients: inout Gradients, maxNorm: Float) -> Float {
    let norm = gradients.globalNorm
    if norm > maxNorm && norm > 0 {
        let scale = maxNorm / norm
        gradients.tensors = gradients.tensors.map { $0 * scale }
    }
    return norm
}
