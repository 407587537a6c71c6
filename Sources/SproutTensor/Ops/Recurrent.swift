/// Recurrences over a whole sequence as one op each, so that the backward can batch what
/// PyTorch's cuDNN path batches: the input projections are one GEMM before the op (the
/// caller's `matmul`), and the recurrent weight's gradient is one GEMM over all time steps
/// after the backward loop. Per step there is one [N, H]·[H, G·H] GEMM and one point-wise
/// cell (`Backend.lstmCell` / `gruCell`) each way.
///
/// Variable lengths: `lengths[n]` valid steps for sample n (nil: all T). Past its length a
/// sample's state is carried unchanged and its output is 0 — what PyTorch's packed
/// sequences give, also for `reverse`: running from T−1 down, a sample's padding comes first
/// and leaves the initial state untouched until its last valid step.

/// Which steps of each sample count at step t (nil when all of them do).
private func keepMask(_ lengths: [Int]?, step t: Int) -> [Float]? {
    guard let lengths else { return nil }
    return lengths.map { t < $0 ? 1 : 0 }
}

private func checkLengths(_ lengths: [Int]?, steps: Int, batch: Int, op: String) {
    guard let lengths else { return }
    precondition(lengths.count == batch, "\(op): \(lengths.count) lengths for a batch of \(batch)")
    for (i, l) in lengths.enumerated() {
        precondition((0...steps).contains(l), "\(op): length \(l) of sample \(i) is outside 0...\(steps)")
    }
}

/// An LSTM layer's recurrence (one direction), PyTorch's gate order i, f, g, o.
///   projections: [T, N, 4H] = x·W_ihᵀ + b_ih + b_hh     weightHH: [4H, H]
///   initialHidden, initialCell: [N, H]
///   → output [T, N, H] (0 past each length), hidden and cell [N, H] after each sample's last step
public func lstmRecurrence(projections xp: Tensor, weightHH w: Tensor, initialHidden h0: Tensor, initialCell c0: Tensor,
                           lengths: [Int]? = nil, reverse: Bool = false) -> (output: Tensor, hidden: Tensor, cell: Tensor) {
    precondition(xp.rank == 3 && xp.shape[2] % 4 == 0, "lstm: projections must be [T, N, 4H], got \(xp.shape)")
    let (steps, n, hs) = (xp.shape[0], xp.shape[1], xp.shape[2] / 4)
    precondition(w.shape == [4 * hs, hs], "lstm: weight_hh must be [\(4 * hs), \(hs)], got \(w.shape)")
    precondition(h0.shape == [n, hs] && c0.shape == [n, hs], "lstm: initial state must be [\(n), \(hs)], got \(h0.shape) and \(c0.shape)")
    precondition(steps > 0, "lstm: empty sequence")
    checkLengths(lengths, steps: steps, batch: n, op: "lstm")
    let b = backend("lstm", xp, w)
    let order = reverse ? Array((0..<steps).reversed()) : Array(0..<steps)
    let inputs = (0..<steps).map { b.slice(xp.detached, axis: 0, range: $0..<($0 + 1)).reshaped(to: [n, 4 * hs]) }
    var h = h0.detached, c = c0.detached
    // Per step, in processing order: the state going in and what the backward needs.
    var hPrev: [Tensor] = [], cPrev: [Tensor] = [], activations: [Tensor] = [], candidates: [Tensor] = []
    var outputs = [Tensor?](repeating: nil, count: steps)
    for t in order {
        let hg = b.matmul(h, w.detached, transposeA: false, transposeB: true)
        let step = b.lstmCell(xg: inputs[t], hg: hg, cell: c, hidden: h, keep: keepMask(lengths, step: t))
        hPrev.append(h); cPrev.append(c); activations.append(step.activations); candidates.append(step.cellCandidate)
        outputs[t] = step.output.reshaped(to: [1, n, hs])
        (h, c) = (step.hidden, step.cell)
    }
    let output = b.concatenate(outputs.map { $0! }, axis: 0)
    let results = Tensor.recordedOutputs("lstm", [xp, w, h0, c0], [output, h, c]) { grads in
        let wd = w.detached
        var dh = grads[1] ?? b.filled(shape: [n, hs], value: 0)
        var dc = grads[2] ?? b.filled(shape: [n, hs], value: 0)
        var dGates = [Tensor?](repeating: nil, count: steps)
        var dGatesInOrder: [Tensor] = []
        for (k, t) in order.enumerated().reversed() {
            let dy = grads[0].map { b.slice($0, axis: 0, range: t..<(t + 1)).reshaped(to: [n, hs]) }
            let step = b.lstmCellGradient(output: dy, hidden: dh, cell: dc, activations: activations[k],
                                          cellCandidate: candidates[k], previousCell: cPrev[k], keep: keepMask(lengths, step: t))
            dh = b.binary(.add, step.hidden, b.matmul(step.gates, wd, transposeA: false, transposeB: false), shape: [n, hs])
            dc = step.cell
            dGates[t] = step.gates.reshaped(to: [1, n, 4 * hs])
            dGatesInOrder.append(step.gates)
        }
        // dW_hh = Σ_t dgates_tᵀ · h_{t-1}: one GEMM over [T·N] rows.
        let dW = b.matmul(b.concatenate(dGatesInOrder.reversed(), axis: 0), b.concatenate(hPrev, axis: 0),
                          transposeA: true, transposeB: false)
        return [.dense(b.concatenate(dGates.map { $0! }, axis: 0)), .dense(dW), .dense(dh), .dense(dc)]
    }
    return (results[0], results[1], results[2])
}

/// A GRU layer's recurrence (one direction), PyTorch's gate order r, z, n with the reset
/// gate applied after the recurrent product: n = tanh(x_n + r ⊙ (W_hn·h + b_hn)).
///   projections: [T, N, 3H] = x·W_ihᵀ + b_ih     weightHH: [3H, H]   biasHH: [3H]
///   initialHidden: [N, H] → output [T, N, H], hidden [N, H]
public func gruRecurrence(projections xp: Tensor, weightHH w: Tensor, biasHH bias: Tensor, initialHidden h0: Tensor,
                          lengths: [Int]? = nil, reverse: Bool = false) -> (output: Tensor, hidden: Tensor) {
    precondition(xp.rank == 3 && xp.shape[2] % 3 == 0, "gru: projections must be [T, N, 3H], got \(xp.shape)")
    let (steps, n, hs) = (xp.shape[0], xp.shape[1], xp.shape[2] / 3)
    precondition(w.shape == [3 * hs, hs], "gru: weight_hh must be [\(3 * hs), \(hs)], got \(w.shape)")
    precondition(bias.shape == [3 * hs], "gru: bias_hh must be [\(3 * hs)], got \(bias.shape)")
    precondition(h0.shape == [n, hs], "gru: initial state must be [\(n), \(hs)], got \(h0.shape)")
    precondition(steps > 0, "gru: empty sequence")
    checkLengths(lengths, steps: steps, batch: n, op: "gru")
    let b = backend("gru", xp, w)
    let order = reverse ? Array((0..<steps).reversed()) : Array(0..<steps)
    let inputs = (0..<steps).map { b.slice(xp.detached, axis: 0, range: $0..<($0 + 1)).reshaped(to: [n, 3 * hs]) }
    let biasRow = bias.detached.reshaped(to: [1, 3 * hs])
    var h = h0.detached
    var hPrev: [Tensor] = [], activations: [Tensor] = []
    var outputs = [Tensor?](repeating: nil, count: steps)
    for t in order {
        let hg = b.binary(.add, b.matmul(h, w.detached, transposeA: false, transposeB: true), biasRow, shape: [n, 3 * hs])
        let step = b.gruCell(xg: inputs[t], hg: hg, hidden: h, keep: keepMask(lengths, step: t))
        hPrev.append(h); activations.append(step.activations)
        outputs[t] = step.output.reshaped(to: [1, n, hs])
        h = step.hidden
    }
    let output = b.concatenate(outputs.map { $0! }, axis: 0)
    let results = Tensor.recordedOutputs("gru", [xp, w, bias, h0], [output, h]) { grads in
        let wd = w.detached
        var dh = grads[1] ?? b.filled(shape: [n, hs], value: 0)
        var dInputs = [Tensor?](repeating: nil, count: steps)
        var dRecurrentInOrder: [Tensor] = []
        for (k, t) in order.enumerated().reversed() {
            let dy = grads[0].map { b.slice($0, axis: 0, range: t..<(t + 1)).reshaped(to: [n, hs]) }
            let step = b.gruCellGradient(output: dy, hidden: dh, activations: activations[k], previousHidden: hPrev[k],
                                         keep: keepMask(lengths, step: t))
            dh = b.binary(.add, step.hidden, b.matmul(step.recurrent, wd, transposeA: false, transposeB: false), shape: [n, hs])
            dInputs[t] = step.input.reshaped(to: [1, n, 3 * hs])
            dRecurrentInOrder.append(step.recurrent)
        }
        let dRecurrent = b.concatenate(dRecurrentInOrder.reversed(), axis: 0)
        let dW = b.matmul(dRecurrent, b.concatenate(hPrev, axis: 0), transposeA: true, transposeB: false)
        let dBias = b.reduce(.sum, dRecurrent, axes: [0]).reshaped(to: [3 * hs])
        return [.dense(b.concatenate(dInputs.map { $0! }, axis: 0)), .dense(dW), .dense(dBias), .dense(dh)]
    }
    return (results[0], results[1])
}

/// How a per-sample loss becomes the returned value (PyTorch's `reduction`).
public enum LossReduction: String, Sendable, Codable {
    /// CTC: each sample's loss divided by its target length (at least 1), then the batch mean.
    case mean
    case sum
    /// One loss per sample, [N].
    case none
}

/// Connectionist temporal classification loss (PyTorch's `ctc_loss`).
///   logProbabilities: [T, N, C] (log-softmax over C; class `blank` is the blank)
///   targets: N label sequences (each label in 0..<C, not blank), inputLengths: N values ≤ T
///   → [] (mean, sum) or [N] (none)
/// `zeroInfinity`: a sample no alignment fits (a target too long for its input) counts 0 with
/// a zero gradient instead of +∞.
public func ctcLoss(logProbabilities lp: Tensor, targets: [[Int]], inputLengths: [Int]? = nil, blank: Int = 0,
                    reduction: LossReduction = .mean, zeroInfinity: Bool = false) -> Tensor {
    precondition(lp.rank == 3, "ctcLoss: log-probabilities must be [T, N, C], got \(lp.shape)")
    let (steps, n, classes) = (lp.shape[0], lp.shape[1], lp.shape[2])
    precondition((0..<classes).contains(blank), "ctcLoss: blank \(blank) is not a class of 0..<\(classes)")
    precondition(targets.count == n, "ctcLoss: \(targets.count) targets for a batch of \(n)")
    let lengths = inputLengths ?? Array(repeating: steps, count: n)
    checkLengths(lengths, steps: steps, batch: n, op: "ctcLoss")
    for (i, target) in targets.enumerated() {
        for label in target {
            precondition((0..<classes).contains(label) && label != blank,
                         "ctcLoss: target \(i) has label \(label); labels must be in 0..<\(classes) and not the blank \(blank)")
        }
    }
    let b = lp.backend
    let (losses, gradient) = b.ctcLoss(lp.detached, targets: targets, inputLengths: lengths, blank: blank)
    // Each sample's weight in the returned value; an infinite sample with zeroInfinity counts 0.
    let infinite = losses.map { !$0.isFinite }
    let kept = zip(losses, infinite).map { loss, inf in inf && zeroInfinity ? 0 : loss }
    let weights: [Float]
    switch reduction {
    case .mean: weights = targets.map { 1 / Float(max($0.count, 1) * n) }
    case .sum, .none: weights = Array(repeating: 1, count: n)
    }
    let value: Tensor
    switch reduction {
    case .none: value = Tensor(shape: [n], scalars: kept.map(Float.init))
    case .mean, .sum: value = Tensor(shape: [], scalars: [Float(zip(kept, weights).map { $0 * Double($1) }.reduce(0, +))])
    }
    let gradientWeights = zip(weights, infinite).map { w, inf in inf && zeroInfinity ? 0 : w }
    return Device.with(lp.device) { value }.recorded("ctcLoss", lp) { g in
        // g: [] or [N]; the gradient of sample i scales by its weight and g (or g[i]).
        let upstream = g.scalars
        let scale = (0..<n).map { i in gradientWeights[i] * (reduction == .none ? upstream[i] : upstream[0]) }
        return gradient * Device.with(lp.device) { Tensor(shape: [1, n, 1], scalars: scale) }
    }
}
