import CSproutKernels
#if canImport(Glibc)
import Glibc
#endif

// Activations: y = f(x) element-wise, with f' from x or y.

//   x: [..] → y: [..];  dx = dy where y > 0 (the output's mask: the input need not be kept)
public func relu(_ x: Tensor) -> Tensor {
    let y = vectorUnary(x, forward: sprout_relu_forward)
    return y.recorded("relu", x) { g in vectorGradient(g, y, backward: sprout_relu_backward) }
}

/// y = f(x) with a C loop (AVX2+FMA or baseline), flat and parallel.
private func vectorUnary(_ x: Tensor, forward: @convention(c) (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void) -> Tensor {
    let y = Tensor(uninitializedShape: x.shape)
    let xs = SendablePointer(x.storage.pointer), ys = SendablePointer(y.storage.pointer)
    parallelFor(y.count) { r in forward(xs.p + r.lowerBound, ys.p + r.lowerBound, r.count) }
    return y
}

/// dx = backward(dy, saved) with a C loop; `saved` is the op's input or output.
private func vectorGradient(_ g: Tensor, _ saved: Tensor, backward: VectorBinaryKernel) -> Tensor {
    let gx = Tensor(uninitializedShape: g.shape)
    let gs = SendablePointer(g.storage.pointer), ss = SendablePointer(saved.storage.pointer)
    let gxs = SendablePointer(gx.storage.pointer)
    parallelFor(gx.count) { r in backward(gs.p + r.lowerBound, ss.p + r.lowerBound, gxs.p + r.lowerBound, r.count) }
    return gx
}

public func leakyRelu(_ x: Tensor, negativeSlope: Float = 0.01) -> Tensor {
    unaryKernel(x) { $0 > 0 ? $0 : negativeSlope * $0 }.recorded("leakyRelu", x) { g in
        zipKernel(g, x.detached) { g, x in x > 0 ? g : negativeSlope * g }
    }
}

/// Parametric ReLU: max(x, 0) + slope · min(x, 0), with one learned slope per channel
/// (axis 1) or a single one. Composed from differentiable ops, so the slope gets its gradient.
///   x: [N, C, …], slope: [C] or [1]
public func prelu(_ x: Tensor, slope: Tensor) -> Tensor {
    precondition(slope.rank == 1 && (slope.count == 1 || (x.rank >= 2 && slope.count == x.shape[1])),
                 "prelu: slope of shape \(slope.shape) does not match input \(x.shape) (expects [1] or [C])")
    let s = slope.count == 1 ? slope : slope.reshaped(to: [1, slope.count] + [Int](repeating: 1, count: x.rank - 2))
    return relu(x) - s * relu(-x)
}

public func elu(_ x: Tensor, alpha: Float = 1) -> Tensor {
    let y = unaryKernel(x) { $0 > 0 ? $0 : alpha * (expf($0) - 1) }
    return y.recorded("elu", x) { g in
        zip3Kernel(g, x.detached, y.detached) { g, x, y in x > 0 ? g : g * (y + alpha) }
    }
}

/// GELU, exact (x·Φ(x), PyTorch's default) or with the tanh approximation.
public func gelu(_ x: Tensor, approximate: Bool = false) -> Tensor {
    if approximate {
        let c: Float = 0.7978845608  // √(2/π)
        let y = unaryKernel(x) { v in 0.5 * v * (1 + tanhf(c * (v + 0.044715 * v * v * v))) }
        return y.recorded("gelu", x) { g in
            zipKernel(g, x.detached) { g, v in
                let u = c * (v + 0.044715 * v * v * v)
                let t = tanhf(u)
                return g * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * c * (1 + 3 * 0.044715 * v * v))
            }
        }
    }
    return vectorUnary(x, forward: sprout_gelu_forward).recorded("gelu", x) { g in
        vectorGradient(g, x.detached, backward: sprout_gelu_backward)
    }
}

public func sigmoid(_ x: Tensor) -> Tensor {
    let y = unaryKernel(x) { v in v >= 0 ? 1 / (1 + expf(-v)) : expf(v) / (1 + expf(v)) }
    return y.recorded("sigmoid", x) { g in zipKernel(g, y.detached) { g, y in g * y * (1 - y) } }
}

public func tanh(_ x: Tensor) -> Tensor {
    let y = unaryKernel(x) { tanhf($0) }
    return y.recorded("tanh", x) { g in zipKernel(g, y.detached) { g, y in g * (1 - y * y) } }
}

// MARK: - Softmax family, along one axis

/// Views `shape` as [outer, n, inner] around `axis`.
private func split(_ shape: [Int], _ axis: Int) -> (outer: Int, n: Int, inner: Int) {
    (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
}

/// y = x − max − log Σ exp(x − max) along `axis`.   dx = dy − softmax · Σ dy
public func logSoftmax(_ x: Tensor, alongAxis axis: Int = -1) -> Tensor {
    let a = normalizeAxis(axis, rank: x.rank, op: "logSoftmax")
    let (outer, n, inner) = split(x.shape, a)
    let y = Tensor(uninitializedShape: x.shape)
    let src = SendablePointer(x.storage.pointer), dst = SendablePointer(y.storage.pointer)
    parallelFor(outer * inner, grain: grain(workPerItem: 3 * n)) { r in
        for idx in r {
            let o = idx / inner, i = idx % inner
            let base = o * n * inner + i
            var m = -Float.infinity
            for k in 0..<n { m = Swift.max(m, src.p[base + k * inner]) }
            var s: Float = 0
            for k in 0..<n { s += expf(src.p[base + k * inner] - m) }
            let logSum = logf(s)
            // (x − m) − log s, not x − (m + log s): keeps precision for large logits.
            for k in 0..<n { dst.p[base + k * inner] = (src.p[base + k * inner] - m) - logSum }
        }
    }
    return y.recorded("logSoftmax", x) { g in
        let yd = y.detached
        let sumG = g.sum(alongAxes: [a], keepingDimensions: true)
        return g - exp(yd) * sumG
    }
}

/// softmax along `axis`.   dx = y · (dy − Σ dy·y)
public func softmax(_ x: Tensor, alongAxis axis: Int = -1) -> Tensor {
    let a = normalizeAxis(axis, rank: x.rank, op: "softmax")
    let (outer, n, inner) = split(x.shape, a)
    let y = Tensor(uninitializedShape: x.shape)
    let src = SendablePointer(x.storage.pointer), dst = SendablePointer(y.storage.pointer)
    parallelFor(outer * inner, grain: grain(workPerItem: 3 * n)) { r in
        for idx in r {
            let base = (idx / inner) * n * inner + idx % inner
            var m = -Float.infinity
            for k in 0..<n { m = Swift.max(m, src.p[base + k * inner]) }
            var s: Float = 0
            for k in 0..<n {
                let e = expf(src.p[base + k * inner] - m)
                dst.p[base + k * inner] = e
                s += e
            }
            let inv = 1 / s
            for k in 0..<n { dst.p[base + k * inner] *= inv }
        }
    }
    return y.recorded("softmax", x) { g in
        let yd = y.detached
        return yd * (g - (g * yd).sum(alongAxes: [a], keepingDimensions: true))
    }
}
