#if canImport(Glibc)
import Glibc
#endif

// Activations: y = f(x) element-wise, with f' from x or y.

//   x: [..] → y: [..];  dx = dy where y > 0 (the output's mask: the input need not be kept)
public func relu(_ x: Tensor) -> Tensor { unaryOp(.relu, "relu", x) }

public func leakyRelu(_ x: Tensor, negativeSlope: Float = 0.01) -> Tensor {
    unaryOp(.leakyRelu(slope: negativeSlope), "leakyRelu", x)
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

//   x > 0: x, else α(eˣ − 1);  dx = dy, else dy·(y + α)
public func elu(_ x: Tensor, alpha: Float = 1) -> Tensor { unaryOp(.elu(alpha: alpha), "elu", x) }

/// GELU, exact (x·Φ(x), PyTorch's default) or with the tanh approximation.
public func gelu(_ x: Tensor, approximate: Bool = false) -> Tensor {
    unaryOp(approximate ? .geluTanh : .gelu, "gelu", x)
}

//   dσ = σ(1 − σ);  d tanh = 1 − tanh²
public func sigmoid(_ x: Tensor) -> Tensor { unaryOp(.sigmoid, "sigmoid", x) }
public func tanh(_ x: Tensor) -> Tensor { unaryOp(.tanh, "tanh", x) }

// MARK: - Softmax family, along one axis

/// y = x − max − log Σ exp(x − max) along `axis`.   dx = dy − softmax · Σ dy
public func logSoftmax(_ x: Tensor, alongAxis axis: Int = -1) -> Tensor {
    let a = normalizeAxis(axis, rank: x.rank, op: "logSoftmax")
    let y = x.backend.softmax(x, axis: a, log: true)
    return y.recorded("logSoftmax", x) { g in
        let yd = y.detached
        let sumG = g.sum(alongAxes: [a], keepingDimensions: true)
        return g - exp(yd) * sumG
    }
}

/// softmax along `axis`.   dx = y · (dy − Σ dy·y)
public func softmax(_ x: Tensor, alongAxis axis: Int = -1) -> Tensor {
    let a = normalizeAxis(axis, rank: x.rank, op: "softmax")
    let y = x.backend.softmax(x, axis: a, log: false)
    return y.recorded("softmax", x) { g in
        let yd = y.detached
        return yd * (g - (g * yd).sum(alongAxes: [a], keepingDimensions: true))
    }
}
