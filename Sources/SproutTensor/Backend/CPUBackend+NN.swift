import CSproutKernels
#if canImport(Glibc)
import Glibc
#endif

extension CPUBackend {
    // MARK: - Convolution: Winograd where WinogradRule says so, else oneDNN (blocked or plain layout,
    // by the C glue's rule), else im2col + GEMM

    static func problem(_ s: ConvolutionShape) -> sprout_conv_problem {
        sprout_conv_problem(
            n: Int32(s.n), c: Int32(s.c), h: Int32(s.h), w: Int32(s.w), k: Int32(s.k), r: Int32(s.r), s: Int32(s.s),
            oh: Int32(s.oh), ow: Int32(s.ow), stride_h: Int32(s.strideH), stride_w: Int32(s.strideW),
            pad_top: Int32(s.padTop), pad_left: Int32(s.padLeft), pad_bottom: Int32(s.padBottom), pad_right: Int32(s.padRight),
            groups: Int32(s.groups), has_bias: s.hasBias ? 1 : 0)
    }

    public func convolution(_ x: Tensor, weight w: Tensor, bias b: Tensor?, shape: ConvolutionShape) -> Tensor {
        let y = output([shape.n, shape.k, shape.oh, shape.ow])
        guard y.count > 0 else { return y }
        var q = Self.problem(shape)
        if WinogradRule.chooses(q, pass: .forward),
           sprout_winograd_forward(&q, x.storage.pointer, w.storage.pointer, b?.storage.pointer, y.storage.pointer,
                                   Int32(Threading.count)) == 0 {
            return y
        }
        if sprout_conv_forward(&q, x.storage.pointer, w.storage.pointer, b?.storage.pointer, y.storage.pointer) != 0 {
            Im2col(q).forward(x: x.storage.pointer, w: w.storage.pointer, b: b?.storage.pointer, y: y.storage.pointer)
        }
        return y
    }

    public func convolutionGradientData(_ dy: Tensor, weight w: Tensor, shape: ConvolutionShape) -> Tensor {
        let dx = output([shape.n, shape.c, shape.h, shape.w])
        var q = Self.problem(shape)
        q.has_bias = 0
        if WinogradRule.chooses(q, pass: .backwardData),
           sprout_winograd_backward_data(&q, dy.storage.pointer, w.storage.pointer, dx.storage.pointer,
                                         Int32(Threading.count)) == 0 {
            return dx
        }
        if sprout_conv_backward_data(&q, dy.storage.pointer, w.storage.pointer, dx.storage.pointer) != 0 {
            Im2col(q).backwardData(dy: dy.storage.pointer, w: w.storage.pointer, dx: dx.storage.pointer)
        }
        return dx
    }

    public func convolutionGradientWeights(_ x: Tensor, _ dy: Tensor, shape: ConvolutionShape) -> (weight: Tensor, bias: Tensor?) {
        let dw = output([shape.k, shape.c / shape.groups, shape.r, shape.s])
        let db = shape.hasBias ? output([shape.k]) : nil
        var q = Self.problem(shape)
        if WinogradRule.chooses(q, pass: .backwardWeights),
           sprout_winograd_backward_weights(&q, x.storage.pointer, dy.storage.pointer, dw.storage.pointer,
                                            db?.storage.pointer, Int32(Threading.count)) == 0 {
            return (dw, db)
        }
        if sprout_conv_backward_weights(&q, x.storage.pointer, dy.storage.pointer, dw.storage.pointer, db?.storage.pointer) != 0 {
            Im2col(q).backwardWeights(x: x.storage.pointer, dy: dy.storage.pointer, dw: dw.storage.pointer, db: db?.storage.pointer)
        }
        return (dw, db)
    }

    // MARK: - Pooling (C loops over planes)

    private func withGeometry(_ s: PoolShape, _ body: (SendablePointer<sprout_pool_geometry>) -> Void) {
        let g = sprout_pool_geometry(h: Int32(s.h), w: Int32(s.w), oh: Int32(s.oh), ow: Int32(s.ow), kh: Int32(s.kh), kw: Int32(s.kw),
                                     sh: Int32(s.sh), sw: Int32(s.sw), pt: Int32(s.pt), pl: Int32(s.pl))
        withUnsafePointer(to: g) { body(SendablePointer(UnsafeMutablePointer(mutating: $0))) }
    }

    public func maxPool(_ x: Tensor, shape s: PoolShape) -> (output: Tensor, winners: IndexStorage) {
        let out = output([x.shape[0], x.shape[1], s.oh, s.ow])
        let winners = IndexStorage(count: out.count)
        let src = SendablePointer(x.storage.pointer), dst = SendablePointer(out.storage.pointer), idx = SendablePointer(winners.pointer)
        withGeometry(s) { g in
            parallelFor(s.planes, grain: grain(workPerItem: s.oh * s.ow * s.kh * s.kw)) { r in
                sprout_maxpool_forward(src.p, dst.p, idx.p, g.p, r.lowerBound, r.upperBound)
            }
        }
        return (out, winners)
    }

    public func maxPoolGradient(_ grad: Tensor, winners: IndexStorage, shape s: PoolShape, inputShape: [Int]) -> Tensor {
        let gx = output(inputShape)
        let gs = SendablePointer(grad.storage.pointer), gd = SendablePointer(gx.storage.pointer), a = SendablePointer(winners.pointer)
        withGeometry(s) { g in
            parallelFor(s.planes, grain: grain(workPerItem: s.h * s.w + s.oh * s.ow)) { r in
                sprout_maxpool_backward(gs.p, a.p, gd.p, g.p, r.lowerBound, r.upperBound)
            }
        }
        return gx
    }

    public func avgPool(_ x: Tensor, shape s: PoolShape, countIncludesPadding: Bool) -> Tensor {
        let out = output([x.shape[0], x.shape[1], s.oh, s.ow])
        let includePad: Int32 = countIncludesPadding ? 1 : 0
        let src = SendablePointer(x.storage.pointer), dst = SendablePointer(out.storage.pointer)
        withGeometry(s) { g in
            parallelFor(s.planes, grain: grain(workPerItem: s.oh * s.ow * s.kh * s.kw)) { r in
                sprout_avgpool_forward(src.p, dst.p, g.p, includePad, r.lowerBound, r.upperBound)
            }
        }
        return out
    }

    public func avgPoolGradient(_ grad: Tensor, shape s: PoolShape, countIncludesPadding: Bool, inputShape: [Int]) -> Tensor {
        let gx = output(inputShape)
        let includePad: Int32 = countIncludesPadding ? 1 : 0
        let gs = SendablePointer(grad.storage.pointer), gd = SendablePointer(gx.storage.pointer)
        withGeometry(s) { g in
            parallelFor(s.planes, grain: grain(workPerItem: s.oh * s.ow * s.kh * s.kw)) { r in
                sprout_avgpool_backward(gs.p, gd.p, g.p, includePad, r.lowerBound, r.upperBound)
            }
        }
        return gx
    }

    // MARK: - Normalisation (C loops per channel; plane sums float, totals double)

    private func layout(_ x: Tensor) -> (n: Int, c: Int, hw: Int) {
        (x.shape[0], x.shape[1], x.rank == 4 ? x.shape[2] * x.shape[3] : 1)
    }

    public func batchNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float, relu: Bool)
        -> (output: Tensor, mean: Tensor, variance: Tensor) {
        let (n, c, hw) = layout(x)
        let mean = output([c]), variance = output([c]), y = output(x.shape)
        let xs = SendablePointer(x.storage.pointer), ys = SendablePointer(y.storage.pointer)
        let ms = SendablePointer(mean.storage.pointer), vs = SendablePointer(variance.storage.pointer)
        let gamma = weight.map { SendablePointer($0.storage.pointer) }, beta = bias.map { SendablePointer($0.storage.pointer) }
        parallelFor(c, grain: grain(workPerItem: 3 * n * hw)) { r in
            sprout_batchnorm_forward(xs.p, ys.p, gamma?.p, beta?.p, ms.p, vs.p, Int32(n), Int32(c), hw,
                                     Int32(r.lowerBound), Int32(r.upperBound), epsilon, relu ? 1 : 0)
        }
        return (y, mean, variance)
    }

    public func batchNormGradient(_ g: Tensor, input x: Tensor, output y: Tensor, mean: Tensor, variance: Tensor,
                                  weight: Tensor?, epsilon: Float, relu: Bool) -> (input: Tensor, weight: Tensor, bias: Tensor) {
        let (n, c, hw) = layout(x)
        let xs = SendablePointer(x.storage.pointer), ys = SendablePointer(y.storage.pointer)
        let ms = SendablePointer(mean.storage.pointer), vs = SendablePointer(variance.storage.pointer)
        let gamma = weight.map { SendablePointer($0.storage.pointer) }
        let gx = output(x.shape), gGamma = output([c]), gBeta = output([c])
        let gs = SendablePointer(g.storage.pointer), gxs = SendablePointer(gx.storage.pointer)
        let gg = SendablePointer(gGamma.storage.pointer), gb = SendablePointer(gBeta.storage.pointer)
        parallelFor(c, grain: grain(workPerItem: 3 * n * hw)) { r in
            sprout_batchnorm_backward(xs.p, gs.p, relu ? ys.p : nil, ms.p, vs.p, gamma?.p, gxs.p, gg.p, gb.p,
                                      Int32(n), Int32(c), hw, Int32(r.lowerBound), Int32(r.upperBound), epsilon)
        }
        return (gx, gGamma, gBeta)
    }

    public func channelAffine(_ x: Tensor, scale: Tensor, shift: Tensor, relu: Bool) -> Tensor {
        let (n, c, hw) = layout(x)
        let y = output(x.shape)
        let xs = SendablePointer(x.storage.pointer), ys = SendablePointer(y.storage.pointer)
        let ss = SendablePointer(scale.storage.pointer), ts = SendablePointer(shift.storage.pointer)
        parallelFor(n * c, grain: grain(workPerItem: hw)) { r in
            sprout_channel_affine(xs.p, ys.p, ss.p, ts.p, Int32(c), hw, r.lowerBound, r.upperBound, relu ? 1 : 0)
        }
        return y
    }

    public func channelSums(_ x: Tensor, center: Tensor?) -> [Double] {
        let (n, c, hw) = layout(x)
        var totals = [Double](repeating: 0, count: c)
        let xs = SendablePointer(x.storage.pointer), ms = center.map { SendablePointer($0.storage.pointer) }
        totals.withUnsafeMutableBufferPointer { b in
            let out = SendablePointer(b.baseAddress!)
            parallelFor(c, grain: grain(workPerItem: n * hw)) { r in
                sprout_channel_sums(xs.p, ms?.p, Int32(n), Int32(c), hw, Int32(r.lowerBound), Int32(r.upperBound), out.p)
            }
        }
        return totals
    }

    public func batchNormGradientSums(_ g: Tensor, input x: Tensor, output y: Tensor?, mean: Tensor) -> (Tensor, Tensor) {
        let (n, c, hw) = layout(x)
        let xs = SendablePointer(x.storage.pointer), ys = y.map { SendablePointer($0.storage.pointer) }
        let gs = SendablePointer(g.storage.pointer), ms = SendablePointer(mean.storage.pointer)
        let sumG = output([c]), sumGX = output([c])
        let sg = SendablePointer(sumG.storage.pointer), sgx = SendablePointer(sumGX.storage.pointer)
        parallelFor(c, grain: grain(workPerItem: 2 * n * hw)) { r in
            sprout_batchnorm_grad_sums(xs.p, gs.p, ys?.p, ms.p, Int32(n), Int32(c), hw,
                                       Int32(r.lowerBound), Int32(r.upperBound), sg.p, sgx.p)
        }
        return (sumG, sumGX)
    }

    public func batchNormGradientApply(_ g: Tensor, input x: Tensor, output y: Tensor?, mean: Tensor, variance: Tensor,
                                       weight: Tensor?, sumG: Tensor, sumGX: Tensor, count: Float, epsilon: Float) -> Tensor {
        let (n, c, hw) = layout(x)
        let xs = SendablePointer(x.storage.pointer), ys = y.map { SendablePointer($0.storage.pointer) }
        let gs = SendablePointer(g.storage.pointer)
        let ms = SendablePointer(mean.storage.pointer), vs = SendablePointer(variance.storage.pointer)
        let gamma = weight.map { SendablePointer($0.storage.pointer) }
        let gg = SendablePointer(sumG.storage.pointer), ggx = SendablePointer(sumGX.storage.pointer)
        let gx = output(x.shape)
        let gxs = SendablePointer(gx.storage.pointer)
        parallelFor(c, grain: grain(workPerItem: 2 * n * hw)) { r in
            sprout_batchnorm_backward_apply(xs.p, gs.p, ys?.p, ms.p, vs.p, gamma?.p, gg.p, ggx.p,
                                            count, gxs.p, Int32(n), Int32(c), hw, Int32(r.lowerBound),
                                            Int32(r.upperBound), epsilon)
        }
        return gx
    }

    public func localResponseNorm(_ x: Tensor, radius: Int, bias: Float, alpha: Float, beta: Float) -> (output: Tensor, scale: Tensor) {
        let (n, c, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        let y = output(x.shape), scale = output(x.shape)
        let xs = SendablePointer(x.storage.pointer), ys = SendablePointer(y.storage.pointer), ss = SendablePointer(scale.storage.pointer)
        parallelFor(n, grain: grain(workPerItem: c * hw * (2 * radius + 2))) { r in
            let off = r.lowerBound * c * hw
            sprout_lrn_forward(xs.p + off, ys.p + off, ss.p + off, Int32(r.count), Int32(c), Int32(hw),
                               Int32(radius), bias, alpha, beta)
        }
        return (y, scale)
    }

    public func localResponseNormGradient(_ g: Tensor, input x: Tensor, output y: Tensor, scale: Tensor,
                                          radius: Int, alpha: Float, beta: Float) -> Tensor {
        let (n, c, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        let xs = SendablePointer(x.storage.pointer), ys = SendablePointer(y.storage.pointer)
        let ss = SendablePointer(scale.storage.pointer)
        let gx = output(x.shape)
        let gs = SendablePointer(g.storage.pointer), gxs = SendablePointer(gx.storage.pointer)
        parallelFor(n, grain: grain(workPerItem: c * hw * (2 * radius + 2))) { r in
            let off = r.lowerBound * c * hw
            sprout_lrn_backward(xs.p + off, ys.p + off, ss.p + off, gs.p + off, gxs.p + off,
                                Int32(r.count), Int32(c), Int32(hw), Int32(radius), alpha, beta)
        }
        return gx
    }

    // MARK: - Optimizer updates

    //   g ← ∇ + wd·p (coupled);  b ← μ·b + g;  d = g + μ·b (Nesterov) or b;  p ← p − lr·d  (− lr·wd·p if decoupled)
    public func sgdStep(_ w: inout Tensor, gradient g: Tensor, momentum buffer: inout Tensor?, learningRate lr: Float,
                        weightDecay wd: Float, momentum mu: Float, nesterov: Bool, decoupled: Bool) {
        let bp: UnsafeMutablePointer<Float>? = buffer == nil ? nil : buffer!.withMutableData { $0.baseAddress! }
        w.withMutableData { w in
            g.withData { gr in
                for i in 0..<w.count {
                    var d = gr[i]
                    if !decoupled { d += wd * w[i] }
                    if let bp {
                        bp[i] = mu * bp[i] + d
                        d = nesterov ? d + mu * bp[i] : bp[i]
                    }
                    w[i] -= lr * (decoupled ? d + wd * w[i] : d)
                }
            }
        }
    }

    //   m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  p ← p − lr·m̂/(√v̂ + ε)   (m̂, v̂ bias-corrected)
    public func adamStep(_ w: inout Tensor, gradient g: Tensor, m: inout Tensor, v: inout Tensor, learningRate lr: Float,
                         beta1 b1: Float, beta2 b2: Float, epsilon eps: Float, weightDecay wd: Float, decoupled: Bool,
                         correction1 c1: Float, correction2 c2: Float) {
        let mp = m.withMutableData { $0.baseAddress! }, vp = v.withMutableData { $0.baseAddress! }
        w.withMutableData { w in
            g.withData { gr in
                for i in 0..<w.count {
                    var d = gr[i]
                    if decoupled { w[i] -= lr * wd * w[i] } else { d += wd * w[i] }
                    mp[i] = b1 * mp[i] + (1 - b1) * d
                    vp[i] = b2 * vp[i] + (1 - b2) * d * d
                    w[i] -= lr * (mp[i] / c1) / ((vp[i] / c2).squareRoot() + eps)
                }
            }
        }
    }

    public func movingAverage(_ s: inout Tensor, toward x: Tensor, decay d: Float) {
        x.withData { w in
            s.withMutableData { sp in for i in 0..<sp.count { sp[i] = d * sp[i] + (1 - d) * w[i] } }
        }
    }
}

/// Which implementation the CPU backend's `conv2d` uses for each pass (forward, backward data, backward
/// weights) of a problem, e.g. "onednn:jit:avx2" or "im2col+blas".
public func convolutionImplementation(inputShape: [Int], weightShape: [Int], stride: (Int, Int) = (1, 1),
                                      padding: Padding = .valid, groups: Int = 1, bias: Bool = true) -> [String] {
    let x = Tensor(shape: inputShape, repeating: 0), w = Tensor(shape: weightShape, repeating: 0)
    let p = CPUBackend.problem(convolutionShape(x, w, bias ? Tensor(shape: [weightShape[0]], repeating: 0) : nil,
                                                stride: stride, padding: padding, groups: groups))
    return (0..<3).map { pass in
        var q = p
        if pass == 1 { q.has_bias = 0 }
        if WinogradRule.chooses(q, pass: WinogradRule.Pass(rawValue: pass)!) { return "sprout:winograd-f4x4:avx2" }
        let name = String(cString: sprout_conv_implementation(&q, Int32(pass)))
        return name.isEmpty ? "im2col+blas" : "onednn:\(name)"
    }
}

/// When the CPU backend runs a 3x3 convolution pass with Sprout's Winograd kernels
/// (`winograd.c`, AVX2+FMA) instead of oneDNN. SPROUT_WINOGRAD=on/off overrides the rule.
///
/// The rule, from `sprout bench ops` (2 threads, batch 128; docs/performance.md has the table):
/// - backward-weights: always. Against oneDNN's GEMM-based kernel it was 0.8-1.05x the time
///   with AVX-512 and 0.5-0.8x with AVX2.
/// - forward and backward-data: when every output map is at least 4x4 (one tile; a 3x3 map
///   pays for 16 outputs and keeps 9: 1.8x slower than oneDNN with AVX-512, level with AVX2),
///   and, where oneDNN has AVX-512 kernels, at least 8x8 (7x7 maps were level, 8x8 and larger
///   1.2-1.8x faster; with AVX2 every map of 4x4 and more was 1.8-3.1x faster).
public enum WinogradRule {
    public enum Pass: Int, Sendable { case forward = 0, backwardData = 1, backwardWeights = 2 }

    static let oneDNNHasAVX512 = sprout_dnnl_has_avx512() != 0

    /// Overrides SPROUT_WINOGRAD for the current task, e.g. to compare a model's gradients
    /// with and without Winograd in one process: `WinogradRule.$mode.withValue(.off) { … }`.
    @TaskLocal public static var mode: RuntimeSettings.Winograd?

    static func chooses(_ p: sprout_conv_problem, pass: Pass) -> Bool {
        let mode = Self.mode ?? RuntimeSettings.current.winograd
        if mode == .off { return false }
        var q = p
        guard sprout_winograd_supported(&q) != 0 else { return false }
        if mode == .on { return true }
        return measuredFaster(outputHeight: Int(p.oh), outputWidth: Int(p.ow), pass: pass, oneDNNHasAVX512: oneDNNHasAVX512)
    }

    public static func measuredFaster(outputHeight oh: Int, outputWidth ow: Int, pass: Pass, oneDNNHasAVX512: Bool) -> Bool {
        if pass == .backwardWeights { return true }
        guard oh >= 4, ow >= 4 else { return false }
        return !oneDNNHasAVX512 || oh * ow >= 64
    }
}
