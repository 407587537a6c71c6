import Foundation
import Testing
@testable import SproutData
@testable import SproutNN
@testable import SproutTrain
import SproutTensor

/// The streaming photo path: file lists, random resized crops from full-size photos, the
/// 256 → 224 evaluation view, worker threads, bad files met while streaming.
@Suite struct PhotoPipelineTests {
    /// A JPEG whose pixel (x, y) is (x, y, 255 − x) mod 256, so positions can be read back.
    static func gradient(width: Int, height: Int) -> DecodedImage {
        var px = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height { for x in 0..<width { px[(y * width + x) * 3] = UInt8(x % 256); px[(y * width + x) * 3 + 1] = UInt8(y % 256); px[(y * width + x) * 3 + 2] = UInt8(255 - x % 256) } }
        return DecodedImage(width: width, height: height, channels: 3, pixels: px)
    }

    /// Holds decoded images (as a pack does), so resampling is tested without JPEG loss.
    struct Decoded: PhotoSource {
        let images: [DecodedImage]
        var count: Int { images.count }
        var classNames: [String] { ["a"] }
        var labels: [Int32] { [Int32](repeating: 0, count: images.count) }
        func name(of index: Int) -> String { "image \(index)" }
        func encoded(_ index: Int) throws -> [UInt8] { [] }
        func decoded(_ index: Int) throws -> DecodedImage? { images[index] }
        func subset(indices: [Int]) -> any PhotoSource { Decoded(images: indices.map { images[$0] }) }
    }

    func makeFolder(_ root: String, classes: [String: Int], size: (Int, Int) = (120, 90)) throws {
        for (name, count) in classes {
            let dir = root + "/" + name
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for i in 0..<count {
                let g = Self.gradient(width: size.0 + i, height: size.1)
                let jpeg = try ImageWriter.encodeJPEG(interleaved: g.pixels, width: g.width, height: g.height, pixels: .rgb)
                _ = FileManager.default.createFile(atPath: "\(dir)/img \(i).jpg", contents: Data(jpeg))
            }
        }
    }

    @Test func theEvaluationViewIsResizeThenCentreCrop() throws {
        // 256×300 at resize 256 → the centre 224×224 at scale 1: an exact copy of those pixels.
        let image = Self.gradient(width: 256, height: 300)
        let photos = PhotoDataset(source: Decoded(images: [image]), size: 224, resize: 256)
        let px = try photos.evaluationPixels(0)
        let (x0, y0) = (16, 38)
        for (x, y) in [(0, 0), (223, 0), (100, 57), (223, 223)] {
            #expect(px[y * 224 + x] == UInt8(x + x0), "red at (\(x), \(y))")
            #expect(px[224 * 224 + y * 224 + x] == UInt8((y + y0) % 256), "green at (\(x), \(y))")
        }
        // Twice the size: the same view, averaged 2×2 (a box filter, not skipped pixels).
        let big = Self.gradient(width: 512, height: 600)
        let half = try PhotoDataset(source: Decoded(images: [big]), size: 224, resize: 256).evaluationPixels(0)
        // Output x = 10 → reduced column 26 → source columns 52 and 53, mean 52.5.
        let expected = 53, found = Int(half[10 * 224 + 10])
        #expect(abs(found - expected) <= 1, "red \(found)")
    }

    @Test func randomResizedCropsStayInsideAndFollowTheSeed() {
        var g = SeededGenerator(seed: 5)
        var areas: [Double] = []
        for _ in 0..<500 {
            let c = PhotoDataset.randomResizedCrop(width: 640, height: 480, .torchvision, &g)
            #expect(c.x >= 0 && c.y >= 0 && c.x + c.w <= 640 && c.y + c.h <= 480)
            let ratio = c.w / c.h
            #expect(ratio >= 0.74 && ratio <= 1.35 || c.w == 640 || c.h == 480)
            areas.append(c.w * c.h / (640 * 480))
        }
        #expect(areas.min()! < 0.15 && areas.max()! > 0.85, "the area spans torchvision's 8–100%")
        var a = SeededGenerator(seed: 9), b = SeededGenerator(seed: 9)
        #expect(PhotoDataset.randomResizedCrop(width: 300, height: 200, .torchvision, &a)
                == PhotoDataset.randomResizedCrop(width: 300, height: 200, .torchvision, &b))
    }

    @Test func aFolderStreamsTheSameBatchesWithAnyNumberOfWorkers() throws {
        let dir = TemporaryDirectory()
        try makeFolder(dir.path, classes: ["daisy": 7, "rose": 5])
        _ = FileManager.default.createFile(atPath: dir.path + "/rose/.hidden.jpg", contents: Data([1]))
        _ = FileManager.default.createFile(atPath: dir.path + "/rose/readme.txt", contents: Data("x".utf8))
        let folder = try PhotoFolder.index(root: dir.path)
        #expect(folder.count == 12 && folder.classNames == ["daisy", "rose"] && folder.classCounts == [7, 5])
        #expect(folder.files.first == "img 0.jpg")
        let photos = PhotoDataset(source: folder, size: 32)
        func epoch(workers: Int) -> [[Float]] {
            let loader = DataLoader(dataset: photos, batchSize: 4, shuffle: true, seed: 3, augmentation: .photo,
                                    normalization: .meanStd(mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]), prefetch: 2, workers: workers)
            return loader.epoch(1).map { #expect($0.images.shape == [4, 3, 32, 32]); return $0.images.scalars }
        }
        let one = epoch(workers: 1)
        #expect(one.count == 3)
        #expect(one == epoch(workers: 3), "order and augmentation come from (seed, epoch, index) alone")
        let flat = one.flatMap { $0 }
        #expect(flat.allSatisfy(\.isFinite) && Set(flat).count > 100)
    }

    @Test func aCorruptPhotoMetWhileStreamingIsNamedAndReplaced() throws {
        let dir = TemporaryDirectory()
        try makeFolder(dir.path, classes: ["a": 3, "b": 3])
        let bad = dir.path + "/b/img 1.jpg"
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: bad)))
        _ = FileManager.default.createFile(atPath: bad, contents: Data(bytes.prefix(bytes.count / 3)))
        let loader = DataLoader(dataset: PhotoDataset(source: try PhotoFolder.index(root: dir.path), size: 24), batchSize: 6)
        let batches = Array(loader.epoch(0))
        #expect(batches.count == 1 && batches[0].images.shape == [6, 3, 24, 24])
        #expect(loader.failures.count == 1 && loader.failures[0].contains("img 1.jpg"), "\(loader.failures)")
    }

    @Test func aPackHoldsEveryPhotoReducedAndKeepsTheSplits() throws {
        let dir = TemporaryDirectory()
        try makeFolder(dir.path + "/train", classes: ["a": 4, "b": 3], size: (120, 90))
        try makeFolder(dir.path + "/val", classes: ["a": 1, "b": 2], size: (120, 90))
        _ = FileManager.default.createFile(atPath: dir.path + "/train/b/broken.jpg", contents: Data([0xFF, 0xD8, 0xFF, 0xE0, 1, 2]))
        let output = dir.file("photos.pack")
        let header = try PhotoPack.write(folder: dir.path, size: 45, to: output, threads: 2)
        #expect(header.count == 10 && header.skipped.count == 1 && header.skipped[0].contains("broken.jpg"))
        #expect(PhotoPack.isPack(output) && !FileManager.default.fileExists(atPath: output + ".partial"))
        let pack = try PhotoPack.open(output)
        #expect(pack.split(0).count == 7 && pack.split(1).count == 3 && pack.classNames == ["a", "b"])
        #expect(pack.split(1).classCounts == [1, 2])
        let first = try #require(try pack.decoded(0))
        #expect(first.height == 45 && first.width == 60, "120×90 with its shorter side reduced to 45")
        // The gradient survives: red grows along x (120 px → 60: two source columns per pixel).
        #expect(abs(Int(first.pixels[3 * 30]) - 61) <= 2)
        // Through a run: the pack's splits, streamed like a folder.
        var config = RunConfiguration()
        config.dataset = .folder
        config.dataDir = output
        config.model = "resnet18"
        config.imageSize = 32
        let data = try RunData.load(config)
        #expect(data.streams && data.train.count == 7 && data.validation.count == 3)
        let batch = DataLoader(dataset: data.train, batchSize: 7, augmentation: data.augmentation).batch(epoch: 0, index: 0)
        #expect(batch.images.shape == [7, 3, 32, 32] && batch.labels == [0, 0, 0, 0, 1, 1, 1])
        // A damaged pack is an error naming it.
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))
        _ = FileManager.default.createFile(atPath: output, contents: Data(bytes.prefix(bytes.count - 5)))
        #expect(throws: DatasetError.self) { _ = try PhotoPack.open(output) }
    }

    @Test func aPhotoModelRunStreamsTheFolderWithImageNetStatistics() throws {
        let dir = TemporaryDirectory()
        try makeFolder(dir.path, classes: ["a": 6, "b": 4])
        var config = RunConfiguration()
        config.dataset = .folder
        config.dataDir = dir.path
        config.model = "mobilenet-v2"
        config.imageSize = 64
        config.validationFraction = 0.2
        let data = try RunData.load(config)
        #expect(data.streams && data.modelInput == [3, 64, 64])
        #expect(data.train.count == 8 && data.validation.count == 2)
        #expect(data.preprocessing.mean == Zoo.InputPreparation.imageNetMean && data.preprocessing.photo == true)
        #expect(data.preprocessing.resize == 73, "64 · 256/224")
        #expect(data.augmentation.resizedCrop == .torchvision)
    }
}

/// The 224-px zoo against the published figures and names.
@Suite struct ImageNetZooTests {
    // Parameter counts of torchvision 0.2x's models (and timm's tf_efficientnet_lite0);
    // multiply-adds as torchvision's model cards give them (GFLOPS there = G multiply-adds).
    @Test(arguments: [("resnet18", 11_689_512, 1.814), ("resnet34", 21_797_672, 3.664), ("resnet50", 25_557_032, 4.089),
                      ("mobilenet-v2", 3_504_872, 0.301), ("efficientnet-lite0", 4_652_008, 0.385)])
    func parameterAndMultiplyAddCounts(name: String, parameters: Int, gigaMACs: Double) throws {
        let model = try Zoo.build(name, inputShape: [3, 224, 224], classes: 1000)
        #expect(model.parameterCount == parameters)
        let s = summary(model, inputShape: [3, 224, 224])
        #expect(s.totalParameters == parameters)
        #expect(abs(Double(s.totalFlops) / 2e9 - gigaMACs) < 0.006, "\(Double(s.totalFlops) / 2e9) G multiply-adds")
    }

    @Test func parameterNamesAreTheReferenceImplementations() throws {
        let names: [String: [String]] = [
            "resnet18": ["conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                         "layer2.0.downsample.1.bias", "layer4.1.bn2.weight", "fc.weight", "fc.bias"],
            "resnet50": ["layer1.0.conv3.weight", "layer1.0.downsample.0.weight", "layer3.5.bn3.running_mean"],
            "mobilenet-v2": ["features.0.0.weight", "features.0.1.weight", "features.1.conv.0.0.weight", "features.1.conv.1.weight",
                             "features.1.conv.2.running_mean", "features.2.conv.0.0.weight", "features.2.conv.3.bias",
                             "features.18.0.weight", "classifier.1.weight"],
            "efficientnet-lite0": ["_conv_stem.weight", "_bn0.running_var", "_blocks.0._depthwise_conv.weight", "_blocks.0._bn2.bias",
                                   "_blocks.1._expand_conv.weight", "_blocks.15._project_conv.weight", "_conv_head.weight",
                                   "_bn1.weight", "_fc.weight"],
        ]
        for (model, expected) in names {
            let have = Set(try Zoo.build(model, inputShape: [3, 224, 224], classes: 1000).namedParameters.map(\.name))
            for n in expected { #expect(have.contains(n), "\(model) has \(n)") }
        }
        let lite = Set(try Zoo.build("efficientnet-lite0", inputShape: [3, 224, 224], classes: 10).namedParameters.map(\.name))
        #expect(!lite.contains("_blocks.0._expand_conv.weight"), "expansion 1 has no expand convolution")
    }

    @Test(arguments: ["resnet18", "resnet50", "mobilenet-v2", "efficientnet-lite0"])
    func smallPhotoModelsTrainOneStep(name: String) throws {
        let model = try GlobalRandom.withSeed(1) { try Zoo.build(name, inputShape: [3, 64, 64], classes: 3, width: 0.25) }
        var g = SeededGenerator(seed: 4)
        let x = Tensor.normal([2, 3, 64, 64], std: 1, generator: &g)
        let (loss, grads) = valueWithGradient(of: model) { m in crossEntropy(logits: m(x), labels: [0, 2]) }
        #expect(loss.scalars[0].isFinite)
        #expect(grads.tensors.count == model.trainableParameters.count && grads.tensors.allSatisfy { $0.scalars.allSatisfy(\.isFinite) })
    }
}
