import Foundation
import Testing
@testable import SproutData
@testable import SproutNN
@testable import SproutServe
@testable import SproutTrain

/// Inputs the fuzzers (Fuzz/Targets, scripts/fuzz.sh) found crashing a parser, kept as files in
/// Fixtures/fuzz: each must now be refused with an error that says why.
@Suite struct FuzzRegressionTests {
    func finding(_ name: String) throws -> [UInt8] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/fuzz"))
        return [UInt8](try Data(contentsOf: url))
    }

    @Test func legacyPthWithAHugeStorageCountIsRefused() throws {
        // A legacy pickle whose storage count times the element size overflowed Int (a trap).
        let bytes = try finding("pth-storage-count-overflow.pth")
        #expect { try TorchWeights.load(bytes: bytes, name: "found.pth") } throws: { "\($0)".contains("truncated") }
    }

    @Test func modelSpecWithZeroGroupsIsRefused() throws {
        let json = String(decoding: try finding("model-spec-groups-zero.json"), as: UTF8.self)
        #expect { try ModelSpecFile.build(json: json, inputShape: [1, 28, 28], classes: 10) } throws: {
            "\($0)".contains("layers[0] (conv2d): \"groups\" must be a whole number from 1")
        }
    }

    @Test(arguments: [
        (#"{"type": "conv2d", "out": 4, "kernel": 3, "stride": 0}"#, "\"stride\" must be a whole number from 1"),
        (#"{"type": "conv2d", "out": -4, "kernel": 3}"#, "\"out\" must be a whole number from 1"),
        (#"{"type": "conv2d", "out": 1e300, "kernel": 3}"#, "\"out\" must be a whole number"),
        (#"{"type": "conv2d", "out": 2.5, "kernel": 3}"#, "\"out\" must be a whole number"),
        (#"{"type": "conv2d", "out": true, "kernel": 3}"#, "\"out\" must be a whole number"),
        (#"{"type": "conv2d", "out": 16777216, "kernel": 5}"#, "a weight of 16777216×1×5×5 numbers is over the limit"),
        (#"{"type": "conv2d", "out": 16777216, "kernel": 3}"#, "an output of 16777216×26×26 numbers is over the limit"),
        (#"{"type": "conv2d", "out": 4, "kernel": 1, "padding": 60000}"#, "an output of 4×120028×120028 numbers"),
        (#"{"type": "maxpool", "kernel": 1, "padding": 65536}"#, "an output of"),
        (#"{"type": "maxpool", "kernel": 0}"#, "\"kernel\" must be a whole number from 1"),
        (#"{"type": "conv2d", "out": 4, "kernel": 3, "padding": -2}"#, "padding must be"),
        (#"{"type": "lrn", "radius": -1}"#, "\"radius\" must be a whole number from 0"),
        (#"{"type": "dropout", "p": 1}"#, "dropout \"p\" must be in [0, 1)"),
    ])
    func modelSpecSizesAreChecked(layer: String, message: String) {
        #expect { try ModelSpecFile.build(json: "{\"layers\": [\(layer)]}", inputShape: [1, 28, 28], classes: 10) } throws: {
            "\($0)".contains(message)
        }
    }

    @Test func idxHeaderWhoseSizesOverflowIsRefused() {
        // n × h × w of three 32-bit fields exceeds Int64: refused, not a trap.
        let header: [UInt8] = [0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        #expect {
            try IDX.decode(images: header, labels: [0, 0, 8, 1, 0, 0, 0, 0], imagePath: "images", labelPath: "labels",
                           classNames: MNIST.digitNames)
        } throws: { "\($0)".contains("more bytes than any file holds") }
    }

    @Test func predictPixelsMayBeZeroOrOneButNotBooleans() {
        // On Linux `NSNumber is Bool` holds for every 0 and 1: :predict refused black pixels and
        // model specs refused "stride": 1 (seen while fixing the groups-zero finding).
        let zeroOne = Array(#"{"instances": [[[0, 1], [1, 0]]]}"#.utf8)
        let accepted = InferenceService.predictInstances(zeroOne, channels: 1, height: 2, width: 2) { _, _ in [] }
        #expect((try? accepted.get()) == [[0, 1, 1, 0]])
        let booleans = Array(#"{"instances": [[[true, false], [false, true]]]}"#.utf8)
        #expect((try? InferenceService.predictInstances(booleans, channels: 1, height: 2, width: 2) { _, _ in [] }.get()) == nil)
        #expect(throws: (any Error).self) {
            try ModelSpecFile.build(json: #"{"layers": [{"type": "conv2d", "out": true, "kernel": 3}]}"#, inputShape: [1, 8, 8], classes: 2)
        }
        #expect((try? ModelSpecFile.build(json: #"{"layers": [{"type": "conv2d", "out": 1, "kernel": 1, "stride": 1, "padding": 0}]}"#,
                                          inputShape: [1, 8, 8], classes: 2)) != nil)
    }

    @Test func manifestWithZeroClassesIsRefused() throws {
        // A manifest naming efficientnet-lite0 with 0 classes trapped in Linear's initializer.
        let manifest = try JSONDecoder().decode(CheckpointManifest.self, from: Data(try finding("manifest-zero-classes.json")))
        #expect { try manifest.model.build() } throws: { "\($0)".contains("0 classes") }
        for (classes, width, shape) in [(10, Float.nan, [3, 32, 32]), (10, Float(1), [3, 0, 32]), (10, Float(1), [3, 100_000, 32])] {
            #expect(throws: ModelError.self) { try Zoo.build("tf-cifar10", inputShape: shape, classes: classes, width: width) }
        }
    }

    @Test func bytesOfNoFormatSproutNamesAreRefused() throws {
        // 159 bytes that stb_image read as a 6,168 × 6,168 run-length TGA (over 10 s under ASan).
        let bytes = try finding("image-tga-bomb.bin")
        #expect { try ImageDecoder.decode(bytes, channels: 3) } throws: { "\($0)".contains("not a JPEG, PNG, GIF or BMP file") }
    }
}
