import CLibFuzzer
import Foundation
@testable import SproutData
import SproutNN
@testable import SproutServe
import SproutTrain

/// libFuzzer targets for every parser that reads outside input. One binary, the target named
/// first; the rest are libFuzzer's own flags and corpus folders:
///
///     sprout-fuzz idx Fuzz/corpus/idx -max_total_time=600
///
/// Built by `make fuzz-build` (-sanitize=fuzzer,address); run by `make fuzz` (scripts/fuzz.sh).
/// A target returns normally for any input: a thrown error is the parser refusing the input,
/// which is what it should do; a trap, a sanitizer report, a leak or a hang is a defect.
@main
enum SproutFuzz {
    static let targets: [String: (String, @Sendable ([UInt8]) -> Void)] = [
        "idx": ("MNIST IDX image and label files, raw or gzip (first byte picks which file is fuzzed)", idx),
        "cifar": ("CIFAR-10/100 binary batches and their class-name files", cifar),
        "safetensors": ("safetensors files: JSON header, dtypes, offsets", safetensors),
        "pth": ("PyTorch .pth weights: zip archives and legacy pickles through the unpickler", pth),
        "model-spec": ("JSON model specs (`--model-spec`) built into layers", modelSpec),
        "multipart": ("multipart/form-data bodies (first line: the Content-Type header)", multipart),
        "predict": ("the `:predict` JSON body: pixel arrays and base64 images", predict),
        "image": ("image bytes through the decoders: JPEG (libjpeg-turbo), PNG, GIF, BMP (stb_image)", image),
        "manifest": ("checkpoint manifests (JSON) as `eval`, `predict` and `serve` read them", manifest),
    ]

    nonisolated(unsafe) static var selected: (@Sendable ([UInt8]) -> Void)?

    static func main() {
        var arguments = CommandLine.arguments
        guard arguments.count >= 2, let target = targets[arguments[1]] else {
            let names = targets.keys.sorted().map { "  \($0): \(targets[$0]!.0)" }.joined(separator: "\n")
            FileHandle.standardError.write(Data("usage: sprout-fuzz TARGET [libFuzzer flags] [corpus folders]\ntargets:\n\(names)\n".utf8))
            exit(2)
        }
        selected = target.1
        arguments.remove(at: 1)
        var argc = Int32(arguments.count)
        var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let status = cArguments.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
            return LLVMFuzzerRunDriver(&argc, &argv) { fuzzOneInput($0, $1) }
        }
        exit(status)
    }

    // MARK: targets

    /// A valid one-image file and its one-label file, the partner of whichever file is fuzzed.
    static let oneImage: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4]
    static let oneLabel: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 1, 7]

    static func idx(_ data: [UInt8]) {
        guard let selector = data.first else { return }
        let file = Array(data.dropFirst())
        do {
            let inflated = try inflatedIfGzip(file)
            _ = selector & 1 == 0
                ? try IDX.decode(images: inflated, labels: oneLabel, imagePath: "images", labelPath: "labels", classNames: MNIST.digitNames)
                : try IDX.decode(images: oneImage, labels: inflated, imagePath: "images", labelPath: "labels", classNames: MNIST.digitNames)
        } catch {}
    }

    static func inflatedIfGzip(_ bytes: [UInt8]) throws -> [UInt8] {
        bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b ? try inflateGzip(bytes, path: "file.gz") : bytes
    }

    static func cifar(_ data: [UInt8]) {
        // CIFAR-10 records (1 label byte) and CIFAR-100 ones (coarse, fine), as the loaders read them.
        _ = try? CIFAR.decodeRecords(data, path: "batch.bin", labelBytes: 1, labelIndex: 0, classes: 10)
        _ = try? CIFAR.decodeRecords(data, path: "train.bin", labelBytes: 2, labelIndex: 1, classes: 100)
        _ = try? CIFAR.decodeClassNames(data, path: "batches.meta.txt", expected: 10)
    }

    static func safetensors(_ data: [UInt8]) {
        _ = try? SafeTensors.decode(data, path: "weights.safetensors")
    }

    static func pth(_ data: [UInt8]) {
        _ = try? TorchWeights.load(bytes: data, name: "weights.pth")
    }

    static func modelSpec(_ data: [UInt8]) {
        _ = try? ModelSpecFile.build(json: String(decoding: data, as: UTF8.self), inputShape: [1, 28, 28], classes: 10)
    }

    static func multipart(_ data: [UInt8]) {
        let newline = data.firstIndex(of: 10) ?? data.count
        let contentType = String(decoding: data[..<newline], as: UTF8.self)
        // As `:classify` takes an upload: the boundary from the header, then the first file part.
        _ = InferenceService.uploadedImage(Array(data[min(newline + 1, data.count)...]), contentType: contentType)
    }

    static func predict(_ data: [UInt8]) {
        // As a served 28×28 grey model and a 32×32 colour one preprocess their instances.
        _ = InferenceService.predictInstances(data, channels: 1, height: 28, width: 28) {
            try ImageFolder.decodeImage(bytes: $0, size: 28, channels: 1, name: $1)
        }
        _ = InferenceService.predictInstances(data, channels: 3, height: 4, width: 4) {
            try ImageFolder.decodeImage(bytes: $0, size: 4, channels: 3, name: $1)
        }
    }

    static func image(_ data: [UInt8]) {
        _ = try? ImageDecoder.decode(data, channels: 3, name: "photo")
        _ = try? ImageDecoder.decode(data, channels: 1, atLeast: 16, name: "photo")
    }

    static func manifest(_ data: [UInt8]) {
        // Reading a checkpoint rebuilds the model its manifest names.
        guard let manifest = try? JSONDecoder().decode(CheckpointManifest.self, from: Data(data)) else { return }
        _ = try? manifest.model.build()
    }
}

/// libFuzzer's runtime archive brings its own `main`, which needs this symbol to link; SwiftPM's
/// `--defsym main=…` makes `SproutFuzz.main` the entry all the same, which passes its callback to
/// `LLVMFuzzerRunDriver`. Both lead to the chosen target.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    SproutFuzz.selected?(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
