import Foundation
import Testing
@testable import SproutData
import SproutTensor
import SproutTrain

@Suite struct DatasetReaderTests {
    @Test(.enabled(if: RealData.exists(RealData.fashionMNIST), RealData.noFashionMNIST)) func fashionMNISTFromDebian() throws {
        let train = try MNIST.load(directory: RealData.fashionMNIST, split: .train, fashion: true)
        let test = try MNIST.load(directory: RealData.fashionMNIST, split: .test, fashion: true)
        #expect(train.count == 60_000 && test.count == 10_000)
        #expect(train.shape == [1, 28, 28])
        #expect(train.classNames[9] == "Ankle boot")
        #expect(train.classCounts == [Int](repeating: 6000, count: 10))
    }

    @Test(.enabled(if: RealData.exists(RealData.mnist), "../shared/data/mnist is absent")) func mnistFromSharedData() throws {
        let train = try MNIST.load(directory: RealData.mnist, split: .train)
        #expect(train.count == 60_000)
        let (rest, val) = train.splittingLast(5000)
        #expect(rest.count == 55_000 && val.count == 5000)
        #expect(val.labels == Array(train.labels[55_000...]))
    }

    @Test(.enabled(if: RealData.exists(RealData.cifar10), "../shared/data/cifar-10-batches-bin is absent")) func cifar10FromSharedData() throws {
        let train = try CIFAR.load10(directory: RealData.cifar10, split: .train)
        #expect(train.count == 50_000)
        #expect(train.labels[0] == 6)
        #expect(train.classNames[6] == "frog")
        #expect(train.classCounts == [Int](repeating: 5000, count: 10))
        let (mean, _) = train.channelStatistics()
        for (m, expected) in zip(mean, [Float(0.4914), 0.4822, 0.4465]) { #expect(abs(m - expected) < 1e-3) }
    }

    // MARK: - bad files

    func idx(magic: UInt32, dims: [UInt32], payload: [UInt8]) -> [UInt8] {
        var b: [UInt8] = []
        for v in [magic] + dims { b += [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        return b + payload
    }

    @Test func idxErrorsNameTheFileAndTheProblem() throws {
        let dir = TemporaryDirectory()
        let images = dir.file("img"), labels = dir.file("lab")
        let names = MNIST.digitNames
        _ = FileManager.default.createFile(atPath: images, contents: Data(idx(magic: 2051, dims: [2, 2, 2], payload: [1, 2, 3, 4, 5, 6, 7, 8])))
        _ = FileManager.default.createFile(atPath: labels, contents: Data(idx(magic: 2049, dims: [2], payload: [3, 4])))
        let ok = try IDX.load(images: images, labels: labels, classNames: names)
        #expect(ok.count == 2 && ok.labels == [3, 4])

        _ = FileManager.default.createFile(atPath: labels, contents: Data(idx(magic: 2051, dims: [2], payload: [3, 4])))
        #expect(throws: DatasetError.badMagic(labels, expected: 2049, found: 2051)) { try IDX.load(images: images, labels: labels, classNames: names) }

        _ = FileManager.default.createFile(atPath: labels, contents: Data(idx(magic: 2049, dims: [2], payload: [3, 12])))
        #expect(throws: DatasetError.labelOutOfRange(labels, index: 1, label: 12, classes: 10)) { try IDX.load(images: images, labels: labels, classNames: names) }

        _ = FileManager.default.createFile(atPath: labels, contents: Data(idx(magic: 2049, dims: [3], payload: [3, 4, 5])))
        #expect(throws: DatasetError.countMismatch(images: images, labels: labels, imageCount: 2, labelCount: 3)) {
            try IDX.load(images: images, labels: labels, classNames: names)
        }

        _ = FileManager.default.createFile(atPath: images, contents: Data(idx(magic: 2051, dims: [2, 2, 2], payload: [1, 2, 3])))
        #expect(throws: DatasetError.truncated(images, expectedBytes: 24, foundBytes: 19)) { try IDX.load(images: images, labels: labels, classNames: names) }

        #expect(throws: DatasetError.fileNotFound(dir.file("nope"))) { try IDX.load(images: dir.file("nope"), labels: labels, classNames: names) }
    }

    @Test(.enabled(if: RealData.exists(RealData.fashionMNIST), RealData.noFashionMNIST)) func gzipRoundTripAndCorruption() throws {
        let dir = TemporaryDirectory()
        let original = try Data(contentsOf: URL(fileURLWithPath: RealData.fashionMNIST + "/t10k-labels-idx1-ubyte.gz"))
        let truncated = dir.file("t10k-labels-idx1-ubyte.gz")
        _ = FileManager.default.createFile(atPath: truncated, contents: original.prefix(original.count / 2))
        #expect {
            _ = try readFile(truncated)
        } throws: { error in
            guard case let DatasetError.corruptCompressedData(path, reason) = error else { return false }
            return path == truncated && reason.contains("truncated")
        }
        var flipped = [UInt8](original)
        flipped[40] ^= 0xff
        flipped[41] ^= 0xff
        let corrupt = dir.file("corrupt.gz")
        _ = FileManager.default.createFile(atPath: corrupt, contents: Data(flipped))
        #expect(throws: DatasetError.self) { try readFile(corrupt) }
    }

    @Test func cifarErrors() throws {
        let dir = TemporaryDirectory()
        var record = [UInt8](repeating: 7, count: 3073)
        record[0] = 11
        _ = FileManager.default.createFile(atPath: dir.file("test_batch.bin"), contents: Data(record))
        #expect(throws: DatasetError.labelOutOfRange(dir.file("test_batch.bin"), index: 0, label: 11, classes: 10)) {
            try CIFAR.load10(directory: dir.path, split: .test)
        }
        _ = FileManager.default.createFile(atPath: dir.file("test_batch.bin"), contents: Data(record.prefix(3000)))
        #expect(throws: DatasetError.truncated(dir.file("test_batch.bin"), expectedBytes: 3073, foundBytes: 3000)) {
            try CIFAR.load10(directory: dir.path, split: .test)
        }
        #expect(throws: DatasetError.fileNotFound(dir.file("data_batch_1.bin"))) { try CIFAR.load10(directory: dir.path, split: .train) }
    }

    @Test func cifar100CoarseAndFineLabels() throws {
        let dir = TemporaryDirectory()
        var bytes: [UInt8] = []
        for (coarse, fine) in [(3, 42), (19, 99)] { bytes += [UInt8(coarse), UInt8(fine)] + [UInt8](repeating: 9, count: 3072) }
        _ = FileManager.default.createFile(atPath: dir.file("train.bin"), contents: Data(bytes))
        let fine = try CIFAR.load100(directory: dir.path, split: .train)
        let coarse = try CIFAR.load100(directory: dir.path, split: .train, fine: false)
        #expect(fine.labels == [42, 99] && fine.classCount == 100)
        #expect(coarse.labels == [3, 19] && coarse.classCount == 20)
        #expect(fine.pixels.count == 2 * 3072)
        bytes[1] = 100
        _ = FileManager.default.createFile(atPath: dir.file("train.bin"), contents: Data(bytes))
        #expect(throws: DatasetError.labelOutOfRange(dir.file("train.bin"), index: 0, label: 100, classes: 100)) {
            try CIFAR.load100(directory: dir.path, split: .train)
        }
    }

    @Test func imageFolderDecodesResizesAndReportsBadImages() throws {
        let dir = TemporaryDirectory()
        for (name, value) in [("cats", UInt8(200)), ("dogs", UInt8(30))] {
            try FileManager.default.createDirectory(atPath: dir.file(name), withIntermediateDirectories: true)
            for i in 0..<3 {
                // 3×20×40 solid images with a marker pixel.
                var planar = [UInt8](repeating: value, count: 3 * 20 * 40)
                planar[i] = 0
                try ImageWriter.writePNG(planar: planar, channels: 3, height: 20, width: 40, to: dir.file("\(name)/\(i).png"))
            }
        }
        _ = FileManager.default.createFile(atPath: dir.file("dogs/broken.jpg"), contents: Data("not an image".utf8))
        #expect {
            _ = try ImageFolder.load(root: dir.path, size: 16)
        } throws: { error in
            guard case let DatasetError.undecodableImage(path, _) = error else { return false }
            return path == dir.file("dogs/broken.jpg")
        }
        let (ds, report) = try ImageFolder.load(root: dir.path, size: 16, skipBadImages: true)
        #expect(ds.count == 6)
        #expect(ds.classNames == ["cats", "dogs"])
        #expect(ds.shape == [3, 16, 16])
        #expect(report.skipped.count == 1)
        #expect(ds.pixels[3 * 16 * 16 * 5 + 100] == 30)   // a dog, solid colour survives resizing

        let empty = TemporaryDirectory()
        #expect(throws: DatasetError.emptyFolder(empty.path)) { try ImageFolder.load(root: empty.path, size: 16) }
    }
}

@Suite struct DataLoaderTests {
    let data = bandsDataset(count: 50)

    @Test func shuffleIsSeededAndCoversEveryImageOnce() {
        let a = DataLoader(dataset: data, batchSize: 8, shuffle: true, seed: 3)
        let b = DataLoader(dataset: data, batchSize: 8, shuffle: true, seed: 3)
        #expect(a.order(epoch: 0) == b.order(epoch: 0))
        #expect(a.order(epoch: 0) != a.order(epoch: 1))
        #expect(a.order(epoch: 0).sorted() == Array(0..<50))
        let indices = a.epoch(0).flatMap(\.indices)
        #expect(indices == a.order(epoch: 0))
    }

    @Test func batchingAndDropLast() {
        let keep = DataLoader(dataset: data, batchSize: 8)
        #expect(keep.epoch(0).map(\.labels.count) == [8, 8, 8, 8, 8, 8, 2])
        let drop = DataLoader(dataset: data, batchSize: 8, dropLast: true)
        #expect(drop.batchesPerEpoch == 6)
        #expect(drop.epoch(0).map(\.labels.count).allSatisfy { $0 == 8 })
        #expect(DataLoader(dataset: data, batchSize: 8).epoch(0, startingAt: 5).map(\.labels.count) == [8, 2])
    }

    @Test func augmentationDependsOnTheSampleNotTheBatch() {
        let aug = Augmentation(randomCropPadding: 2, paddingMode: .reflect, horizontalFlip: true, cutout: 3, brightness: 0.1)
        let small = DataLoader(dataset: data, batchSize: 3, shuffle: true, seed: 9, augmentation: aug)
        let large = DataLoader(dataset: data, batchSize: 20, shuffle: true, seed: 9, augmentation: aug)
        let a = small.batch(epoch: 2, index: 0), b = large.batch(epoch: 2, index: 0)
        #expect(a.indices == Array(b.indices.prefix(3)))
        #expect(a.images.scalars == Array(b.images.scalars.prefix(3 * 64)))
        let other = large.batch(epoch: 3, index: 0)
        #expect(other.images.scalars != b.images.scalars)
    }

    @Test func normalisations() {
        let meanStd = DataLoader(dataset: data, batchSize: 50, normalization: .meanStd(mean: [0.5], std: [0.25])).batch(epoch: 0, index: 0)
        let unit = DataLoader(dataset: data, batchSize: 50).batch(epoch: 0, index: 0)
        #expect(zip(meanStd.images.scalars, unit.images.scalars).allSatisfy { abs($0 - ($1 - 0.5) / 0.25) < 1e-5 })
        let std = DataLoader(dataset: data, batchSize: 4, normalization: .perImageStandardization).batch(epoch: 0, index: 0)
        for i in 0..<4 {
            let image = std.images.slice(i..<(i + 1))
            #expect(abs(image.mean().scalar) < 1e-4)
            #expect(abs(image.variance().scalar - 1) < 1e-3)
        }
    }

    @Test func centreAndRandomCrops() {
        let centre = DataLoader(dataset: data, batchSize: 2, cropSize: 6).batch(epoch: 0, index: 0)
        #expect(centre.images.shape == [2, 1, 6, 6])
        let full = DataLoader(dataset: data, batchSize: 2).batch(epoch: 0, index: 0).images
        #expect(centre.images[0, 0, 0, 0] == full[0, 0, 1, 1])
        let random = DataLoader(dataset: data, batchSize: 10, augmentation: Augmentation(randomCrop: true), cropSize: 6)
        #expect(random.batch(epoch: 0, index: 0).images.shape == [10, 1, 6, 6])
    }

    @Test(.enabled(if: RealData.exists(RealData.fashionMNIST), RealData.noFashionMNIST)) func prefetchingDeliversAWholeEpochOfRealImages() throws {
        // Speed lives in `sprout bench data`; this checks the background path end to end.
        let train = try MNIST.load(directory: RealData.fashionMNIST, split: .test, fashion: true)
        let loader = DataLoader(dataset: train, batchSize: 256, shuffle: true, seed: 1,
                                augmentation: Augmentation(randomCropPadding: 2), normalization: .perImageStandardization)
        var seen = 0
        for batch in loader.epoch(0) { seen += batch.labels.count }
        #expect(seen == 10_000)
    }
}

/// Photo folders as people have them.
@Suite struct PhotoFolderTests {
    /// ROOT/<class>/ with `count` small PNGs of a class-specific colour each.
    func makeClass(_ root: String, _ name: String, count: Int, colour: Int) throws {
        let dir = root + "/" + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for i in 0..<count {
            let planar = (0..<(3 * 10 * 10)).map { UInt8(($0 / 100 == colour ? 200 : 30) + ($0 + i) % 7) }
            try ImageWriter.writePNG(planar: planar, channels: 3, height: 10, width: 10, to: "\(dir)/photo \(i) ✿.png")
        }
    }

    @Test func aStratifiedSplitGivesEveryClassItsShare() throws {
        let dir = TemporaryDirectory()
        try makeClass(dir.path, "cats", count: 30, colour: 0)
        try makeClass(dir.path, "dogs", count: 10, colour: 1)
        // What a new user has beside the photos: hidden files, notes, a hidden folder.
        _ = FileManager.default.createFile(atPath: dir.path + "/cats/.DS_Store", contents: Data([1, 2, 3]))
        _ = FileManager.default.createFile(atPath: dir.path + "/dogs/notes.txt", contents: Data("hi".utf8))
        try FileManager.default.createDirectory(atPath: dir.path + "/.thumbnails", withIntermediateDirectories: true)
        let (all, report) = try ImageFolder.load(root: dir.path, size: 8, skipBadImages: true)
        #expect(all.classNames == ["cats", "dogs"] && all.count == 40 && report.skipped.isEmpty)
        let (train, val) = all.stratifiedSplit(validationCount: 8, seed: 3)
        #expect(val.count == 8 && train.count == 32)
        #expect(val.classCounts == [6, 2] && train.classCounts == [24, 8], "every class keeps its share")
        #expect(all.stratifiedSplit(validationCount: 8, seed: 3).validation.pixels == val.pixels, "seeded")
        #expect(all.stratifiedSplit(validationCount: 8, seed: 4).validation.pixels != val.pixels)
        // A tiny class keeps one image on each side.
        let tiny = all.stratifiedSplit(validationCount: 2, seed: 1)
        #expect(tiny.validation.classCounts == [1, 1] && tiny.validation.count == 2)

        // Through a run's data: 20% of a two-class folder validates on both classes.
        var config = RunConfiguration()
        config.dataset = .folder
        config.dataDir = dir.path
        config.model = "mlp"
        config.validationFraction = 0.2
        let data = try RunData.load(config)
        #expect(data.validation.classCounts == [6, 2] && data.train.count == 32)
        config.validationFraction = nil
        #expect(try RunData.load(config).validation.classCounts == [3, 1], "the default (10%) is stratified for folders too")
    }

    @Test func trainAndValFoldersAreDetected() throws {
        let dir = TemporaryDirectory()
        for name in ["daisy", "rose"] {
            try makeClass(dir.path + "/train", name, count: 6, colour: name == "daisy" ? 0 : 2)
        }
        try makeClass(dir.path + "/val", "rose", count: 3, colour: 2)
        try makeClass(dir.path + "/val", "daisy", count: 2, colour: 0)
        #expect(ImageFolder.layout(of: dir.path) == .trainValidation(train: dir.path + "/train", validation: dir.path + "/val"))
        var config = RunConfiguration()
        config.dataset = .folder
        config.dataDir = dir.path
        config.model = "mlp"
        let data = try RunData.load(config)
        #expect(data.train.count == 12 && data.validation.count == 5)
        #expect(data.validation.classNames == ["daisy", "rose"] && data.validation.classCounts == [2, 3])
        #expect(data.validationName.hasPrefix("val ("))
    }

    @Test func aClassWithNoUsableImageIsAnErrorNamingIt() throws {
        let dir = TemporaryDirectory()
        try makeClass(dir.path, "good", count: 3, colour: 0)
        try FileManager.default.createDirectory(atPath: dir.path + "/broken", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: dir.path + "/broken/a.jpg", contents: Data("not a jpeg".utf8))
        #expect(throws: DatasetError.emptyClass(dir.path + "/broken")) {
            _ = try ImageFolder.load(root: dir.path, size: 8, skipBadImages: true)
        }
    }
}
