/// Batch normalization with the batch's own statistics (training mode).
///   x: [N, C, H, W] (or [N, C]), weight γ, bias β: [C]
///   → y = γ·(x − μ)/√(σ² + ε) + β, plus the batch mean μ and biased variance σ² per channel
///   (callers update running statistics from them; see `updateRunningStatistics`).
///   `fusedReLU` returns max(y, 0) in the same pass (and masks the gradient by it).
/// Backward, per channel over the M = N·H·W values:
///   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ/(M·√(σ²+ε)) · (M·dy − dβ − x̂·dγ)
/// Plane sums are float (vectorised), their total over the batch double.
/// With `statisticsReducer`, the statistics are those of every process's batch together
/// (synchronised batch norm, `synchronizedBatchNorm`).
public func batchNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float = 1e-5, fusedReLU: Bool = false,
                      statisticsReducer: (any StatisticsReducer)? = nil)
    -> (output: Tensor, mean: Tensor, variance: Tensor) {
    precondition(x.rank == 4 || x.rank == 2, "batchNorm: input must be [N, C, H, W] or [N, C], got \(x.shape)")
    let (n, c) = (x.shape[0], x.shape[1])
    let hw = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
    if let weight { precondition(weight.shape == [c], "batchNorm: weight must be [\(c)], got \(weight.shape)") }
    if let bias { precondition(bias.shape == [c], "batchNorm: bias must be [\(c)], got \(bias.shape)") }
    let m = n * hw
    precondition(m > 1, "batchNorm: needs more than one value per channel in training mode, got \(x.shape)")
    if let statisticsReducer {
        return synchronizedBatchNorm(x, weight: weight, bias: bias, epsilon: epsilon, fusedReLU: fusedReLU,
                                     sum: statisticsReducer.sumAcrossProcesses)
    }
    let kernels = x.backend
    let (y, mean, variance) = kernels.batchNorm(x, weight: weight, bias: bias, epsilon: epsilon, relu: fusedReLU)
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    let out = y.recorded(fusedReLU ? "batchNormReLU" : "batchNorm", inputs) { g in
        // The captured tensors keep what backward reads alive on the tape.
        let (gx, gGamma, gBeta) = kernels.batchNormGradient(g, input: x, output: y, mean: mean, variance: variance,
                                                             weight: weight, epsilon: epsilon, relu: fusedReLU)
        var grads: [Tensor?] = [gx]
        if weight != nil { grads.append(gGamma) }
        if bias != nil { grads.append(gBeta) }
        return grads
    }
    return (out, mean, variance)
}

/// Sums per-channel statistics over the processes of a data-parallel job, so that batch norm
/// normalises with the statistics of the global batch (PyTorch's SyncBatchNorm). Given to
/// each batch-norm layer (SproutDistributed's communicator is one); without one, statistics
/// stay per process.
public protocol StatisticsReducer: AnyObject, Sendable {
    /// Replaces each value by its sum over every process, in place; every process calls it
    /// with the same count at the same point.
    func sumAcrossProcesses(_ values: UnsafeMutableBufferPointer<Double>)
}

/// Batch norm with statistics summed across processes.
///   Forward: μ = Σx / M and σ² = Σ(x − μ)² / M with sums and M over every process's batch.
///   Backward: dγ, dβ from this process's values (the gradient average across processes adds
///   them up); dx = γ/(M·σ)·(M·g − Σg − x̂·Σg·x̂) with Σg, Σg·x̂ summed across processes.
func synchronizedBatchNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float, fusedReLU: Bool,
                           sum: @escaping (UnsafeMutableBufferPointer<Double>) -> Void)
    -> (output: Tensor, mean: Tensor, variance: Tensor) {
    let (n, c) = (x.shape[0], x.shape[1])
    let hw = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
    let kernels = x.backend
    // Σx per channel and the value count, summed across processes.
    var totals = kernels.channelSums(x, center: nil) + [Double(n * hw)]
    totals.withUnsafeMutableBufferPointer { sum($0) }
    let count = totals[c]
    let mean = Tensor(shape: [c], scalars: (0..<c).map { Float(totals[$0] / count) })
    var squares = kernels.channelSums(x, center: mean)
    squares.withUnsafeMutableBufferPointer { sum($0) }
    let variance = Tensor(shape: [c], scalars: squares.map { Float($0 / count) })
    // y = x·scale + shift, scale = γ/√(σ²+ε), shift = β − μ·scale
    let scale = (weight ?? Tensor.ones([c])).detached / sqrt(variance + epsilon)
    let shift = (bias ?? Tensor.zeros([c])).detached - mean * scale
    let y = kernels.channelAffine(x, scale: scale, shift: shift, relu: fusedReLU)
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    let out = y.recorded(fusedReLU ? "syncBatchNormReLU" : "syncBatchNorm", inputs) { g in
        let (sumG, sumGX) = kernels.batchNormGradientSums(g, input: x, output: fusedReLU ? y : nil, mean: mean)
        // This process's dγ and dβ; the global sums for dx.
        let gBeta = sumG.detached, gGamma = sumGX / sqrt(variance + epsilon)
        var global = (sumG.scalars + sumGX.scalars).map(Double.init)
        global.withUnsafeMutableBufferPointer { sum($0) }
        let globalG = Tensor(shape: [c], scalars: global[0..<c].map(Float.init))
        let globalGX = Tensor(shape: [c], scalars: global[c...].map(Float.init))
        let gx = kernels.batchNormGradientApply(g, input: x, output: fusedReLU ? y : nil, mean: mean, variance: variance,
                                                weight: weight, sumG: globalG, sumGX: globalGX, count: Float(count),
                                                epsilon: epsilon)
        var grads: [Tensor?] = [gx]
        if weight != nil { grads.append(gGamma) }
        if bias != nil { grads.append(gBeta) }
        return grads
    }
    return (out, mean, variance)
}

/// Batch normalization with fixed statistics (evaluation mode), optionally through ReLU.
///   x: [N, C, H, W] or [N, C] → same shape. Differentiable in x, weight and bias (the
///   statistics are constants), composed from broadcasting ops when gradients are recorded;
///   without a tape (inference) it is one fused pass.
public func batchNormInference(_ x: Tensor, mean: Tensor, variance: Tensor, weight: Tensor?, bias: Tensor?,
                               epsilon: Float = 1e-5, fusedReLU: Bool = false) -> Tensor {
    precondition(x.rank == 4 || x.rank == 2, "batchNorm: input must be [N, C, H, W] or [N, C], got \(x.shape)")
    let c = x.shape[1]
    precondition(mean.shape == [c] && variance.shape == [c],
                 "batchNorm: running statistics \(mean.shape)/\(variance.shape) do not match \(c) channels")
    let tracked = [x, weight, bias].contains { $0?.requiresGradient == true } && GradientRecording.isEnabled
    if !tracked {
        // One fused pass: y = x·scale + shift, scale = γ/√(σ²+ε), shift = β − μ·scale
        let (m, v, gammas, betas) = (mean.scalars, variance.scalars, weight?.scalars, bias?.scalars)
        let scale = (0..<c).map { (gammas?[$0] ?? 1) / (v[$0] + epsilon).squareRoot() }
        let shift = (0..<c).map { (betas?[$0] ?? 0) - m[$0] * scale[$0] }
        return x.backend.channelAffine(x, scale: Tensor(shape: [c], scalars: scale), shift: Tensor(shape: [c], scalars: shift),
                                       relu: fusedReLU)
    }
    let bshape = x.rank == 4 ? [1, c, 1, 1] : [1, c]
    var y = (x - mean.detached.reshaped(to: bshape)) / sqrt(variance.detached + epsilon).reshaped(to: bshape)
    if let weight { y = y * weight.reshaped(to: bshape) }
    if let bias { y = y + bias.reshaped(to: bshape) }
    return fusedReLU ? relu(y) : y
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
    let kernels = x.backend
    let (y, scale) = kernels.localResponseNorm(x, radius: depthRadius, bias: bias, alpha: alpha, beta: beta)
    return y.recorded("localResponseNorm", x) { g in
        kernels.localResponseNormGradient(g, input: x, output: y, scale: scale, radius: depthRadius, alpha: alpha, beta: beta)
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
