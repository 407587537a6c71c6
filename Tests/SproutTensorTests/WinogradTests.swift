import CSproutKernels
import Testing
@testable import SproutTensor

/// Whether this CPU runs the Winograd kernels (AVX2 and FMA): asked with a shape they take.
let winogradRuns: Bool = {
    var q = CPUBackend.problem(convolutionShape(Tensor.zeros([1, 8, 8, 8]), Tensor.zeros([8, 8, 3, 3]), nil,
                                                stride: (1, 1), padding: .same, groups: 1))
    return sprout_winograd_supported(&q) == 1
}()

/// The three Winograd F(4x4, 3x3) passes of one problem, called directly (whatever the rule
/// would choose), next to the im2col + GEMM path as the direct-convolution reference.
struct WinogradCase {
    let x, w, dy: Tensor
    let b: Tensor?
    var p: sprout_conv_problem

    init(x: Tensor, w: Tensor, b: Tensor?, dy: Tensor? = nil, padding: Padding) {
        self.x = x
        self.w = w
        self.b = b
        p = CPUBackend.problem(convolutionShape(x, w, b, stride: (1, 1), padding: padding, groups: 1))
        self.dy = dy ?? randn([Int(p.n), Int(p.k), Int(p.oh), Int(p.ow)], seed: 99)
    }

    func winograd(threads: Int32 = 2) -> (y: Tensor, dx: Tensor, dw: Tensor, db: Tensor?) {
        var q = p
        let y = Tensor(uninitializedShape: [Int(p.n), Int(p.k), Int(p.oh), Int(p.ow)])
        let dx = Tensor(uninitializedShape: x.shape), dw = Tensor(uninitializedShape: w.shape)
        let db = b.map { Tensor(uninitializedShape: $0.shape) }
        #expect(sprout_winograd_forward(&q, x.storage.pointer, w.storage.pointer, b?.storage.pointer, y.storage.pointer, threads) == 0)
        #expect(sprout_winograd_backward_data(&q, dy.storage.pointer, w.storage.pointer, dx.storage.pointer, threads) == 0)
        #expect(sprout_winograd_backward_weights(&q, x.storage.pointer, dy.storage.pointer, dw.storage.pointer,
                                                 db?.storage.pointer, threads) == 0)
        return (y, dx, dw, db)
    }

    func direct() -> (y: Tensor, dx: Tensor, dw: Tensor, db: Tensor?) {
        let y = Tensor(uninitializedShape: [Int(p.n), Int(p.k), Int(p.oh), Int(p.ow)])
        let dx = Tensor(uninitializedShape: x.shape), dw = Tensor(uninitializedShape: w.shape)
        let db = b.map { Tensor(uninitializedShape: $0.shape) }
        let path = Im2col(p)
        path.forward(x: x.storage.pointer, w: w.storage.pointer, b: b?.storage.pointer, y: y.storage.pointer)
        path.backwardData(dy: dy.storage.pointer, w: w.storage.pointer, dx: dx.storage.pointer)
        path.backwardWeights(x: x.storage.pointer, dy: dy.storage.pointer, dw: dw.storage.pointer, db: db?.storage.pointer)
        return (y, dx, dw, db)
    }
}

/// max |a − b| / max |b|: Winograd's error is relative to the size of the result.
func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
    let x = a.scalars, y = b.scalars
    var diff: Float = 0, scale: Float = 0
    for i in x.indices {
        diff = max(diff, abs(x[i] - y[i]))
        scale = max(scale, abs(y[i]))
    }
    return diff / max(scale, .leastNormalMagnitude)
}

@Suite(.enabled(if: winogradRuns, "the Winograd kernels need AVX2 and FMA"))
struct WinogradTests {
    // Tolerances: F(4x4, 3x3) in float32 is accurate to ~1e-5 of the result's scale (measured:
    // 2-3e-6 on the fixtures, up to 1.3e-5 on the 256-channel layers); a wrong transform
    // entry or index is off by 1e-1 or more.
    @Test func matchesPyTorchFixtures() throws {
        var checked = 0
        for c in try loadFixtures("conv2d") where c.name.hasPrefix("conv_winograd") || c.name == "conv_valid" {
            let x = c.inputs["x"]!.tensor, w = c.inputs["weight"]!.tensor, b = c.inputs["bias"]?.tensor
            let pad: Padding
            if let s = c.params["padding"]?.string { pad = s == "same" ? .same : .valid } else {
                let v = c.params["padding"]!.ints!
                pad = .explicit(top: v[0], left: v[1], bottom: v[2], right: v[3])
            }
            let wc = WinogradCase(x: x, w: w, b: b, dy: c.dy.tensor, padding: pad)
            var q = wc.p
            #expect(sprout_winograd_supported(&q) == 1, "\(c.name)")
            let r = wc.winograd()
            #expect(relativeError(r.y, c.output.tensor) < 1e-5, "\(c.name) y: \(relativeError(r.y, c.output.tensor))")
            #expect(relativeError(r.dx, c.grads["x"]!.tensor) < 1e-5, "\(c.name) dx: \(relativeError(r.dx, c.grads["x"]!.tensor))")
            #expect(relativeError(r.dw, c.grads["weight"]!.tensor) < 1e-5, "\(c.name) dw: \(relativeError(r.dw, c.grads["weight"]!.tensor))")
            if let db = r.db { #expect(relativeError(db, c.grads["bias"]!.tensor) < 1e-6, "\(c.name) db") }
            checked += 1
        }
        #expect(checked == 4)
    }

    /// airbench-muon's layer shapes (a few images): full and partial tile blocks, both threads.
    @Test(arguments: [(24, 64, 31), (64, 64, 15), (64, 256, 15), (256, 256, 7), (256, 256, 3), (3, 64, 32), (64, 128, 32), (256, 512, 8), (512, 512, 4)])
    func matchesDirectConvolutionOnAirbenchShapes(shape: (Int, Int, Int)) {
        let (c, k, size) = shape
        let x = randn([3, c, size, size], seed: 1), w = randn([k, c, 3, 3], seed: 2, std: 0.05)
        let wc = WinogradCase(x: x, w: w, b: nil, padding: .same)
        let r = wc.winograd(), d = wc.direct()
        #expect(relativeError(r.y, d.y) < 5e-5, "y \(relativeError(r.y, d.y))")
        #expect(relativeError(r.dx, d.dx) < 5e-5, "dx \(relativeError(r.dx, d.dx))")
        #expect(relativeError(r.dw, d.dw) < 5e-5, "dw \(relativeError(r.dw, d.dw))")
    }

    @Test func oneThreadAndTwoThreadsAgree() {
        let x = randn([9, 16, 13, 13], seed: 3), w = randn([20, 16, 3, 3], seed: 4, std: 0.1)
        let wc = WinogradCase(x: x, w: w, b: randn([20], seed: 5), padding: .same)
        let one = wc.winograd(threads: 1), two = wc.winograd(threads: 2)
        #expect(one.y.scalars == two.y.scalars)
        #expect(one.dx.scalars == two.dx.scalars)
        #expect(relativeError(one.dw, two.dw) < 2e-5)  // the threads' tile sums are added in another order
    }

    @Test func refusesWhatItCannotRun() {
        let x = randn([1, 4, 8, 8], seed: 6)
        for (w, stride, groups) in [(randn([4, 4, 5, 5], seed: 7), 1, 1), (randn([4, 4, 3, 3], seed: 7), 2, 1),
                                    (randn([4, 2, 3, 3], seed: 7), 1, 2)] {
            var q = CPUBackend.problem(convolutionShape(x, w, nil, stride: (stride, stride), padding: .same, groups: groups))
            #expect(sprout_winograd_supported(&q) == 0)
            let y = Tensor(uninitializedShape: [1, 4, 8, 8])
            #expect(sprout_winograd_forward(&q, x.storage.pointer, w.storage.pointer, nil, y.storage.pointer, 1) != 0)
        }
    }
}
