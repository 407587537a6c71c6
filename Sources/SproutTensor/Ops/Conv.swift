/// Spatial padding of a convolution or pooling window.
public enum Padding: Sendable, Equatable {
    /// No padding.
    case valid
    /// TensorFlow's SAME: output = ⌈input / stride⌉, the extra row/column at the bottom/right.
    case same
    case explicit(top: Int, left: Int, bottom: Int, right: Int)

    public static func symmetric(_ height: Int, _ width: Int) -> Padding {
        .explicit(top: height, left: width, bottom: height, right: width)
    }

    /// (before, after, output size) along one axis.
    public func resolve(input: Int, kernel: Int, stride: Int, axis: Int) -> (Int, Int, Int) {
        switch self {
        case .valid:
            return (0, 0, input >= kernel ? (input - kernel) / stride + 1 : 0)
        case .same:
            let out = (input + stride - 1) / stride
            let total = Swift.max((out - 1) * stride + kernel - input, 0)
            return (total / 2, total - total / 2, out)
        case let .explicit(top, left, bottom, right):
            let (b, a) = axis == 0 ? (top, bottom) : (left, right)
            let span = input + b + a
            return (b, a, span >= kernel ? (span - kernel) / stride + 1 : 0)
        }
    }
}

/// 2-D convolution (cross-correlation, as every framework computes it).
///   input: [N, C, H, W], weight: [K, C/groups, R, S], bias: [K] → [N, K, OH, OW]
/// groups = C = K gives a depthwise convolution.
public func conv2d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil,
                   stride: (Int, Int) = (1, 1), padding: Padding = .valid, groups: Int = 1) -> Tensor {
    let shape = convolutionShape(input, weight, bias, stride: stride, padding: padding, groups: groups)
    let kernels = backend("conv2d", input, weight)
    let out = kernels.convolution(input, weight: weight, bias: bias, shape: shape)
    var inputs = [input, weight]
    if let bias { inputs.append(bias) }
    return out.recorded("conv2d", inputs) { g in
        let gx = kernels.convolutionGradientData(g, weight: weight, shape: shape)
        let (gw, gb) = kernels.convolutionGradientWeights(input, g, shape: shape)
        return bias == nil ? [gx, gw] : [gx, gw, gb]
    }
}

func convolutionShape(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: (Int, Int), padding: Padding, groups: Int) -> ConvolutionShape {
    precondition(x.rank == 4, "conv2d: input must be [N, C, H, W], got \(x.shape)")
    precondition(w.rank == 4, "conv2d: weight must be [K, C/groups, R, S], got \(w.shape)")
    precondition(groups >= 1, "conv2d: groups must be ≥ 1, got \(groups)")
    precondition(stride.0 >= 1 && stride.1 >= 1, "conv2d: stride must be ≥ 1, got \(stride)")
    let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (k, cg, r, s) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
    precondition(c % groups == 0 && k % groups == 0,
                 "conv2d: \(c) input and \(k) output channels are not divisible by groups = \(groups)")
    precondition(cg * groups == c, "conv2d: input has \(c) channels, weight expects \(cg * groups) (weight \(w.shape), groups \(groups))")
    if let b { precondition(b.shape == [k], "conv2d: bias must be [\(k)], got \(b.shape)") }
    let (pt, pb, oh) = padding.resolve(input: h, kernel: r, stride: stride.0, axis: 0)
    let (pl, pr, ow) = padding.resolve(input: wd, kernel: s, stride: stride.1, axis: 1)
    precondition(min(pt, pb, pl, pr) >= 0, "conv2d: negative padding \(padding)")
    precondition(oh > 0 && ow > 0, "conv2d: kernel \(r)×\(s) does not fit input \(h)×\(wd) with padding \(padding)")
    return ConvolutionShape(n: n, c: c, h: h, w: wd, k: k, r: r, s: s, oh: oh, ow: ow, strideH: stride.0, strideW: stride.1,
                            padTop: pt, padLeft: pl, padBottom: pb, padRight: pr, groups: groups, hasBias: b != nil)
}

