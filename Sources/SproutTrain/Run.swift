import Foundation
import SproutData
import SproutNN
import SproutOptim
import SproutTensor

/// Everything a training run needs; saved as `config.json` in the run directory so that a
/// run can be resumed, evaluated and served from its directory alone.
public struct RunConfiguration: Codable, Sendable, Equatable {
    public enum OptimizerKind: String, Codable, Sendable, CaseIterable { case sgd, nesterov, adam, adamw, muon }
    public enum ScheduleKind: String, Codable, Sendable, CaseIterable { case constant, onecycle, cosine, staircase, linear }

    public var dataset = DatasetKind.fashionMNIST
    public var dataDir: String?
    public var model: String?
    /// JSON layer description (contents of --model-spec), instead of a zoo model.
    public var modelSpec: String?
    public var width: Float = 1
    /// The convolutions' kernel size, where the zoo model has that setting (tf-cifar10's 5×5).
    public var kernelSize: Int?
    /// Winograd kernels for this run's 3×3 convolutions: auto (WinogradRule), on or off
    /// (nil: SPROUT_WINOGRAD, else auto).
    public var winograd: RuntimeSettings.Winograd?
    public var epochs = 10
    public var steps: Int?
    public var batchSize = 128
    public var optimizer = OptimizerKind.sgd
    public var learningRate: Float?
    public var momentum: Float = 0.9
    public var nesterov = false
    public var weightDecay: Float = 5e-4
    public var schedule = ScheduleKind.onecycle
    public var warmupFraction: Float = 0.2
    /// One-cycle schedule: the learning rate at the first and the last step, as fractions
    /// of the peak (nil: 0.1 and 0).
    public var scheduleStart: Float?
    public var scheduleEnd: Float?
    public var labelSmoothing: Float = 0
    public var emaDecay: Float?
    public var clipNorm: Float?
    /// Images held out for validation: a count (`validationSplit`) or a fraction
    /// (`validationFraction`, `--val-split 20%`). Photo folders split per class (seeded,
    /// stratified); the standard datasets hold out their last images, as before.
    public var validationSplit: Int?
    public var validationFraction: Double?
    public var augment: Bool?
    /// Random translation in pixels (reflect padding) for non-TF models; nil = the default
    /// (4 for colour images, 2 for grey).
    public var translate: Int?
    /// Random horizontal flips; nil = the default (on for colour images, off for grey:
    /// a mirrored digit is another symbol, a mirrored shirt is still a shirt).
    public var flip: Bool?
    /// Photo models: the side photos are resampled to (nil: the model's default input, 224).
    public var imageSize: Int?
    /// Weights to start from (a PyTorch .pth or safetensors state dict with the model's
    /// reference names); the classifier is replaced by a new one for the dataset's classes.
    public var pretrained: String?
    /// With `pretrained`: train the new head only; the backbone's parameters are frozen and
    /// its batch norms stay in evaluation mode (so only the head's backward runs).
    public var freezeBackbone: Bool?
    /// With `pretrained`: train the classifier and the backbone's last N blocks (0 is
    /// `freezeBackbone`); the blocks below stay frozen, their batch norms in evaluation mode.
    public var unfreezeLastBlocks: Int?
    /// With `pretrained`: the backbone's learning rate as a fraction of the classifier's
    /// (full fine-tuning usually moves pretrained filters less than the new head).
    public var backboneLearningRateScale: Float?
    /// With a frozen backbone: compute its features once and train the classifier on them
    /// (nil: on). False runs the backbone on every augmented batch instead.
    public var cacheFeatures: Bool?
    /// Photo folders: a file that does not decode is left out, named and counted (the
    /// default), or, when false, an error naming it.
    public var skipBadImages: Bool?
    /// Photo models: colour jitter strength (brightness, contrast, saturation; 0.4 is a
    /// common choice) and the largest random rotation in degrees (nil: off).
    public var colorJitter: Float?
    public var rotation: Float?
    /// Threads preparing training batches (nil: one for in-memory data; for photos, all
    /// but one core, at least one).
    public var loaderWorkers: Int?
    /// Averaging over flipped/translated copies when evaluating.
    public var testTimeAugmentation: TestTimeAugmentation?
    /// Data-parallel runs: batch-norm statistics over the global batch instead of each rank's.
    public var syncBatchNorm: Bool?
    /// The recipe this configuration started from, if any.
    public var recipe: String?
    /// `--optimizer muon`: airbench94_muon's optimizers. Muon for every 4-D filter bank,
    /// Nesterov SGD for the rest (batch-norm and whitening biases, the classifier), each at
    /// its own rate; `weightDecay` is then the shrink per step at the full rate, airbench's
    /// 2e-6 × batch, given to each SGD group as weightDecay / its rate.
    public struct MuonSettings: Codable, Sendable, Equatable {
        public var learningRate: Float = 0.24
        public var momentum: Float = 0.6
        /// Nesterov SGD's momentum for the parameters that are not filters.
        public var otherMomentum: Float = 0.85
        public var biasLearningRate: Float = 0.053
        public var headLearningRate: Float = 0.67
        /// airbench-muon's whitening bias trains for this many epochs (its rate decaying to 0), then stays.
        public var whiteningBiasEpochs: Float = 3
        public init() {}
    }
    public var muon: MuonSettings?
    /// The loss summed over the batch instead of averaged (airbench's; its learning rates
    /// assume it). The logged loss stays the mean.
    public var summedLoss: Bool?
    /// Flip every image at random once, then the whole set on odd epochs (airbench's
    /// alternating flip: each image is seen both ways in every two epochs).
    public var alternatingFlip: Bool?
    /// Validate every N epochs (nil: every epoch; 0: only at the end).
    public var validateEvery: Int?
    /// End training when this validation metric has not improved for `patience` validations;
    /// the best checkpoint is marked and kept (`--checkpoint best`).
    public var earlyStop: EarlyStopping.Metric?
    /// For classes of different sizes: "auto" weighs each class's loss by n / (classes · n_c)
    /// (scikit-learn's "balanced"), so a rare class counts as much as a common one.
    public var classWeights: String?
    /// For classes of different sizes: each epoch draws its images with replacement, every
    /// class equally likely (a rare class's images repeat, a common class's are sub-sampled).
    public var balancedSampling: Bool?
    public var patience: Int?
    /// With test-time augmentation: apply it only to this share of the validation images, the
    /// least confident under the plain view (nil: all; 0.25 is the hiverge speedrun's).
    public var ttaFraction: Float?
    /// Composed lines (`mnist-lines`): how many characters a line holds, "5" or "1-8"
    /// (nil: 1-8), and how many lines make a training epoch (nil: 50,000). The validation
    /// lines (10,000) are composed from the held-out source digits (`validationSplit`,
    /// nil: the last 5,000; as many lines as an epoch when --lines asks for fewer).
    public var lineLength: String?
    public var lineCount: Int?
    /// `text-lines`: the word list (one per line; nil: the built-in list of common English
    /// words). The last tenth of the list (in a fixed shuffled order) is held out: validation
    /// lines are words no training line shows.
    public var wordList: String?
    public var seed: UInt64 = 0
    public var checkpointEverySteps: Int?
    public var checkpointEverySeconds: Double? = 600
    /// Complete checkpoints kept (older ones are removed after each save; the best stays).
    public var keepCheckpoints = 3
    /// Training scalars (TensorBoard, metrics.jsonl) every N steps (nil: 50).
    public var logEverySteps: Int?

    public init() {}

    public var modelName: String { model ?? RunConfiguration.defaultModel(dataset) }

    public static func defaultModel(_ dataset: DatasetKind) -> String {
        switch dataset {
        case .cifar10, .cifar100: return "tf-cifar10"
        case .folder: return "resnet9"
        case .mnist, .fashionMNIST: return "mnist-cnn"
        case .mnistLines, .textLines: return "crnn"
        }
    }

    /// Images `--val-split` asks to hold out of `count` (a count, or a share rounded), if any.
    func requestedValidationCount(of count: Int) -> Int? {
        validationSplit ?? validationFraction.map { Int((Double(count) * $0).rounded()) }
    }

    static func checkHoldOut(_ n: Int, of count: Int) throws {
        guard n > 0 && n < count else {
            throw RunError.invalid("--val-split holds out \(n) of \(count) images; it must be between 1 and \(count - 1)")
        }
    }

    /// The data directory: --data-dir, else where the dataset installs itself.
    public func dataDirectory() throws -> String {
        guard let dir = dataDir ?? dataset.defaultDirectory else {
            throw RunError.invalid("--data-dir is required for dataset '\(dataset.rawValue)'")
        }
        return dir
    }
}

public enum RunError: Error, CustomStringConvertible {
    case invalid(String)
    public var description: String { switch self { case .invalid(let m): return m } }
}

/// The data of a run: the training split, the split it validates on and how images are prepared.
public struct RunData {
    public var train: any Dataset
    public var validation: any Dataset
    public var validationName: String
    public var preprocessing: PreprocessingSpec
    public var modelInput: [Int]
    public var augmentation: Augmentation
    /// Images of a folder dataset that did not decode and were left out, with the reason.
    public var skippedImages: [(path: String, reason: String)] = []

    public var normalization: Normalization { preprocessing.loaderNormalization }

    public var cropSize: Int? { modelInput[1] < train.height ? modelInput[1] : nil }

    /// Photos stream from disk: the loaders decode on worker threads and keep few batches.
    public var streams: Bool { train is PhotoDataset }

    /// Reads the dataset the configuration names, splits off validation data and chooses the
    /// preprocessing for its model.
    public static func load(_ config: RunConfiguration) throws -> RunData {
        let dir = try config.dataDirectory()
        let prepared = config.modelSpec == nil ? Zoo.entry(config.modelName)?.input ?? Zoo.InputPreparation() : Zoo.InputPreparation()
        if config.dataset == .mnistLines { return try loadLines(config, directory: dir, input: prepared) }
        if config.dataset == .textLines { return try loadTextLines(config, fonts: dir, input: prepared) }
        if config.dataset == .folder && (prepared.photo || PhotoPack.isPack(dir)) { return try loadPhotos(config, directory: dir) }
        let skipBad = config.skipBadImages ?? true
        var (train, skipped) = try config.dataset.load(directory: dir, split: .train, skipBadImages: skipBad)
        var test: ImageDataset?
        if config.dataset.hasTestSplit(directory: dir) {
            if config.dataset == .folder {
                // A folder's own val/ must load (its errors matter); a missing MNIST test file is fine.
                let loaded = try config.dataset.load(directory: dir, split: .test, skipBadImages: skipBad)
                (test, skipped) = (loaded.dataset, skipped + loaded.skipped)
            } else {
                test = try? config.dataset.load(directory: dir, split: .test).dataset
            }
        }
        var validation: ImageDataset, validationName: String
        let requested = config.requestedValidationCount(of: train.count)
        func holdOut(_ n: Int) throws {
            try RunConfiguration.checkHoldOut(n, of: train.count)
            if config.dataset == .folder {
                (train, validation) = train.stratifiedSplit(validationCount: n, seed: config.seed)
                validationName = "val (\(n) training images, every class its share)"
            } else {
                (train, validation) = train.splittingLast(n)
                validationName = "val (last \(n) training images)"
            }
        }
        validation = train
        validationName = ""
        if let n = requested {
            try holdOut(n)
        } else if let test {
            validation = test
            validationName = config.dataset == .folder ? "val (\((dir as NSString).lastPathComponent)/val)" : "test"
        } else {
            try holdOut(min(5000, train.count / 10))
        }
        // The model's own input preparation (a zoo entry's; a model spec's is the default).
        let crop = prepared.cropSize.map { min($0, train.height, train.width) }
        let input = crop.map { [train.channels, $0, $0] } ?? train.shape
        let preprocessing: PreprocessingSpec
        switch prepared.normalization {
        case .perImageStandardization:
            preprocessing = PreprocessingSpec(normalization: .perImageStandardization, resize: train.height, channels: train.channels)
        case .datasetMeanStd:
            let (mean, std) = train.channelStatistics()
            preprocessing = PreprocessingSpec(normalization: .meanStd, mean: mean, std: std, resize: train.height, channels: train.channels)
        case let .fixedMeanStd(mean, std):
            preprocessing = PreprocessingSpec(normalization: .meanStd, mean: mean, std: std, resize: train.height, channels: train.channels)
        }
        let croppedRandomly = crop != nil
        let colour = train.channels == 3
        let augment = config.augment ?? colour
        var augmentation = Augmentation.none
        if augment {
            // The tutorial's random 24×24 crop and flip; its strong brightness/contrast
            // distortions are left out of this default, which aims at short runs
            // (available through Augmentation for longer ones).
            augmentation = croppedRandomly ? Augmentation(randomCrop: true, horizontalFlip: true)
                                : Augmentation(randomCropPadding: config.translate ?? (colour ? 4 : 2),
                                               paddingMode: colour ? .reflect : .zero, horizontalFlip: config.flip ?? colour)
            augmentation.alternatingFlip = config.alternatingFlip ?? false
        }
        return RunData(train: train, validation: validation, validationName: validationName,
                       preprocessing: preprocessing, modelInput: input, augmentation: augmentation, skippedImages: skipped)
    }
}

extension RunData {
    /// Validation and test lines are composed with fixed seeds (not the run's), so that runs
    /// of different seeds are scored on the same lines and can be compared pair by pair.
    static let validationLineSeed: UInt64 = 0x5641_4C49_4445, testLineSeed: UInt64 = 0x5445_5354
    static let evaluationLineCount = 10_000

    /// Validation and test lines: 10,000, or an epoch's lines when --lines asks for fewer.
    static func evaluationLines(_ config: RunConfiguration) -> Int { min(evaluationLineCount, config.lineCount ?? evaluationLineCount) }

    /// "5" → 5...5, "1-8" → 1...8.
    public static func lineLengths(_ text: String?) throws -> ClosedRange<Int> {
        guard let text else { return 1...8 }
        let parts = text.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard (1...2).contains(parts.count), let low = parts.first!, let high = parts.last!, low >= 1, low <= high, high <= 32 else {
            throw RunError.invalid("--line-length: a count or a range such as 5 or 1-8 (within 1-32), got '\(text)'")
        }
        return low...high
    }

    /// Lines of MNIST digits: training lines from all but the last `validationSplit` (5,000)
    /// training digits, validation lines from those held out, the test split's lines from
    /// MNIST's test digits.
    static func loadLines(_ config: RunConfiguration, directory dir: String, input prepared: Zoo.InputPreparation,
                          lengthOverride: String? = nil) throws -> RunData {
        let digits = try MNIST.load(directory: dir, split: .train)
        let held = config.validationSplit ?? config.validationFraction.map { Int((Double(digits.count) * $0).rounded()) } ?? min(5000, digits.count / 10)
        try RunConfiguration.checkHoldOut(held, of: digits.count)
        let (trainDigits, validationDigits) = digits.splittingLast(held)
        let lengths = try lineLengths(config.lineLength)
        let evaluated = try lengthOverride.map(lineLengths) ?? lengths
        let width = DigitLines.width(forLength: lengths.upperBound)
        let train = try DigitLines(digits: trainDigits, count: config.lineCount ?? 50_000, lengths: lengths, seed: config.seed)
        let validation = try DigitLines(digits: validationDigits, count: evaluationLines(config), lengths: evaluated, width: width,
                                        seed: validationLineSeed)
        var mean: [Float] = [0.5], std: [Float] = [0.5]
        if case let .fixedMeanStd(m, s) = prepared.normalization { (mean, std) = (m, s) }
        let preprocessing = PreprocessingSpec(normalization: .meanStd, mean: mean, std: std, resize: DigitLines.lineHeight, channels: 1,
                                              lineWidth: width)
        var augmentation = Augmentation.none
        augmentation.freshLayout = config.augment ?? true
        augmentation.rotation = augmentation.freshLayout ? config.rotation ?? 0 : 0
        return RunData(train: train, validation: validation,
                       validationName: "val (\(validation.count) lines of \(evaluated.count == 1 ? "\(evaluated.lowerBound)" : "\(evaluated.lowerBound)-\(evaluated.upperBound)") digits from the last \(held) training digits)",
                       preprocessing: preprocessing, modelInput: [1, DigitLines.lineHeight, width], augmentation: augmentation)
    }

    /// Rendered words: training lines from nine tenths of the word list, validation lines
    /// (5,000) from the rest, in the fonts at `fonts`.
    static func loadTextLines(_ config: RunConfiguration, fonts path: String, input prepared: Zoo.InputPreparation) throws -> RunData {
        let fonts = try Font.load(path)
        var words = try config.wordList.map(TextLines.readWords) ?? TextLines.defaultWords
        var g = SeededGenerator(seed: 0x574F_5244)
        words.shuffle(using: &g)
        let maxLength = try lineLengths(config.lineLength ?? "1-12").upperBound
        words = words.filter { $0.count <= maxLength }
        let held = max(1, words.count / 10)
        guard words.count > held else { throw RunError.invalid("--words: \(words.count) words of at most \(maxLength) characters; at least 2 are needed") }
        let alphabet = Array(Set(words.joined())).sorted()
        let train = try TextLines(fonts: fonts, words: Array(words.dropLast(held)), alphabet: alphabet, count: config.lineCount ?? 50_000,
                                  maxLength: maxLength, seed: config.seed)
        let validation = try TextLines(fonts: fonts, words: Array(words.suffix(held)), alphabet: alphabet, count: min(5_000, evaluationLines(config)),
                                       maxLength: maxLength, seed: validationLineSeed)
        var mean: [Float] = [0.5], std: [Float] = [0.5]
        if case let .fixedMeanStd(m, s) = prepared.normalization { (mean, std) = (m, s) }
        var augmentation = Augmentation.none
        augmentation.freshLayout = config.augment ?? true
        augmentation.rotation = augmentation.freshLayout ? config.rotation ?? 0 : 0
        return RunData(train: train, validation: validation,
                       validationName: "val (\(validation.count) lines of \(held) held-out words, \(fonts.count) font\(fonts.count == 1 ? "" : "s"))",
                       preprocessing: PreprocessingSpec(normalization: .meanStd, mean: mean, std: std, resize: TextLines.lineHeight,
                                                        channels: 1, lineWidth: train.width),
                       modelInput: [1, TextLines.lineHeight, train.width], augmentation: augmentation)
    }

    /// The lines of MNIST's test digits (digits no run trains or validates on).
    static func testLines(_ config: RunConfiguration, lengthOverride: String?) throws -> DigitLines {
        let digits = try MNIST.load(directory: try config.dataDirectory(), split: .test)
        let lengths = try lineLengths(config.lineLength)
        return try DigitLines(digits: digits, count: evaluationLines(config), lengths: try lengthOverride.map(lineLengths) ?? lengths,
                              width: DigitLines.width(forLength: lengths.upperBound), seed: testLineSeed)
    }

    /// A photo folder for a photo model (224 px): the file lists only, streamed at
    /// `--image-size` (the model's input) with ImageNet statistics; a folder's val/ is the
    /// held-out split, else a stratified seeded split of the training folder.
    static func loadPhotos(_ config: RunConfiguration, directory dir: String) throws -> RunData {
        let side = config.imageSize ?? Zoo.entry(config.modelName)?.defaultInput[1] ?? 224
        var train: PhotoDataset, validation: PhotoDataset, validationName: String
        var held: PhotoDataset?
        if PhotoPack.isPack(dir) {
            let pack = try PhotoPack.open(dir)
            train = PhotoDataset(source: pack.split(0), size: side)
            if pack.hasValidationSplit { held = PhotoDataset(source: pack.split(1), size: side) }
        } else {
        switch ImageFolder.layout(of: dir) {
        case .classes(let root):
            train = PhotoDataset(source: try PhotoFolder.index(root: root), size: side)
        case .trainValidation(let t, let v):
            let folder = try PhotoFolder.index(root: t)
            train = PhotoDataset(source: folder, size: side)
            held = PhotoDataset(source: try PhotoFolder.index(root: v, classNames: folder.classNames), size: side)
        }
        }
        let requested = config.requestedValidationCount(of: train.count)
        if let n = requested ?? (held == nil ? min(5000, train.count / 10) : nil) {
            try RunConfiguration.checkHoldOut(n, of: train.count)
            (train, validation) = train.stratifiedSplit(validationCount: n, seed: config.seed)
            validationName = "val (\(n) training images, every class its share)"
        } else {
            validation = held!
            validationName = "val (\((dir as NSString).lastPathComponent)/val)"
        }
        let (mean, std) = Zoo.InputPreparation.photoStatistics(model: config.modelName)
        let preprocessing = PreprocessingSpec(normalization: .meanStd, mean: mean, std: std, resize: train.resize, channels: 3, photo: true)
        var augmentation = Augmentation.none
        if config.augment ?? true {
            augmentation = Augmentation.photo.jittered(colour: config.colorJitter ?? 0, rotation: config.rotation ?? 0)
            augmentation.horizontalFlip = config.flip ?? true
        }
        return RunData(train: train, validation: validation, validationName: validationName, preprocessing: preprocessing,
                       modelInput: [3, side, side], augmentation: augmentation)
    }

    /// One split of a run's data for evaluation: "train" and "val" are the run's own
    /// training and validation images; "test" is the dataset's official test split.
    public static func split(_ name: String, of config: RunConfiguration, lineLength: String? = nil) throws -> any Dataset {
        if config.dataset == .textLines {
            let data = try loadTextLines(config, fonts: try config.dataDirectory(), input: Zoo.entry(config.modelName)?.input ?? Zoo.InputPreparation())
            switch name {
            case "train": return data.train
            case "val": return data.validation
            case "test": throw DatasetError.noSplit(kind: config.dataset.rawValue, split: "test")
            default: throw RunError.invalid("unknown split '\(name)' (val, train)")
            }
        }
        if config.dataset == .mnistLines {
            let prepared = Zoo.entry(config.modelName)?.input ?? Zoo.InputPreparation()
            switch name {
            case "train": return try loadLines(config, directory: try config.dataDirectory(), input: prepared).train
            case "val": return try loadLines(config, directory: try config.dataDirectory(), input: prepared, lengthOverride: lineLength).validation
            case "test": return try testLines(config, lengthOverride: lineLength)
            default: throw RunError.invalid("unknown split '\(name)' (test, val, train)")
            }
        }
        switch name {
        case "train": return try load(config).train
        case "val": return try load(config).validation
        case "test":
            let loaded = try load(config)
            if loaded.streams {
                throw DatasetError.noSplit(kind: config.dataset.rawValue, split: "test")
            }
            return try config.dataset.load(directory: try config.dataDirectory(), split: .test).dataset
        default: throw RunError.invalid("unknown split '\(name)' (test, val, train)")
        }
    }
}

/// A loader that prepares images as a checkpoint's model was trained (no augmentation).
/// Photos decode on worker threads in batches of at most 64.
public func evaluationLoader(_ dataset: any Dataset, preprocessing: PreprocessingSpec, modelInput: [Int], batchSize: Int = 500,
                             workers: Int? = nil) -> DataLoader {
    let normalization = preprocessing.loaderNormalization
    let crop = modelInput[1] < dataset.height ? modelInput[1] : nil
    if dataset is PhotoDataset {
        return DataLoader(dataset: dataset, batchSize: min(batchSize, 64), normalization: normalization, prefetch: 2,
                          workers: workers ?? Threading.count)
    }
    return DataLoader(dataset: dataset, batchSize: batchSize, normalization: normalization, cropSize: crop)
}

/// Builds the optimizer and schedule of a configuration.
public func makeOptimizer(_ config: RunConfiguration, model: any Layer, stepsPerEpoch: Int)
    throws -> (optimizer: any Optimizer, schedule: any LearningRateSchedule) {
    let totalSteps = config.steps ?? config.epochs * stepsPerEpoch
    let params = model.trainableParameters
    let lr: Float
    let optimizer: any Optimizer
    switch config.optimizer {
    case .sgd, .nesterov:
        lr = config.learningRate ?? 0.05
        optimizer = SGD(groups: [ParameterGroup(params)], learningRate: lr, momentum: config.momentum,
                        nesterov: config.nesterov || config.optimizer == .nesterov, weightDecay: config.weightDecay)
    case .adam:
        lr = config.learningRate ?? 1e-3
        optimizer = Adam(groups: [ParameterGroup(params)], learningRate: lr, weightDecay: config.weightDecay)
    case .adamw:
        lr = config.learningRate ?? 1e-3
        optimizer = Adam(groups: [ParameterGroup(params)], learningRate: lr, weightDecay: config.weightDecay, decoupledWeightDecay: true)
    case .muon:
        // The schedule is a multiplier of each member's own rate.
        lr = 1
        optimizer = muonOptimizers(config, model: model, stepsPerEpoch: stepsPerEpoch)
    }
    let schedule: any LearningRateSchedule
    switch config.schedule {
    case .constant: schedule = ConstantSchedule(lr)
    case .onecycle: schedule = PiecewiseLinear.oneCycle(totalSteps: totalSteps, peak: lr, warmupFraction: config.warmupFraction,
                                                         start: lr * (config.scheduleStart ?? 0.1), end: lr * (config.scheduleEnd ?? 0))
    case .cosine: schedule = CosineDecay(initial: lr, totalSteps: totalSteps, warmupSteps: Int(Float(totalSteps) * config.warmupFraction))
    case .linear: schedule = PiecewiseLinear([(0, lr), (max(1, totalSteps), 0)])
    case .staircase:
        // TensorFlow tutorial: ×0.1 every 350 epochs (of 50,000 images at batch 128).
        schedule = ExponentialDecay(initial: lr, decaySteps: max(1, 350 * stepsPerEpoch), decayRate: 0.1, staircase: true)
    }
    return (optimizer, schedule)
}

/// airbench94_muon's optimizers: Muon for the trainable 4-D filter banks; Nesterov SGD for
/// the classifier (2-D), for the other parameters (biases) and, on its own short schedule,
/// for the whitening bias. Coupled decay weightDecay / rate, so that every group shrinks by
/// `weightDecay` per step at its full rate, as airbench's `weight_decay=wd/lr` does.
func muonOptimizers(_ config: RunConfiguration, model: any Layer, stepsPerEpoch: Int) -> OptimizerSet {
    let m = config.muon ?? RunConfiguration.MuonSettings()
    let whiteningBias = (model as? Airbench)?.whiteningBias
    let params = model.trainableParameters.filter { $0 !== whiteningBias }
    let filters = params.filter { $0.value.rank == 4 }
    let heads = params.filter { $0.value.rank == 2 }
    let others = params.filter { $0.value.rank != 4 && $0.value.rank != 2 }
    func sgd(_ ps: [Parameter], _ rate: Float) -> OptimizerSet.Member {
        .init(SGD(groups: [ParameterGroup(ps)], learningRate: rate, momentum: m.otherMomentum, nesterov: true,
                  weightDecay: config.weightDecay / rate), baseLearningRate: rate)
    }
    var members: [OptimizerSet.Member] = [
        .init(Muon(groups: [ParameterGroup(filters)], learningRate: m.learningRate, momentum: m.momentum, nesterov: true),
              baseLearningRate: m.learningRate),
        sgd(others, m.biasLearningRate),
        sgd(heads, m.headLearningRate),
    ]
    if let whiteningBias, whiteningBias.isTrainable {
        let steps = max(1, Int((Float(stepsPerEpoch) * m.whiteningBiasEpochs).rounded(.up)))
        let base = sgd([whiteningBias], m.biasLearningRate)
        members.append(.init(base.optimizer, baseLearningRate: m.biasLearningRate, decaySteps: steps))
    }
    return OptimizerSet(members)
}

