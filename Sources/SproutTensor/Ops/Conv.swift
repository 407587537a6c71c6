import CSproutKernels

/// Spatial padding of a convolution or pooling window.
public enum Padding: Sendable, Equatable {
    /// No padding.
    case valid
    /// TensorFlow's SAME: output = ⌈input / stride⌉, the extra row/column at the bottom/right.
    case same
    case explicit(top: Int, left: Int, bottom: Int, right: Int)

    public static func symmetric(_ height: Int, _ width: Int) -> Padding {
        .explicit(top: height, left: width, bottom: height, right: width)
    }

    /// (before, after, output size) along one axis.
    public func resolve(input: Int, kernel: Int, stride: Int, axis: Int) -> (Int, Int, Int) {
        switch self {
        case .valid:
            return (0, 0, input >= kernel ? (input - kernel) / stride + 1 : 0)
        case .same:
            let out = (input + stride - 1) / stride
            let total = Swift.max((out - 1) * stride + kernel - input, 0)
            return (total / 2, total - total / 2, out)
        case let .explicit(top, left, bottom, right):
            let (b, a) = axis == 0 ? (top, bottom) : (left, right)
            let span = input + b + a
            return (b, a, span >= kernel ? (span - kernel) / stride + 1 : 0)
        }
    }
}

/// 2-D convolution (cross-correlation, as every framework computes it).
///   input: [N, C, H, W], weight: [K, C/groups, R, S], bias: [K] → [N, K, OH, OW]
/// groups = C = K gives a depthwise convolution.
public func conv2d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil,
                   stride: (Int, Int) = (1, 1), padding: Padding = .valid, groups: Int = 1) -> Tensor {
    let p = convProblem(input, weight, bias, stride: stride, padding: padding, groups: groups)
    let out = Tensor(uninitializedShape: [Int(p.n), Int(p.k), Int(p.oh), Int(p.ow)])
    if out.count > 0 { convForward(p, input, weight, bias, out) }
    var inputs = [input, weight]
    if let bias { inputs.append(bias) }
    return out.recorded("conv2d", inputs) { g in
        let gx = Tensor(uninitializedShape: input.shape)
        let gw = Tensor(uninitializedShape: weight.shape)
        let gb = bias.map { Tensor(uninitializedShape: $0.shape) }
        convBackwardData(p, g, weight, gx)
        convBackwardWeights(p, input, g, gw, gb)
        return bias == nil ? [gx, gw] : [gx, gw, gb]
    }
}

func convProblem(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: (Int, Int), padding: Padding, groups: Int) -> sprout_conv_problem {
    precondition(x.rank == 4, "conv2d: input must be [N, C, H, W], got \(x.shape)")
    precondition(w.rank == 4, "conv2d: weight must be [K, C/groups, R, S], got \(w.shape)")
    precondition(groups >= 1, "conv2d: groups must be ≥ 1, got \(groups)")
    precondition(stride.0 >= 1 && stride.1 >= 1, "conv2d: stride must be ≥ 1, got \(stride)")
    let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (k, cg, r, s) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
    precondition(c % groups == 0 && k % groups == 0,
                 "conv2d: \(c) input and \(k) output channels are not divisible by groups = \(groups)")
    precondition(cg * groups == c, "conv2d: input has \(c) channels, weight expects \(cg * groups) (weight \(w.shape), groups \(groups))")
    if let b { precondition(b.shape == [k], "conv2d: bias must be [\(k)], got \(b.shape)") }
    let (pt, pb, oh) = padding.resolve(input: h, kernel: r, stride: stride.0, axis: 0)
    let (pl, pr, ow) = padding.resolve(input: wd, kernel: s, stride: stride.1, axis: 1)
    precondition(min(pt, pb, pl, pr) >= 0, "conv2d: negative padding \(padding)")
    precondition(oh > 0 && ow > 0, "conv2d: kernel \(r)×\(s) does not fit input \(h)×\(wd) with padding \(padding)")
    return sprout_conv_problem(
        n: Int32(n), c: Int32(c), h: Int32(h), w: Int32(wd), k: Int32(k), r: Int32(r), s: Int32(s),
        oh: Int32(oh), ow: Int32(ow), stride_h: Int32(stride.0), stride_w: Int32(stride.1),
        pad_top: Int32(pt), pad_left: Int32(pl), pad_bottom: Int32(pb), pad_right: Int32(pr),
        groups: Int32(groups), has_bias: b == nil ? 0 : 1)
}

func convForward(_ p: sprout_conv_problem, _ x: Tensor, _ w: Tensor, _ b: Tensor?, _ y: Tensor) {
    var q = p
    _ = Threading.count
    if sprout_conv_forward(&q, x.storage.pointer, w.storage.pointer, b?.storage.pointer, y.storage.pointer) == 0 { return }
    Im2col(p).forward(x: x.storage.pointer, w: w.storage.pointer, b: b?.storage.pointer, y: y.storage.pointer)
}

func convBackwardData(_ p: sprout_conv_problem, _ dy: Tensor, _ w: Tensor, _ dx: Tensor) {
    var q = p
    q.has_bias = 0
    if sprout_conv_backward_data(&q, dy.storage.pointer, w.storage.pointer, dx.storage.pointer) == 0 { return }
    Im2col(p).backwardData(dy: dy.storage.pointer, w: w.storage.pointer, dx: dx.storage.pointer)
}

func convBackwardWeights(_ p: sprout_conv_problem, _ x: Tensor, _ dy: Tensor, _ dw: Tensor, _ db: Tensor?) {
    var q = p
    if sprout_conv_backward_weights(&q, x.storage.pointer, dy.storage.pointer, dw.storage.pointer, db?.storage.pointer) == 0 { return }
    Im2col(p).backwardWeights(x: x.storage.pointer, dy: dy.storage.pointer, dw: dw.storage.pointer, db: db?.storage.pointer)
}

/// The portable path: per sample and group, unfold the input into columns
/// [C/G·R·S, OH·OW] and multiply with BLAS.
struct Im2col {
    let n, c, h, w, k, r, s, oh, ow, sh, sw, pt, pl, g: Int
    var cg: Int { c / g }
    var kg: Int { k / g }
    var rows: Int { cg * r * s }
    var cols: Int { oh * ow }

    init(_ p: sprout_conv_problem) {
        (n, c, h, w, k, r, s) = (Int(p.n), Int(p.c), Int(p.h), Int(p.w), Int(p.k), Int(p.r), Int(p.s))
        (oh, ow, sh, sw) = (Int(p.oh), Int(p.ow), Int(p.stride_h), Int(p.stride_w))
        (pt, pl, g) = (Int(p.pad_top), Int(p.pad_left), Int(p.groups))
    }

    /// col[(ci·R + i)·S + j, oy·OW + ox] = x[ci, oy·sh − pt + i, ox·sw − pl + j] (0 outside)
    func unfold(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>) {
        for ci in 0..<cg {
            for i in 0..<r {
                for j in 0..<s {
                    let row = col + ((ci * r + i) * s + j) * cols
                    for oy in 0..<oh {
                        let iy = oy * sh - pt + i
                        let dst = row + oy * ow
                        if iy < 0 || iy >= h { dst.update(repeating: 0, count: ow); continue }
                        let src = x + (ci * h + iy) * w
                        for ox in 0..<ow {
                            let ix = ox * sw - pl + j
                            dst[ox] = (ix >= 0 && ix < w) ? src[ix] : 0
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `unfold`: accumulates columns back into the image.
    func fold(_ col: UnsafePointer<Float>, _ x: UnsafeMutablePointer<Float>) {
        for ci in 0..<cg {
            for i in 0..<r {
                for j in 0..<s {
                    let row = col + ((ci * r + i) * s + j) * cols
                    for oy in 0..<oh {
                        let iy = oy * sh - pt + i
                        if iy < 0 || iy >= h { continue }
                        let dst = x + (ci * h + iy) * w
                        for ox in 0..<ow {
                            let ix = ox * sw - pl + j
                            if ix >= 0 && ix < w { dst[ix] += row[oy * ow + ox] }
                        }
                    }
                }
            }
        }
    }

    func forward(x: UnsafePointer<Float>, w wt: UnsafePointer<Float>, b: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) {
        let col = TensorStorage(count: rows * cols)
        for ni in 0..<n {
            for gi in 0..<g {
                unfold(x + (ni * c + gi * cg) * h * w, col.pointer)
                sgemmBatched(batch: 1, m: kg, n: cols, k: rows,
                             a: wt + gi * kg * rows, strideA: 0, transposeA: false,
                             b: col.pointer, strideB: 0, transposeB: false,
                             c: y + (ni * k + gi * kg) * cols)
            }
            if let b {
                for ki in 0..<k {
                    let yk = y + (ni * k + ki) * cols
                    for i in 0..<cols { yk[i] += b[ki] }
                }
            }
        }
    }

    func backwardData(dy: UnsafePointer<Float>, w wt: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let col = TensorStorage(count: rows * cols)
        dx.update(repeating: 0, count: n * c * h * w)
        for ni in 0..<n {
            for gi in 0..<g {
                sgemmBatched(batch: 1, m: rows, n: cols, k: kg,
                             a: wt + gi * kg * rows, strideA: 0, transposeA: true,
                             b: dy + (ni * k + gi * kg) * cols, strideB: 0, transposeB: false,
                             c: col.pointer)
                fold(col.pointer, dx + (ni * c + gi * cg) * h * w)
            }
        }
    }

    func backwardWeights(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>?) {
        let col = TensorStorage(count: rows * cols)
        dw.update(repeating: 0, count: k * rows)
        for ni in 0..<n {
            for gi in 0..<g {
                unfold(x + (ni * c + gi * cg) * h * w, col.pointer)
                sgemmBatched(batch: 1, m: kg, n: rows, k: cols,
                             a: dy + (ni * k + gi * kg) * cols, strideA: 0, transposeA: false,
                             b: col.pointer, strideB: 0, transposeB: true,
                             c: dw + gi * kg * rows, accumulate: true)
            }
        }
        if let db {
            for ki in 0..<k {
                var acc: Float = 0
                for ni in 0..<n {
                    let d = dy + (ni * k + ki) * cols
                    for i in 0..<cols { acc += d[i] }
                }
                db[ki] = acc
            }
        }
    }
}

/// Which implementation `conv2d` uses for each pass (forward, backward data, backward
/// weights) of a problem, e.g. "onednn:jit:avx2" or "im2col+blas".
public func convolutionImplementation(inputShape: [Int], weightShape: [Int], stride: (Int, Int) = (1, 1),
                                      padding: Padding = .valid, groups: Int = 1, bias: Bool = true) -> [String] {
    let x = Tensor(shape: inputShape, repeating: 0), w = Tensor(shape: weightShape, repeating: 0)
    let p = convProblem(x, w, bias ? Tensor(shape: [weightShape[0]], repeating: 0) : nil,
                        stride: stride, padding: padding, groups: groups)
    return (0..<3).map { pass in
        var q = p
        if pass == 1 { q.has_bias = 0 }
        let name = String(cString: sprout_conv_implementation(&q, Int32(pass)))
        return name.isEmpty ? "im2col+blas" : "onednn:\(name)"
    }
}
