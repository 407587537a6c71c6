import CSproutKernels

/// Batch normalization with the batch's own statistics (training mode).
///   x: [N, C, H, W] (or [N, C]), weight γ, bias β: [C]
///   → y = γ·(x − μ)/√(σ² + ε) + β, plus the batch mean μ and biased variance σ² per channel
///   (callers update running statistics from them; see `updateRunningStatistics`).
/// Backward, per channel over the M = N·H·W values:
///   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ/(M·√(σ²+ε)) · (M·dy − dβ − x̂·dγ)
public func batchNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float = 1e-5)
    -> (output: Tensor, mean: Tensor, variance: Tensor) {
    precondition(x.rank == 4 || x.rank == 2, "batchNorm: input must be [N, C, H, W] or [N, C], got \(x.shape)")
    let (n, c) = (x.shape[0], x.shape[1])
    let hw = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
    if let weight { precondition(weight.shape == [c], "batchNorm: weight must be [\(c)], got \(weight.shape)") }
    if let bias { precondition(bias.shape == [c], "batchNorm: bias must be [\(c)], got \(bias.shape)") }
    let m = n * hw
    precondition(m > 1, "batchNorm: needs more than one value per channel in training mode, got \(x.shape)")
    let mean = Tensor(uninitializedShape: [c]), variance = Tensor(uninitializedShape: [c])
    let y = Tensor(uninitializedShape: x.shape)
    let xs = SendablePointer(x.storage.pointer), ys = SendablePointer(y.storage.pointer)
    let ms = SendablePointer(mean.storage.pointer), vs = SendablePointer(variance.storage.pointer)
    let gamma = weight.map { SendablePointer($0.storage.pointer) }, beta = bias.map { SendablePointer($0.storage.pointer) }
    parallelFor(c, grain: grain(workPerItem: 3 * n * hw)) { r in
        for ch in r {
            // Two passes in Double: exact enough for large batches of large activations.
            var sum = 0.0
            for b in 0..<n { let p = xs.p + (b * c + ch) * hw; for i in 0..<hw { sum += Double(p[i]) } }
            let mu = sum / Double(m)
            var ss = 0.0
            for b in 0..<n { let p = xs.p + (b * c + ch) * hw; for i in 0..<hw { let d = Double(p[i]) - mu; ss += d * d } }
            let v = ss / Double(m)
            ms.p[ch] = Float(mu)
            vs.p[ch] = Float(v)
            let invStd = Float(1 / (v + Double(epsilon)).squareRoot())
            let scale = (gamma?.p[ch] ?? 1) * invStd
            let shift = (beta?.p[ch] ?? 0) - Float(mu) * scale
            for b in 0..<n {
                let p = xs.p + (b * c + ch) * hw, q = ys.p + (b * c + ch) * hw
                for i in 0..<hw { q[i] = p[i] * scale + shift }
            }
        }
    }
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    let out = y.recorded("batchNorm", inputs) { g in
        // Pointers are taken from the captured tensors so that the tape keeps them alive.
        let xs = SendablePointer(x.storage.pointer)
        let ms = SendablePointer(mean.storage.pointer), vs = SendablePointer(variance.storage.pointer)
        let gamma = weight.map { SendablePointer($0.storage.pointer) }
        let gx = Tensor(uninitializedShape: x.shape)
        let gGamma = Tensor(uninitializedShape: [c]), gBeta = Tensor(uninitializedShape: [c])
        let gs = SendablePointer(g.storage.pointer), gxs = SendablePointer(gx.storage.pointer)
        let gg = SendablePointer(gGamma.storage.pointer), gb = SendablePointer(gBeta.storage.pointer)
        parallelFor(c, grain: grain(workPerItem: 3 * n * hw)) { r in
            for ch in r {
                let mu = ms.p[ch], invStd = 1 / (vs.p[ch] + epsilon).squareRoot()
                var sumG: Float = 0, sumGX: Float = 0
                for b in 0..<n {
                    let p = xs.p + (b * c + ch) * hw, d = gs.p + (b * c + ch) * hw
                    for i in 0..<hw { sumG += d[i]; sumGX += d[i] * (p[i] - mu) }
                }
                let dGamma = sumGX * invStd
                gg.p[ch] = dGamma
                gb.p[ch] = sumG
                let k = (gamma?.p[ch] ?? 1) * invStd / Float(m)
                for b in 0..<n {
                    let p = xs.p + (b * c + ch) * hw, d = gs.p + (b * c + ch) * hw, o = gxs.p + (b * c + ch) * hw
                    for i in 0..<hw {
                        let xhat = (p[i] - mu) * invStd
                        o[i] = k * (Float(m) * d[i] - sumG - xhat * dGamma)
                    }
                }
            }
        }
        var grads: [Tensor?] = [gx]
        if weight != nil { grads.append(gGamma) }
        if bias != nil { grads.append(gBeta) }
        return grads
    }
    return (out, mean, variance)
}

/// Batch normalization with fixed statistics (evaluation mode).
public func batchNormInference(_ x: Tensor, mean: Tensor, variance: Tensor, weight: Tensor?, bias: Tensor?,
                               epsilon: Float = 1e-5) -> Tensor {
    precondition(x.rank == 4 || x.rank == 2, "batchNorm: input must be [N, C, H, W] or [N, C], got \(x.shape)")
    let c = x.shape[1]
    precondition(mean.shape == [c] && variance.shape == [c],
                 "batchNorm: running statistics \(mean.shape)/\(variance.shape) do not match \(c) channels")
    let bshape = x.rank == 4 ? [1, c, 1, 1] : [1, c]
    var y = (x - mean.detached.reshaped(to: bshape)) / sqrt(variance.detached + epsilon).reshaped(to: bshape)
    if let weight { y = y * weight.reshaped(to: bshape) }
    if let bias { y = y + bias.reshaped(to: bshape) }
    return y
}

/// PyTorch's running-statistics rule: r ← (1 − momentum)·r + momentum·batch, with the
/// unbiased variance (n/(n−1)·σ²) for the running variance.
public func updateRunningStatistics(runningMean: inout Tensor, runningVariance: inout Tensor,
                                    batchMean: Tensor, batchVariance: Tensor, count: Int, momentum: Float) {
    let correction = count > 1 ? Float(count) / Float(count - 1) : 1
    withoutGradient {
        runningMean = (1 - momentum) * runningMean.detached + momentum * batchMean.detached
        runningVariance = (1 - momentum) * runningVariance.detached + (momentum * correction) * batchVariance.detached
    }
}

/// Local response normalization across channels with TensorFlow's `tf.nn.lrn` semantics:
///   y[c] = x[c] / (bias + alpha · Σ_{|c'−c| ≤ depthRadius} x[c']²)^beta
///   x: [N, C, H, W] → same shape
public func localResponseNorm(_ x: Tensor, depthRadius: Int = 5, bias: Float = 1, alpha: Float = 1, beta: Float = 0.5) -> Tensor {
    precondition(x.rank == 4, "localResponseNorm: input must be [N, C, H, W], got \(x.shape)")
    precondition(depthRadius >= 0, "localResponseNorm: depth radius must be ≥ 0, got \(depthRadius)")
    let (n, c, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
    let y = Tensor(uninitializedShape: x.shape), scale = Tensor(uninitializedShape: x.shape)
    let xs = SendablePointer(x.storage.pointer), ys = SendablePointer(y.storage.pointer), ss = SendablePointer(scale.storage.pointer)
    parallelFor(n, grain: grain(workPerItem: c * hw * (2 * depthRadius + 2))) { r in
        let off = r.lowerBound * c * hw
        sprout_lrn_forward(xs.p + off, ys.p + off, ss.p + off, Int32(r.count), Int32(c), Int32(hw),
                           Int32(depthRadius), bias, alpha, beta)
    }
    return y.recorded("localResponseNorm", x) { g in
        let xs = SendablePointer(x.storage.pointer), ys = SendablePointer(y.storage.pointer)
        let ss = SendablePointer(scale.storage.pointer)
        let gx = Tensor(uninitializedShape: x.shape)
        let gs = SendablePointer(g.storage.pointer), gxs = SendablePointer(gx.storage.pointer)
        parallelFor(n, grain: grain(workPerItem: c * hw * (2 * depthRadius + 2))) { r in
            let off = r.lowerBound * c * hw
            sprout_lrn_backward(xs.p + off, ys.p + off, ss.p + off, gs.p + off, gxs.p + off,
                                Int32(r.count), Int32(c), Int32(hw), Int32(depthRadius), alpha, beta)
        }
        return gx
    }
}

/// Inverted dropout: zeroes each element with `probability` and scales the rest by
/// 1/(1 − probability), from a seeded generator.
public func dropout(_ x: Tensor, probability: Float, generator: inout SeededGenerator) -> Tensor {
    precondition((0..<1).contains(probability), "dropout: probability \(probability) outside [0, 1)")
    if probability == 0 { return x }
    let mask = Tensor.bernoulli(x.shape, probability: 1 - probability, generator: &generator) * (1 / (1 - probability))
    return x * mask
}
