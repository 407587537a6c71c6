import CSproutKernels
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SproutTensor

/// The AVX2+FMA build of the C loops and the baseline build must agree: the baseline runs
/// on CPUs without AVX2 and under SPROUT_SIMD=generic, so it is checked here, not assumed.
@Suite struct SIMDLoopTests {
    let generic = sprout_simd_loops(0)!.pointee
    let vector = sprout_simd_loops(1)?.pointee

    func random(_ n: Int, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<n).map { _ in Float.random(in: -2...2, using: &g) }
    }

    /// Runs `body` with each available loop set and returns the outputs.
    func both(_ body: (sprout_simd_table) -> [Float]) -> [[Float]] {
        [generic, vector].compactMap { $0 }.map(body)
    }

    func expectClose(_ runs: [[Float]], tolerance: Float = 1e-5) {
        guard runs.count == 2 else { return }
        #expect(runs[0].count == runs[1].count)
        let worst = zip(runs[0], runs[1]).map { Swift.abs($0 - $1) / Swift.max(1, Swift.abs($0)) }.max() ?? 0
        #expect(worst <= tolerance, "generic and AVX2 loops differ by \(worst)")
    }

    @Test func activeLevelMatchesCPU() {
        let hasAVX2 = SystemInfo.cpuFeatures.contains("AVX2") && SystemInfo.cpuFeatures.contains("FMA")
        #expect((vector != nil) == hasAVX2)
        #expect(SystemInfo.simdLoops == (hasAVX2 ? "avx2+fma" : "generic (sse2)"))
    }

    @Test func elementwiseAgreeAndAreRight() {
        let n = 1003  // not a multiple of the vector width: the tails run too
        let a = random(n, seed: 1), b = random(n, seed: 2)
        for run in both({ t in
            var out = [Float](repeating: 0, count: n)
            t.relu_forward(a, &out, n)
            return out
        }) {
            #expect(run == a.map { Swift.max($0, 0) })
        }
        for run in both({ t in
            var out = [Float](repeating: 0, count: n)
            t.relu_backward(b, a, &out, n)
            return out
        }) {
            #expect(run == zip(b, a).map { $1 > 0 ? $0 : 0 })
        }
        // GELU against a Double reference: both builds within 3e-7·max(1, |x|).
        for run in both({ t in
            var out = [Float](repeating: 0, count: n)
            t.gelu_forward(a.map { $0 * 3 }, &out, n)
            return out
        }) {
            for i in 0..<n {
                let v = Double(a[i] * 3)
                #expect(Swift.abs(Double(run[i]) - v * 0.5 * (1 + erf(v / 2.0.squareRoot()))) <= 3e-7 * Swift.max(1, Swift.abs(v)))
            }
        }
        let sums = both { t in
            var out = [Float](repeating: 0, count: n)
            t.axpby(0.5, a, -2, b, &out, n)
            return out
        }
        for run in sums {
            for i in 0..<n { #expect(Swift.abs(run[i] - (0.5 * a[i] - 2 * b[i])) <= 1e-6) }
        }
    }

    @Test func batchNormForwardAndBackwardAgree() {
        let (n, c, hw) = (3, 5, 37)
        let x = random(n * c * hw, seed: 3), dy = random(n * c * hw, seed: 4), gamma = random(c, seed: 5), beta = random(c, seed: 6)
        for relu: Int32 in [0, 1] {
            let outs = both { t in
                var y = [Float](repeating: 0, count: x.count), mean = [Float](repeating: 0, count: c)
                var variance = [Float](repeating: 0, count: c)
                t.batchnorm_forward(x, &y, gamma, beta, &mean, &variance, Int32(n), Int32(c), hw, 0, Int32(c), 1e-5, relu)
                var dx = [Float](repeating: 0, count: x.count), dg = [Float](repeating: 0, count: c)
                var db = [Float](repeating: 0, count: c)
                t.batchnorm_backward(x, dy, relu == 1 ? y : nil, mean, variance, gamma, &dx, &dg, &db,
                                     Int32(n), Int32(c), hw, 0, Int32(c), 1e-5)
                return y + mean + variance + dx + dg + db
            }
            expectClose(outs, tolerance: 1e-4)
        }
    }

    @Test func poolingAgrees() {
        var geometry = sprout_pool_geometry(h: 11, w: 9, oh: 6, ow: 5, kh: 3, kw: 3, sh: 2, sw: 2, pt: 1, pl: 1)
        let planes = 4
        let x = random(planes * 11 * 9, seed: 7), dy = random(planes * 6 * 5, seed: 8)
        let outs = both { t in
            var y = [Float](repeating: 0, count: dy.count), arg = [Int32](repeating: 0, count: dy.count)
            var dx = [Float](repeating: 0, count: x.count), ay = y, adx = dx
            t.maxpool_forward(x, &y, &arg, &geometry, 0, planes)
            t.maxpool_backward(dy, arg, &dx, &geometry, 0, planes)
            t.avgpool_forward(x, &ay, &geometry, 0, 0, planes)
            t.avgpool_backward(dy, &adx, &geometry, 0, 0, planes)
            return y + dx + ay + adx
        }
        expectClose(outs)
    }
}
