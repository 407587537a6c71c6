import Foundation
import Testing
@testable import SproutNN
import SproutTensor
import Synchronization

@Suite struct LayerTests {
    @Test func tfTutorialNetHasItsParameterCount() throws {
        seedEverything(0)
        let model = try Zoo.build("tf-cifar10", inputShape: [3, 24, 24], classes: 10)
        let s = summary(model, inputShape: [3, 24, 24])
        #expect(s.totalParameters == 1_068_298)
        #expect(s.rows.last?.outputShape == [10])
        #expect(s.rows.first { $0.name.contains("Conv2D(64→64") }?.flops == 2 * 64 * 12 * 12 * 64 * 25)
        // Weight decay only on the two hidden fully connected layers.
        let decayed = model.namedParameters.filter { $0.parameter.weightDecay != nil }.map(\.name)
        #expect(decayed == ["9.weight", "11.weight"])
    }

    @Test(arguments: ["mlp", "mnist-cnn", "mnist-bn", "lenet5", "tf-cifar10", "tf-cifar10-nolrn", "resnet9", "airbench", "resnet18-cifar"])
    func everyZooModelBuildsAndRuns(name: String) throws {
        seedEverything(1)
        let entry = try #require(Zoo.entries.first { $0.name == name })
        let width: Float = ["resnet9", "resnet18-cifar", "airbench"].contains(name) ? 0.125 : 1
        let model = try Zoo.build(name, inputShape: entry.defaultInput, classes: 7, width: width)
        model.eval()
        let y = withoutGradient { model(Tensor.zeros([2] + entry.defaultInput)) }
        #expect(y.shape == [2, 7])
        #expect(model.parameterCount > 0)
        let names = model.namedParameters.map(\.name)
        #expect(Set(names).count == names.count, "parameter names are unique")
    }

    /// airbench94's details: identity-initialised convolutions, frozen batch-norm scales,
    /// biases at 64× the learning rate and 1/64 the decay.
    @Test func airbenchInitialisesAndFreezesLikeAirbench94() throws {
        seedEverything(2)
        let model = Airbench(widths: [32, 64, 64])
        let convs = model.body.layers.compactMap { $0 as? Conv2D }
        let norms = model.body.layers.compactMap { $0 as? BatchNorm2D }
        #expect(convs.count == 6 && norms.count == 6)
        for conv in convs {
            let (o, i) = (conv.weight.shape[0], conv.weight.shape[1])
            let w = conv.weight.value.scalars
            #expect(o >= i)
            for f in 0..<min(i, o) { for c in 0..<i { for k in 0..<9 {
                #expect(w[(f * i + c) * 9 + k] == (c == f && k == 4 ? 1 : 0))
            } } }
            // The filters past the identity keep PyTorch's default initialisation.
            if o > i { #expect(w[(i * i * 9)...].contains { $0 != 0 }) }
        }
        for bn in norms {
            #expect(bn.weight?.isTrainable == false)
            #expect(bn.bias?.learningRateScale == 64 && bn.bias?.weightDecayScale == 1.0 / 64)
        }
    }

    @Test func unknownModelNamesTheZoo() {
        #expect(throws: ModelError.unknownModel("vgg", known: Zoo.names)) {
            try Zoo.build("vgg", inputShape: [3, 32, 32], classes: 10)
        }
    }

    @Test func namedParametersComposeDottedNames() {
        let model = Sequential {
            Conv2D(inChannels: 1, outChannels: 2, kernelSize: 3)
            BatchNorm2D(features: 2)
            Residual { Conv2D(inChannels: 2, outChannels: 2, kernelSize: 1, bias: false) }
        }
        #expect(model.namedParameters.map(\.name) == [
            "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "2.body.0.weight",
        ])
        #expect(model.trainableParameters.count == 5)
    }

    @Test func trainAndEvalModes() {
        let dropout = Dropout(probability: 0.5, seed: 3)
        let bn = BatchNorm2D(features: 2)
        let model = Sequential([dropout, bn])
        let x = Tensor(shape: [4, 2, 1, 1], scalars: [1, 2, 3, 4, 5, 6, 7, 8])
        model.eval()
        #expect(!dropout.isTraining && !bn.isTraining)
        // Evaluation: dropout is the identity and BN uses running statistics (0, 1).
        let y = withoutGradient { model(x) }
        #expect(zip(y.scalars, x.scalars).allSatisfy { abs($0 - $1 / (1 + 1e-5).squareRoot()) < 1e-4 })
        model.train()
        _ = withoutGradient { model(x) }
        #expect(bn.runningMean.value.scalars.allSatisfy { $0 != 0 }, "training updates running statistics")
    }

    @Test func diracConvolutionIsTheIdentity() {
        let conv = Conv2D(inChannels: 3, outChannels: 3, kernelSize: 3, padding: .same, bias: false, weightInitializer: .dirac)
        let x = Tensor.arange(to: 3 * 5 * 5).reshaped(to: [1, 3, 5, 5])
        // Exact on a direct convolution; within rounding where the Winograd kernels run it.
        #expect(zip(withoutGradient { conv(x) }.scalars, x.scalars).allSatisfy { abs($0 - $1) <= 1e-5 * 75 })
    }

    @Test func initializersHaveTheirScale() {
        var g = SeededGenerator(seed: 2)
        let glorot = Initializer.glorotUniform.make([200, 100], generator: &g)
        let bound = (6.0 / 300.0).squareRoot()
        #expect(glorot.scalars.allSatisfy { abs(Double($0)) <= bound })
        let he = Initializer.heNormal.make([64, 32, 3, 3], generator: &g)
        let std = he.variance().scalar.squareRoot()
        #expect(abs(std - (2 / Float(32 * 9)).squareRoot()) < 0.01)
        let tn = Initializer.truncatedNormal(std: 0.04).make([1000], generator: &g)
        #expect(tn.scalars.allSatisfy { abs($0) <= 0.08 })
    }

    @Test func gradientsReachEveryTrainableParameter() throws {
        seedEverything(4)
        let model = try Zoo.build("resnet9", inputShape: [3, 16, 16], classes: 3, width: 0.0625)
        let x = Tensor.ones([2, 3, 16, 16])
        let (_, grads) = valueWithGradient(of: model) { m in crossEntropy(logits: m(x), labels: [0, 2]) }
        #expect(grads.tensors.count == model.trainableParameters.count)
        for (p, g) in zip(grads.parameters, grads.tensors) { #expect(g.shape == p.value.shape) }
        #expect(grads.globalNorm > 0)
    }

    @Test func airbenchWhiteningDecorrelatesPatches() {
        seedEverything(5)
        let net = Airbench(inChannels: 3, classes: 10, widths: [8, 8, 8])
        var g = SeededGenerator(seed: 6)
        // Correlated channels: the same noise in all three, plus a little of its own.
        let base = Tensor.normal([64, 1, 8, 8], generator: &g)
        let images = Tensor.concatenate([base, base * 0.5 + Tensor.normal([64, 1, 8, 8], std: 0.1, generator: &g),
                                         base * -1 + Tensor.normal([64, 1, 8, 8], std: 0.2, generator: &g)], alongAxis: 1)
        net.initializeWhitening(from: images)
        let out = withoutGradient { net.whiten(images) }
        // The first 12 channels of the output have about unit variance.
        let perChannel = out.slice(0..<12, alongAxis: 1).variance(alongAxes: [0, 2, 3]).scalars
        for v in perChannel { #expect(abs(v - 1) < 0.2, "whitened variance \(v)") }
    }
}

@Suite struct ModelSpecFileTests {
    @Test func buildsAndInfersShapes() throws {
        let json = """
        {"layers": [
          {"type": "conv2d", "out": 8, "kernel": 3, "padding": "same"}, {"type": "batchnorm"}, {"type": "relu"},
          {"type": "maxpool", "kernel": 2},
          {"type": "residual", "layers": [{"type": "conv2d", "out": 8, "kernel": 3, "padding": 1}, {"type": "gelu"}]},
          {"type": "flatten"}, {"type": "dropout", "p": 0.1}, {"type": "linear", "out": 16}, {"type": "prelu"}, {"type": "linear"}
        ]}
        """
        seedEverything(1)
        let model = try ModelSpecFile.build(json: json, inputShape: [1, 12, 12], classes: 5)
        model.eval()
        #expect(withoutGradient { model(Tensor.zeros([3, 1, 12, 12])) }.shape == [3, 5])
        #expect(summary(model, inputShape: [1, 12, 12]).totalParameters == (8 * 9 + 8) + 16 + (8 * 8 * 9 + 8) + (288 * 16 + 16) + 16 + (16 * 5 + 5))
    }

    @Test func errorsSayWhereAndWhat() {
        #expect {
            _ = try ModelSpecFile.build(json: #"{"layers": [{"type": "conv2d", "out": 4, "kernel": 3}, {"type": "linear"}]}"#,
                                        inputShape: [1, 8, 8], classes: 2)
        } throws: { "\($0)".contains("layers[1]") && "\($0)".contains("flatten") }
        #expect {
            _ = try ModelSpecFile.build(json: #"{"layers": [{"type": "conv3d"}]}"#, inputShape: [1, 8, 8], classes: 2)
        } throws: { "\($0)".contains("unknown layer type \"conv3d\"") }
        #expect {
            _ = try ModelSpecFile.build(json: "[1, 2]", inputShape: [1, 8, 8], classes: 2)
        } throws: { "\($0)".contains("\"layers\" array") }
    }
}

/// A layer must not lose a parameter: what every layer lists (explicitly, to choose names
/// or order) must be exactly what reflection finds in its stored properties.
@Suite struct LayerMembershipTests {
    /// Every layer type of SproutNN, and each zoo model's whole tree.
    static func everyLayer() throws -> [any Layer] {
        var roots: [any Layer] = [
            Linear(inFeatures: 3, outFeatures: 2), Linear(inFeatures: 3, outFeatures: 2, bias: false),
            Conv2D(inChannels: 2, outChannels: 4, kernelSize: 3), Conv2D(inChannels: 2, outChannels: 4, kernelSize: 3, bias: false),
            MaxPool2D(kernelSize: 2), AvgPool2D(kernelSize: 2), GlobalAvgPool(), GlobalMaxPool(), Flatten(),
            Sequential { ReLU(); Identity() }, Residual { ReLU() }, Residual(shortcut: Identity()) { ReLU() },
            BasicBlock(inChannels: 2, outChannels: 4, stride: 2), BasicBlock(inChannels: 4, outChannels: 4),
            ReLU(), LeakyReLU(), PReLU(channels: 3), GELU(), ELU(), Sigmoid(), Tanh(), Softmax(), Scale(2), Identity(),
            BatchNorm2D(features: 3), BatchNorm2D(features: 3, affine: false), LocalResponseNorm(), Dropout(probability: 0.5),
            Airbench(widths: [8, 8, 8]),
        ]
        for entry in Zoo.entries {
            roots.append(try Zoo.build(entry.name, inputShape: entry.defaultInput, classes: 3, width: entry.name == "resnet18-cifar" ? 0.125 : 1))
        }
        var all: [any Layer] = []
        func walk(_ l: any Layer) { all.append(l); l.children.forEach { walk($0.layer) } }
        roots.forEach(walk)
        return all
    }

    static func mismatch(_ layer: any Layer) -> String? {
        let listed = Set(layer.ownParameters.map { ObjectIdentifier($0.parameter) })
        let found = Set(LayerReflection.parameters(of: layer).map { ObjectIdentifier($0.parameter) })
        let listedChildren = Set(layer.children.map { ObjectIdentifier($0.layer) })
        let foundChildren = Set(LayerReflection.children(of: layer).map { ObjectIdentifier($0.layer) })
        if listed != found { return "\(type(of: layer)) lists \(listed.count) parameters, its properties hold \(found.count)" }
        if listedChildren != foundChildren {
            return "\(type(of: layer)) lists \(listedChildren.count) children, its properties hold \(foundChildren.count)"
        }
        return nil
    }

    @Test func listedParametersAndChildrenAreWhatReflectionFinds() throws {
        let layers = try Self.everyLayer()
        #expect(layers.count > 100)
        for layer in layers {
            #expect(Self.mismatch(layer) == nil, "\(Self.mismatch(layer) ?? "")")
        }
    }

    final class ForgetfulLayer: Layer {
        let weight = Parameter(Tensor.zeros([2]))
        let scale = Parameter(Tensor.ones([2]))
        var isTraining = true
        func forward(_ x: Tensor) -> Tensor { x * weight.value * scale.value }
        var ownParameters: [(name: String, parameter: Parameter)] { [("weight", weight)] }   // forgets `scale`
    }

    final class UnlistedLayer: Layer {
        let gain = Parameter(Tensor.ones([2]))
        let inner = Linear(inFeatures: 2, outFeatures: 2)
        let heads: [any Layer] = [ReLU(), Linear(inFeatures: 2, outFeatures: 1)]
        var isTraining = true
        func forward(_ x: Tensor) -> Tensor { inner(x * gain.value) }
    }

    @Test func aForgottenParameterIsCaughtAndUnlistedOnesAreFound() {
        #expect(Self.mismatch(ForgetfulLayer()) == "ForgetfulLayer lists 1 parameters, its properties hold 2")
        // Without a list, reflection is the default: names are the property names.
        let layer = UnlistedLayer()
        #expect(layer.namedParameters.map(\.name) == ["gain", "inner.weight", "inner.bias", "heads.1.weight", "heads.1.bias"])
        #expect(layer.trainableParameters.count == 5)
    }
}

/// Synchronised batch norm through an explicit reducer, no process global: two layers in two
/// threads, each with half the batch and a reducer that sums across the pair, give the
/// statistics and gradients of one layer on the whole batch.
@Suite struct SynchronisedBatchNormTests {
    /// Sums the two threads' buffers: each call waits for the other side's matching call.
    final class PairReducer: StatisticsReducer, @unchecked Sendable {
        let condition = NSCondition()
        var pending: [Double]?, result: [Double]?, generation = 0

        func sumAcrossProcesses(_ values: UnsafeMutableBufferPointer<Double>) {
            condition.lock()
            defer { condition.unlock() }
            if let other = pending {
                let sum = zip(other, values).map { $0 + $1 }
                pending = nil
                result = sum
                generation += 1
                condition.broadcast()
                for i in values.indices { values[i] = sum[i] }
            } else {
                pending = Array(values)
                let mine = generation
                while generation == mine { condition.wait() }
                for i in values.indices { values[i] = result![i] }
            }
        }
    }

    @Test func twoHalvesWithAReducerMatchTheWholeBatch() throws {
        var g = SeededGenerator(seed: 3)
        let x = Tensor.normal([8, 3, 4, 4], generator: &g), dy = Tensor.normal([8, 3, 4, 4], generator: &g)
        let whole = BatchNorm2D(features: 3)
        let (_, wholeGrads) = valueWithGradient(of: whole) { m in (m(x) * dy).sum() }
        let reducer = PairReducer()
        nonisolated(unsafe) let halves = [BatchNorm2D(features: 3), BatchNorm2D(features: 3)]
        nonisolated(unsafe) var results: [Gradients?] = [nil, nil]
        let threads = (0..<2).map { r in
            Thread {
                halves[r].statisticsReducer = reducer
                let part = x.slice((4 * r)..<(4 * r + 4)), partDy = dy.slice((4 * r)..<(4 * r + 4))
                results[r] = valueWithGradient(of: halves[r]) { m in (m(part) * partDy).sum() }.gradients
            }
        }
        threads.forEach { $0.start() }
        while results.contains(where: { $0 == nil }) { usleep(1000) }
        // Each half's dγ, dβ are its own share; their sum is the whole batch's.
        for k in 0..<2 {
            let summed = results[0]!.tensors[k] + results[1]!.tensors[k]
            #expect(zip(summed.scalars, wholeGrads.tensors[k].scalars).allSatisfy { abs($0 - $1) < 1e-4 })
        }
        #expect(zip(halves[0].runningMean.value.scalars, whole.runningMean.value.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(halves[1].statisticsReducer != nil && whole.statisticsReducer == nil)
    }
}

@Suite struct LinearLeadingAxesTests {
    /// [B, T, in] → [B, T, out]: the same as applying the layer to every [in] row.
    @Test func linearAppliesToTheLastAxis() {
        seedEverything(3)
        let layer = Linear(inFeatures: 4, outFeatures: 3)
        var g = SeededGenerator(seed: 5)
        let x = Tensor.normal([2, 5, 4], generator: &g)
        let y = layer(x)
        #expect(y.shape == [2, 5, 3])
        let rows = layer(x.reshaped(to: [10, 4]))
        #expect(y.scalars == rows.scalars)
        #expect(layer(Tensor.normal([4], generator: &g)).shape == [3])
        let (_, grads) = valueWithGradient(of: layer) { m in (m(x) * m(x)).sum() }
        let (_, rowGrads) = valueWithGradient(of: layer) { m in (m(x.reshaped(to: [10, 4])) * m(x.reshaped(to: [10, 4]))).sum() }
        #expect(grads.tensors.map(\.scalars) == rowGrads.tensors.map(\.scalars))
    }
}

/// `GlobalRandom.withSeed`: a model built inside gets the weights of `seedEverything(seed)`
/// alone, while other threads draw from the process-wide generator.
@Suite struct ScopedSeedTests {
    @Test func aScopedSeedIgnoresOtherDrawsAndMatchesTheGlobalStream() {
        let stop = Atomic<Bool>(false)
        let noisy = Thread { while !stop.load(ordering: .relaxed) { _ = GlobalRandom.nextSeed() } }
        noisy.start()
        let a = GlobalRandom.withSeed(9) { Linear(inFeatures: 50, outFeatures: 40) }.weight.value.scalars
        let b = GlobalRandom.withSeed(9) { Linear(inFeatures: 50, outFeatures: 40) }.weight.value.scalars
        stop.store(true, ordering: .relaxed)
        #expect(a == b)
        var g = SeededGenerator(seed: 9)
        let bound = 1 / Float(50).squareRoot()
        let expected = Tensor.uniform([40, 50], low: -bound, high: bound, generator: &g).scalars
        #expect(a == expected, "the stream seedEverything(9) starts")
    }
}
