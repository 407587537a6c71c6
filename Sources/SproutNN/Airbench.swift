import SproutTensor

/// The network of Keller Jordan's airbench94: a frozen 2×2 whitening convolution
/// (initialised from training-patch statistics by `initializeWhitening`), three groups of
/// conv3×3 → maxpool → BN → GELU → conv3×3 → BN → GELU, a max-pool head and a linear
/// layer scaled by 1/9; identity-initialised convolutions and frozen batch-norm scales, as
/// in airbench94.
public final class Airbench: TrainingDataInitializable {
    public let whiten: Conv2D
    public let body: Sequential
    public var isTraining = true

    /// airbench94_muon's variant: the whitening bias trains (the recipe freezes it after its
    /// first epochs) and the head's weights are rescaled to unit standard deviation with the
    /// logits divided by the feature width, instead of airbench94's ×1/9.
    public let muonVariant: Bool

    public init(inChannels: Int = 3, classes: Int = 10, widths: [Int] = [64, 256, 256], whiteningWidth: Int = 2,
                muonVariant: Bool = false) {
        self.muonVariant = muonVariant
        // Every eigenvector of the patch covariance, with both signs: 2·C·k² channels.
        let whiteningChannels = 2 * inChannels * whiteningWidth * whiteningWidth
        // airbench94_muon keeps PyTorch's default (uniform) initial bias and trains it.
        whiten = Conv2D(inChannels: inChannels, outChannels: whiteningChannels, kernelSize: whiteningWidth,
                        weightInitializer: .zeros, biasInitializer: muonVariant ? nil : .zeros)
        whiten.weight.isTrainable = false
        whiten.bias?.isTrainable = muonVariant
        func group(_ i: Int, _ o: Int) -> [any Layer] {
            [Airbench.conv(i, o), MaxPool2D(kernelSize: 2), Airbench.batchNorm(o, fastBias: !muonVariant), GELU(),
             Airbench.conv(o, o), Airbench.batchNorm(o, fastBias: !muonVariant), GELU()]
        }
        body = Sequential {
            GELU()
            group(whiteningChannels, widths[0])
            group(widths[0], widths[1])
            group(widths[1], widths[2])
            MaxPool2D(kernelSize: 3)
            Flatten()
            Airbench.head(widths[2], classes, unitStd: muonVariant)
            Scale(muonVariant ? 1 / Float(widths[2]) : 1.0 / 9)
        }
    }

    /// The classifier, without bias; airbench94_muon rescales its initial weights to std 1.
    static func head(_ features: Int, _ classes: Int, unitStd: Bool) -> Linear {
        let head = Linear(inFeatures: features, outFeatures: classes, bias: false)
        if unitStd {
            let w = head.weight.value.scalars
            let mean = w.reduce(0, +) / Float(w.count)
            let std = (w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(w.count - 1)).squareRoot()
            head.weight.value = Tensor(shape: head.weight.shape, scalars: w.map { $0 / std })
        }
        return head
    }

    /// The whitening layer's bias, which the Muon recipe trains for its first epochs only.
    public var whiteningBias: Parameter? { muonVariant ? whiten.bias : nil }

    /// airbench's convolution: PyTorch's default initialisation, then the first `i` filters
    /// replaced by the identity (`dirac_`), so each block starts close to passing its input on.
    static func conv(_ i: Int, _ o: Int) -> Conv2D {
        let conv = Conv2D(inChannels: i, outChannels: o, kernelSize: 3, padding: .same, bias: false, weightInitializer: .torchDefault)
        var w = conv.weight.value
        w.withMutableData { p in
            for f in 0..<min(i, o) {
                for c in 0..<i { for k in 0..<9 { p[(f * i + c) * 9 + k] = c == f && k == 4 ? 1 : 0 } }
            }
        }
        conv.weight.value = w
        return conv
    }

    /// airbench's batch norm: scales frozen at 1; in airbench94 biases learn at 64× the
    /// learning rate with 1/64 the weight decay (the same shrink per step as every other
    /// parameter); the Muon recipe gives them their own optimizer group instead.
    static func batchNorm(_ features: Int, fastBias: Bool) -> BatchNorm2D {
        let bn = BatchNorm2D(features: features, momentum: 0.4, epsilon: 1e-12)
        bn.weight?.isTrainable = false
        if fastBias {
            bn.bias?.learningRateScale = 64
            bn.bias?.weightDecayScale = 1.0 / 64
        }
        return bn
    }

    public func forward(_ x: Tensor) -> Tensor { body.forward(whiten.forward(x)) }

    public var children: [(name: String, layer: any Layer)] { [("whiten", whiten), ("body", body)] }

    public func summaryRows(input: Tensor, prefix: String) -> (output: Tensor, rows: [SummaryRow]) {
        let (w, r1) = whiten.summaryRows(input: input, prefix: "whiten")
        let (y, r2) = body.summaryRows(input: w, prefix: "body")
        return (y, r1 + r2)
    }

    public func initialize(fromTrainingImages images: Tensor) { initializeWhitening(from: images) }

    /// Sets the whitening filters from `images` [N, C, H, W] (normalised as in training):
    /// with the covariance Σ of all k×k patches = V·diag(λ)·Vᵀ, the filters are
    /// ±vᵢ/√(λᵢ + ε), so the first layer's outputs are decorrelated with unit variance.
    public func initializeWhitening(from images: Tensor, epsilon: Float = 5e-4) {
        let k = whiten.weight.shape[2], c = images.shape[1]
        let d = c * k * k
        let (n, h, w) = (images.shape[0], images.shape[2], images.shape[3])
        var mean = [Double](repeating: 0, count: d)
        var cov = [Double](repeating: 0, count: d * d)
        var patch = [Double](repeating: 0, count: d)
        var count = 0.0
        images.withData { px in
            for b in 0..<n {
                for y in 0...(h - k) {
                    for x in 0...(w - k) {
                        var i = 0
                        for ch in 0..<c { for dy in 0..<k { for dx in 0..<k {
                            patch[i] = Double(px[((b * c + ch) * h + y + dy) * w + x + dx]); i += 1
                        } } }
                        for a in 0..<d {
                            mean[a] += patch[a]
                            for bb in a..<d { cov[a * d + bb] += patch[a] * patch[bb] }
                        }
                        count += 1
                    }
                }
            }
        }
        for a in 0..<d { mean[a] /= count }
        for a in 0..<d {
            for bb in a..<d {
                let v = cov[a * d + bb] / count - mean[a] * mean[bb]
                cov[a * d + bb] = v
                cov[bb * d + a] = v
            }
        }
        let (values, vectors) = symmetricEigen(cov, size: d)
        var filters = [Float](repeating: 0, count: 2 * d * d)
        for e in 0..<d {
            let scale = 1 / (values[e] + Double(epsilon)).squareRoot()
            for a in 0..<d {
                let v = Float(vectors[a * d + e] * scale)
                filters[e * d + a] = v
                filters[(d + e) * d + a] = -v
            }
        }
        whiten.weight.value = Tensor(shape: whiten.weight.shape, scalars: filters)
        if let bias = whiten.bias, !muonVariant { bias.value = Tensor.zeros(bias.shape) }
    }
}

/// Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations.
/// Returns eigenvalues (descending) and eigenvectors as the columns of a row-major matrix.
func symmetricEigen(_ matrix: [Double], size n: Int) -> (values: [Double], vectors: [Double]) {
    var a = matrix
    var v = [Double](repeating: 0, count: n * n)
    for i in 0..<n { v[i * n + i] = 1 }
    for _ in 0..<100 {
        var off = 0.0
        for p in 0..<n { for q in (p + 1)..<max(n, p + 1) where q < n { off += a[p * n + q] * a[p * n + q] } }
        if off < 1e-22 { break }
        for p in 0..<n {
            for q in (p + 1)..<max(n, p + 1) where q < n {
                let apq = a[p * n + q]
                if abs(apq) < 1e-300 { continue }
                let theta = (a[q * n + q] - a[p * n + p]) / (2 * apq)
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let cs = 1 / (t * t + 1).squareRoot(), sn = t * cs
                for k in 0..<n {
                    let akp = a[k * n + p], akq = a[k * n + q]
                    a[k * n + p] = cs * akp - sn * akq
                    a[k * n + q] = sn * akp + cs * akq
                }
                for k in 0..<n {
                    let apk = a[p * n + k], aqk = a[q * n + k]
                    a[p * n + k] = cs * apk - sn * aqk
                    a[q * n + k] = sn * apk + cs * aqk
                }
                for k in 0..<n {
                    let vkp = v[k * n + p], vkq = v[k * n + q]
                    v[k * n + p] = cs * vkp - sn * vkq
                    v[k * n + q] = sn * vkp + cs * vkq
                }
            }
        }
    }
    let order = (0..<n).sorted { a[$0 * n + $0] > a[$1 * n + $1] }
    let values = order.map { a[$0 * n + $0] }
    var vectors = [Double](repeating: 0, count: n * n)
    for (newCol, oldCol) in order.enumerated() { for r in 0..<n { vectors[r * n + newCol] = v[r * n + oldCol] } }
    return (values, vectors)
}
