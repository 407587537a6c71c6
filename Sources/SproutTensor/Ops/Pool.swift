/// Window geometry shared by the pooling ops.
private struct PoolGeometry {
    let planes, h, w, oh, ow, kh, kw, sh, sw, pt, pl: Int

    init(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int), padding: Padding, op: String) {
        precondition(x.rank == 4, "\(op): input must be [N, C, H, W], got \(x.shape)")
        precondition(kernel.0 >= 1 && kernel.1 >= 1 && stride.0 >= 1 && stride.1 >= 1,
                     "\(op): kernel \(kernel) and stride \(stride) must be ≥ 1")
        (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        (kh, kw, sh, sw) = (kernel.0, kernel.1, stride.0, stride.1)
        let (pt, _, oh) = padding.resolve(input: h, kernel: kh, stride: sh, axis: 0)
        let (pl, _, ow) = padding.resolve(input: w, kernel: kw, stride: sw, axis: 1)
        precondition(oh > 0 && ow > 0, "\(op): window \(kernel) does not fit input \(h)×\(w) with padding \(padding)")
        (self.pt, self.pl, self.oh, self.ow) = (pt, pl, oh, ow)
    }

    /// The same geometry for the backend.
    var shape: PoolShape { PoolShape(planes: planes, h: h, w: w, oh: oh, ow: ow, kh: kh, kw: kw, sh: sh, sw: sw, pt: pt, pl: pl) }
}

/// Max pooling; padded positions never win (TensorFlow's SAME semantics).
///   x: [N, C, H, W] → [N, C, OH, OW]; the gradient goes to each window's first maximum.
public func maxPool2d(_ x: Tensor, kernelSize: (Int, Int), stride: (Int, Int)? = nil, padding: Padding = .valid) -> Tensor {
    let geo = PoolGeometry(x, kernel: kernelSize, stride: stride ?? kernelSize, padding: padding, op: "maxPool2d").shape
    // Each window's winner (index inside its plane) is kept for backward.
    let (out, winners) = x.backend.maxPool(x, shape: geo)
    let inShape = x.shape
    return out.recorded("maxPool2d", x) { g in g.backend.maxPoolGradient(g, winners: winners, shape: geo, inputShape: inShape) }
}

/// Average pooling. By default padded positions are not counted (TensorFlow's SAME
/// semantics, PyTorch's `count_include_pad=False`).
///   x: [N, C, H, W] → [N, C, OH, OW]
public func avgPool2d(_ x: Tensor, kernelSize: (Int, Int), stride: (Int, Int)? = nil, padding: Padding = .valid,
                      countIncludesPadding: Bool = false) -> Tensor {
    let geo = PoolGeometry(x, kernel: kernelSize, stride: stride ?? kernelSize, padding: padding, op: "avgPool2d").shape
    let out = x.backend.avgPool(x, shape: geo, countIncludesPadding: countIncludesPadding)
    let inShape = x.shape
    return out.recorded("avgPool2d", x) { g in
        g.backend.avgPoolGradient(g, shape: geo, countIncludesPadding: countIncludesPadding, inputShape: inShape)
    }
}

/// [N, C, H, W] → [N, C]
public func globalAvgPool2d(_ x: Tensor) -> Tensor {
    precondition(x.rank == 4, "globalAvgPool2d: input must be [N, C, H, W], got \(x.shape)")
    return x.mean(alongAxes: [2, 3])
}

/// [N, C, H, W] → [N, C]
public func globalMaxPool2d(_ x: Tensor) -> Tensor {
    precondition(x.rank == 4, "globalMaxPool2d: input must be [N, C, H, W], got \(x.shape)")
    return x.max(alongAxes: [2, 3])
}
