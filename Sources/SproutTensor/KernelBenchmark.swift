import CBLAS
import CSproutKernels

/// The three passes of one convolution on the CPU backend, on inputs made once, so
/// `sprout bench ops` times the kernels (outputs come from the buffer cache: no page faults).
public final class ConvolutionPasses {
    public let name: String
    let shape: ConvolutionShape
    let x, w, b, dy: Tensor
    let kernels = CPUBackend.shared

    /// FLOPs of one pass, counted as direct convolution (2 per multiply-add).
    public var flops: Double {
        2 * Double(shape.n) * Double(shape.k) * Double(shape.oh) * Double(shape.ow)
            * Double(shape.c / shape.groups) * Double(shape.r) * Double(shape.s)
    }

    public init(name: String, batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
                kernel: Int, stride: Int = 1, padding: Padding = .same, groups: Int = 1, seed: UInt64 = 1) {
        self.name = name
        var g = SeededGenerator(seed: seed)
        x = Tensor.normal([batch, inChannels, height, width], generator: &g)
        w = Tensor.normal([outChannels, inChannels / groups, kernel, kernel], std: 0.05, generator: &g)
        b = Tensor.normal([outChannels], generator: &g)
        shape = convolutionShape(x, w, b, stride: (stride, stride), padding: padding, groups: groups)
        dy = Tensor.normal([batch, outChannels, shape.oh, shape.ow], generator: &g)
    }

    public func forward() { _ = kernels.convolution(x, weight: w, bias: b, shape: shape) }
    public func backwardData() { _ = kernels.convolutionGradientData(dy, weight: w, shape: shape) }
    public func backwardWeights() { _ = kernels.convolutionGradientWeights(x, dy, shape: shape) }

    /// For each pass, max |result − direct| / max |direct|, where direct is the portable
    /// im2col + GEMM path: how far the chosen kernel (Winograd's transforms, above all) is
    /// from a plain convolution of the same numbers.
    public func relativeErrors() -> [Double] {
        let p = CPUBackend.problem(shape)
        var pd = p
        pd.has_bias = 0
        let y = Tensor(uninitializedShape: [shape.n, shape.k, shape.oh, shape.ow])
        let dx = Tensor(uninitializedShape: x.shape), dw = Tensor(uninitializedShape: w.shape)
        let db = Tensor(uninitializedShape: b.shape)
        Im2col(p).forward(x: x.storage.pointer, w: w.storage.pointer, b: b.storage.pointer, y: y.storage.pointer)
        Im2col(pd).backwardData(dy: dy.storage.pointer, w: w.storage.pointer, dx: dx.storage.pointer)
        Im2col(p).backwardWeights(x: x.storage.pointer, dy: dy.storage.pointer, dw: dw.storage.pointer, db: db.storage.pointer)
        let fast = [kernels.convolution(x, weight: w, bias: b, shape: shape),
                    kernels.convolutionGradientData(dy, weight: w, shape: shape),
                    kernels.convolutionGradientWeights(x, dy, shape: shape).weight]
        return zip(fast, [y, dx, dw]).map { a, r in
            var diff: Float = 0, scale: Float = 0
            a.withData { av in
                r.withData { rv in
                    for i in 0..<rv.count {
                        diff = max(diff, abs(av[i] - rv[i]))
                        scale = max(scale, abs(rv[i]))
                    }
                }
            }
            return Double(diff / max(scale, .leastNormalMagnitude))
        }
    }

    /// Implementation names for the three passes.
    public var implementations: [String] {
        convolutionImplementation(inputShape: x.shape, weightShape: w.shape, stride: (shape.strideH, shape.strideW),
                                  padding: .explicit(top: shape.padTop, left: shape.padLeft,
                                                     bottom: shape.padBottom, right: shape.padRight),
                                  groups: shape.groups)
    }
}

/// C = A·B for n×n matrices with the linked BLAS; returns seconds per call (median).
public func timeSgemm(size n: Int, repetitions: Int) -> Double {
    let a = Tensor(shape: [n, n], repeating: 0.5), b = Tensor(shape: [n, n], repeating: 0.25)
    let c = Tensor(uninitializedShape: [n, n])
    return medianSeconds(repetitions: repetitions) {
        sgemmBatched(batch: 1, m: n, n: n, k: n, a: a.storage.pointer, strideA: 0, transposeA: false,
                     b: b.storage.pointer, strideB: 0, transposeB: false, c: c.storage.pointer)
    }
}

/// Runs `body` once to warm up, then `repetitions` times; the median wall time in seconds.
public func medianSeconds(repetitions: Int, _ body: () -> Void) -> Double {
    body()
    let clock = ContinuousClock()
    var times: [Double] = []
    for _ in 0..<max(1, repetitions) {
        let d = clock.measure(body)
        times.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
    }
    times.sort()
    return times[times.count / 2]
}
