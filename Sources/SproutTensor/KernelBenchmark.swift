import CBLAS
import CSproutKernels

/// Direct access to the three passes of one convolution, on buffers allocated once, so
/// `sprout bench ops` times the kernels and nothing else.
public final class ConvolutionPasses {
    public let name: String
    let problem: sprout_conv_problem
    let x, w, b, y, dy, dx, dw, db: Tensor

    /// FLOPs of one pass, counted as direct convolution (2 per multiply-add).
    public var flops: Double {
        2 * Double(problem.n) * Double(problem.k) * Double(problem.oh) * Double(problem.ow)
            * Double(problem.c / problem.groups) * Double(problem.r) * Double(problem.s)
    }

    public init(name: String, batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
                kernel: Int, stride: Int = 1, padding: Padding = .same, groups: Int = 1, seed: UInt64 = 1) {
        self.name = name
        var g = SeededGenerator(seed: seed)
        x = Tensor.normal([batch, inChannels, height, width], generator: &g)
        w = Tensor.normal([outChannels, inChannels / groups, kernel, kernel], std: 0.05, generator: &g)
        b = Tensor.normal([outChannels], generator: &g)
        problem = convProblem(x, w, b, stride: (stride, stride), padding: padding, groups: groups)
        let outShape = [batch, outChannels, Int(problem.oh), Int(problem.ow)]
        y = Tensor(uninitializedShape: outShape)
        dy = Tensor.normal(outShape, generator: &g)
        dx = Tensor(uninitializedShape: x.shape)
        dw = Tensor(uninitializedShape: w.shape)
        db = Tensor(uninitializedShape: b.shape)
    }

    public func forward() { convForward(problem, x, w, b, y) }
    public func backwardData() { convBackwardData(problem, dy, w, dx) }
    public func backwardWeights() { convBackwardWeights(problem, x, dy, dw, db) }

    /// Implementation names for the three passes.
    public var implementations: [String] {
        convolutionImplementation(inputShape: x.shape, weightShape: w.shape,
                                  stride: (Int(problem.stride_h), Int(problem.stride_w)),
                                  padding: .explicit(top: Int(problem.pad_top), left: Int(problem.pad_left),
                                                     bottom: Int(problem.pad_bottom), right: Int(problem.pad_right)),
                                  groups: Int(problem.groups))
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
