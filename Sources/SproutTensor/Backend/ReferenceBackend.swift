#if canImport(Glibc)
import Glibc
#endif

/// Every primitive as the plainest Swift: one element at a time, one thread, no SIMD, no
/// library — index arithmetic anyone can check against the definitions. It is the template
/// for a new backend (implement these, and the ops, layers, optimizers and trainer run on
/// it) and the yardstick for the fast one: a training step of every zoo model agrees with
/// the CPU backend (BackendTests).
public final class ReferenceBackend: Backend {
    public static let shared = ReferenceBackend()
    public var device: Device { .reference }

    func output(_ shape: [Int]) -> Tensor { Tensor(uninitializedShape: shape, on: .reference) }

    /// Values of a fresh tensor, filled by `body` (host memory: this backend's own).
    func make(_ shape: [Int], _ body: (UnsafeMutablePointer<Float>) -> Void) -> Tensor {
        let t = output(shape)
        body(t.storage.pointer)
        return t
    }

    /// The multi-index of flat position `i` in `shape`.
    func index(_ i: Int, _ shape: [Int]) -> [Int] {
        var rest = i, out = [Int](repeating: 0, count: shape.count)
        for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
            out[d] = rest % shape[d]
            rest /= shape[d]
        }
        return out
    }

    func offset(_ index: [Int], _ shape: [Int]) -> Int {
        zip(index, shape).reduce(0) { $0 * $1.1 + $1.0 }
    }

    /// Position in an operand of `shape` (aligned at the last axis, size-1 axes broadcast)
    /// that output multi-index `index` reads.
    func broadcastOffset(_ index: [Int], _ shape: [Int]) -> Int {
        let lead = index.count - shape.count
        var off = 0
        for d in 0..<shape.count { off = off * shape[d] + (shape[d] == 1 ? 0 : index[d + lead]) }
        return off
    }

    // MARK: - Element-wise

    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, shape: [Int]) -> Tensor {
        let f: (Float, Float) -> Float
        switch op {
        case .add: f = { $0 + $1 }
        case .subtract: f = { $0 - $1 }
        case .multiply: f = { $0 * $1 }
        case .divide: f = { $0 / $1 }
        case .maximum: f = { Swift.max($0, $1) }
        case .minimum: f = { Swift.min($0, $1) }
        case .equal: f = { $0 == $1 ? 1 : 0 }
        case .greater: f = { $0 > $1 ? 1 : 0 }
        case .greaterEqual: f = { $0 >= $1 ? 1 : 0 }
        case .less: f = { $0 < $1 ? 1 : 0 }
        case .lessEqual: f = { $0 <= $1 ? 1 : 0 }
        }
        let (x, y) = (a.storage.pointer, b.storage.pointer)
        return make(shape) { z in
            for i in 0..<shape.reduce(1, *) {
                let at = index(i, shape)
                z[i] = f(x[broadcastOffset(at, a.shape)], y[broadcastOffset(at, b.shape)])
            }
        }
    }

    func map(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
        make(x.shape) { y in for i in 0..<x.count { y[i] = f(x.storage.pointer[i]) } }
    }

    func map(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        make(a.shape) { y in for i in 0..<a.count { y[i] = f(a.storage.pointer[i], b.storage.pointer[i]) } }
    }

    public func unary(_ op: UnaryOp, _ x: Tensor) -> Tensor {
        switch op {
        case .negate: return map(x) { -$0 }
        case .exp: return map(x) { expf($0) }
        case .log: return map(x) { logf($0) }
        case .sqrt: return map(x) { $0.squareRoot() }
        case .abs: return map(x) { Swift.abs($0) }
        case .relu: return map(x) { Swift.max($0, 0) }
        case .sigmoid: return map(x) { 1 / (1 + expf(-$0)) }
        case .tanh: return map(x) { tanhf($0) }
        case .gelu: return map(x) { $0 * 0.5 * (1 + erff($0 / Float(2).squareRoot())) }
        case .geluTanh: return map(x) { v in 0.5 * v * (1 + tanhf(geluC * (v + 0.044715 * v * v * v))) }
        case .elu(let alpha): return map(x) { $0 > 0 ? $0 : alpha * (expf($0) - 1) }
        case .leakyRelu(let slope): return map(x) { $0 > 0 ? $0 : slope * $0 }
        case .power(let p): return map(x) { powf($0, p) }
        case let .clamp(lower, upper): return map(x) { Swift.min(Swift.max($0, lower), upper) }
        }
    }

    public func unaryGradient(_ op: UnaryOp, gradient g: Tensor, input x: Tensor, output y: Tensor) -> Tensor {
        let derivative: (Float, Float) -> Float   // f'(x) from (x, y)
        switch op {
        case .negate: derivative = { _, _ in -1 }
        case .exp: derivative = { _, y in y }
        case .log: derivative = { x, _ in 1 / x }
        case .sqrt: derivative = { _, y in 0.5 / y }
        case .abs: derivative = { x, _ in x > 0 ? 1 : (x < 0 ? -1 : 0) }
        case .relu: derivative = { _, y in y > 0 ? 1 : 0 }
        case .sigmoid: derivative = { _, y in y * (1 - y) }
        case .tanh: derivative = { _, y in 1 - y * y }
        case .gelu:   // Φ(x) + x·φ(x)
            derivative = { x, _ in 0.5 * (1 + erff(x / Float(2).squareRoot())) + x * expf(-x * x / 2) / (2 * Float.pi).squareRoot() }
        case .geluTanh:
            derivative = { v, _ in
                let t = tanhf(geluC * (v + 0.044715 * v * v * v))
                return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * geluC * (1 + 3 * 0.044715 * v * v)
            }
        case .elu(let alpha): derivative = { x, y in x > 0 ? 1 : y + alpha }
        case .leakyRelu(let slope): derivative = { x, _ in x > 0 ? 1 : slope }
        case .power(let p): derivative = { x, _ in p * powf(x, p - 1) }
        case let .clamp(lower, upper): derivative = { x, _ in (x >= lower && x <= upper) ? 1 : 0 }
        }
        return make(g.shape) { d in
            for i in 0..<g.count { d[i] = g.storage.pointer[i] * derivative(x.storage.pointer[i], y.storage.pointer[i]) }
        }
    }

    public func select(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        make(a.shape) { y in
            for i in 0..<a.count { y[i] = condition.storage.pointer[i] != 0 ? a.storage.pointer[i] : b.storage.pointer[i] }
        }
    }

    // MARK: - Reductions

    public func reduce(_ op: ReductionOp, _ x: Tensor, axes: Set<Int>) -> Tensor {
        let kept = x.shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
        let initial: Float = op == .sum ? 0 : -.infinity
        var out = [Float](repeating: initial, count: kept.reduce(1, *))
        for i in 0..<x.count {
            let at = index(i, x.shape).enumerated().map { axes.contains($0.offset) ? 0 : $0.element }
            let o = offset(at, kept), v = x.storage.pointer[i]
            out[o] = op == .sum ? out[o] + v : Swift.max(out[o], v)
        }
        return out.withUnsafeBufferPointer { tensor(shape: kept, scalars: $0) }
    }

    public func softmax(_ x: Tensor, axis: Int, log: Bool) -> Tensor {
        let n = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *)
        return make(x.shape) { y in
            for i in 0..<x.count where index(i, x.shape)[axis] == 0 {
                let values = (0..<n).map { x.storage.pointer[i + $0 * inner] }
                let m = values.max()!
                let total = values.reduce(Float(0)) { $0 + expf($1 - m) }
                for k in 0..<n { y[i + k * inner] = log ? (values[k] - m) - logf(total) : expf(values[k] - m) / total }
            }
        }
    }

    // MARK: - Copies and layout

    public func permute(_ x: Tensor, _ axes: [Int]) -> Tensor {
        let shape = axes.map { x.shape[$0] }
        return make(shape) { y in
            for i in 0..<x.count {
                let at = index(i, shape)
                var source = [Int](repeating: 0, count: axes.count)
                for (d, a) in axes.enumerated() { source[a] = at[d] }
                y[i] = x.storage.pointer[offset(source, x.shape)]
            }
        }
    }

    public func slice(_ x: Tensor, axis: Int, range: Range<Int>) -> Tensor {
        var shape = x.shape
        shape[axis] = range.count
        return make(shape) { y in
            for i in 0..<shape.reduce(1, *) {
                var at = index(i, shape)
                at[axis] += range.lowerBound
                y[i] = x.storage.pointer[offset(at, x.shape)]
            }
        }
    }

    public func concatenate(_ xs: [Tensor], axis: Int) -> Tensor {
        var shape = xs[0].shape
        shape[axis] = xs.map { $0.shape[axis] }.reduce(0, +)
        return make(shape) { y in
            for i in 0..<shape.reduce(1, *) {
                var at = index(i, shape)
                var k = 0
                while at[axis] >= xs[k].shape[axis] { at[axis] -= xs[k].shape[axis]; k += 1 }
                y[i] = xs[k].storage.pointer[offset(at, xs[k].shape)]
            }
        }
    }

    public func addSlab(_ g: Tensor, into t: inout Tensor, axis: Int, range: Range<Int>) {
        let shape = t.shape
        t.withMutableData { d in
            for i in 0..<g.count {
                var at = index(i, g.shape)
                at[axis] += range.lowerBound
                d[offset(at, shape)] += g.storage.pointer[i]
            }
        }
    }

    public func broadcast(_ x: Tensor, to shape: [Int]) -> Tensor {
        make(shape) { y in for i in 0..<shape.reduce(1, *) { y[i] = x.storage.pointer[broadcastOffset(index(i, shape), x.shape)] } }
    }

    public func flip(_ x: Tensor, axes: Set<Int>) -> Tensor {
        make(x.shape) { y in
            for i in 0..<x.count {
                let at = index(i, x.shape).enumerated().map { axes.contains($0.offset) ? x.shape[$0.offset] - 1 - $0.element : $0.element }
                y[i] = x.storage.pointer[offset(at, x.shape)]
            }
        }
    }

    public func pad(_ x: Tensor, rows: [Int], cols: [Int]) -> Tensor {
        let (h, w) = (x.shape[x.rank - 2], x.shape[x.rank - 1])
        let shape = Array(x.shape.dropLast(2)) + [rows.count, cols.count]
        return make(shape) { y in
            for i in 0..<shape.reduce(1, *) {
                let plane = i / (rows.count * cols.count), r = (i / cols.count) % rows.count, c = i % cols.count
                y[i] = rows[r] < 0 || cols[c] < 0 ? 0 : x.storage.pointer[(plane * h + rows[r]) * w + cols[c]]
            }
        }
    }

    public func padGradient(_ g: Tensor, rows: [Int], cols: [Int], inputShape: [Int]) -> Tensor {
        let (h, w) = (inputShape[inputShape.count - 2], inputShape[inputShape.count - 1])
        var out = filled(shape: inputShape, value: 0)
        out.withMutableData { d in
            for i in 0..<g.count {
                let plane = i / (rows.count * cols.count), r = (i / cols.count) % rows.count, c = i % cols.count
                if rows[r] >= 0 && cols[c] >= 0 { d[(plane * h + rows[r]) * w + cols[c]] += g.storage.pointer[i] }
            }
        }
        return out
    }

    public func gather(_ x: Tensor, indices: [Int]) -> Tensor {
        make([indices.count]) { y in for (i, k) in indices.enumerated() { y[i] = x.storage.pointer[i * x.shape[1] + k] } }
    }

    public func scatter(_ g: Tensor, indices: [Int], columns: Int) -> Tensor {
        var out = filled(shape: [indices.count, columns], value: 0)
        out.withMutableData { d in for (i, k) in indices.enumerated() { d[i * columns + k] = g.storage.pointer[i] } }
        return out
    }

    // MARK: - Linear algebra

    public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) -> Tensor {
        let batch = a.rank == 3 ? a.shape[0] : 1
        let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1]), (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let (m, k) = transposeA ? (ac, ar) : (ar, ac), n = transposeB ? br : bc
        return make(a.rank == 3 ? [batch, m, n] : [m, n]) { c in
            for t in 0..<batch {
                let pa = a.storage.pointer + t * ar * ac, pb = b.storage.pointer + (b.rank == 3 ? t * br * bc : 0)
                for i in 0..<m {
                    for j in 0..<n {
                        var acc: Float = 0
                        for p in 0..<k { acc += (transposeA ? pa[p * ac + i] : pa[i * ac + p]) * (transposeB ? pb[j * bc + p] : pb[p * bc + j]) }
                        c[(t * m + i) * n + j] = acc
                    }
                }
            }
        }
    }

    // MARK: - Convolution, directly from the definition

    /// Calls body(sample, output channel, oy, ox, input channel, iy, ix, kernel row, kernel column) for every
    /// multiply-add of the convolution that lands inside the input.
    func eachTap(_ s: ConvolutionShape, _ body: (Int, Int, Int, Int, Int, Int, Int, Int, Int) -> Void) {
        let (cg, kg) = (s.c / s.groups, s.k / s.groups)
        for n in 0..<s.n {
            for k in 0..<s.k {
                let group = k / kg
                for oy in 0..<s.oh {
                    for ox in 0..<s.ow {
                        for ci in 0..<cg {
                            for r in 0..<s.r {
                                let iy = oy * s.strideH - s.padTop + r
                                guard iy >= 0 && iy < s.h else { continue }
                                for q in 0..<s.s {
                                    let ix = ox * s.strideW - s.padLeft + q
                                    guard ix >= 0 && ix < s.w else { continue }
                                    body(n, k, oy, ox, group * cg + ci, iy, ix, r, q)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    public func convolution(_ x: Tensor, weight: Tensor, bias: Tensor?, shape s: ConvolutionShape) -> Tensor {
        let (xp, wp, cg) = (x.storage.pointer, weight.storage.pointer, s.c / s.groups)
        return make([s.n, s.k, s.oh, s.ow]) { y in
            for i in 0..<(s.n * s.k * s.oh * s.ow) { y[i] = bias.map { $0.storage.pointer[(i / (s.oh * s.ow)) % s.k] } ?? 0 }
            eachTap(s) { n, k, oy, ox, c, iy, ix, r, q in
                y[((n * s.k + k) * s.oh + oy) * s.ow + ox] += xp[((n * s.c + c) * s.h + iy) * s.w + ix]
                    * wp[((k * cg + c % cg) * s.r + r) * s.s + q]
            }
        }
    }

    public func convolutionGradientData(_ dy: Tensor, weight: Tensor, shape s: ConvolutionShape) -> Tensor {
        let (gp, wp, cg) = (dy.storage.pointer, weight.storage.pointer, s.c / s.groups)
        var dx = filled(shape: [s.n, s.c, s.h, s.w], value: 0)
        dx.withMutableData { d in
            eachTap(s) { n, k, oy, ox, c, iy, ix, r, q in
                d[((n * s.c + c) * s.h + iy) * s.w + ix] += gp[((n * s.k + k) * s.oh + oy) * s.ow + ox]
                    * wp[((k * cg + c % cg) * s.r + r) * s.s + q]
            }
        }
        return dx
    }

    public func convolutionGradientWeights(_ x: Tensor, _ dy: Tensor, shape s: ConvolutionShape) -> (weight: Tensor, bias: Tensor?) {
        let (xp, gp, cg) = (x.storage.pointer, dy.storage.pointer, s.c / s.groups)
        var dw = filled(shape: [s.k, cg, s.r, s.s], value: 0)
        dw.withMutableData { d in
            eachTap(s) { n, k, oy, ox, c, iy, ix, r, q in
                d[((k * cg + c % cg) * s.r + r) * s.s + q] += gp[((n * s.k + k) * s.oh + oy) * s.ow + ox]
                    * xp[((n * s.c + c) * s.h + iy) * s.w + ix]
            }
        }
        guard s.hasBias else { return (dw, nil) }
        let db = make([s.k]) { b in
            for k in 0..<s.k {
                var acc: Float = 0
                for n in 0..<s.n { for i in 0..<(s.oh * s.ow) { acc += gp[(n * s.k + k) * s.oh * s.ow + i] } }
                b[k] = acc
            }
        }
        return (dw, db)
    }

    // MARK: - Pooling: windows clipped to the input (padding never wins, is never counted)

    func window(_ o: Int, stride: Int, before: Int, kernel: Int, size: Int) -> Range<Int> {
        max(0, o * stride - before)..<min(size, o * stride - before + kernel)
    }

    public func maxPool(_ x: Tensor, shape s: PoolShape) -> (output: Tensor, winners: IndexStorage) {
        let winners = IndexStorage(count: s.planes * s.oh * s.ow)
        let y = make([x.shape[0], x.shape[1], s.oh, s.ow]) { y in
            for p in 0..<s.planes {
                for oy in 0..<s.oh {
                    for ox in 0..<s.ow {
                        var best = -Float.infinity, at = -1
                        for iy in window(oy, stride: s.sh, before: s.pt, kernel: s.kh, size: s.h) {
                            for ix in window(ox, stride: s.sw, before: s.pl, kernel: s.kw, size: s.w) {
                                let v = x.storage.pointer[(p * s.h + iy) * s.w + ix]
                                if at < 0 || v > best { best = v; at = iy * s.w + ix }
                            }
                        }
                        y[(p * s.oh + oy) * s.ow + ox] = best
                        winners.pointer[(p * s.oh + oy) * s.ow + ox] = Int32(at)
                    }
                }
            }
        }
        return (y, winners)
    }

    public func maxPoolGradient(_ g: Tensor, winners: IndexStorage, shape s: PoolShape, inputShape: [Int]) -> Tensor {
        var dx = filled(shape: inputShape, value: 0)
        dx.withMutableData { d in
            for i in 0..<g.count { d[(i / (s.oh * s.ow)) * s.h * s.w + Int(winners.pointer[i])] += g.storage.pointer[i] }
        }
        return dx
    }

    public func avgPool(_ x: Tensor, shape s: PoolShape, countIncludesPadding: Bool) -> Tensor {
        make([x.shape[0], x.shape[1], s.oh, s.ow]) { y in
            for p in 0..<s.planes {
                for oy in 0..<s.oh {
                    for ox in 0..<s.ow {
                        let rows = window(oy, stride: s.sh, before: s.pt, kernel: s.kh, size: s.h)
                        let cols = window(ox, stride: s.sw, before: s.pl, kernel: s.kw, size: s.w)
                        var acc: Float = 0
                        for iy in rows { for ix in cols { acc += x.storage.pointer[(p * s.h + iy) * s.w + ix] } }
                        y[(p * s.oh + oy) * s.ow + ox] = acc / Float(countIncludesPadding ? s.kh * s.kw : rows.count * cols.count)
                    }
                }
            }
        }
    }

    public func avgPoolGradient(_ g: Tensor, shape s: PoolShape, countIncludesPadding: Bool, inputShape: [Int]) -> Tensor {
        var dx = filled(shape: inputShape, value: 0)
        dx.withMutableData { d in
            for p in 0..<s.planes {
                for oy in 0..<s.oh {
                    for ox in 0..<s.ow {
                        let rows = window(oy, stride: s.sh, before: s.pt, kernel: s.kh, size: s.h)
                        let cols = window(ox, stride: s.sw, before: s.pl, kernel: s.kw, size: s.w)
                        let share = g.storage.pointer[(p * s.oh + oy) * s.ow + ox]
                            / Float(countIncludesPadding ? s.kh * s.kw : rows.count * cols.count)
                        for iy in rows { for ix in cols { d[(p * s.h + iy) * s.w + ix] += share } }
                    }
                }
            }
        }
        return dx
    }

    // MARK: - Normalisation

    /// Flat positions of channel `c` of x [N, C, …].
    func positions(_ x: Tensor, channel c: Int) -> [Int] {
        let (n, channels, hw) = (x.shape[0], x.shape[1], x.count / max(1, x.shape[0] * x.shape[1]))
        return (0..<n).flatMap { i in ((i * channels + c) * hw)..<((i * channels + c) * hw + hw) }
    }

    public func batchNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float, relu: Bool)
        -> (output: Tensor, mean: Tensor, variance: Tensor) {
        let c = x.shape[1]
        var means = [Float](repeating: 0, count: c), variances = [Float](repeating: 0, count: c)
        var y = filled(shape: x.shape, value: 0)
        y.withMutableData { out in
            for ch in 0..<c {
                let at = positions(x, channel: ch), values = at.map { Double(x.storage.pointer[$0]) }
                let mean = values.reduce(0, +) / Double(values.count)
                let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
                (means[ch], variances[ch]) = (Float(mean), Float(variance))
                let gamma = weight.map { $0.storage.pointer[ch] } ?? 1, beta = bias.map { $0.storage.pointer[ch] } ?? 0
                for (p, v) in zip(at, values) {
                    let normalised = gamma * Float((v - mean) / (variance + Double(epsilon)).squareRoot()) + beta
                    out[p] = relu ? Swift.max(normalised, 0) : normalised
                }
            }
        }
        return (y, hostTensor(shape: [c], scalars: means), hostTensor(shape: [c], scalars: variances))
    }

    public func batchNormGradient(_ g: Tensor, input x: Tensor, output y: Tensor, mean: Tensor, variance: Tensor,
                                  weight: Tensor?, epsilon: Float, relu: Bool) -> (input: Tensor, weight: Tensor, bias: Tensor) {
        let c = x.shape[1]
        let (sumG, sumGX) = batchNormGradientSums(g, input: x, output: relu ? y : nil, mean: mean)
        let sigmas = (0..<c).map { (variance.storage.pointer[$0] + epsilon).squareRoot() }
        let dGamma = hostTensor(shape: [c], scalars: (0..<c).map { sumGX.storage.pointer[$0] / sigmas[$0] })
        let count = Float(x.count / c)
        let dx = batchNormGradientApply(g, input: x, output: relu ? y : nil, mean: mean, variance: variance, weight: weight,
                                        sumG: sumG, sumGX: sumGX, count: count, epsilon: epsilon)
        return (dx, dGamma, sumG)
    }

    public func channelAffine(_ x: Tensor, scale: Tensor, shift: Tensor, relu: Bool) -> Tensor {
        let (c, hw) = (x.shape[1], x.count / max(1, x.shape[0] * x.shape[1]))
        return make(x.shape) { y in
            for i in 0..<x.count {
                let ch = (i / hw) % c, v = x.storage.pointer[i] * scale.storage.pointer[ch] + shift.storage.pointer[ch]
                y[i] = relu ? Swift.max(v, 0) : v
            }
        }
    }

    public func channelSums(_ x: Tensor, center: Tensor?) -> [Double] {
        (0..<x.shape[1]).map { ch in
            positions(x, channel: ch).reduce(0.0) { total, p in
                let v = Double(x.storage.pointer[p])
                guard let center else { return total + v }
                let d = v - Double(center.storage.pointer[ch])
                return total + d * d
            }
        }
    }

    /// g masked by the ReLU's output when there is one.
    func maskedGradient(_ g: Tensor, _ y: Tensor?, _ p: Int) -> Float {
        guard let y else { return g.storage.pointer[p] }
        return y.storage.pointer[p] > 0 ? g.storage.pointer[p] : 0
    }

    public func batchNormGradientSums(_ g: Tensor, input x: Tensor, output y: Tensor?, mean: Tensor) -> (Tensor, Tensor) {
        let c = x.shape[1]
        var sums = [Float](repeating: 0, count: c), products = [Float](repeating: 0, count: c)
        for ch in 0..<c {
            var s = 0.0, sx = 0.0
            for p in positions(x, channel: ch) {
                let gv = Double(maskedGradient(g, y, p))
                s += gv
                sx += gv * Double(x.storage.pointer[p] - mean.storage.pointer[ch])
            }
            (sums[ch], products[ch]) = (Float(s), Float(sx))
        }
        return (hostTensor(shape: [c], scalars: sums), hostTensor(shape: [c], scalars: products))
    }

    //   dx = γ/(M·σ) · (M·g − Σg − x̂·Σg·x̂),  x̂ = (x − μ)/σ,  Σg·x̂ = Σg·(x − μ)/σ
    public func batchNormGradientApply(_ g: Tensor, input x: Tensor, output y: Tensor?, mean: Tensor, variance: Tensor,
                                       weight: Tensor?, sumG: Tensor, sumGX: Tensor, count: Float, epsilon: Float) -> Tensor {
        var dx = filled(shape: x.shape, value: 0)
        dx.withMutableData { d in
            for ch in 0..<x.shape[1] {
                let sigma = (variance.storage.pointer[ch] + epsilon).squareRoot()
                let gamma = weight.map { $0.storage.pointer[ch] } ?? 1
                let (sg, sgxhat) = (sumG.storage.pointer[ch], sumGX.storage.pointer[ch] / sigma)
                for p in positions(x, channel: ch) {
                    let xhat = (x.storage.pointer[p] - mean.storage.pointer[ch]) / sigma
                    d[p] = gamma / (count * sigma) * (count * maskedGradient(g, y, p) - sg - xhat * sgxhat)
                }
            }
        }
        return dx
    }

    //   s = bias + α Σ_{|c'−c| ≤ r} x[c']²,  y = x·s^−β
    //   dx[c] = dy[c]·s[c]^−β − 2αβ·x[c]·Σ_{|c'−c| ≤ r} dy[c']·y[c']/s[c']
    public func localResponseNorm(_ x: Tensor, radius: Int, bias: Float, alpha: Float, beta: Float) -> (output: Tensor, scale: Tensor) {
        let (c, hw) = (x.shape[1], x.shape[2] * x.shape[3])
        let scale = make(x.shape) { s in
            for i in 0..<x.count {
                let (ch, base) = ((i / hw) % c, i - ((i / hw) % c) * hw)
                var acc: Float = 0
                for k in max(0, ch - radius)...min(c - 1, ch + radius) { let v = x.storage.pointer[base + k * hw]; acc += v * v }
                s[i] = bias + alpha * acc
            }
        }
        let y = make(x.shape) { y in for i in 0..<x.count { y[i] = x.storage.pointer[i] * powf(scale.storage.pointer[i], -beta) } }
        return (y, scale)
    }

    public func localResponseNormGradient(_ g: Tensor, input x: Tensor, output y: Tensor, scale: Tensor,
                                          radius: Int, alpha: Float, beta: Float) -> Tensor {
        let (c, hw) = (x.shape[1], x.shape[2] * x.shape[3])
        return make(x.shape) { d in
            for i in 0..<x.count {
                let (ch, base) = ((i / hw) % c, i - ((i / hw) % c) * hw)
                var acc: Float = 0
                for k in max(0, ch - radius)...min(c - 1, ch + radius) {
                    let j = base + k * hw
                    acc += g.storage.pointer[j] * y.storage.pointer[j] / scale.storage.pointer[j]
                }
                d[i] = g.storage.pointer[i] * powf(scale.storage.pointer[i], -beta) - 2 * alpha * beta * x.storage.pointer[i] * acc
            }
        }
    }

    // MARK: - Optimizer updates

    public func sgdStep(_ w: inout Tensor, gradient g: Tensor, momentum buffer: inout Tensor?, learningRate lr: Float,
                        weightDecay wd: Float, momentum mu: Float, nesterov: Bool, decoupled: Bool) {
        var velocity = buffer.map { $0.scalars } ?? []
        w.withMutableData { w in
            for i in 0..<w.count {
                var d = g.storage.pointer[i] + (decoupled ? 0 : wd * w[i])
                if buffer != nil {
                    velocity[i] = mu * velocity[i] + d
                    d = nesterov ? d + mu * velocity[i] : velocity[i]
                }
                w[i] -= lr * (decoupled ? d + wd * w[i] : d)
            }
        }
        if let old = buffer { buffer = hostTensor(shape: old.shape, scalars: velocity) }
    }

    public func adamStep(_ w: inout Tensor, gradient g: Tensor, m: inout Tensor, v: inout Tensor, learningRate lr: Float,
                         beta1: Float, beta2: Float, epsilon: Float, weightDecay wd: Float, decoupled: Bool,
                         correction1: Float, correction2: Float) {
        var (weights, first, second) = (w.scalars, m.scalars, v.scalars)
        for i in 0..<weights.count {
            var d = g.storage.pointer[i]
            if decoupled { weights[i] -= lr * wd * weights[i] } else { d += wd * weights[i] }
            first[i] = beta1 * first[i] + (1 - beta1) * d
            second[i] = beta2 * second[i] + (1 - beta2) * d * d
            weights[i] -= lr * (first[i] / correction1) / ((second[i] / correction2).squareRoot() + epsilon)
        }
        (w, m, v) = (hostTensor(shape: w.shape, scalars: weights), hostTensor(shape: m.shape, scalars: first),
                     hostTensor(shape: v.shape, scalars: second))
    }

    public func movingAverage(_ s: inout Tensor, toward x: Tensor, decay: Float) {
        s = hostTensor(shape: s.shape, scalars: zip(s.scalars, x.scalars).map { decay * $0 + (1 - decay) * $1 })
    }

    // MARK: - Initialisation

    func hostTensor(shape: [Int], scalars: [Float]) -> Tensor { scalars.withUnsafeBufferPointer { tensor(shape: shape, scalars: $0) } }

    public func tensor(shape: [Int], scalars: UnsafeBufferPointer<Float>) -> Tensor {
        make(shape) { y in for i in 0..<scalars.count { y[i] = scalars[i] } }
    }

    public func filled(shape: [Int], value: Float) -> Tensor {
        make(shape) { y in for i in 0..<shape.reduce(1, *) { y[i] = value } }
    }
}
