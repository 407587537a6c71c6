#if canImport(Glibc)
import Glibc
#endif

// MARK: - Through the backend

/// f(a, b) with broadcasting, on the operands' backend.
@inline(__always)
func binaryOp(_ op: BinaryOp, _ name: String, _ a: Tensor, _ b: Tensor) -> Tensor {
    let shape = a.shape == b.shape ? a.shape : broadcastShape(a.shape, b.shape, op: name)
    return backend(name, a, b).binary(op, a, b, shape: shape)
}

/// y = f(x) with its backward rule dy·f'(x), both on x's backend.
@inline(__always)
func unaryOp(_ op: UnaryOp, _ name: String, _ x: Tensor) -> Tensor {
    let y = x.backend.unary(op, x)
    return y.recorded(name, x) { g in x.backend.unaryGradient(op, gradient: g, input: x.detached, output: y.detached) }
}

// MARK: - Arithmetic with broadcasting

//   a: [..], b: [..] broadcastable → out: broadcast shape; gradients summed back to each shape.
public func + (a: Tensor, b: Tensor) -> Tensor {
    binaryOp(.add, "add", a, b).recorded("add", [a, b]) { g in
        [g.reduced(toShape: a.shape), g.reduced(toShape: b.shape)]
    }
}

public func - (a: Tensor, b: Tensor) -> Tensor {
    binaryOp(.subtract, "sub", a, b).recorded("sub", [a, b]) { g in
        [g.reduced(toShape: a.shape), (-g).reduced(toShape: b.shape)]
    }
}

public func * (a: Tensor, b: Tensor) -> Tensor {
    binaryOp(.multiply, "mul", a, b).recorded("mul", [a, b]) { g in
        [(g * b.detached).reduced(toShape: a.shape), (g * a.detached).reduced(toShape: b.shape)]
    }
}

//   d(a/b)/da = 1/b ; d(a/b)/db = -a/b²
public func / (a: Tensor, b: Tensor) -> Tensor {
    binaryOp(.divide, "div", a, b).recorded("div", [a, b]) { g in
        let bd = b.detached
        return [(g / bd).reduced(toShape: a.shape), (-(g * a.detached) / (bd * bd)).reduced(toShape: b.shape)]
    }
}

public prefix func - (a: Tensor) -> Tensor { unaryOp(.negate, "neg", a) }

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
    binaryOp(.maximum, "maximum", a, b).recorded("maximum", [a, b]) { g in
        let mask = greaterEqual(a.detached, b.detached).broadcast(to: g.shape)
        return [(g * mask).reduced(toShape: a.shape), (g * (1 - mask)).reduced(toShape: b.shape)]
    }
}

/// Element-wise minimum with broadcasting; the gradient goes to `a` where a ≤ b.
public func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
    binaryOp(.minimum, "minimum", a, b).recorded("minimum", [a, b]) { g in
        let mask = lessEqual(a.detached, b.detached).broadcast(to: g.shape)
        return [(g * mask).reduced(toShape: a.shape), (g * (1 - mask)).reduced(toShape: b.shape)]
    }
}

/// aᵇ for a positive base tensor and any exponent tensor: exp(b · log a).
public func pow(_ a: Tensor, _ b: Tensor) -> Tensor { exp(b * log(a)) }

/// xᵖ for a scalar exponent.  d/dx = p·xᵖ⁻¹
public func pow(_ x: Tensor, _ p: Float) -> Tensor {
    if p == 2 { return x * x }
    return unaryOp(.power(p), "pow", x)
}

// MARK: - Unary math

//   d exp = exp;  d log = 1/x;  d √x = 1/(2√x);  d |x| = sign x
public func exp(_ x: Tensor) -> Tensor { unaryOp(.exp, "exp", x) }
public func log(_ x: Tensor) -> Tensor { unaryOp(.log, "log", x) }
public func sqrt(_ x: Tensor) -> Tensor { unaryOp(.sqrt, "sqrt", x) }
public func abs(_ x: Tensor) -> Tensor { unaryOp(.abs, "abs", x) }

/// Limits each element to [lower, upper]; the gradient passes where the input was inside.
public func clamp(_ x: Tensor, min lower: Float, max upper: Float) -> Tensor {
    precondition(lower <= upper, "clamp: min \(lower) is greater than max \(upper)")
    return unaryOp(.clamp(min: lower, max: upper), "clamp", x)
}

/// `condition` (non-zero = true) picks from `a`, else from `b`; all three broadcast together.
public func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    let shape = broadcastShape(broadcastShape(condition.shape, a.shape, op: "where"), b.shape, op: "where")
    let c = condition.detached.broadcast(to: shape), ab = a.broadcast(to: shape), bb = b.broadcast(to: shape)
    let out = c.backend.select(c, ab.detached, bb.detached)
    return out.recorded("where", [ab, bb]) { g in
        let zero = Tensor(shape: g.shape, repeating: 0)
        return [g.backend.select(c, g, zero), g.backend.select(c, zero, g)]
    }
}

// MARK: - Comparisons (not differentiable): 1 where true, 0 where false

public func equal(_ a: Tensor, _ b: Tensor) -> Tensor { binaryOp(.equal, "equal", a, b) }
public func greater(_ a: Tensor, _ b: Tensor) -> Tensor { binaryOp(.greater, "greater", a, b) }
public func greaterEqual(_ a: Tensor, _ b: Tensor) -> Tensor { binaryOp(.greaterEqual, "greaterEqual", a, b) }
public func less(_ a: Tensor, _ b: Tensor) -> Tensor { binaryOp(.less, "less", a, b) }
public func lessEqual(_ a: Tensor, _ b: Tensor) -> Tensor { binaryOp(.lessEqual, "lessEqual", a, b) }
