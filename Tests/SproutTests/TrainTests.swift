import Foundation
import Testing
import SproutData
import SproutNN
import SproutOptim
import SproutTensor
@testable import SproutTrain

@Suite struct CheckpointTests {
    func model() -> any Layer {
        GlobalRandom.withSeed(11) {
            Sequential {
                Conv2D(inChannels: 1, outChannels: 3, kernelSize: 3)
                BatchNorm2D(features: 3)
                Flatten()
                Linear(inFeatures: 3 * 6 * 6, outFeatures: 4)
            }
        }
    }

    @Test func safetensorsRoundTripIsExact() throws {
        let dir = TemporaryDirectory()
        let m = model()
        let path = dir.file("w.safetensors")
        try SafeTensors.write(m.namedParameters.map { ($0.name, $0.parameter.value) }, metadata: ["k": "v"], to: path)
        let (tensors, order, metadata) = try SafeTensors.read(path)
        #expect(metadata["k"] == "v")
        #expect(Set(order) == Set(m.namedParameters.map(\.name)))
        for (name, p) in m.namedParameters {
            #expect(tensors[name]?.shape == p.value.shape)
            #expect(tensors[name]?.scalars == p.value.scalars, "\(name) differs after the round trip")
        }
        // Header: u64 length, then JSON padded to 8 bytes.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let n = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(n % 8 == 0)
        #expect(bytes[8] == UInt8(ascii: "{"))
    }

    @Test func loadingValidatesEverything() throws {
        let dir = TemporaryDirectory()
        let m = model()
        let path = dir.file("w.safetensors")
        try SafeTensors.write(m.namedParameters.map { ($0.name, $0.parameter.value) }, to: path)
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))

        let truncated = dir.file("truncated.safetensors")
        FileManager.default.createFile(atPath: truncated, contents: Data(good.prefix(good.count - 10)))
        #expect {
            try loadWeights(into: model(), from: truncated)
        } throws: { error in
            guard case let CheckpointError.badTensor(p, tensor, reason) = error else { return false }
            return p == truncated && !tensor.isEmpty && reason.contains("outside")
        }

        let short = dir.file("short.safetensors")
        FileManager.default.createFile(atPath: short, contents: Data(good.prefix(5)))
        #expect(throws: CheckpointError.truncated(short, reason: "5 bytes, less than the 8-byte header length")) {
            try loadWeights(into: model(), from: short)
        }

        var garbage = good
        garbage[8] = UInt8(ascii: "!")
        let bad = dir.file("bad.safetensors")
        FileManager.default.createFile(atPath: bad, contents: Data(garbage))
        #expect(throws: CheckpointError.badHeader(bad, reason: "not JSON")) { try loadWeights(into: model(), from: bad) }

        // Another architecture: different Linear width.
        let other = Sequential {
            Conv2D(inChannels: 1, outChannels: 3, kernelSize: 3)
            BatchNorm2D(features: 3)
            Flatten()
            Linear(inFeatures: 3 * 6 * 6, outFeatures: 5)
        }
        #expect(throws: CheckpointError.shapeMismatch(path, tensor: "3.weight", expected: [5, 108], found: [4, 108])) {
            try loadWeights(into: other, from: path)
        }
        let fewer = Sequential { Conv2D(inChannels: 1, outChannels: 3, kernelSize: 3) }
        #expect(throws: CheckpointError.self) { try loadWeights(into: fewer, from: path) }
    }

    @Test func checkpointDirectoryKeepsTheNewestAndWritesTheManifestLast() throws {
        let dir = TemporaryDirectory()
        let m = model()
        let sgd = SGD(for: m, learningRate: 0.1, momentum: 0.9)
        let ckpts = CheckpointDirectory(dir.file("checkpoints"))
        let spec = ModelSpec(name: "custom", inputShape: [1, 8, 8], classes: 4)
        let prep = PreprocessingSpec(normalization: .unit, resize: 8, channels: 1)
        for step in [10, 20, 30] {
            try ckpts.save(model: m, optimizer: sgd, ema: nil, manifest: CheckpointManifest(
                step: step, epoch: 0, batchInEpoch: step, model: spec, classNames: ["a", "b", "c", "d"], preprocessing: prep,
                metrics: [:], hasEMA: false, weightsFile: "", stateFile: "", config: [:]), keep: 2)
        }
        #expect(ckpts.manifests().map { ($0 as NSString).lastPathComponent } == ["ckpt-00000020.json", "ckpt-00000030.json"])
        let files = try FileManager.default.contentsOfDirectory(atPath: ckpts.path)
        #expect(!files.contains { $0.contains("tmp") }, "no temporary files are left behind")
        let manifest = try CheckpointDirectory.readManifest(ckpts.latest()!)
        #expect(manifest.step == 30 && manifest.weightsFile == "ckpt-00000030.safetensors")
    }
}

@Suite struct LogTests {
    @Test func crc32cKnownValues() {
        #expect(crc32c(Array("123456789".utf8)) == 0xE306_9283)
        #expect(crc32c([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }

    @Test func tensorBoardRecordsAreFramedAndChecksummed() throws {
        let dir = TemporaryDirectory()
        let writer = try TensorBoardWriter(directory: dir.path)
        writer.add(scalars: [("loss", 0.5), ("val/accuracy", 0.25)], step: 7)
        writer.flush()
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: writer.path)))
        var offset = 0
        var records: [[UInt8]] = []
        while offset < bytes.count {
            let lengthBytes = Array(bytes[offset..<(offset + 8)])
            let length = lengthBytes.enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            let lengthCRC = bytes[(offset + 8)..<(offset + 12)].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
            #expect(lengthCRC == maskedCRC32C(lengthBytes))
            let data = Array(bytes[(offset + 12)..<(offset + 12 + length)])
            let dataCRC = bytes[(offset + 12 + length)..<(offset + 16 + length)].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
            #expect(dataCRC == maskedCRC32C(data))
            records.append(data)
            offset += 16 + length
        }
        #expect(records.count == 2)
        #expect(String(decoding: records[0], as: UTF8.self).contains("brain.Event:2"))
        // Event: wall_time (field 1, fixed64), step (field 2, varint 7), summary (field 5).
        #expect(records[1][0] == 0x09 && records[1][9] == 0x10 && records[1][10] == 7 && records[1][11] == 0x2A)
        #expect(String(decoding: records[1], as: UTF8.self).contains("val/accuracy"))
    }

    @Test func jsonlLines() throws {
        let dir = TemporaryDirectory()
        let writer = try JSONLWriter(path: dir.file("m.jsonl"))
        writer.add(["loss": 1.5], step: 1)
        writer.add(["loss": 0.5, "acc": 0.9], step: 2)
        writer.flush()
        let lines = try String(contentsOfFile: dir.file("m.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        let second = try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as! [String: Any]
        #expect(second["step"] as? Int == 2 && second["acc"] as? Double == 0.9)
    }
}

@Suite struct TrainerTests {
    /// A real learning run of a few seconds: a small CNN on 600 real Fashion-MNIST images
    /// (or, without the Debian package, a generated dataset, saying so).
    @Test(.tags(.slow)) func lossFallsAndAccuracyRisesOnRealImages() throws {
        let train: ImageDataset, test: ImageDataset
        if RealData.exists(RealData.fashionMNIST) {
            train = try MNIST.load(directory: RealData.fashionMNIST, split: .train, fashion: true).subset(0..<600)
            test = try MNIST.load(directory: RealData.fashionMNIST, split: .test, fashion: true).subset(0..<300)
        } else {
            print("Fashion-MNIST not installed: learning test runs on a generated dataset")
            (train, test) = bandsDataset(count: 900, size: 28).splittingLast(300)
        }
        // Its own generator: concurrent tests drawing from the global one would change the weights.
        let model = GlobalRandom.withSeed(21) {
            Sequential {
                Conv2D(inChannels: 1, outChannels: 8, kernelSize: 3, stride: 2, padding: .same); ReLU()
                Conv2D(inChannels: 8, outChannels: 16, kernelSize: 3, stride: 2, padding: .same); ReLU()
                GlobalAvgPool()
                Linear(inFeatures: 16, outFeatures: train.classCount)
            }
        }
        let loader = DataLoader(dataset: train, batchSize: 50, shuffle: true, seed: 1, normalization: .perImageStandardization)
        let eval = DataLoader(dataset: test, batchSize: 100, normalization: .perImageStandardization)
        let trainer = Trainer(model: model, optimizer: Adam(for: model, learningRate: 0.01))
        let before = trainer.evaluate(eval)
        try trainer.fit(loader, validation: eval, epochs: 6)
        let after = try #require(trainer.lastEvaluation)
        #expect(after.loss < before.loss * 0.7, "loss \(before.loss) → \(after.loss)")
        #expect(after.top1 > 0.5, "accuracy \(after.top1) should be far above chance (0.1)")
        #expect(trainer.history.count == 6)
        let trainLoss = trainer.history.compactMap { $0["train/loss"] }
        #expect(trainLoss.last! < trainLoss.first!)
    }

    @Test func nonFiniteLossStopsTrainingAndKeepsTheLastGoodCheckpoint() throws {
        let data = bandsDataset(count: 40)
        let model = GlobalRandom.withSeed(3) { Sequential { Flatten(); Linear(inFeatures: 64, outFeatures: 4) } }
        let trainer = Trainer(model: model, optimizer: SGD(for: model, learningRate: 0.1))
        let dir = TemporaryDirectory()
        let ckpt = CheckpointCallback(directory: CheckpointDirectory(dir.path), everySteps: 1) { t in
            CheckpointManifest(step: t.step, epoch: t.epoch, batchInEpoch: t.batchInEpoch,
                               model: ModelSpec(name: "custom", inputShape: [1, 8, 8], classes: 4), classNames: data.classNames,
                               preprocessing: PreprocessingSpec(normalization: .unit, resize: 8, channels: 1),
                               metrics: [:], hasEMA: false, weightsFile: "", stateFile: "", config: [:])
        }
        // Divergence after the third step, as an exploding run would produce.
        let diverge = Diverge(after: 3, parameter: model.trainableParameters[0])
        trainer.callbacks = [ckpt, diverge]
        #expect {
            try trainer.fit(DataLoader(dataset: data, batchSize: 10), epochs: 5)
        } throws: { error in
            guard case let TrainingError.nonFiniteLoss(step, _, _) = error else { return false }
            return step >= 1
        }
        #expect(trainer.failed)
        let latest = try #require(CheckpointDirectory(dir.path).latest())
        let manifest = try CheckpointDirectory.readManifest(latest)
        // Checkpoint callbacks run before the divergence callback at step 3, so the weights of
        // step 3 were saved while still finite; nothing after the failure was written.
        #expect(manifest.step == 3 && trainer.step == 3)
        // The kept checkpoint holds finite weights.
        let (tensors, _, _) = try SafeTensors.read(dir.path + "/" + manifest.weightsFile)
        #expect(tensors.values.allSatisfy { $0.scalars.allSatisfy(\.isFinite) })
    }
}

final class Diverge: TrainingCallback {
    let after: Int
    let parameter: Parameter
    init(after: Int, parameter: Parameter) { (self.after, self.parameter) = (after, parameter) }
    func batchEnd(_ trainer: Trainer, step: Int, logs: [String: Double]) {
        if step == after { parameter.value = Tensor(shape: parameter.value.shape, repeating: .nan) }
    }
}

@Suite struct ResumeTests {
    /// A run stopped and resumed ends with the same weights, bit for bit, as one never
    /// stopped: same data order and augmentation, optimizer state, schedule, EMA and dropout.
    @Test func stoppedAndResumedEqualsUninterrupted() throws {
        let data = bandsDataset(count: 64, size: 8)
        // Other tests draw from the global generator concurrently, so the initial weights are
        // fixed explicitly instead of through seedEverything.
        func makeModel() -> Sequential {
            Sequential {
                Conv2D(inChannels: 1, outChannels: 4, kernelSize: 3, padding: .same)
                BatchNorm2D(features: 4); ReLU()
                Dropout(probability: 0.3, seed: 99)
                Flatten()
                Linear(inFeatures: 4 * 8 * 8, outFeatures: 4)
            }
        }
        let initial = makeModel().namedParameters.map(\.parameter.value)
        func makeTrainer() -> Trainer {
            let model = makeModel()
            for ((_, p), v) in zip(model.namedParameters, initial) { p.value = v }
            let t = Trainer(model: model, optimizer: SGD(for: model, learningRate: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3))
            t.schedule = PiecewiseLinear.oneCycle(totalSteps: 24, peak: 0.05)
            t.ema = ExponentialMovingAverage(model: model, decay: 0.99)
            t.objective = Classification(labelSmoothing: 0.1)
            return t
        }
        func loader() -> DataLoader {
            DataLoader(dataset: data, batchSize: 8, shuffle: true, dropLast: true, seed: 7,
                       augmentation: Augmentation(randomCropPadding: 1, horizontalFlip: true))
        }
        let straight = makeTrainer()
        try straight.fit(loader(), epochs: 3)

        let dir = TemporaryDirectory()
        let ckpts = CheckpointDirectory(dir.path)
        let first = makeTrainer()
        let saver = CheckpointCallback(directory: ckpts, everySteps: 100) { t in
            CheckpointManifest(step: t.step, epoch: t.epoch, batchInEpoch: t.batchInEpoch,
                               model: ModelSpec(name: "custom", inputShape: [1, 8, 8], classes: 4), classNames: data.classNames,
                               preprocessing: PreprocessingSpec(normalization: .unit, resize: 8, channels: 1),
                               metrics: [:], hasEMA: true, weightsFile: "", stateFile: "", config: [:])
        }
        first.callbacks = [saver]
        // Stop in the middle of the second epoch (step 11 of 24).
        try first.fit(loader(), epochs: 3, maxSteps: 11)
        #expect(first.step == 11)

        let resumed = makeTrainer()
        try resumed.resume(fromManifest: try #require(ckpts.latest()))
        #expect(resumed.step == 11 && resumed.epoch == 1 && resumed.batchInEpoch == 3)
        try resumed.fit(loader(), epochs: 3)
        #expect(resumed.step == straight.step)
        for ((name, a), (_, b)) in zip(straight.model.namedParameters, resumed.model.namedParameters) {
            #expect(a.value.scalars == b.value.scalars, "\(name) differs after resuming")
        }
        #expect(straight.ema!.shadow["5.weight"]!.scalars == resumed.ema!.shadow["5.weight"]!.scalars)
    }
}

/// Test-time augmentation averages logits of transformed copies.
@Suite struct TestTimeAugmentationTests {
    /// Per-epoch validation stays plain (one pass); the final one adds the augmented views.
    @Test func onlyTheFinalEvaluationIsAugmented() throws {
        let (train, test) = bandsDataset(count: 60).splittingLast(20)
        let model = GlobalRandom.withSeed(4) { Sequential { Flatten(); Linear(inFeatures: 64, outFeatures: train.classCount) } }
        let trainer = Trainer(model: model, optimizer: SGD(for: model, learningRate: 0.1))
        trainer.testTimeAugmentation = .flip
        let validation = DataLoader(dataset: test, batchSize: 10, normalization: .perImageStandardization)
        try trainer.fit(DataLoader(dataset: train, batchSize: 10, normalization: .perImageStandardization), validation: validation, epochs: 3)
        #expect(trainer.history.map { $0["val_tta/accuracy"] != nil } == [false, false, true])
        #expect(trainer.history.allSatisfy { $0["val/accuracy"] != nil })
        let final = try #require(trainer.lastEvaluation)
        #expect(final.top1 == trainer.evaluate(validation).top1)
        #expect(final.loss == trainer.evaluate(validation).loss)
        #expect(trainer.history.last?["val_tta/loss"] == final.loss)
    }

    /// A "model" that reads one pixel: its logits show which copies were averaged.
    final class Probe: Layer {
        var isTraining = false
        func forward(_ x: Tensor) -> Tensor { x.slice(0..<1, alongAxis: 2).slice(0..<1, alongAxis: 3).reshaped(to: [x.shape[0], x.shape[1]]) }
    }

    @Test func flipAndTranslateAverages() {
        // One image, one channel, 3×3: 0 1 2 / 3 4 5 / 6 7 8.
        let x = Tensor(shape: [1, 1, 3, 3], scalars: (0..<9).map(Float.init))
        let probe = Probe()
        #expect(TestTimeAugmentation.none.logits(probe, x).scalars == [0])
        // Top-left of x (0) and of its mirror (2).
        #expect(TestTimeAugmentation.flip.logits(probe, x).scalars == [1])
        // Reflect-padded copies shifted by ±1: top-left 4 (up-left; mirror 4) and 4 (down-right; mirror 4).
        let expected: Float = 0.5 * 1 + 0.25 * (4 + 4)
        #expect(TestTimeAugmentation.flipTranslate.logits(probe, x).scalars == [expected])
    }
}

/// The trainer is task-agnostic: a dataset of its own kind (the `Dataset` protocol), targets
/// that are not class labels, and an objective given as a value.
@Suite struct ObjectiveTests {
    /// 8×8 grey images with a bright top half for bit 0 and a bright left half for bit 1.
    struct HalvesDataset: Dataset {
        let count = 64, channels = 1, height = 8, width = 8
        let classNames = ["top", "left"]
        func bits(_ i: Int) -> (Bool, Bool) { (i % 2 == 1, (i / 2) % 2 == 1) }
        func withPixels<R>(ofSample index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
            let (top, left) = bits(index)
            let pixels = (0..<64).map { p -> UInt8 in
                let (y, x) = (p / 8, p % 8)
                return UInt8(40 + (top && y < 4 ? 100 : 0) + (left && x < 4 ? 100 : 0) + (index * 7 + p) % 13)
            }
            return try pixels.withUnsafeBufferPointer(body)
        }
        func targets(_ indices: [Int]) -> Targets {
            .multiLabel(Tensor(shape: [indices.count, 2], scalars: indices.flatMap { i -> [Float] in
                let (t, l) = bits(i); return [t ? 1 : 0, l ? 1 : 0] }))
        }
    }

    /// Independent sigmoid outputs, squared error; "exact" counts samples with both bits right.
    struct MultiLabel: Objective {
        func target(_ batch: Batch) -> Tensor {
            guard case .multiLabel(let t) = batch.targets else { preconditionFailure("multi-label targets expected") }
            return t
        }
        func loss(output: Tensor, batch: Batch) -> Tensor { mseLoss(sigmoid(output), target(batch)) }
        func metricSums(output: Tensor, batch: Batch) -> [String: Double] {
            let p = output.scalars, t = target(batch).scalars
            return ["exact": Double((0..<batch.count).filter { i in (0..<2).allSatisfy { (p[2 * i + $0] > 0) == (t[2 * i + $0] > 0.5) } }.count)]
        }
        func evaluate(_ model: any Layer, on loader: DataLoader, testTimeAugmentation: TestTimeAugmentation) -> Evaluation {
            var exact = 0.0, loss = 0.0, n = 0
            withoutGradient {
                for batch in loader.epoch(0) {
                    let out = model(batch.images)
                    exact += metricSums(output: out, batch: batch)["exact"]!
                    loss += Double(self.loss(output: out, batch: batch).scalar) * Double(batch.count)
                    n += batch.count
                }
            }
            return Evaluation(count: n, loss: loss / Double(n), top1: exact / Double(n), top5: 0, confusion: [], classNames: [])
        }
    }

    @Test func aMultiLabelObjectiveTrainsOnItsOwnDataset() throws {
        let model = GlobalRandom.withSeed(4) {
            Sequential { Flatten(); Linear(inFeatures: 64, outFeatures: 16); ReLU(); Linear(inFeatures: 16, outFeatures: 2) }
        }
        let loader = DataLoader(dataset: HalvesDataset(), batchSize: 16, shuffle: true, seed: 2)
        #expect(loader.batch(epoch: 0, index: 0).targets.count == 16)
        let trainer = Trainer(model: model, optimizer: Adam(for: model, learningRate: 0.01))
        trainer.objective = MultiLabel()
        let before = trainer.evaluate(loader)
        try trainer.fit(loader, validation: loader, epochs: 30)
        let after = try #require(trainer.lastEvaluation)
        #expect(after.loss < before.loss * 0.3, "loss \(before.loss) → \(after.loss)")
        #expect(after.top1 == 1, "exact matches \(after.top1)")
        #expect(trainer.history.last?["train/exact"] ?? 0 > 0.9)
    }
}

/// A training run and its directory as library types: what `sprout train`, `eval`,
/// `predict`, `export` and `serve` use.
@Suite struct TrainingRunTests {
    @Test func aRunTrainsWritesItsDirectoryAndResolvesCheckpoints() throws {
        let dir = TemporaryDirectory()
        var config = RunConfiguration()
        config.dataset = .folder
        config.dataDir = try CLITests().photoFolder(dir)
        config.model = "mlp"
        config.epochs = 2
        config.batchSize = 8
        config.optimizer = .adam
        config.learningRate = 0.003
        config.validationSplit = 6
        config.checkpointEverySeconds = nil
        let directory = RunDirectory(dir.file("run"))
        let run = try TrainingRun(configuration: config, directory: directory)
        #expect(!FileManager.default.fileExists(atPath: directory.path), "nothing is written before start")
        #expect(run.data.train.count == 30 && run.data.validation.count == 6 && run.spec.inputShape == [3, 32, 32])
        #expect(try run.start(resuming: false) == nil)
        let outcome = try run.fit()
        #expect(outcome.steps == 6 && !outcome.stopped && outcome.evaluation != nil)
        #expect(try directory.configuration() == config)
        // One checkpoint per epoch: latest, best (highest val/accuracy, the later on ties), by step, by path.
        let manifests = directory.checkpoints.manifests()
        #expect(manifests.count == 2)
        #expect(try directory.manifestPath(.latest) == manifests.last)
        #expect(try directory.manifestPath(.init("3")) == manifests.first)
        #expect(try manifests.contains(directory.manifestPath(.best)))
        #expect(RunDirectory.CheckpointChoice("best") == .best && RunDirectory.CheckpointChoice(nil) == .latest)
        #expect(throws: CheckpointError.self) { try directory.manifestPath(.step(99)) }
        let (loaded, usesEMA) = try directory.load(.latest)
        #expect(loaded.manifest.step == 6 && !usesEMA && loaded.manifest.classNames == ["blue", "green", "red"])
        // Resuming the same directory continues from its newest checkpoint.
        var more = config
        more.epochs = 3
        let resumed = try TrainingRun(configuration: more, directory: directory)
        #expect(try resumed.start(resuming: true)?.manifest.step == 6)
        #expect(try resumed.fit().steps == 3)
        #expect(throws: RunError.self) { try RunDirectory(dir.file("nope")).configuration() }
    }
}
