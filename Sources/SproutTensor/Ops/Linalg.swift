
/// Matrix product of the last two axes, batched over a leading axis.
///   a: [M, K] or [B, M, K]  (or [.., K, M] with transposeA)
///   b: [K, N] or [B, K, N]  (or [.., N, K] with transposeB)
///   → [M, N] or [B, M, N]
/// A 3-D `a` with a 2-D `b` applies `b` to every batch entry (its gradient is summed).
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    precondition((2...3).contains(a.rank) && (2...3).contains(b.rank),
                 "matmul: expects 2-D or 3-D operands, got \(a.shape) and \(b.shape)")
    precondition(!(a.rank == 2 && b.rank == 3), "matmul: a 2-D left operand \(a.shape) with a 3-D right \(b.shape) is not supported; broadcast it first")
    if a.rank == 3 && b.rank == 2 {
        // One B for every batch entry: fold the batch into rows (one large GEMM), or
        // broadcast B when A is read transposed.
        if !transposeA {
            let folded = matmul(a.reshaped(to: [a.shape[0] * a.shape[1], a.shape[2]]), b, transposeB: transposeB)
            return folded.reshaped(to: [a.shape[0], a.shape[1], folded.shape[1]])
        }
        return matmul(a, b.broadcast(to: [a.shape[0]] + b.shape), transposeA: true, transposeB: transposeB)
    }
    let batch = a.rank == 3 ? a.shape[0] : 1
    if b.rank == 3 {
        precondition(b.shape[0] == batch, "matmul: batch sizes differ: \(a.shape) and \(b.shape)")
    }
    let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
    let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
    let (m, k) = transposeA ? (ac, ar) : (ar, ac)
    let (k2, n) = transposeB ? (bc, br) : (br, bc)
    precondition(k == k2, "matmul: inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "") (\(k) vs \(k2))")
    _ = (m, n)
    let out = backend("matmul", a, b).matmul(a, b, transposeA: transposeA, transposeB: transposeB)
    return out.recorded("matmul", [a, b]) { g in
        let ad = a.detached, bd = b.detached
        // C = op(A)·op(B):  d op(A) = dC·op(B)ᵀ,  d op(B) = op(A)ᵀ·dC, each laid out as stored.
        let ga = transposeA ? matmul(bd, g, transposeA: transposeB, transposeB: true)
                            : matmul(g, bd, transposeB: !transposeB)
        let gb = transposeB ? matmul(g, ad, transposeA: true, transposeB: transposeA)
                            : matmul(ad, g, transposeA: !transposeA)
        return [ga, gb]
    }
}
