import Testing
@testable import SproutTensor

/// Forward and backward against PyTorch (scripts/make_fixtures.py), 1e-4 relative.
@Suite struct PyTorchReferenceTests {
    func padding(_ v: JSONValue?) -> Padding {
        if let s = v?.string { return s == "same" ? .same : .valid }
        let p = v!.ints!
        return .explicit(top: p[0], left: p[1], bottom: p[2], right: p[3])
    }

    @Test func conv2d() throws {
        for c in try loadFixtures("conv2d") {
            let stride = Int(c.params["stride"]!.number!), groups = Int(c.params["groups"]!.number!)
            let pad = padding(c.params["padding"])
            let hasBias = c.inputs["bias"] != nil
            checkAgainstFixture(c, order: hasBias ? ["x", "weight", "bias"] : ["x", "weight"]) { xs in
                SproutTensor.conv2d(xs[0], weight: xs[1], bias: hasBias ? xs[2] : nil,
                                    stride: (stride, stride), padding: pad, groups: groups)
            }
        }
    }

    @Test func im2colPathMatchesPyTorchToo() throws {
        // The portable path must agree as well: it runs where oneDNN is missing or refuses a shape.
        for c in try loadFixtures("conv2d") {
            let x = c.inputs["x"]!.tensor, w = c.inputs["weight"]!.tensor, b = c.inputs["bias"]?.tensor
            let stride = Int(c.params["stride"]!.number!), groups = Int(c.params["groups"]!.number!)
            let p = CPUBackend.problem(convolutionShape(x, w, b, stride: (stride, stride), padding: padding(c.params["padding"]),
                                                        groups: groups))
            let y = Tensor(uninitializedShape: c.output.shape)
            let dx = Tensor(uninitializedShape: x.shape), dw = Tensor(uninitializedShape: w.shape)
            let db = b.map { Tensor(uninitializedShape: $0.shape) }
            let path = Im2col(p), dy = c.dy.tensor
            path.forward(x: x.storage.pointer, w: w.storage.pointer, b: b?.storage.pointer, y: y.storage.pointer)
            path.backwardData(dy: dy.storage.pointer, w: w.storage.pointer, dx: dx.storage.pointer)
            path.backwardWeights(x: x.storage.pointer, dy: dy.storage.pointer, dw: dw.storage.pointer, db: db?.storage.pointer)
            expectClose(y, c.output.tensor, atol: 1e-4, "\(c.name) im2col output")
            expectClose(dx, c.grads["x"]!.tensor, atol: 1e-4, "\(c.name) im2col dx")
            expectClose(dw, c.grads["weight"]!.tensor, atol: 1e-4, "\(c.name) im2col dw")
            if let db { expectClose(db, c.grads["bias"]!.tensor, atol: 1e-4, "\(c.name) im2col db") }
        }
    }

    @Test func poolingWithTensorFlowPadding() throws {
        for c in try loadFixtures("pool") {
            let k = Int(c.params["kernel"]!.number!), s = Int(c.params["stride"]!.number!)
            let pad = padding(c.params["padding"])
            let isMax = c.params["kind"]!.string == "max"
            checkAgainstFixture(c, order: ["x"]) { xs in
                isMax ? maxPool2d(xs[0], kernelSize: (k, k), stride: (s, s), padding: pad)
                      : avgPool2d(xs[0], kernelSize: (k, k), stride: (s, s), padding: pad)
            }
        }
    }

    @Test func batchNormTrainingAndEvaluation() throws {
        let cases = try loadFixtures("batchnorm")
        let train = try #require(cases.first { $0.name == "batchnorm_train" })
        checkAgainstFixture(train, order: ["x", "weight", "bias"]) { xs in
            batchNorm(xs[0], weight: xs[1], bias: xs[2], epsilon: 1e-5).output
        }
        // Running statistics after one step from (0, 1) with momentum 0.1.
        let x = train.inputs["x"]!.tensor
        let (_, mean, variance) = batchNorm(x, weight: nil, bias: nil)
        var rm = Tensor.zeros([5]), rv = Tensor.ones([5])
        updateRunningStatistics(runningMean: &rm, runningVariance: &rv, batchMean: mean, batchVariance: variance,
                                count: x.count / 5, momentum: 0.1)
        expectClose(rm, train.running_mean!.tensor, "running mean")
        expectClose(rv, train.running_var!.tensor, "running variance")

        let eval = try #require(cases.first { $0.name == "batchnorm_eval" })
        let m = eval.mean!.tensor, v = eval.var!.tensor
        checkAgainstFixture(eval, order: ["x", "weight", "bias"]) { xs in
            batchNormInference(xs[0], mean: m, variance: v, weight: xs[1], bias: xs[2], epsilon: 1e-5)
        }
    }

    @Test func localResponseNormMatchesTensorFlowFormula() throws {
        for c in try loadFixtures("lrn") {
            let r = Int(c.params["depth_radius"]!.number!)
            let bias = Float(c.params["bias"]!.number!), alpha = Float(c.params["alpha"]!.number!)
            let beta = Float(c.params["beta"]!.number!)
            checkAgainstFixture(c, order: ["x"]) { xs in
                localResponseNorm(xs[0], depthRadius: r, bias: bias, alpha: alpha, beta: beta)
            }
        }
    }

    @Test func crossEntropyWithSmoothingAndWeights() throws {
        for c in try loadFixtures("loss") {
            let labels = try #require(c.labels)
            let smoothing = Float(c.params["label_smoothing"]!.number!)
            let weights = c.class_weights?.tensor
            checkAgainstFixture(c, order: ["logits"]) { xs in
                crossEntropy(logits: xs[0], labels: labels, labelSmoothing: smoothing, classWeights: weights)
            }
        }
    }

    @Test func gelu() throws {
        for c in try loadFixtures("gelu") {
            let approximate = c.params["approximate"]!.bool!
            checkAgainstFixture(c, order: ["x"]) { xs in SproutTensor.gelu(xs[0], approximate: approximate) }
        }
    }
}

@Suite struct PyTorchReferenceLinalgSoftmaxPadTests {
    @Test func matmulAndLinear() throws {
        for c in try loadFixtures("linalg") {
            if c.name.hasPrefix("linear") {
                // F.linear(x, W, b) = x·Wᵀ + b, on any leading axes.
                checkAgainstFixture(c, order: ["x", "weight", "bias"]) { xs in matmul(xs[0], xs[1], transposeB: true) + xs[2] }
            } else {
                let ta = c.params["transpose_a"]!.bool!, tb = c.params["transpose_b"]!.bool!
                checkAgainstFixture(c, order: ["a", "b"]) { xs in matmul(xs[0], xs[1], transposeA: ta, transposeB: tb) }
            }
        }
    }

    @Test func softmaxAndLogSoftmax() throws {
        for c in try loadFixtures("softmax") {
            let axis = Int(c.params["axis"]!.number!), log = c.params["log"]!.bool!
            checkAgainstFixture(c, order: ["x"]) { xs in
                log ? logSoftmax(xs[0], alongAxis: axis) : softmax(xs[0], alongAxis: axis)
            }
        }
    }

    @Test func reflectAndZeroPadding() throws {
        for c in try loadFixtures("pad") {
            let p = c.params
            let mode: PaddingMode = p["mode"]!.string == "reflect" ? .reflect : .zero
            checkAgainstFixture(c, order: ["x"]) { xs in
                xs[0].padded(top: Int(p["top"]!.number!), bottom: Int(p["bottom"]!.number!),
                             left: Int(p["left"]!.number!), right: Int(p["right"]!.number!), mode: mode)
            }
        }
    }
}
