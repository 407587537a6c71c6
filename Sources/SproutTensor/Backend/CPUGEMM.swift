import CBLAS
import CSproutKernels
#if canImport(Glibc)
import Glibc
#endif

enum GEMMBackend {
    static let useDNNL: Bool = {
        RuntimeSettings.applied
        return sprout_dnnl_enabled() != 0 && RuntimeSettings.current.gemm == .onednn
    }()
}

/// C[b] = op(A[b]) · op(B[b]) for every batch entry; strides 0 reuse one matrix.
func sgemmBatched(batch: Int, m: Int, n: Int, k: Int,
                  a: UnsafePointer<Float>, strideA: Int, transposeA: Bool,
                  b: UnsafePointer<Float>, strideB: Int, transposeB: Bool,
                  c: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
    if GEMMBackend.useDNNL {
        var ok = true
        for i in 0..<batch where ok {
            ok = sprout_dnnl_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k,
                                   a + i * strideA, transposeA ? m : k, b + i * strideB, transposeB ? k : n,
                                   accumulate ? 1 : 0, c + i * m * n, n) == 0
        }
        if ok { return }
    }
    Threading.prepareBLAS(multiplyAdds: m * n * k)
    for i in 0..<batch {
        cblas_sgemm(CblasRowMajor,
                    transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1,
                    a + i * strideA, Int32(transposeA ? m : k),
                    b + i * strideB, Int32(transposeB ? k : n),
                    accumulate ? 1 : 0, c + i * m * n, Int32(n))
    }
}

