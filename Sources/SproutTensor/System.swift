import CBLAS
import CSproutKernels

/// What this process runs on: the facts `sprout info` prints.
public enum SystemInfo {
    public static var cpuFeatures: [String] {
        let f = sprout_cpu_features()
        var names: [String] = []
        if f & UInt32(SPROUT_CPU_SSE42) != 0 { names.append("SSE4.2") }
        if f & UInt32(SPROUT_CPU_AVX) != 0 { names.append("AVX") }
        if f & UInt32(SPROUT_CPU_AVX2) != 0 { names.append("AVX2") }
        if f & UInt32(SPROUT_CPU_FMA) != 0 { names.append("FMA") }
        if f & UInt32(SPROUT_CPU_AVX512F) != 0 { names.append("AVX-512F") }
        return names
    }

    public static var cpuName: String {
        var buffer = [CChar](repeating: 0, count: 64)
        sprout_cpu_brand(&buffer, 64)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// OpenBLAS's build string, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64".
    public static var blas: String {
        guard let config = openblas_get_config() else { return "unknown BLAS" }
        return String(cString: config).trimmingCharacters()
    }

    public static var oneDNNVersion: String? {
        let v = String(cString: sprout_dnnl_version())
        return v.isEmpty ? nil : v
    }

    public static var oneDNNEnabled: Bool {
        RuntimeSettings.applied
        return sprout_dnnl_enabled() != 0
    }

    /// The build of Sprout's element-wise, normalisation and pooling loops in use:
    /// "avx2+fma" or "generic (sse2)" (no AVX2/FMA on this CPU, or SPROUT_SIMD=generic).
    public static var simdLoops: String {
        RuntimeSettings.applied
        return String(cString: sprout_simd_name())
    }

    /// Where matrix products run: oneDNN's GEMM (on the shared OpenMP pool) or OpenBLAS
    /// (oneDNN missing, SPROUT_DNNL=0 or SPROUT_GEMM=openblas).
    public static var gemm: String { GEMMBackend.useDNNL ? "oneDNN sgemm" : "OpenBLAS sgemm" }

    /// The pool Sprout's own loops run on.
    public static var threadPool: String {
        Threading.usesOpenMPPool ? "OpenMP (shared with oneDNN)" : "libdispatch"
    }

    /// Line-buffers stdout, so progress lines reach pipes and logs as they are printed.
    public static func lineBufferStandardOutput() { sprout_line_buffer_stdout() }

    #if DEBUG
    public static let buildConfiguration = "debug"
    #else
    public static let buildConfiguration = "release"
    #endif
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        var s = Substring(self)
        while s.last?.isWhitespace == true { s = s.dropLast() }
        while s.first?.isWhitespace == true { s = s.dropFirst() }
        return String(s)
    }
}
