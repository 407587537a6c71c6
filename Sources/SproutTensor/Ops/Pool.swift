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

    /// Input rows/columns covered by output (oy, ox), clipped to the image.
    @inline(__always) func rows(_ oy: Int) -> Range<Int> { Swift.max(oy * sh - pt, 0)..<Swift.min(oy * sh - pt + kh, h) }
    @inline(__always) func cols(_ ox: Int) -> Range<Int> { Swift.max(ox * sw - pl, 0)..<Swift.min(ox * sw - pl + kw, w) }
}

/// Max pooling; padded positions never win (TensorFlow's SAME semantics).
///   x: [N, C, H, W] → [N, C, OH, OW]; the gradient goes to each window's first maximum.
public func maxPool2d(_ x: Tensor, kernelSize: (Int, Int), stride: (Int, Int)? = nil, padding: Padding = .valid) -> Tensor {
    let geo = PoolGeometry(x, kernel: kernelSize, stride: stride ?? kernelSize, padding: padding, op: "maxPool2d")
    let out = Tensor(uninitializedShape: [x.shape[0], x.shape[1], geo.oh, geo.ow])
    // Winner's index inside its plane, kept for backward.
    let argmax = UnsafeMutablePointer<Int32>.allocate(capacity: out.count)
    let winners = IndexBuffer(argmax)
    let src = SendablePointer(x.storage.pointer), dst = SendablePointer(out.storage.pointer), idx = SendablePointer(argmax)
    parallelFor(geo.planes, grain: grain(workPerItem: geo.oh * geo.ow * geo.kh * geo.kw)) { r in
        for p in r {
            let s = src.p + p * geo.h * geo.w, d = dst.p + p * geo.oh * geo.ow, a = idx.p + p * geo.oh * geo.ow
            for oy in 0..<geo.oh {
                let rows = geo.rows(oy)
                for ox in 0..<geo.ow {
                    var best = -Float.infinity, at = -1
                    for iy in rows {
                        for ix in geo.cols(ox) where s[iy * geo.w + ix] > best || at < 0 {
                            best = s[iy * geo.w + ix]
                            at = iy * geo.w + ix
                        }
                    }
                    d[oy * geo.ow + ox] = best
                    a[oy * geo.ow + ox] = Int32(at)
                }
            }
        }
    }
    let inShape = x.shape
    return out.recorded("maxPool2d", x) { g in
        let gx = Tensor(shape: inShape, repeating: 0)
        let gs = SendablePointer(g.storage.pointer), gd = SendablePointer(gx.storage.pointer), a = SendablePointer(winners.pointer)
        parallelFor(geo.planes, grain: grain(workPerItem: geo.oh * geo.ow * geo.kh * geo.kw)) { r in
            for p in r {
                let gp = gs.p + p * geo.oh * geo.ow, dp = gd.p + p * geo.h * geo.w, ap = a.p + p * geo.oh * geo.ow
                for i in 0..<(geo.oh * geo.ow) { dp[Int(ap[i])] += gp[i] }
            }
        }
        return gx
    }
}

/// Owns the max-pool winners so that they live exactly as long as the tape needs them.
private final class IndexBuffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int32>
    init(_ p: UnsafeMutablePointer<Int32>) { pointer = p }
    deinit { pointer.deallocate() }
}

/// Average pooling. By default padded positions are not counted (TensorFlow's SAME
/// semantics, PyTorch's `count_include_pad=False`).
public func avgPool2d(_ x: Tensor, kernelSize: (Int, Int), stride: (Int, Int)? = nil, padding: Padding = .valid,
                      countIncludesPadding: Bool = false) -> Tensor {
    let geo = PoolGeometry(x, kernel: kernelSize, stride: stride ?? kernelSize, padding: padding, op: "avgPool2d")
    let out = Tensor(uninitializedShape: [x.shape[0], x.shape[1], geo.oh, geo.ow])
    func divisor(_ oy: Int, _ ox: Int) -> Float {
        countIncludesPadding ? Float(geo.kh * geo.kw) : Float(geo.rows(oy).count * geo.cols(ox).count)
    }
    let src = SendablePointer(x.storage.pointer), dst = SendablePointer(out.storage.pointer)
    parallelFor(geo.planes, grain: grain(workPerItem: geo.oh * geo.ow * geo.kh * geo.kw)) { r in
        for p in r {
            let s = src.p + p * geo.h * geo.w, d = dst.p + p * geo.oh * geo.ow
            for oy in 0..<geo.oh {
                for ox in 0..<geo.ow {
                    var acc: Float = 0
                    for iy in geo.rows(oy) { for ix in geo.cols(ox) { acc += s[iy * geo.w + ix] } }
                    d[oy * geo.ow + ox] = acc / divisor(oy, ox)
                }
            }
        }
    }
    let inShape = x.shape
    return out.recorded("avgPool2d", x) { g in
        let gx = Tensor(shape: inShape, repeating: 0)
        let gs = SendablePointer(g.storage.pointer), gd = SendablePointer(gx.storage.pointer)
        parallelFor(geo.planes, grain: grain(workPerItem: geo.oh * geo.ow * geo.kh * geo.kw)) { r in
            for p in r {
                let gp = gs.p + p * geo.oh * geo.ow, dp = gd.p + p * geo.h * geo.w
                for oy in 0..<geo.oh {
                    for ox in 0..<geo.ow {
                        let v = gp[oy * geo.ow + ox] / divisor(oy, ox)
                        for iy in geo.rows(oy) { for ix in geo.cols(ox) { dp[iy * geo.w + ix] += v } }
                    }
                }
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
