import SproutTensor

/// Errors when building a model by name.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case unknownModel(String, known: [String])
    case unsupportedInput(model: String, shape: [Int], expected: String)
    case unsupportedKernelSize(model: String)
    case badSetting(model: String, reason: String)

    public var description: String {
        switch self {
        case let .badSetting(model, reason): return "model '\(model)': \(reason)"
        case let .unsupportedKernelSize(model): return "model '\(model)' has no kernel-size setting (tf-cifar10 and tf-cifar10-nolrn have one)"
        case let .unknownModel(name, known): return "unknown model '\(name)'; the zoo has: \(known.joined(separator: ", "))"
        case let .unsupportedInput(model, shape, expected): return "model '\(model)' cannot take input \(shape): it expects \(expected)"
        }
    }
}

/// A layer whose initial weights come from the training data (airbench's whitening filters):
/// a training run calls it once, before the first step, with a sample of normalised images.
public protocol TrainingDataInitializable: Layer {
    func initialize(fromTrainingImages images: Tensor)
}

/// The model zoo: every entry buildable by name for an input shape [C, H, W] and a class count.
public enum Zoo {
    public struct Entry: Sendable {
        public let name: String
        public let summary: String
        /// The input it was designed for, [C, H, W].
        public let defaultInput: [Int]
        /// How its inputs are prepared: what the training run, `predict`, `serve` and the ONNX
        /// metadata use, a property of the model rather than a check of its name.
        public var input = InputPreparation()
        /// The classifier's parameter-name prefix (e.g. "fc."): what fine-tuning from
        /// pretrained weights replaces with a head for the new classes.
        public var head: String?

        init(name: String, summary: String, defaultInput: [Int], input: InputPreparation = InputPreparation(), head: String? = nil) {
            (self.name, self.summary, self.defaultInput, self.input, self.head) = (name, summary, defaultInput, input, head)
        }
    }

    /// A model's input preparation: the normalisation and the side it crops images to.
    public struct InputPreparation: Sendable, Equatable {
        public enum Normalization: Sendable, Equatable {
            /// (x/255 − mean[c]) / std[c] with the training set's channel statistics.
            case datasetMeanStd
            /// TensorFlow's per-image standardisation (the CIFAR-10 tutorial's).
            case perImageStandardization
            /// (x/255 − mean[c]) / std[c] with fixed values: what the published weights were
            /// trained with (ImageNet's statistics for torchvision's models, inception-style
            /// [−1, 1] for TensorFlow's edge models).
            case fixedMeanStd(mean: [Float], std: [Float])
        }
        public var normalization = Normalization.datasetMeanStd
        /// Random crops of this side in training, centre crops otherwise (nil: full size).
        public var cropSize: Int?
        /// Photo models: folders stream at full resolution, with random resized crops in
        /// training and resize-then-centre-crop (256 → 224) in evaluation.
        public var photo = false
        public init(normalization: Normalization = .datasetMeanStd, cropSize: Int? = nil, photo: Bool = false) {
            (self.normalization, self.cropSize, self.photo) = (normalization, cropSize, photo)
        }
        /// Grey text lines (`DigitLines`, `TextLines`): fixed statistics of composed MNIST lines.
        static let textLine = InputPreparation(normalization: .fixedMeanStd(mean: [0.08], std: [0.24]))
        static let imageNetPhoto = InputPreparation(normalization: .fixedMeanStd(mean: imageNetMean, std: imageNetStd), photo: true)
        /// TensorFlow's EfficientNet-Lite was trained on (x − 127) / 128 ("edge models use
        /// inception-style mean and stddev for better post-quantization"); its converted
        /// weights give a 0.32 validation loss on the flowers' frozen features with ImageNet's
        /// statistics and 0.21 with these.
        static let inceptionPhoto = InputPreparation(normalization: .fixedMeanStd(mean: [127 / 255, 127 / 255, 127 / 255],
                                                                                  std: [128 / 255, 128 / 255, 128 / 255]), photo: true)
        /// The mean and std a photo model's published weights expect (ImageNet's unless its
        /// entry says otherwise).
        public static func photoStatistics(model name: String) -> (mean: [Float], std: [Float]) {
            if case let .fixedMeanStd(m, s)? = Zoo.entry(name)?.input.normalization { return (m, s) }
            return (imageNetMean, imageNetStd)
        }
        /// ImageNet's channel means and standard deviations on a [0, 1] scale (torchvision's).
        public static let imageNetMean: [Float] = [0.485, 0.456, 0.406]
        public static let imageNetStd: [Float] = [0.229, 0.224, 0.225]
        static let tensorFlowTutorial = InputPreparation(normalization: .perImageStandardization, cropSize: 24)
    }

    /// The zoo entry of `name`, if it is one.
    public static func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }

    public static let entries: [Entry] = [
        Entry(name: "mlp", summary: "two hidden layers of 512 and 256 with ReLU", defaultInput: [1, 28, 28]),
        Entry(name: "mnist-cnn", summary: "Keras's MNIST CNN: conv3×3 32, conv3×3 64, maxpool, dropout, fc 128, fc", defaultInput: [1, 28, 28]),
        Entry(name: "mnist-bn", summary: "four conv3×3 + batch-norm layers (32, 64, 64, 128), three maxpools, fc", defaultInput: [1, 28, 28]),
        Entry(name: "crnn", summary: "CRNN for 32-px text lines: 5 conv+BN (32, 64, 96, 96, 96), pools to 2 × W/4, BiLSTM 128, per-column classes + CTC blank",
              defaultInput: [1, 32, 136], input: .textLine),
        Entry(name: "lenet5", summary: "LeNet-5 with ReLU and max pooling", defaultInput: [1, 28, 28]),
        Entry(name: "tf-cifar10", summary: "the TensorFlow CIFAR-10 tutorial net (LRN, 1,068,298 parameters)", defaultInput: [3, 24, 24],
              input: .tensorFlowTutorial),
        Entry(name: "tf-cifar10-nolrn", summary: "the TensorFlow tutorial net without its two LRN layers", defaultInput: [3, 24, 24],
              input: .tensorFlowTutorial),
        Entry(name: "resnet9", summary: "David Page's ResNet-9 (width multiplier --width)", defaultInput: [3, 32, 32]),
        Entry(name: "airbench", summary: "airbench94's net: frozen 2×2 whitening, three conv groups 64/256/256, ×1/9 head", defaultInput: [3, 32, 32]),
        Entry(name: "airbench-muon", summary: "airbench94_muon's net: whitening with a trained bias, conv groups 64/256/256, unit-std head ÷ 256",
              defaultInput: [3, 32, 32]),
        Entry(name: "resnet18-cifar", summary: "ResNet-18, CIFAR variant (3×3 stem, no stem pooling)", defaultInput: [3, 32, 32]),
        Entry(name: "resnet18", summary: "ResNet-18 for 224-px photos (torchvision's layers and names)", defaultInput: [3, 224, 224],
              input: .imageNetPhoto, head: "fc."),
        Entry(name: "resnet34", summary: "ResNet-34 for 224-px photos (torchvision's layers and names)", defaultInput: [3, 224, 224],
              input: .imageNetPhoto, head: "fc."),
        Entry(name: "resnet50", summary: "ResNet-50 (v1.5, bottlenecks) for 224-px photos (torchvision's names)", defaultInput: [3, 224, 224],
              input: .imageNetPhoto, head: "fc."),
        Entry(name: "mobilenet-v2", summary: "MobileNetV2 for 224-px photos (torchvision's layers and names; --width)", defaultInput: [3, 224, 224],
              input: .imageNetPhoto, head: "classifier."),
        Entry(name: "efficientnet-lite0", summary: "EfficientNet-Lite0: B0 without squeeze-excitation, ReLU6 (lukemelas' names)",
              defaultInput: [3, 224, 224], input: .inceptionPhoto, head: "_fc."),
    ]

    public static var names: [String] { entries.map(\.name) }

    /// Builds `name` for inputs [C, H, W] and `classes` outputs. `width` scales channel
    /// counts where the model has one (resnet9, resnet18, airbench).
    /// `kernelSize` replaces the convolutions' kernel size where a model has that setting
    /// (the TensorFlow tutorial's 5×5), for experiments such as "what do 3×3 kernels do?".
    public static func build(_ name: String, inputShape: [Int], classes: Int, width: Float = 1, kernelSize: Int? = nil) throws -> any Layer {
        guard inputShape.count == 3 else {
            throw ModelError.unsupportedInput(model: name, shape: inputShape, expected: "[C, H, W]")
        }
        if kernelSize != nil && !["tf-cifar10", "tf-cifar10-nolrn"].contains(name) { throw ModelError.unsupportedKernelSize(model: name) }
        // The settings come from checkpoint manifests too (outside input): out-of-range values are
        // errors here rather than traps in a layer's initializer.
        guard inputShape.allSatisfy({ (1...65536).contains($0) }), inputShape.reduce(1.0, { $0 * Double($1) }) <= Double(1 << 28) else {
            throw ModelError.unsupportedInput(model: name, shape: inputShape, expected: "sides from 1 to 65536 and at most 2^28 values")
        }
        guard (1...1_000_000).contains(classes) else { throw ModelError.badSetting(model: name, reason: "\(classes) classes (1 to 1,000,000)") }
        guard width.isFinite, width > 0, width <= 16 else { throw ModelError.badSetting(model: name, reason: "width \(width) (above 0, at most 16)") }
        if let kernelSize, !(1...63).contains(kernelSize) {
            throw ModelError.badSetting(model: name, reason: "kernel size \(kernelSize) (1 to 63)")
        }
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        func scaled(_ n: Int) -> Int { max(1, Int((Float(n) * width).rounded())) }
        switch name {
        case "mlp":
            return Sequential {
                Flatten()
                Linear(inFeatures: c * h * w, outFeatures: 512); ReLU()
                Linear(inFeatures: 512, outFeatures: 256); ReLU()
                Linear(inFeatures: 256, outFeatures: classes)
            }
        case "mnist-cnn":
            guard h >= 6, w >= 6 else { throw ModelError.unsupportedInput(model: name, shape: inputShape, expected: "at least 6×6") }
            let flat = 64 * ((h - 4) / 2) * ((w - 4) / 2)
            return Sequential {
                Conv2D(inChannels: c, outChannels: 32, kernelSize: 3); ReLU()
                Conv2D(inChannels: 32, outChannels: 64, kernelSize: 3); ReLU()
                MaxPool2D(kernelSize: 2)
                Dropout(probability: 0.25)
                Flatten()
                Linear(inFeatures: flat, outFeatures: 128); ReLU()
                Dropout(probability: 0.5)
                Linear(inFeatures: 128, outFeatures: classes)
            }
        case "mnist-bn":
            // Batch norm instead of dropout: the Keras CNN underfits once the digits are
            // translated (98.6% training accuracy), this one reaches ≥ 99.5% (docs/results.md).
            guard h >= 8, w >= 8 else { throw ModelError.unsupportedInput(model: name, shape: inputShape, expected: "at least 8×8") }
            func block(_ i: Int, _ o: Int) -> [any Layer] {
                [Conv2D(inChannels: i, outChannels: o, kernelSize: 3, padding: .same, bias: false), BatchNorm2D(features: o), ReLU()]
            }
            return Sequential {
                block(c, 32); MaxPool2D(kernelSize: 2)
                block(32, 64); block(64, 64); MaxPool2D(kernelSize: 2)
                block(64, 128); MaxPool2D(kernelSize: 2)
                Flatten()
                Linear(inFeatures: 128 * (h / 8) * (w / 8), outFeatures: classes)
            }
        case "crnn":
            return try CRNN(inputShape: inputShape, classes: classes, width: width)
        case "lenet5":
            guard h >= 12, w >= 12 else { throw ModelError.unsupportedInput(model: name, shape: inputShape, expected: "at least 12×12") }
            let flat = 16 * ((h / 2 - 4) / 2) * ((w / 2 - 4) / 2)
            return Sequential {
                Conv2D(inChannels: c, outChannels: 6, kernelSize: 5, padding: .same); ReLU()
                MaxPool2D(kernelSize: 2)
                Conv2D(inChannels: 6, outChannels: 16, kernelSize: 5); ReLU()
                MaxPool2D(kernelSize: 2)
                Flatten()
                Linear(inFeatures: flat, outFeatures: 120); ReLU()
                Linear(inFeatures: 120, outFeatures: 84); ReLU()
                Linear(inFeatures: 84, outFeatures: classes)
            }
        case "tf-cifar10", "tf-cifar10-nolrn":
            return tfCifar10(inputShape: inputShape, classes: classes, lrn: name == "tf-cifar10", kernelSize: kernelSize ?? 5)
        case "resnet9":
            return resnet9(inChannels: c, classes: classes, width: width)
        case "airbench", "airbench-muon":
            return Airbench(inChannels: c, classes: classes, widths: [scaled(64), scaled(256), scaled(256)], muonVariant: name == "airbench-muon")
        case "resnet18":
            return ResNet(blocks: [2, 2, 2, 2], bottleneck: false, inChannels: c, classes: classes, width: width)
        case "resnet34":
            return ResNet(blocks: [3, 4, 6, 3], bottleneck: false, inChannels: c, classes: classes, width: width)
        case "resnet50":
            return ResNet(blocks: [3, 4, 6, 3], bottleneck: true, inChannels: c, classes: classes, width: width)
        case "mobilenet-v2":
            return MobileNetV2(inChannels: c, classes: classes, width: width)
        case "efficientnet-lite0":
            return EfficientNetLite(inChannels: c, classes: classes, width: width)
        case "resnet18-cifar":
            let widths = [64, 128, 256, 512].map(scaled)
            var layers: [any Layer] = [
                Conv2D(inChannels: c, outChannels: widths[0], kernelSize: 3, padding: .symmetric(1, 1), bias: false),
                BatchNorm2D(features: widths[0]), ReLU(),
            ]
            var inC = widths[0]
            for (stage, wd) in widths.enumerated() {
                layers.append(BasicBlock(inChannels: inC, outChannels: wd, stride: stage == 0 ? 1 : 2))
                layers.append(BasicBlock(inChannels: wd, outChannels: wd))
                inC = wd
            }
            layers += [GlobalAvgPool(), Linear(inFeatures: inC, outFeatures: classes)] as [any Layer]
            return Sequential(layers)
        default:
            throw ModelError.unknownModel(name, known: names)
        }
    }

    /// The TensorFlow CIFAR-10 tutorial net, layer for layer, with its initialisation and
    /// its weight decay (0.004 on the two hidden fully connected layers only).
    static func tfCifar10(inputShape: [Int], classes: Int, lrn: Bool, kernelSize k: Int = 5) -> any Layer {
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        // Two SAME 3×3/2 pools: ⌈⌈h/2⌉/2⌉
        let (ph, pw) = (((h + 1) / 2 + 1) / 2, ((w + 1) / 2 + 1) / 2)
        let flat = 64 * ph * pw
        let fc3 = Linear(inFeatures: flat, outFeatures: 384, weightInitializer: .truncatedNormal(std: 0.04), biasInitializer: .constant(0.1))
        let fc4 = Linear(inFeatures: 384, outFeatures: 192, weightInitializer: .truncatedNormal(std: 0.04), biasInitializer: .constant(0.1))
        fc3.weight.weightDecay = 0.004
        fc4.weight.weightDecay = 0.004
        return Sequential {
            Conv2D(inChannels: c, outChannels: 64, kernelSize: k, padding: .same,
                   weightInitializer: .truncatedNormal(std: 5e-2), biasInitializer: .zeros)
            ReLU()
            MaxPool2D(kernelSize: 3, stride: 2, padding: .same)
            if lrn { LocalResponseNorm(depthRadius: 4, bias: 1, alpha: 0.001 / 9, beta: 0.75) }
            Conv2D(inChannels: 64, outChannels: 64, kernelSize: k, padding: .same,
                   weightInitializer: .truncatedNormal(std: 5e-2), biasInitializer: .constant(0.1))
            ReLU()
            if lrn { LocalResponseNorm(depthRadius: 4, bias: 1, alpha: 0.001 / 9, beta: 0.75) }
            MaxPool2D(kernelSize: 3, stride: 2, padding: .same)
            Flatten()
            fc3; ReLU()
            fc4; ReLU()
            Linear(inFeatures: 192, outFeatures: classes, weightInitializer: .truncatedNormal(std: 1 / 192), biasInitializer: .zeros)
        }
    }

    /// David Page's ResNet-9 (the DAWNBench CIFAR-10 net).
    static func resnet9(inChannels: Int, classes: Int, width: Float) -> any Layer {
        func ch(_ n: Int) -> Int { max(1, Int((Float(n) * width).rounded())) }
        func convBN(_ i: Int, _ o: Int) -> [any Layer] {
            [Conv2D(inChannels: i, outChannels: o, kernelSize: 3, padding: .symmetric(1, 1), bias: false),
             BatchNorm2D(features: o), ReLU()]
        }
        return Sequential {
            convBN(inChannels, ch(64))
            convBN(ch(64), ch(128)); MaxPool2D(kernelSize: 2)
            Residual { convBN(ch(128), ch(128)); convBN(ch(128), ch(128)) }
            convBN(ch(128), ch(256)); MaxPool2D(kernelSize: 2)
            convBN(ch(256), ch(512)); MaxPool2D(kernelSize: 2)
            Residual { convBN(ch(512), ch(512)); convBN(ch(512), ch(512)) }
            GlobalMaxPool()
            Linear(inFeatures: ch(512), outFeatures: classes, bias: false)
            Scale(0.125)
        }
    }
}
