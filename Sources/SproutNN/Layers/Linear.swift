import SproutTensor

/// y = x·Wᵀ + b.   x: [..., in] → [..., out] (any leading axes, as PyTorch's); W: [out, in]
/// (PyTorch layout), b: [out]
public final class Linear: Layer {
    public let weight: Parameter
    public let bias: Parameter?
    public var isTraining = true

    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true,
                weightInitializer: Initializer = .torchDefault, biasInitializer: Initializer? = nil) {
        precondition(inFeatures > 0 && outFeatures > 0, "Linear: features must be positive, got \(inFeatures)→\(outFeatures)")
        weight = Parameter(weightInitializer.make([outFeatures, inFeatures]))
        if bias {
            // PyTorch's default bias is U(±1/√in), like its weight.
            let b = 1 / Float(inFeatures).squareRoot()
            let initial = biasInitializer?.make([outFeatures]) ?? GlobalRandom.using { Tensor.uniform([outFeatures], low: -b, high: b, generator: &$0) }
            self.bias = Parameter(initial)
        } else {
            self.bias = nil
        }
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 1 && x.shape[x.rank - 1] == inFeatures,
                     "Linear(\(inFeatures)→\(outFeatures)): input must be [..., \(inFeatures)], got \(x.shape)")
        // Leading axes fold into the rows of one GEMM.
        let rows = x.rank == 2 ? x : x.reshaped(to: [-1, inFeatures])
        var y = matmul(rows, weight.value, transposeB: true)
        if let bias { y = y + bias.value }
        return x.rank == 2 ? y : y.reshaped(to: Array(x.shape.dropLast()) + [outFeatures])
    }

    public var ownParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
    public var summaryName: String { "Linear(\(inFeatures)→\(outFeatures)\(bias == nil ? ", no bias" : ""))" }
    public func flops(inputShape: [Int], outputShape: [Int]) -> Int { 2 * inFeatures * outFeatures }
}

/// 2-D convolution layer.   x: [N, C, H, W] → [N, K, OH, OW]; W: [K, C/groups, R, S]
public final class Conv2D: Layer {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: (Int, Int)
    public let padding: Padding
    public let groups: Int
    public var isTraining = true

    public convenience init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Padding = .valid,
                groups: Int = 1, bias: Bool = true,
                weightInitializer: Initializer = .torchDefault, biasInitializer: Initializer? = nil) {
        self.init(inChannels: inChannels, outChannels: outChannels, kernelSize: (kernelSize, kernelSize),
                  stride: (stride, stride), padding: padding, groups: groups, bias: bias,
                  weightInitializer: weightInitializer, biasInitializer: biasInitializer)
    }

    public init(inChannels: Int, outChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: Padding = .valid, groups: Int = 1, bias: Bool = true,
                weightInitializer: Initializer = .torchDefault, biasInitializer: Initializer? = nil) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0,
                     "Conv2D: \(inChannels) input and \(outChannels) output channels are not divisible by groups = \(groups)")
        let shape = [outChannels, inChannels / groups, kernelSize.0, kernelSize.1]
        weight = Parameter(weightInitializer.make(shape))
        if bias {
            let b = 1 / Float(shape[1...].reduce(1, *)).squareRoot()
            let initial = biasInitializer?.make([outChannels]) ?? GlobalRandom.using { Tensor.uniform([outChannels], low: -b, high: b, generator: &$0) }
            self.bias = Parameter(initial)
        } else {
            self.bias = nil
        }
        self.stride = stride
        self.padding = padding
        self.groups = groups
    }

    public var inChannels: Int { weight.shape[1] * groups }
    public var outChannels: Int { weight.shape[0] }

    public func forward(_ x: Tensor) -> Tensor {
        conv2d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, groups: groups)
    }

    public var ownParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
    public var summaryName: String {
        let k = "\(weight.shape[2])×\(weight.shape[3])"
        let s = stride == (1, 1) ? "" : ", stride \(stride.0)"
        let g = groups == 1 ? "" : ", groups \(groups)"
        return "Conv2D(\(inChannels)→\(outChannels), \(k)\(s), \(padding.summary)\(g))"
    }
    public func flops(inputShape: [Int], outputShape: [Int]) -> Int {
        2 * outputShape.reduce(1, *) * weight.shape[1...].reduce(1, *)
    }
}

extension Padding {
    var summary: String {
        switch self {
        case .valid: return "valid"
        case .same: return "same"
        case let .explicit(t, l, b, r): return "pad \(t),\(l),\(b),\(r)"
        }
    }
}
