import SproutTensor

/// How a weight tensor starts. Fan-in/fan-out follow PyTorch: for a convolution weight
/// [K, C/g, R, S], fanIn = C/g·R·S and fanOut = K·R·S.
public enum Initializer: Sendable {
    case zeros
    case constant(Float)
    /// PyTorch's default for Linear/Conv: U(−1/√fanIn, 1/√fanIn).
    case torchDefault
    case glorotUniform, glorotNormal
    case heUniform, heNormal
    /// N(0, 2/fanOut): torchvision's kaiming_normal_(mode="fan_out") for ResNet/MobileNet convolutions.
    case heNormalFanOut
    case normal(std: Float)
    /// Normal truncated at 2σ (TensorFlow's `truncated_normal_initializer`).
    case truncatedNormal(std: Float)
    /// Identity convolution: channel i passes through to output i (requires K ≥ C/g; extra outputs 0).
    case dirac

    public func make(_ shape: [Int], generator g: inout SeededGenerator) -> Tensor {
        let receptive = shape.count > 2 ? shape[2...].reduce(1, *) : 1
        let fanIn = shape.count >= 2 ? shape[1] * receptive : shape.first ?? 1
        let fanOut = shape.count >= 2 ? shape[0] * receptive : shape.first ?? 1
        switch self {
        case .zeros: return Tensor.zeros(shape)
        case .constant(let v): return Tensor.full(shape, value: v)
        case .torchDefault:
            let b = 1 / Float(fanIn).squareRoot()
            return Tensor.uniform(shape, low: -b, high: b, generator: &g)
        case .glorotUniform:
            let b = (6 / Float(fanIn + fanOut)).squareRoot()
            return Tensor.uniform(shape, low: -b, high: b, generator: &g)
        case .glorotNormal:
            return Tensor.normal(shape, std: (2 / Float(fanIn + fanOut)).squareRoot(), generator: &g)
        case .heUniform:
            let b = (6 / Float(fanIn)).squareRoot()
            return Tensor.uniform(shape, low: -b, high: b, generator: &g)
        case .heNormal:
            return Tensor.normal(shape, std: (2 / Float(fanIn)).squareRoot(), generator: &g)
        case .heNormalFanOut:
            return Tensor.normal(shape, std: (2 / Float(fanOut)).squareRoot(), generator: &g)
        case .normal(let std): return Tensor.normal(shape, std: std, generator: &g)
        case .truncatedNormal(let std): return Tensor.truncatedNormal(shape, std: std, generator: &g)
        case .dirac:
            precondition(shape.count == 4, "Initializer.dirac: needs a convolution weight [K, C, R, S], got \(shape)")
            var t = Tensor.zeros(shape)
            let (k, c, r, s) = (shape[0], shape[1], shape[2], shape[3])
            t.withMutableData { p in
                for i in 0..<min(k, c) { p[((i * c + i) * r + r / 2) * s + s / 2] = 1 }
            }
            return t
        }
    }

    /// Draws from the global generator.
    public func make(_ shape: [Int]) -> Tensor { GlobalRandom.using { make(shape, generator: &$0) } }
}
