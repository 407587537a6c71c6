import SproutTensor

public final class ReLU: Layer {
    public var isTraining = true
    public init() {}
    public func forward(_ x: Tensor) -> Tensor { relu(x) }
}

public final class LeakyReLU: Layer {
    public let negativeSlope: Float
    public var isTraining = true
    public init(negativeSlope: Float = 0.01) { self.negativeSlope = negativeSlope }
    public func forward(_ x: Tensor) -> Tensor { leakyRelu(x, negativeSlope: negativeSlope) }
}

/// ReLU with a learned negative slope per channel (or one shared slope when channels = 1).
public final class PReLU: Layer {
    public let slope: Parameter
    public var isTraining = true
    public init(channels: Int = 1, initialSlope: Float = 0.25) {
        slope = Parameter(Tensor.full([channels], value: initialSlope))
    }
    public func forward(_ x: Tensor) -> Tensor { prelu(x, slope: slope.value) }
    public var ownParameters: [(name: String, parameter: Parameter)] { [("weight", slope)] }
}

public final class GELU: Layer {
    public let approximate: Bool
    public var isTraining = true
    public init(approximate: Bool = false) { self.approximate = approximate }
    public func forward(_ x: Tensor) -> Tensor { gelu(x, approximate: approximate) }
}

public final class ELU: Layer {
    public let alpha: Float
    public var isTraining = true
    public init(alpha: Float = 1) { self.alpha = alpha }
    public func forward(_ x: Tensor) -> Tensor { elu(x, alpha: alpha) }
}

public final class Sigmoid: Layer {
    public var isTraining = true
    public init() {}
    public func forward(_ x: Tensor) -> Tensor { sigmoid(x) }
}

public final class Tanh: Layer {
    public var isTraining = true
    public init() {}
    public func forward(_ x: Tensor) -> Tensor { tanh(x) }
}

public final class Softmax: Layer {
    public var isTraining = true
    public init() {}
    public func forward(_ x: Tensor) -> Tensor { softmax(x, alongAxis: 1) }
}

/// Multiplies by a constant (airbench's ×1/9 head, ResNet-9's ×0.125).
public final class Scale: Layer {
    public let factor: Float
    public var isTraining = true
    public init(_ factor: Float) { self.factor = factor }
    public func forward(_ x: Tensor) -> Tensor { x * factor }
    public var summaryName: String { "Scale(×\(factor))" }
}

public final class Identity: Layer {
    public var isTraining = true
    public init() {}
    public func forward(_ x: Tensor) -> Tensor { x }
}
