#if canImport(Glibc)
import Glibc
#endif

/// The point-wise halves of the LSTM and GRU time steps and the CTC forward–backward, as
/// plain host loops: the reference backend's (the CPU backend runs the cells in C,
/// recurrent.c, and shares the CTC, whose cost is small beside the network's). The GEMMs of
/// a time step are separate `matmul` calls, so a device with its own memory replaces these
/// and keeps the recurrence in `Ops/Recurrent.swift` as it is.
enum SequenceKernels {
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

    /// One LSTM step (PyTorch's gate order i, f, g, o).
    ///   xg, hg: [N, 4H] (input and recurrent projections, biases in xg); c, h: [N, H]
    ///   keep: [N] (1 = step inside the sample's length, 0 = past it: state carried, output 0)
    ///   → hidden, cell (the state after the step), output (keep · candidate hidden),
    ///     activations [N, 4H] (i, f, g, o after their non-linearities), cellCandidate [N, H]
    static func lstmCell(xg: Tensor, hg: Tensor, cell c: Tensor, hidden h: Tensor, keep: [Float]?, device: Device)
        -> (hidden: Tensor, cell: Tensor, output: Tensor, activations: Tensor, cellCandidate: Tensor) {
        let (n, hs) = (c.shape[0], c.shape[1])
        let hOut = Tensor(uninitializedShape: [n, hs], on: device), cOut = Tensor(uninitializedShape: [n, hs], on: device)
        let yOut = Tensor(uninitializedShape: [n, hs], on: device), act = Tensor(uninitializedShape: [n, 4 * hs], on: device)
        let cand = Tensor(uninitializedShape: [n, hs], on: device)
        let (px, ph, pc, phPrev) = (xg.storage.pointer, hg.storage.pointer, c.storage.pointer, h.storage.pointer)
        let (ho, co, yo, ao, ca) = (hOut.storage.pointer, cOut.storage.pointer, yOut.storage.pointer, act.storage.pointer, cand.storage.pointer)
        for row in 0..<n {
            let m = keep?[row] ?? 1
            let g = row * 4 * hs, s = row * hs
            for j in 0..<hs {
                let i = sigmoid(px[g + j] + ph[g + j])
                let f = sigmoid(px[g + hs + j] + ph[g + hs + j])
                let gg = tanhf(px[g + 2 * hs + j] + ph[g + 2 * hs + j])
                let o = sigmoid(px[g + 3 * hs + j] + ph[g + 3 * hs + j])
                let cc = f * pc[s + j] + i * gg
                let hc = o * tanhf(cc)
                ao[g + j] = i; ao[g + hs + j] = f; ao[g + 2 * hs + j] = gg; ao[g + 3 * hs + j] = o
                ca[s + j] = cc
                co[s + j] = m * cc + (1 - m) * pc[s + j]
                ho[s + j] = m * hc + (1 - m) * phPrev[s + j]
                yo[s + j] = m * hc
            }
        }
        return (hOut, cOut, yOut, act, cand)
    }

    /// The LSTM step backward.
    ///   dy: the output's gradient, dh/dc: the state's (from the next step), [N, H]
    ///   → gates [N, 4H] (before the non-linearities: the gradient of both projections),
    ///     cell [N, H] (of the previous cell), hidden [N, H] (of the previous hidden, the part
    ///     that skips the recurrent GEMM; the caller adds gates·W_hh)
    static func lstmCellGradient(output dy: Tensor?, hidden dh: Tensor, cell dc: Tensor, activations act: Tensor,
                                 cellCandidate cand: Tensor, previousCell cPrev: Tensor, keep: [Float]?, device: Device)
        -> (gates: Tensor, cell: Tensor, hidden: Tensor) {
        let (n, hs) = (cPrev.shape[0], cPrev.shape[1])
        let dG = Tensor(uninitializedShape: [n, 4 * hs], on: device)
        let dcPrev = Tensor(uninitializedShape: [n, hs], on: device), dhPrev = Tensor(uninitializedShape: [n, hs], on: device)
        let (pdy, pdh, pdc, pa, pcand, pc) = (dy?.storage.pointer, dh.storage.pointer, dc.storage.pointer, act.storage.pointer,
                                              cand.storage.pointer, cPrev.storage.pointer)
        let (og, oc, oh) = (dG.storage.pointer, dcPrev.storage.pointer, dhPrev.storage.pointer)
        for row in 0..<n {
            let m = keep?[row] ?? 1
            let g = row * 4 * hs, s = row * hs
            for j in 0..<hs {
                let (i, f, gg, o) = (pa[g + j], pa[g + hs + j], pa[g + 2 * hs + j], pa[g + 3 * hs + j])
                let dhc = m * ((pdy?[s + j] ?? 0) + pdh[s + j])
                let tc = tanhf(pcand[s + j])
                let dcc = m * pdc[s + j] + dhc * o * (1 - tc * tc)
                og[g + j] = dcc * gg * i * (1 - i)
                og[g + hs + j] = dcc * pc[s + j] * f * (1 - f)
                og[g + 2 * hs + j] = dcc * i * (1 - gg * gg)
                og[g + 3 * hs + j] = dhc * tc * o * (1 - o)
                oc[s + j] = dcc * f + (1 - m) * pdc[s + j]
                oh[s + j] = (1 - m) * pdh[s + j]
            }
        }
        return (dG, dcPrev, dhPrev)
    }

    /// One GRU step (PyTorch's gate order r, z, n; n = tanh(x_n + r ⊙ (W_hn·h + b_hn))).
    ///   xg: [N, 3H] (x·W_ihᵀ + b_ih), hg: [N, 3H] (h·W_hhᵀ + b_hh), h: [N, H]
    ///   → hidden (state), output (keep · candidate), activations [N, 4H] (r, z, n, W_hn·h + b_hn)
    static func gruCell(xg: Tensor, hg: Tensor, hidden h: Tensor, keep: [Float]?, device: Device)
        -> (hidden: Tensor, output: Tensor, activations: Tensor) {
        let (n, hs) = (h.shape[0], h.shape[1])
        let hOut = Tensor(uninitializedShape: [n, hs], on: device), yOut = Tensor(uninitializedShape: [n, hs], on: device)
        let act = Tensor(uninitializedShape: [n, 4 * hs], on: device)
        let (px, ph, pPrev) = (xg.storage.pointer, hg.storage.pointer, h.storage.pointer)
        let (ho, yo, ao) = (hOut.storage.pointer, yOut.storage.pointer, act.storage.pointer)
        for row in 0..<n {
            let m = keep?[row] ?? 1
            let g = row * 3 * hs, a = row * 4 * hs, s = row * hs
            for j in 0..<hs {
                let r = sigmoid(px[g + j] + ph[g + j])
                let z = sigmoid(px[g + hs + j] + ph[g + hs + j])
                let hn = ph[g + 2 * hs + j]
                let nn = tanhf(px[g + 2 * hs + j] + r * hn)
                let hc = (1 - z) * nn + z * pPrev[s + j]
                ao[a + j] = r; ao[a + hs + j] = z; ao[a + 2 * hs + j] = nn; ao[a + 3 * hs + j] = hn
                ho[s + j] = m * hc + (1 - m) * pPrev[s + j]
                yo[s + j] = m * hc
            }
        }
        return (hOut, yOut, act)
    }

    /// The GRU step backward → input gates [N, 3H] (of xg), recurrent gates [N, 3H] (of hg),
    /// hidden [N, H] (of the previous hidden, without the path through hg).
    static func gruCellGradient(output dy: Tensor?, hidden dh: Tensor, activations act: Tensor, previousHidden hPrev: Tensor,
                                keep: [Float]?, device: Device) -> (input: Tensor, recurrent: Tensor, hidden: Tensor) {
        let (n, hs) = (hPrev.shape[0], hPrev.shape[1])
        let dx = Tensor(uninitializedShape: [n, 3 * hs], on: device), dhg = Tensor(uninitializedShape: [n, 3 * hs], on: device)
        let dhPrev = Tensor(uninitializedShape: [n, hs], on: device)
        let (pdy, pdh, pa, pPrev) = (dy?.storage.pointer, dh.storage.pointer, act.storage.pointer, hPrev.storage.pointer)
        let (ox, oh, op) = (dx.storage.pointer, dhg.storage.pointer, dhPrev.storage.pointer)
        for row in 0..<n {
            let m = keep?[row] ?? 1
            let g = row * 3 * hs, a = row * 4 * hs, s = row * hs
            for j in 0..<hs {
                let (r, z, nn, hn) = (pa[a + j], pa[a + hs + j], pa[a + 2 * hs + j], pa[a + 3 * hs + j])
                let dhc = m * ((pdy?[s + j] ?? 0) + pdh[s + j])
                let dnPre = dhc * (1 - z) * (1 - nn * nn)
                let dzPre = dhc * (pPrev[s + j] - nn) * z * (1 - z)
                let drPre = dnPre * hn * r * (1 - r)
                ox[g + j] = drPre; ox[g + hs + j] = dzPre; ox[g + 2 * hs + j] = dnPre
                oh[g + j] = drPre; oh[g + hs + j] = dzPre; oh[g + 2 * hs + j] = dnPre * r
                op[s + j] = (1 - m) * pdh[s + j] + dhc * z
            }
        }
        return (dx, dhg, dhPrev)
    }

    /// CTC for one sample by forward–backward over the blank-extended target, in log space
    /// (Graves et al. 2006, eqs. 6–16).
    ///   lp: log-probabilities at `lp + t·stride + c` for t < inputLength, c < classes
    ///   → the negative log-likelihood and, written to `grad` (same layout, every t < T
    ///     written), d nll / d lp — the true gradient (PyTorch's adds exp(lp), which a
    ///     preceding log-softmax cancels)
    static func ctc(lp: UnsafePointer<Float>, stride: Int, classes: Int, inputLength: Int, totalSteps: Int,
                    target: [Int], blank: Int, grad: UnsafeMutablePointer<Float>) -> Double {
        let labels = target.count, s = 2 * labels + 1, steps = inputLength
        for t in 0..<totalSteps { for c in 0..<classes { grad[t * stride + c] = 0 } }
        guard steps > 0 else { return labels == 0 ? 0 : .infinity }
        @inline(__always) func label(_ k: Int) -> Int { k % 2 == 0 ? blank : target[k / 2] }
        @inline(__always) func logAdd(_ a: Double, _ b: Double) -> Double {
            if a == -.infinity { return b }
            if b == -.infinity { return a }
            return max(a, b) + log1p(exp(-abs(a - b)))
        }
        // A skip from k-2 to k is allowed onto a label that differs from the one two back.
        let skip = (0..<s).map { k in k >= 2 && k % 2 == 1 && label(k) != label(k - 2) }
        var alpha = [Double](repeating: -.infinity, count: steps * s)
        var beta = [Double](repeating: -.infinity, count: steps * s)
        @inline(__always) func at(_ t: Int, _ c: Int) -> Double { Double(lp[t * stride + c]) }
        alpha[0] = at(0, blank)
        if s > 1 { alpha[1] = at(0, label(1)) }
        for t in 1..<max(steps, 1) {
            for k in 0..<s {
                var v = alpha[(t - 1) * s + k]
                if k >= 1 { v = logAdd(v, alpha[(t - 1) * s + k - 1]) }
                if skip[k] { v = logAdd(v, alpha[(t - 1) * s + k - 2]) }
                alpha[t * s + k] = v == -.infinity ? v : v + at(t, label(k))
            }
        }
        let last = (steps - 1) * s
        let logLikelihood = s > 1 ? logAdd(alpha[last + s - 1], alpha[last + s - 2]) : alpha[last]
        guard logLikelihood > -.infinity else { return .infinity }
        beta[last + s - 1] = at(steps - 1, blank)
        if s > 1 { beta[last + s - 2] = at(steps - 1, label(s - 2)) }
        for t in Swift.stride(from: steps - 2, through: 0, by: -1) {
            for k in 0..<s {
                var v = beta[(t + 1) * s + k]
                if k + 1 < s { v = logAdd(v, beta[(t + 1) * s + k + 1]) }
                if k + 2 < s && skip[k + 2] { v = logAdd(v, beta[(t + 1) * s + k + 2]) }
                beta[t * s + k] = v == -.infinity ? v : v + at(t, label(k))
            }
        }
        // d(-log p)/d lp[t, c] = -Σ_{k: l'_k = c} exp(α_t(k) + β_t(k) - lp[t, c] - log p).
        var byClass = [Double](repeating: -.infinity, count: classes)
        for t in 0..<steps {
            for c in 0..<classes { byClass[c] = -.infinity }
            for k in 0..<s { byClass[label(k)] = logAdd(byClass[label(k)], alpha[t * s + k] + beta[t * s + k]) }
            for c in 0..<classes where byClass[c] > -.infinity {
                grad[t * stride + c] = Float(-exp(byClass[c] - at(t, c) - logLikelihood))
            }
        }
        return -logLikelihood
    }
}

// The defaults: host loops (both backends keep tensors in host memory). The CPU backend
// overrides the cells with C; a device with its own memory overrides all of them.
extension Backend {
    public func lstmCell(xg: Tensor, hg: Tensor, cell: Tensor, hidden: Tensor, keep: [Float]?)
        -> (hidden: Tensor, cell: Tensor, output: Tensor, activations: Tensor, cellCandidate: Tensor) {
        SequenceKernels.lstmCell(xg: xg, hg: hg, cell: cell, hidden: hidden, keep: keep, device: device)
    }

    public func lstmCellGradient(output dy: Tensor?, hidden dh: Tensor, cell dc: Tensor, activations: Tensor,
                                 cellCandidate: Tensor, previousCell: Tensor, keep: [Float]?) -> (gates: Tensor, cell: Tensor, hidden: Tensor) {
        SequenceKernels.lstmCellGradient(output: dy, hidden: dh, cell: dc, activations: activations, cellCandidate: cellCandidate,
                                         previousCell: previousCell, keep: keep, device: device)
    }

    public func gruCell(xg: Tensor, hg: Tensor, hidden: Tensor, keep: [Float]?) -> (hidden: Tensor, output: Tensor, activations: Tensor) {
        SequenceKernels.gruCell(xg: xg, hg: hg, hidden: hidden, keep: keep, device: device)
    }

    public func gruCellGradient(output dy: Tensor?, hidden dh: Tensor, activations: Tensor, previousHidden: Tensor,
                                keep: [Float]?) -> (input: Tensor, recurrent: Tensor, hidden: Tensor) {
        SequenceKernels.gruCellGradient(output: dy, hidden: dh, activations: activations, previousHidden: previousHidden,
                                        keep: keep, device: device)
    }

    public func ctcLoss(_ logProbabilities: Tensor, targets: [[Int]], inputLengths: [Int], blank: Int) -> (losses: [Double], gradient: Tensor) {
        let (steps, n, classes) = (logProbabilities.shape[0], logProbabilities.shape[1], logProbabilities.shape[2])
        let gradient = Tensor(uninitializedShape: logProbabilities.shape, on: device)
        let (lp, g) = (logProbabilities.storage.pointer, gradient.storage.pointer)
        var losses = [Double](repeating: 0, count: n)
        losses.withUnsafeMutableBufferPointer { out in
            let out = out
            // Samples are independent and write disjoint columns of the gradient.
            parallelFor(n, grain: 1) { range in
                for i in range {
                    out[i] = SequenceKernels.ctc(lp: lp + i * classes, stride: n * classes, classes: classes,
                                                 inputLength: inputLengths[i], totalSteps: steps, target: targets[i],
                                                 blank: blank, grad: g + i * classes)
                }
            }
        }
        return (losses, gradient)
    }
}
