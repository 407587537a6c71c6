import CSproutKernels
import Foundation

/// Every `SPROUT_*` environment variable, read in this one place and handed to the kernels
/// (C included) when the first tensor is made. `sprout info` prints the effective values.
public struct RuntimeSettings: Sendable, Equatable {
    public enum Loops: String, Sendable { case best, generic }
    public enum GEMM: String, Sendable { case onednn, openblas }
    public enum Pool: String, Sendable { case openmp, dispatch }
    public enum Winograd: String, Sendable, Codable, CaseIterable { case auto, on, off }
    public enum Inference: String, Sendable { case graph, layers }

    /// SPROUT_NUM_THREADS: threads for Sprout's loops, BLAS and oneDNN (nil: the available cores).
    public var threads: Int?
    /// SPROUT_SIMD=generic: the baseline (SSE2) build of Sprout's loops instead of AVX2+FMA.
    public var loops: Loops = .best
    /// SPROUT_GEMM=openblas: matrix products on OpenBLAS instead of oneDNN.
    public var gemm: GEMM = .onednn
    /// SPROUT_POOL=dispatch: Sprout's loops on libdispatch instead of OpenMP's pool.
    public var pool: Pool = .openmp
    /// SPROUT_DNNL=0: no oneDNN at all (the portable im2col + BLAS path runs).
    public var oneDNN = true
    /// SPROUT_CONV_AUTOTUNE=1: time both convolution kernels per shape instead of the fixed rule.
    public var convolutionAutotune = false
    /// SPROUT_WINOGRAD=on|off: Sprout's Winograd F(4x4, 3x3) kernels for every stride-1 3x3
    /// convolution they support, or for none (default auto: where `WinogradRule` measured them faster).
    public var winograd: Winograd = .auto
    /// SPROUT_INFERENCE=layers: predict, serve, eval and bench run a model layer by layer (the
    /// training graph) instead of as a compiled oneDNN inference graph (`InferenceGraph`).
    public var inference: Inference = .graph
    /// SPROUT_BUFFER_CACHE_MB: bound on the buffer reuse cache (default: the peak of tensor
    /// memory held, at least 1 GiB, at most half the machine's memory).
    public var bufferCacheMegabytes: Int?
    /// SPROUT_MAX_MEMORY: cap on tensor memory, as the CLI's --max-memory (e.g. "2G").
    public var maxMemory: String?

    public init() {}

    /// The settings an environment asks for; unknown values keep the defaults.
    public init(environment: [String: String]) {
        if let v = environment["SPROUT_NUM_THREADS"].flatMap(Int.init), v > 0 { threads = v }
        if let v = environment["SPROUT_SIMD"], ["generic", "sse2", "0", "off"].contains(v) { loops = .generic }
        if environment["SPROUT_GEMM"] == "openblas" { gemm = .openblas }
        if environment["SPROUT_POOL"] == "dispatch" { pool = .dispatch }
        if environment["SPROUT_DNNL"] == "0" { oneDNN = false }
        if environment["SPROUT_CONV_AUTOTUNE"] == "1" { convolutionAutotune = true }
        switch environment["SPROUT_WINOGRAD"] {
        case "1", "on": winograd = .on
        case "0", "off": winograd = .off
        default: break
        }
        if environment["SPROUT_INFERENCE"] == "layers" { inference = .layers }
        if let v = environment["SPROUT_BUFFER_CACHE_MB"].flatMap(Int.init), v >= 0 { bufferCacheMegabytes = v }
        maxMemory = environment["SPROUT_MAX_MEMORY"]
    }

    /// This process's settings, from its environment at start-up.
    public static let current = RuntimeSettings(environment: ProcessInfo.processInfo.environment)

    /// Hands the settings to the C kernels, once, before any of them runs.
    static let applied: Void = {
        let s = current
        sprout_simd_configure(s.loops == .generic ? 1 : 0)
        sprout_dnnl_configure(s.oneDNN ? 1 : 0, s.convolutionAutotune ? 1 : 0)
        sprout_infer_configure(s.winograd == .off ? 0 : 1)
    }()

    /// (variable, effective value, where it came from) for `sprout info`.
    public var described: [(variable: String, value: String)] {
        [("SPROUT_NUM_THREADS", threads.map(String.init) ?? "unset (available cores)"),
         ("SPROUT_SIMD", loops == .generic ? "generic" : "unset (best the CPU has)"),
         ("SPROUT_GEMM", gemm.rawValue),
         ("SPROUT_POOL", pool.rawValue),
         ("SPROUT_DNNL", oneDNN ? "1" : "0"),
         ("SPROUT_CONV_AUTOTUNE", convolutionAutotune ? "1" : "0"),
         ("SPROUT_WINOGRAD", winograd.rawValue),
         ("SPROUT_INFERENCE", inference.rawValue),
         ("SPROUT_BUFFER_CACHE_MB", bufferCacheMegabytes.map(String.init) ?? "adaptive"),
         ("SPROUT_MAX_MEMORY", maxMemory ?? "unset (no cap)")]
    }
}
