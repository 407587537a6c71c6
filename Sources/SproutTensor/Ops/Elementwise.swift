import CSproutKernels
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Kernels

/// A same-shape loop of CSproutKernels (AVX2+FMA or baseline, chosen at start-up).
typealias VectorBinaryKernel = @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void

/// y = f(a, b) with broadcasting. Same-shape operands take a flat parallel loop: the C
/// kernel `vector` when given (Swift builds for baseline x86-64), else `f`.
@inline(__always)
func binaryKernel(_ a: Tensor, _ b: Tensor, op: String, vector: VectorBinaryKernel? = nil,
                  _ f: (Float, Float) -> Float) -> Tensor {
    if a.shape == b.shape {
        let out = Tensor(uninitializedShape: a.shape)
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
    let shape = broadcastShape(a.shape, b.shape, op: op)
    let out = Tensor(uninitializedShape: shape)
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
func unaryKernel(_ a: Tensor, _ f: (Float) -> Float) -> Tensor {
    let out = Tensor(uninitializedShape: a.shape)
    let x = SendablePointer(a.storage.pointer), z = SendablePointer(out.storage.pointer)
    parallelFor(out.count) { r in
        for i in r { z.p[i] = f(x.p[i]) }
    }
    return out
}

/// z = f(x, y) for two tensors of the same shape (gradient helpers).
@inline(__always)
func zipKernel(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
    precondition(a.shape == b.shape, "internal: zip of \(a.shape) and \(b.shape)")
    return binaryKernel(a, b, op: "zip", f)
}

/// w = f(x, y, z) for three tensors of the same shape.
@inline(__always)
func zip3Kernel(_ a: Tensor, _ b: Tensor, _ c: Tensor, _ f: (Float, Float, Float) -> Float) -> Tensor {
    precondition(a.shape == b.shape && b.shape == c.shape, "internal: zip3 of \(a.shape), \(b.shape), \(c.shape)")
    let out = Tensor(uninitializedShape: a.shape)
    let x = SendablePointer(a.storage.pointer), y = SendablePointer(b.storage.pointer)
    let w = SendablePointer(c.storage.pointer), z = SendablePointer(out.storage.pointer)
    parallelFor(out.count) { r in
        for i in r { z.p[i] = f(x.p[i], y.p[i], w.p[i]) }
    }
    return out
}

// MARK: - Arithmetic with broadcasting

//   a: [..], b: [..] broadcastable → out: broadcast shape; gradients summed back to each shape.
public func + (a: Tensor, b: Tensor) -> Tensor {
    binaryKernel(a, b, op: "add", vector: sprout_add, +).recorded("add", [a, b]) { g in
        [g.reduced(toShape: a.shape), g.reduced(toShape: b.shape)]
    }
}

public func - (a: Tensor, b: Tensor) -> Tensor {
    binaryKernel(a, b, op: "sub", vector: sprout_sub, -).recorded("sub", [a, b]) { g in
        [g.reduced(toShape: a.shape), (-g).reduced(toShape: b.shape)]
    }
}

public func * (a: Tensor, b: Tensor) -> Tensor {
    binaryKernel(a, b, op: "mul", vector: sprout_mul, *).recorded("mul", [a, b]) { g in
        [(g * b.detached).reduced(toShape: a.shape), (g * a.detached).reduced(toShape: b.shape)]
    }
}

//   d(a/b)/da = 1/b ; d(a/b)/db = -a/b²
public func / (a: Tensor, b: Tensor) -> Tensor {
    binaryKernel(a, b, op: "div", /).recorded("div", [a, b]) { g in
        let bd = b.detached
        return [(g / bd).reduced(toShape: a.shape), (-(g * a.detached) / (bd * bd)).reduced(toShape: b.shape)]
    }
}

public prefix func - (a: Tensor) -> Tensor {
    unaryKernel(a) { -$0 }.recorded("neg", a) { g in -g }
}

public func + (a: Tensor, b: Float) -> Tensor { a + Tensor(b) }
public func - (a: Tensor, b: Float) -> Tensor { a - Tensor(b) }
public func * (a: Tensor, b: Float) -> Tensor { a * Tensor(b) }
public func / (a: Tensor, b: Float) -> Tensor { a * Tensor(1 / b) }
public func + (a: Float, b: Tensor) -> Tensor { Tensor(a) + b }
public func - (a: Float, b: Tensor) -> Tensor { Tensor(a) - b }
public func * (a: Float, b: Tensor) -> Tensor { Tensor(a) * b }
public func / (a: Float, b: Tensor) -> Tensor { Tensor(a) / b }

/// Element-wise maximum with broadcasting; the gradient goes to `a` where a ≥ b.
public func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
    binaryKernel(a, b, op: "maximum") { Swift.max($0, $1) }.recorded("maximum", [a, b]) { g in
        let mask = greaterEqual(a.detached, b.detached).broadcast(to: g.shape)
        return [(g * mask).reduced(toShape: a.shape), (g * (1 - mask)).reduced(toShape: b.shape)]
    }
}

/// Element-wise minimum with broadcasting; the gradient goes to `a` where a ≤ b.
public func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
    binaryKernel(a, b, op: "minimum") { Swift.min($0, $1) }.recorded("minimum", [a, b]) { g in
        let mask = lessEqual(a.detached, b.detached).broadcast(to: g.shape)
        return [(g * mask).reduced(toShape: a.shape), (g * (1 - mask)).reduced(toShape: b.shape)]
    }
}

/// aᵇ for a positive base tensor and any exponent tensor: exp(b · log a).
public func pow(_ a: Tensor, _ b: Tensor) -> Tensor { exp(b * log(a)) }

/// xᵖ for a scalar exponent.  d/dx = p·xᵖ⁻¹
public func pow(_ x: Tensor, _ p: Float) -> Tensor {
    if p == 2 { return x * x }
    return unaryKernel(x) { powf($0, p) }.recorded("pow", x) { g in
        g * unaryKernel(x.detached) { p * powf($0, p - 1) }
    }
}

// MARK: - Unary math

public func exp(_ x: Tensor) -> Tensor {
    let y = unaryKernel(x) { expf($0) }
    return y.recorded("exp", x) { g in g * y.detached }
}

public func log(_ x: Tensor) -> Tensor {
    unaryKernel(x) { logf($0) }.recorded("log", x) { g in g / x.detached }
}

public func sqrt(_ x: Tensor) -> Tensor {
    let y = unaryKernel(x) { $0.squareRoot() }
    return y.recorded("sqrt", x) { g in zipKernel(g, y.detached) { g, y in g * 0.5 / y } }
}

public func abs(_ x: Tensor) -> Tensor {
    unaryKernel(x) { Swift.abs($0) }.recorded("abs", x) { g in
        zipKernel(g, x.detached) { g, x in x > 0 ? g : (x < 0 ? -g : 0) }
    }
}

/// Limits each element to [lower, upper]; the gradient passes where the input was inside.
public func clamp(_ x: Tensor, min lower: Float, max upper: Float) -> Tensor {
    precondition(lower <= upper, "clamp: min \(lower) is greater than max \(upper)")
    return unaryKernel(x) { Swift.min(Swift.max($0, lower), upper) }.recorded("clamp", x) { g in
        zipKernel(g, x.detached) { g, x in (x >= lower && x <= upper) ? g : 0 }
    }
}

/// `condition` (non-zero = true) picks from `a`, else from `b`; all three broadcast together.
public func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    let shape = broadcastShape(broadcastShape(condition.shape, a.shape, op: "where"), b.shape, op: "where")
    let c = condition.detached.broadcast(to: shape), ab = a.broadcast(to: shape), bb = b.broadcast(to: shape)
    let out = zip3Kernel(c, ab.detached, bb.detached) { c, x, y in c != 0 ? x : y }
    return out.recorded("where", [ab, bb]) { g in
        [zipKernel(g, c) { g, c in c != 0 ? g : 0 }, zipKernel(g, c) { g, c in c != 0 ? 0 : g }]
    }
}

// MARK: - Comparisons (not differentiable): 1 where true, 0 where false

public func equal(_ a: Tensor, _ b: Tensor) -> Tensor { binaryKernel(a, b, op: "equal") { $0 == $1 ? 1 : 0 } }
public func greater(_ a: Tensor, _ b: Tensor) -> Tensor { binaryKernel(a, b, op: "greater") { $0 > $1 ? 1 : 0 } }
public func greaterEqual(_ a: Tensor, _ b: Tensor) -> Tensor { binaryKernel(a, b, op: "greaterEqual") { $0 >= $1 ? 1 : 0 } }
public func less(_ a: Tensor, _ b: Tensor) -> Tensor { binaryKernel(a, b, op: "less") { $0 < $1 ? 1 : 0 } }
public func lessEqual(_ a: Tensor, _ b: Tensor) -> Tensor { binaryKernel(a, b, op: "lessEqual") { $0 <= $1 ? 1 : 0 } }
