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

    public convenience init(checkpoint: LoadedCheckpoint) {
        self.init(model: checkpoint.model, manifest: checkpoint.manifest)
    }

    public init(model: any Layer, manifest: CheckpointManifest) {
        self.model = model
        self.manifest = manifest
        model.eval()
    }

    /// A zoo photo model with a published state dict as it is, classifier included (ImageNet's
    /// 1,000 classes for the catalogue's weights), preprocessed as the weights expect: the
    /// shorter side to 256, the centre 224 square, the model's normalisation.
    public static func pretrained(model name: String, weights file: String, classNames: [String] = imageNetClassNames,
                                  width: Float = 1) throws -> ImageClassifier {
        guard let entry = Zoo.entry(name), entry.input.photo else {
            throw RunError.invalid("--pretrained without a run directory needs a 224-px zoo model (resnet18/34/50, mobilenet-v2, efficientnet-lite0), not '\(name)'")
        }
        let spec = ModelSpec(name: name, inputShape: entry.defaultInput, classes: classNames.count, width: width)
        let model = try spec.build()
        try PretrainedWeights.apply(try PretrainedWeights.read(file), to: model, file: file)
        let (mean, std) = Zoo.InputPreparation.photoStatistics(model: name)
        let side = entry.defaultInput[1]
        let preprocessing = PreprocessingSpec(normalization: .meanStd, mean: mean, std: std, resize: side * 256 / 224, channels: 3, photo: true)
        let manifest = CheckpointManifest(step: 0, epoch: 0, batchInEpoch: 0, model: spec, classNames: classNames, preprocessing: preprocessing,
                                          metrics: [:], hasEMA: false, weightsFile: file, stateFile: "", config: ["pretrained": file])
        return ImageClassifier(model: model, manifest: manifest)
    }

    /// The shape `preprocess` gives, [C, H, W]: the model's input for photo models (their
    /// view is resampled once to it), else the channels at `resize`×`resize` (cropped later).
    public var preprocessedShape: [Int] {
        let p = manifest.preprocessing
        if let lineWidth = p.lineWidth { return [p.channels, p.resize, lineWidth] }
        return p.photo == true ? [3, manifest.model.inputShape[1], manifest.model.inputShape[2]] : [p.channels, p.resize, p.resize]
    }

    /// Decodes and preprocesses encoded image bytes to the model's input [C, H, W].
    public func preprocess(bytes: [UInt8], name: String = "image") throws -> ImageDataset {
        let p = manifest.preprocessing
        if let lineWidth = p.lineWidth {
            let pixels = try ImageFolder.decodeLine(bytes: bytes, height: p.resize, width: lineWidth, name: name)
            return ImageDataset(pixels: pixels, labels: [0], channels: 1, height: p.resize, width: lineWidth,
                                classNames: manifest.classNames, source: name)
        }
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
        softmax(logits(inputs(images)), alongAxis: 1)
    }

    /// The network's input [n, C, H, W] for decoded images: cropped and normalised as in training.
    public func inputs(_ images: ImageDataset) -> Tensor {
        let loader = evaluationLoader(images, preprocessing: manifest.preprocessing, modelInput: manifest.model.inputShape,
                                      batchSize: max(1, images.count))
        return loader.batch(epoch: 0, index: 0).images
    }

    //   inputs: [n, C, H, W] → logits [n, classes]
    /// Through the compiled inference graph where the model has one (`InferencePlan`: folded
    /// batch norms, fused activations, blocked layouts), else layer by layer.
    public func logits(_ inputs: Tensor) -> Tensor {
        if let plan = inferencePlan(inputShape: Array(inputs.shape.dropFirst())), let y = try? plan(inputs) { return y }
        return withoutGradient { model(inputs) }
    }

    private let planLock = NSLock()
    /// By input shape; nil where the model cannot be planned (it then runs layer by layer).
    private var plans: [[Int]: InferencePlan?] = [:]

    /// The model's inference graph for inputs of `inputShape` [C, H, W], made on first use
    /// (nil when the model has layers the graph cannot run, or SPROUT_INFERENCE=layers).
    public func inferencePlan(inputShape: [Int]) -> InferencePlan? {
        planLock.lock()
        defer { planLock.unlock() }
        if let known = plans[inputShape] { return known }
        let made = try? InferencePlan.make(model, inputShape: inputShape)
        if plans.count >= 8 { plans.removeAll() }  // line readers of many widths
        plans[inputShape] = .some(made)
        return made
    }

    public func classify(bytes: [UInt8], topK: Int = 5, name: String = "image") throws -> [Prediction] {
        let probs = probabilities(try preprocess(bytes: bytes, name: name))
        return topPredictions(probs, row: 0, k: topK)
    }

    public func classify(path: String, topK: Int = 5) throws -> [Prediction] {
        guard let data = FileManager.default.contents(atPath: path) else { throw DatasetError.fileNotFound(path) }
        return try classify(bytes: [UInt8](data), topK: topK, name: path)
    }

    /// Line recognisers: the text of each image, CTC-decoded (greedy, or beam search of
    /// `beamWidth`), with per-character confidences.
    public func recognize(_ images: ImageDataset, beamWidth: Int = 1) -> [Recognition] {
        precondition(manifest.preprocessing.isLineRecognizer, "recognize: \(manifest.model.name) classifies images; it does not read lines")
        return CTCDecoder.decode(logits: logits(inputs(images)), blank: manifest.classNames.count, classNames: manifest.classNames,
                                 beamWidth: beamWidth)
    }

    public func recognize(bytes: [UInt8], beamWidth: Int = 1, name: String = "image") throws -> Recognition {
        try recognize(preprocess(bytes: bytes, name: name), beamWidth: beamWidth)[0]
    }

    public func topPredictions(_ probabilities: Tensor, row: Int, k: Int) -> [Prediction] {
        let c = probabilities.shape[1]
        let values = Array(probabilities.scalars[(row * c)..<((row + 1) * c)])
        return values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }.prefix(max(1, min(k, c)))
            .map { Prediction(label: $0 < manifest.classNames.count ? manifest.classNames[$0] : "\($0)", probability: Double(values[$0])) }
    }
}
