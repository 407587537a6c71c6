import CSproutKernels

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

    /// The same geometry for the C loops.
    var c: sprout_pool_geometry {
        sprout_pool_geometry(h: Int32(h), w: Int32(w), oh: Int32(oh), ow: Int32(ow), kh: Int32(kh), kw: Int32(kw),
                             sh: Int32(sh), sw: Int32(sw), pt: Int32(pt), pl: Int32(pl))
    }
}

/// Max pooling; padded positions never win (TensorFlow's SAME semantics).
///   x: [N, C, H, W] → [N, C, OH, OW]; the gradient goes to each window's first maximum.
public func maxPool2d(_ x: Tensor, kernelSize: (Int, Int), stride: (Int, Int)? = nil, padding: Padding = .valid) -> Tensor {
    let geo = PoolGeometry(x, kernel: kernelSize, stride: stride ?? kernelSize, padding: padding, op: "maxPool2d")
    let out = Tensor(uninitializedShape: [x.shape[0], x.shape[1], geo.oh, geo.ow])
    // Winner's index inside its plane, kept for backward.
    let winners = IndexBuffer(count: out.count)
    let src = SendablePointer(x.storage.pointer), dst = SendablePointer(out.storage.pointer), idx = SendablePointer(winners.pointer)
    withGeometry(geo) { g in
        parallelFor(geo.planes, grain: grain(workPerItem: geo.oh * geo.ow * geo.kh * geo.kw)) { r in
            sprout_maxpool_forward(src.p, dst.p, idx.p, g.p, r.lowerBound, r.upperBound)
        }
    }
    let inShape = x.shape
    return out.recorded("maxPool2d", x) { grad in
        let gx = Tensor(uninitializedShape: inShape)
        let gs = SendablePointer(grad.storage.pointer), gd = SendablePointer(gx.storage.pointer), a = SendablePointer(winners.pointer)
        withGeometry(geo) { g in
            parallelFor(geo.planes, grain: grain(workPerItem: geo.h * geo.w + geo.oh * geo.ow)) { r in
                sprout_maxpool_backward(gs.p, a.p, gd.p, g.p, r.lowerBound, r.upperBound)
            }
        }
        return gx
    }
}

/// The geometry as a C struct, shared read-only by the workers.
private func withGeometry(_ geo: PoolGeometry, _ body: (SendablePointer<sprout_pool_geometry>) -> Void) {
    withUnsafePointer(to: geo.c) { body(SendablePointer(UnsafeMutablePointer(mutating: $0))) }
}

/// Owns the max-pool winners so that they live exactly as long as the tape needs them.
private final class IndexBuffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int32>
    init(count: Int) { pointer = .allocate(capacity: count) }
    deinit { pointer.deallocate() }
}

/// Average pooling. By default padded positions are not counted (TensorFlow's SAME
/// semantics, PyTorch's `count_include_pad=False`).
///   x: [N, C, H, W] → [N, C, OH, OW]
public func avgPool2d(_ x: Tensor, kernelSize: (Int, Int), stride: (Int, Int)? = nil, padding: Padding = .valid,
                      countIncludesPadding: Bool = false) -> Tensor {
    let geo = PoolGeometry(x, kernel: kernelSize, stride: stride ?? kernelSize, padding: padding, op: "avgPool2d")
    let out = Tensor(uninitializedShape: [x.shape[0], x.shape[1], geo.oh, geo.ow])
    let includePad: Int32 = countIncludesPadding ? 1 : 0
    let src = SendablePointer(x.storage.pointer), dst = SendablePointer(out.storage.pointer)
    withGeometry(geo) { g in
        parallelFor(geo.planes, grain: grain(workPerItem: geo.oh * geo.ow * geo.kh * geo.kw)) { r in
            sprout_avgpool_forward(src.p, dst.p, g.p, includePad, r.lowerBound, r.upperBound)
        }
    }
    let inShape = x.shape
    return out.recorded("avgPool2d", x) { grad in
        let gx = Tensor(uninitializedShape: inShape)
        let gs = SendablePointer(grad.storage.pointer), gd = SendablePointer(gx.storage.pointer)
        withGeometry(geo) { g in
            parallelFor(geo.planes, grain: grain(workPerItem: geo.oh * geo.ow * geo.kh * geo.kw)) { r in
                sprout_avgpool_backward(gs.p, gd.p, g.p, includePad, r.lowerBound, r.upperBound)
            }
        }
        return gx
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
