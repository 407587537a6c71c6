#if canImport(Glibc)
import Glibc
#endif

/// Learning rate as a function of the optimizer step.
public protocol LearningRateSchedule: Sendable {
    func learningRate(at step: Int) -> Float
}

public struct ConstantSchedule: LearningRateSchedule {
    public let value: Float
    public init(_ value: Float) { self.value = value }
    public func learningRate(at step: Int) -> Float { value }
}

/// TensorFlow's `exponential_decay`: initial · rate^(step / decaySteps), the exponent
/// floored when `staircase` (the CIFAR-10 tutorial: 0.1 · 0.1^⌊step/(350 epochs)⌋).
public struct ExponentialDecay: LearningRateSchedule {
    public let initial: Float, decaySteps: Int, decayRate: Float, staircase: Bool
    public init(initial: Float, decaySteps: Int, decayRate: Float, staircase: Bool = true) {
        precondition(decaySteps > 0, "ExponentialDecay: decaySteps must be positive")
        (self.initial, self.decaySteps, self.decayRate, self.staircase) = (initial, decaySteps, decayRate, staircase)
    }
    public func learningRate(at step: Int) -> Float {
        let e = Float(step) / Float(decaySteps)
        return initial * pow(decayRate, staircase ? e.rounded(.down) : e)
    }
}

/// Linear interpolation between (step, rate) knots, constant outside them: warm-up,
/// one-cycle and triangular schedules.
public struct PiecewiseLinear: LearningRateSchedule {
    public let knots: [(step: Int, rate: Float)]
    public init(_ knots: [(step: Int, rate: Float)]) {
        precondition(!knots.isEmpty, "PiecewiseLinear: needs at least one knot")
        precondition(zip(knots, knots.dropFirst()).allSatisfy { $0.step < $1.step }, "PiecewiseLinear: steps must increase")
        self.knots = knots
    }
    /// Up linearly from `start` to `peak` over `warmupFraction` of the run, then down to `end`.
    public static func oneCycle(totalSteps: Int, peak: Float, warmupFraction: Float = 0.25,
                                start: Float = 0, end: Float = 0) -> PiecewiseLinear {
        let up = max(1, Int(Float(totalSteps) * warmupFraction))
        return PiecewiseLinear([(0, start), (up, peak), (max(up + 1, totalSteps), end)])
    }
    public func learningRate(at step: Int) -> Float {
        if step <= knots[0].step { return knots[0].rate }
        for (a, b) in zip(knots, knots.dropFirst()) where step <= b.step {
            let t = Float(step - a.step) / Float(b.step - a.step)
            return a.rate + t * (b.rate - a.rate)
        }
        return knots[knots.count - 1].rate
    }
}

/// Cosine decay from `initial` to `final` over `totalSteps`, after an optional linear warm-up.
public struct CosineDecay: LearningRateSchedule {
    public let initial: Float, totalSteps: Int, warmupSteps: Int, final: Float
    public init(initial: Float, totalSteps: Int, warmupSteps: Int = 0, final: Float = 0) {
        precondition(totalSteps > 0, "CosineDecay: totalSteps must be positive")
        (self.initial, self.totalSteps, self.warmupSteps, self.final) = (initial, totalSteps, warmupSteps, final)
    }
    public func learningRate(at step: Int) -> Float {
        if step < warmupSteps { return initial * Float(step + 1) / Float(warmupSteps) }
        let t = min(1, Float(step - warmupSteps) / Float(max(1, totalSteps - warmupSteps)))
        return final + (initial - final) * 0.5 * (1 + cos(Float.pi * t))
    }
}
