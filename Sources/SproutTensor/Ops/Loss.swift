extension Tensor {
    /// Picks one element per row: out[i] = self[i, indices[i]].
    ///   self: [N, C], indices: N values in 0..<C → [N]; gradient scattered back.
    public func gathering(indices: [Int]) -> Tensor {
        precondition(rank == 2, "gather: expects [N, C], got \(shape)")
        let (n, c) = (shape[0], shape[1])
        precondition(indices.count == n, "gather: \(indices.count) indices for \(n) rows")
        for (i, k) in indices.enumerated() where k < 0 || k >= c {
            preconditionFailure("gather: index \(k) at row \(i) is outside 0..<\(c)")
        }
        return backend.gather(self, indices: indices).recorded("gather", self) { g in
            g.backend.scatter(g, indices: indices, columns: c)
        }
    }
}

/// Negative log-likelihood of `labels` under `logProbabilities` [N, C], averaged over
/// the batch (weighted mean when `classWeights` [C] is given, as PyTorch).
public func nllLoss(_ logProbabilities: Tensor, labels: [Int], classWeights: Tensor? = nil) -> Tensor {
    precondition(logProbabilities.rank == 2, "nllLoss: expects [N, C] log-probabilities, got \(logProbabilities.shape)")
    let picked = logProbabilities.gathering(indices: labels)
    guard let w = classWeights else { return -picked.mean() }
    precondition(w.shape == [logProbabilities.shape[1]], "nllLoss: class weights \(w.shape) do not match \(logProbabilities.shape[1]) classes")
    let wi = w.detached.reshaped(to: [1, w.count]).broadcast(to: logProbabilities.shape).gathering(indices: labels)
    return -(picked * wi).sum() / wi.sum()
}

/// Cross-entropy of integer `labels` against `logits` [N, C], mean over the batch.
/// With `labelSmoothing` ε the target is (1−ε)·onehot + ε/C; with `classWeights` each
/// term is weighted by its class and the mean is taken over the labels' weights
/// (PyTorch's `cross_entropy` semantics).
public func crossEntropy(logits: Tensor, labels: [Int], labelSmoothing: Float = 0, classWeights: Tensor? = nil) -> Tensor {
    precondition(logits.rank == 2, "crossEntropy: expects logits [N, C], got \(logits.shape)")
    precondition(labels.count == logits.shape[0], "crossEntropy: \(labels.count) labels for a batch of \(logits.shape[0])")
    precondition((0..<1).contains(labelSmoothing), "crossEntropy: label smoothing \(labelSmoothing) outside [0, 1)")
    let c = logits.shape[1]
    for (i, y) in labels.enumerated() where y < 0 || y >= c {
        preconditionFailure("crossEntropy: label \(y) at position \(i) is outside 0..<\(c)")
    }
    let logp = logSoftmax(logits, alongAxis: 1)
    let nll = nllLoss(logp, labels: labels, classWeights: classWeights)
    if labelSmoothing == 0 { return nll }
    let smooth: Tensor
    if let w = classWeights {
        let wl = w.detached.reshaped(to: [1, c]).broadcast(to: logits.shape).gathering(indices: labels)
        smooth = -(logp * w.detached.reshaped(to: [1, c])).sum() / wl.sum() / Float(c)
    } else {
        smooth = -logp.mean(alongAxes: [1]).mean()
    }
    return (1 - labelSmoothing) * nll + labelSmoothing * smooth
}

/// Mean squared error.
public func mseLoss(_ prediction: Tensor, _ target: Tensor) -> Tensor {
    precondition(prediction.shape == target.shape, "mseLoss: prediction \(prediction.shape) and target \(target.shape) differ")
    let d = prediction - target
    return (d * d).mean()
}
