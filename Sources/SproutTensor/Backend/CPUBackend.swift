import CBLAS
import CSproutKernels
#if canImport(Glibc)
import Glibc
#endif

/// Sprout's fast CPU kernels: oneDNN convolutions and GEMM, the AVX2+FMA / baseline C loops
/// picked at start-up, everything parallel over the thread budget on OpenMP's pool. Kernel
/// choices (which convolution path, which GEMM) are RuntimeSettings' and the fixed rules in
/// the C glue, so results are reproducible for a given thread count.
public final class CPUBackend: Backend {
    public static let shared = CPUBackend()
    public var device: Device { .cpu }

    func output(_ shape: [Int]) -> Tensor { Tensor(uninitializedShape: shape, on: .cpu) }

    // MARK: - Element-wise

    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, shape: [Int]) -> Tensor {
        switch op {
        case .add: return binaryLoop(a, b, shape, vector: sprout_add, +)
        case .subtract: return binaryLoop(a, b, shape, vector: sprout_sub, -)
        case .multiply: return binaryLoop(a, b, shape, vector: sprout_mul, *)
        case .divide: return binaryLoop(a, b, shape, /)
        case .maximum: return binaryLoop(a, b, shape) { Swift.max($0, $1) }
        case .minimum: return binaryLoop(a, b, shape) { Swift.min($0, $1) }
        case .equal: return binaryLoop(a, b, shape) { $0 == $1 ? 1 : 0 }
        case .greater: return binaryLoop(a, b, shape) { $0 > $1 ? 1 : 0 }
        case .greaterEqual: return binaryLoop(a, b, shape) { $0 >= $1 ? 1 : 0 }
        case .less: return binaryLoop(a, b, shape) { $0 < $1 ? 1 : 0 }
        case .lessEqual: return binaryLoop(a, b, shape) { $0 <= $1 ? 1 : 0 }
        }
    }

    /// y = f(a, b) broadcast to `shape`. Same-shape operands take a flat parallel loop: the C
    /// kernel `vector` when given (Swift builds for baseline x86-64), else `f`.
    @inline(__always)
    func binaryLoop(_ a: Tensor, _ b: Tensor, _ shape: [Int], vector: VectorBinaryKernel? = nil,
                    _ f: (Float, Float) -> Float) -> Tensor {
        let out = output(shape)
        if a.shape == b.shape {
            let x = SendablePointer(a.storage.pointer), y = SendablePointer(b.storage.pointer), z = SendablePointer(out.storage.pointer)
            if let vector {
                parallelFor(out.count) { r in vector(x.p + r.lowerBound, y.p + r.lowerBound, z.p + r.lowerBound, r.count) }
            } else {
                parallelFor(out.count) { r in
                    for i in r { z.p[i] = f(x.p[i], y.p[i]) }
                }
            }
            return out
        }
        let plan = BroadcastPlan(outShape: shape, operands: [a.shape, b.shape])
        let x = a.storage.pointer, y = b.storage.pointer, z = out.storage.pointer
        plan.forEachRun { o, offs, n, st in
            let xa = x + offs[0], yb = y + offs[1], zo = z + o
            switch (st[0], st[1]) {
            case (1, 1): for i in 0..<n { zo[i] = f(xa[i], yb[i]) }
            case (1, 0): let v = yb[0]; for i in 0..<n { zo[i] = f(xa[i], v) }
            case (0, 1): let v = xa[0]; for i in 0..<n { zo[i] = f(v, yb[i]) }
            default: for i in 0..<n { zo[i] = f(xa[i * st[0]], yb[i * st[1]]) }
            }
        }
        return out
    }

    /// y = f(x), flat and parallel.
    @inline(__always)
    func unaryLoop(_ a: Tensor, _ f: (Float) -> Float) -> Tensor {
        let out = output(a.shape)
        let x = SendablePointer(a.storage.pointer), z = SendablePointer(out.storage.pointer)
        parallelFor(out.count) { r in
            for i in r { z.p[i] = f(x.p[i]) }
        }
        return out
    }

    /// y = f(x) with a C loop (AVX2+FMA or baseline), flat and parallel.
    func vectorUnary(_ x: Tensor, _ forward: @convention(c) (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void) -> Tensor {
        let y = output(x.shape)
        let xs = SendablePointer(x.storage.pointer), ys = SendablePointer(y.storage.pointer)
        parallelFor(y.count) { r in forward(xs.p + r.lowerBound, ys.p + r.lowerBound, r.count) }
        return y
    }

    /// z = f(x, y, w) for three tensors of one shape.
    @inline(__always)
    func ternaryLoop(_ a: Tensor, _ b: Tensor, _ c: Tensor, _ f: (Float, Float, Float) -> Float) -> Tensor {
        let out = output(a.shape)
        let x = SendablePointer(a.storage.pointer), y = SendablePointer(b.storage.pointer)
        let w = SendablePointer(c.storage.pointer), z = SendablePointer(out.storage.pointer)
        parallelFor(out.count) { r in
            for i in r { z.p[i] = f(x.p[i], y.p[i], w.p[i]) }
        }
        return out
    }

    public func unary(_ op: UnaryOp, _ x: Tensor) -> Tensor {
        switch op {
        case .negate: return unaryLoop(x) { -$0 }
        case .exp: return unaryLoop(x) { expf($0) }
        case .log: return unaryLoop(x) { logf($0) }
        case .sqrt: return unaryLoop(x) { $0.squareRoot() }
        case .abs: return unaryLoop(x) { Swift.abs($0) }
        case .relu: return vectorUnary(x, sprout_relu_forward)
        case .gelu: return vectorUnary(x, sprout_gelu_forward)
        case .geluTanh: return unaryLoop(x) { v in 0.5 * v * (1 + tanhf(geluC * (v + 0.044715 * v * v * v))) }
        case .sigmoid: return unaryLoop(x) { v in v >= 0 ? 1 / (1 + expf(-v)) : expf(v) / (1 + expf(v)) }
        case .tanh: return unaryLoop(x) { tanhf($0) }
        case .elu(let alpha): return unaryLoop(x) { $0 > 0 ? $0 : alpha * (expf($0) - 1) }
        case .leakyRelu(let slope): return unaryLoop(x) { $0 > 0 ? $0 : slope * $0 }
        case .power(let p): return unaryLoop(x) { powf($0, p) }
        case let .clamp(lower, upper):
            let y = output(x.shape)
            let xs = SendablePointer(x.storage.pointer), ys = SendablePointer(y.storage.pointer)
            parallelFor(y.count) { r in sprout_clamp_forward(xs.p + r.lowerBound, ys.p + r.lowerBound, r.count, lower, upper) }
            return y
        }
    }

    public func unaryGradient(_ op: UnaryOp, gradient g: Tensor, input x: Tensor, output y: Tensor) -> Tensor {
        switch op {
        case .negate: return unaryLoop(g) { -$0 }
        case .exp: return binary(.multiply, g, y, shape: g.shape)
        case .log: return binary(.divide, g, x, shape: g.shape)
        case .sqrt: return binaryLoop(g, y, g.shape) { g, y in g * 0.5 / y }
        case .abs: return binaryLoop(g, x, g.shape) { g, x in x > 0 ? g : (x < 0 ? -g : 0) }
        case .relu: return vectorGradient(g, y, sprout_relu_backward)
        case .gelu: return vectorGradient(g, x, sprout_gelu_backward)
        case .geluTanh:
            return binaryLoop(g, x, g.shape) { g, v in
                let t = tanhf(geluC * (v + 0.044715 * v * v * v))
                return g * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * geluC * (1 + 3 * 0.044715 * v * v))
            }
        case .sigmoid: return binaryLoop(g, y, g.shape) { g, y in g * y * (1 - y) }
        case .tanh: return binaryLoop(g, y, g.shape) { g, y in g * (1 - y * y) }
        case .elu(let alpha): return ternaryLoop(g, x, y) { g, x, y in x > 0 ? g : g * (y + alpha) }
        case .leakyRelu(let slope): return binaryLoop(g, x, g.shape) { g, x in x > 0 ? g : slope * g }
        case .power(let p): return binaryLoop(g, x, g.shape) { g, x in g * p * powf(x, p - 1) }
        case let .clamp(lower, upper):
            let gx = output(g.shape)
            let gs = SendablePointer(g.storage.pointer), xs = SendablePointer(x.storage.pointer), gxs = SendablePointer(gx.storage.pointer)
            parallelFor(gx.count) { r in
                sprout_clamp_backward(gs.p + r.lowerBound, xs.p + r.lowerBound, gxs.p + r.lowerBound, r.count, lower, upper)
            }
            return gx
        }
    }

    /// dx = backward(dy, saved) with a C loop; `saved` is the op's input or output.
    func vectorGradient(_ g: Tensor, _ saved: Tensor, _ backward: VectorBinaryKernel) -> Tensor {
        let gx = output(g.shape)
        let gs = SendablePointer(g.storage.pointer), ss = SendablePointer(saved.storage.pointer)
        let gxs = SendablePointer(gx.storage.pointer)
        parallelFor(gx.count) { r in backward(gs.p + r.lowerBound, ss.p + r.lowerBound, gxs.p + r.lowerBound, r.count) }
        return gx
    }

    public func select(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        ternaryLoop(condition, a, b) { c, x, y in c != 0 ? x : y }
    }

    // MARK: - Reductions

    public func reduce(_ op: ReductionOp, _ x: Tensor, axes: Set<Int>) -> Tensor {
        let kept = x.shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
        let values: [Float]
        switch op {
        case .sum: values = reduceLoop(x, axes: axes, initial: 0, +)
        case .max: values = reduceLoop(x, axes: axes, initial: -.infinity) { Swift.max($0, $1) }
        }
        return values.withUnsafeBufferPointer { tensor(shape: kept, scalars: $0) }
    }

    /// The input's axes merged into alternating kept/reduced groups, walked with a contiguous
    /// innermost run.
    private func reduceLoop(_ x: Tensor, axes: Set<Int>, initial: Float, _ combine: (Float, Float) -> Float) -> [Float] {
        let shape = x.shape
        var dims: [Int] = [], reduced: [Bool] = []
        for (i, d) in shape.enumerated() where d != 1 {
            let r = axes.contains(i)
            if let last = reduced.last, last == r { dims[dims.count - 1] *= d } else { dims.append(d); reduced.append(r) }
        }
        let outCount = zip(dims, reduced).filter { !$0.1 }.map(\.0).reduce(1, *)
        var out = [Float](repeating: initial, count: outCount)
        if dims.isEmpty { out[0] = combine(initial, x.storage.pointer[0]); return out }
        var outStrides = [Int](repeating: 0, count: dims.count)
        var s = 1
        for i in stride(from: dims.count - 1, through: 0, by: -1) where !reduced[i] {
            outStrides[i] = s
            s *= dims[i]
        }
        let src = x.storage.pointer
        let n = dims.count, inner = dims[n - 1], innerReduced = reduced[n - 1]
        let outer = x.count / inner
        var index = [Int](repeating: 0, count: n)
        var o = 0
        out.withUnsafeMutableBufferPointer { dst in
            for run in 0..<outer {
                let a = src + run * inner
                if innerReduced {
                    var acc = dst[o]
                    for i in 0..<inner { acc = combine(acc, a[i]) }
                    dst[o] = acc
                } else {
                    for i in 0..<inner { dst[o + i] = combine(dst[o + i], a[i]) }
                }
                var axis = n - 2
                while axis >= 0 {
                    index[axis] += 1
                    o += outStrides[axis]
                    if index[axis] < dims[axis] { break }
                    o -= outStrides[axis] * dims[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
        return out
    }

    public func softmax(_ x: Tensor, axis a: Int, log: Bool) -> Tensor {
        let (outer, n, inner) = (x.shape[..<a].reduce(1, *), x.shape[a], x.shape[(a + 1)...].reduce(1, *))
        let y = output(x.shape)
        let src = SendablePointer(x.storage.pointer), dst = SendablePointer(y.storage.pointer)
        parallelFor(outer * inner, grain: grain(workPerItem: 3 * n)) { r in
            for idx in r {
                let base = (idx / inner) * n * inner + idx % inner
                var m = -Float.infinity
                for k in 0..<n { m = Swift.max(m, src.p[base + k * inner]) }
                var s: Float = 0
                if log {
                    for k in 0..<n { s += expf(src.p[base + k * inner] - m) }
                    let logSum = logf(s)
                    // (x − m) − log s, not x − (m + log s): keeps precision for large logits.
                    for k in 0..<n { dst.p[base + k * inner] = (src.p[base + k * inner] - m) - logSum }
                } else {
                    for k in 0..<n {
                        let e = expf(src.p[base + k * inner] - m)
                        dst.p[base + k * inner] = e
                        s += e
                    }
                    let inv = 1 / s
                    for k in 0..<n { dst.p[base + k * inner] *= inv }
                }
            }
        }
        return y
    }

    // MARK: - Copies and layout

    public func permute(_ x: Tensor, _ axes: [Int]) -> Tensor {
        let outShape = axes.map { x.shape[$0] }
        let out = output(outShape)
        let inStrides = contiguousStrides(x.shape)
        let src = x.storage.pointer, dst = out.storage.pointer
        let strides = axes.map { inStrides[$0] }
        let n = outShape.count
        let inner = outShape[n - 1], innerStride = strides[n - 1]
        let outer = x.count / Swift.max(inner, 1)
        var index = [Int](repeating: 0, count: n)
        var offset = 0
        for run in 0..<outer {
            let d = dst + run * inner
            for i in 0..<inner { d[i] = src[offset + i * innerStride] }
            var axis = n - 2
            while axis >= 0 {
                index[axis] += 1
                offset += strides[axis]
                if index[axis] < outShape[axis] { break }
                offset -= strides[axis] * outShape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
        return out
    }

    public func slice(_ x: Tensor, axis a: Int, range: Range<Int>) -> Tensor {
        var outShape = x.shape
        outShape[a] = range.count
        let outer = x.shape[..<a].reduce(1, *), inner = x.shape[(a + 1)...].reduce(1, *)
        let out = output(outShape)
        let src = x.storage.pointer, dst = out.storage.pointer
        let run = range.count * inner
        for o in 0..<outer {
            (dst + o * run).update(from: src + (o * x.shape[a] + range.lowerBound) * inner, count: run)
        }
        return out
    }

    public func concatenate(_ xs: [Tensor], axis a: Int) -> Tensor {
        var outShape = xs[0].shape
        outShape[a] = xs.map { $0.shape[a] }.reduce(0, +)
        let outer = outShape[..<a].reduce(1, *), inner = outShape[(a + 1)...].reduce(1, *)
        let out = output(outShape)
        let outRun = outShape[a] * inner
        var start = 0
        for t in xs {
            let run = t.shape[a] * inner
            for o in 0..<outer {
                (out.storage.pointer + o * outRun + start * inner).update(from: t.storage.pointer + o * run, count: run)
            }
            start += t.shape[a]
        }
        return out
    }

    public func addSlab(_ g: Tensor, into t: inout Tensor, axis: Int, range: Range<Int>) {
        let shape = t.shape
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *), n = shape[axis]
        let run = range.count * inner
        let gp = g.storage.pointer
        t.withMutableData { d in
            for o in 0..<outer {
                let dst = d.baseAddress! + (o * n + range.lowerBound) * inner, src = gp + o * run
                for i in 0..<run { dst[i] += src[i] }
            }
        }
    }

    public func broadcast(_ x: Tensor, to shape: [Int]) -> Tensor {
        let out = output(shape)
        let plan = BroadcastPlan(outShape: shape, operands: [x.shape])
        let src = x.storage.pointer, dst = out.storage.pointer
        plan.forEachRun { o, offs, n, st in
            let s = st[0], a = src + offs[0], y = dst + o
            if s == 0 { y.update(repeating: a[0], count: n) } else { y.update(from: a, count: n) }
        }
        return out
    }

    public func flip(_ x: Tensor, axes: Set<Int>) -> Tensor {
        let (shape, rank) = (x.shape, x.rank)
        let out = output(shape)
        let strides = contiguousStrides(shape)
        let src = x.storage.pointer, dst = out.storage.pointer
        var index = [Int](repeating: 0, count: rank)
        for i in 0..<x.count {
            var off = 0
            for d in 0..<rank { off += (axes.contains(d) ? shape[d] - 1 - index[d] : index[d]) * strides[d] }
            dst[i] = src[off]
            var d = rank - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return out
    }

    public func pad(_ x: Tensor, rows: [Int], cols: [Int]) -> Tensor {
        let h = x.shape[x.rank - 2], w = x.shape[x.rank - 1], oh = rows.count, ow = cols.count
        let planes = x.count / Swift.max(h * w, 1)
        let out = output(Array(x.shape.dropLast(2)) + [oh, ow])
        let src = SendablePointer(x.storage.pointer), dst = SendablePointer(out.storage.pointer)
        parallelFor(planes, grain: grain(workPerItem: oh * ow)) { r in
            for p in r {
                let s = src.p + p * h * w, d = dst.p + p * oh * ow
                for y in 0..<oh {
                    let sy = rows[y]
                    for x in 0..<ow {
                        let sx = cols[x]
                        d[y * ow + x] = (sy < 0 || sx < 0) ? 0 : s[sy * w + sx]
                    }
                }
            }
        }
        return out
    }

    public func padGradient(_ g: Tensor, rows: [Int], cols: [Int], inputShape: [Int]) -> Tensor {
        let h = inputShape[inputShape.count - 2], w = inputShape[inputShape.count - 1], oh = rows.count, ow = cols.count
        let planes = inputShape.reduce(1, *) / Swift.max(h * w, 1)
        let gin = filled(shape: inputShape, value: 0)
        let gp = SendablePointer(g.storage.pointer), ip = SendablePointer(gin.storage.pointer)
        parallelFor(planes, grain: grain(workPerItem: oh * ow)) { r in
            for p in r {
                let gs = gp.p + p * oh * ow, d = ip.p + p * h * w
                for y in 0..<oh where rows[y] >= 0 {
                    for x in 0..<ow where cols[x] >= 0 { d[rows[y] * w + cols[x]] += gs[y * ow + x] }
                }
            }
        }
        return gin
    }

    public func gather(_ x: Tensor, indices: [Int]) -> Tensor {
        let c = x.shape[1]
        let out = output([indices.count])
        for i in indices.indices { out.storage.pointer[i] = x.storage.pointer[i * c + indices[i]] }
        return out
    }

    public func scatter(_ g: Tensor, indices: [Int], columns c: Int) -> Tensor {
        let full = filled(shape: [indices.count, c], value: 0)
        for i in indices.indices { full.storage.pointer[i * c + indices[i]] = g.storage.pointer[i] }
        return full
    }

    // MARK: - Linear algebra

    public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) -> Tensor {
        let batch = a.rank == 3 ? a.shape[0] : 1
        let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let (m, k) = transposeA ? (ac, ar) : (ar, ac)
        let n = transposeB ? br : bc
        let out = output(a.rank == 3 ? [batch, m, n] : [m, n])
        sgemmBatched(batch: batch, m: m, n: n, k: k,
                     a: a.storage.pointer, strideA: ar * ac, transposeA: transposeA,
                     b: b.storage.pointer, strideB: b.rank == 3 ? br * bc : 0, transposeB: transposeB,
                     c: out.storage.pointer)
        return out
    }

    // MARK: - Initialisation

    public func tensor(shape: [Int], scalars: UnsafeBufferPointer<Float>) -> Tensor {
        let t = output(shape)
        if let base = scalars.baseAddress { t.storage.pointer.update(from: base, count: t.count) }
        return t
    }

    public func filled(shape: [Int], value: Float) -> Tensor {
        let t = output(shape)
        t.storage.pointer.initialize(repeating: value, count: t.count)
        return t
    }
}

/// √(2/π), GELU's tanh approximation.
let geluC: Float = 0.7978845608

/// A same-shape loop of CSproutKernels (AVX2+FMA or baseline, chosen at start-up).
typealias VectorBinaryKernel = @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void
