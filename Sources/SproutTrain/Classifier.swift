import Foundation
import SproutData
import SproutNN
import SproutTensor

/// A trained model ready to label images: decoding, the training preprocessing, softmax.
/// Used by `sprout predict` and the HTTP server.
public final class ImageClassifier: @unchecked Sendable {
    public let model: any Layer
    public let manifest: CheckpointManifest

    public struct Prediction: Sendable, Equatable {
        public let label: String
        public let probability: Double
    }

    public init(checkpoint: LoadedCheckpoint) {
        model = checkpoint.model
        manifest = checkpoint.manifest
        model.eval()
    }

    /// The shape `preprocess` gives, [C, H, W]: the model's input for photo models (their
    /// view is resampled once to it), else the channels at `resize`×`resize` (cropped later).
    public var preprocessedShape: [Int] {
        let p = manifest.preprocessing
        return p.photo == true ? [3, manifest.model.inputShape[1], manifest.model.inputShape[2]] : [p.channels, p.resize, p.resize]
    }

    /// Decodes and preprocesses encoded image bytes to the model's input [C, H, W].
    public func preprocess(bytes: [UInt8], name: String = "image") throws -> ImageDataset {
        let p = manifest.preprocessing
        if p.photo == true {
            let side = manifest.model.inputShape[1]
            let photo = PhotoDataset(source: EncodedPhotos([(name, bytes)], classNames: manifest.classNames), size: side, resize: p.resize)
            return ImageDataset(pixels: try photo.evaluationPixels(0), labels: [0], channels: 3, height: side, width: side,
                                classNames: manifest.classNames, source: name)
        }
        let pixels = try ImageFolder.decodeImage(bytes: bytes, size: p.resize, channels: p.channels, name: name)
        return ImageDataset(pixels: pixels, labels: [0], channels: p.channels, height: p.resize, width: p.resize,
                            classNames: manifest.classNames, source: name)
    }

    /// Class probabilities [n, classes] for already decoded images.
    public func probabilities(_ images: ImageDataset) -> Tensor {
        let loader = evaluationLoader(images, preprocessing: manifest.preprocessing, modelInput: manifest.model.inputShape,
                                      batchSize: max(1, images.count))
        return withoutGradient { softmax(model(loader.batch(epoch: 0, index: 0).images), alongAxis: 1) }
    }

    public func classify(bytes: [UInt8], topK: Int = 5, name: String = "image") throws -> [Prediction] {
        let probs = probabilities(try preprocess(bytes: bytes, name: name))
        return topPredictions(probs, row: 0, k: topK)
    }

    public func classify(path: String, topK: Int = 5) throws -> [Prediction] {
        guard let data = FileManager.default.contents(atPath: path) else { throw DatasetError.fileNotFound(path) }
        return try classify(bytes: [UInt8](data), topK: topK, name: path)
    }

    public func topPredictions(_ probabilities: Tensor, row: Int, k: Int) -> [Prediction] {
        let c = probabilities.shape[1]
        let values = Array(probabilities.scalars[(row * c)..<((row + 1) * c)])
        return values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }.prefix(max(1, min(k, c)))
            .map { Prediction(label: $0 < manifest.classNames.count ? manifest.classNames[$0] : "\($0)", probability: Double(values[$0])) }
    }
}
