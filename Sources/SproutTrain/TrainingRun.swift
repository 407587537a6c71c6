import Foundation
import SproutData
import SproutNN
import SproutOptim
import SproutTensor

/// One training run as a library type: what `sprout train` does between parsing its flags
/// and printing — data, model, optimizer, schedule, EMA, objective, checkpoints, logs,
/// resume, data-parallel wiring — so that a program gets the same run from a configuration.
/// It writes only into its run directory (rank 0 alone under data parallelism) and prints
/// nothing; the caller adds a progress callback if it wants one.
public final class TrainingRun {
    /// This process's part of a data-parallel job.
    public struct Distribution {
        public let rank: Int, ranks: Int
        /// Averages gradients (and sums the step's metrics) across the ranks.
        public let gradients: any GradientReducer
        /// Sums batch-norm statistics across the ranks, with `syncBatchNorm`.
        public let statistics: (any StatisticsReducer)?
        public init(rank: Int, ranks: Int, gradients: any GradientReducer, statistics: (any StatisticsReducer)?) {
            (self.rank, self.ranks, self.gradients, self.statistics) = (rank, ranks, gradients, statistics)
        }
    }

    public let directory: RunDirectory
    public let configuration: RunConfiguration
    public let data: RunData
    public let spec: ModelSpec
    public let model: any Layer
    public let trainer: Trainer
    public let trainLoader: DataLoader
    public let validationLoader: DataLoader
    public let checkpoints: CheckpointCallback
    public let rank: Int, ranks: Int
    /// With a frozen backbone: the feature caches the classifier trains and validates on,
    /// each with the loader of the images it is computed from (empty otherwise).
    public let featureSources: [(cache: FeatureCache, images: DataLoader)]

    /// With `earlyStop`: the callback, to ask where the best epoch was.
    public private(set) var earlyStopping: EarlyStopping?

    /// Images that did not load, over every loader of the run.
    public var loaderFailures: [String] {
        trainLoader.failures + validationLoader.failures + featureSources.flatMap { $0.images.failures }
    }

    /// Reads the data and builds everything; writes nothing yet.
    public init(configuration config: RunConfiguration, directory: RunDirectory, distribution: Distribution? = nil) throws {
        let (rank, ranks) = (distribution?.rank ?? 0, distribution?.ranks ?? 1)
        if ranks > 1 && config.batchSize % ranks != 0 {
            throw RunError.invalid("--batch-size \(config.batchSize) is the global batch: it must divide evenly among \(ranks) ranks")
        }
        let data = try RunData.load(config)
        seedEverything(config.seed)
        // A sequence model has one more output than the dataset has classes: CTC's blank.
        let outputs = data.train.classCount + (config.dataset.isSequence ? 1 : 0)
        let spec = ModelSpec(name: config.modelName, inputShape: data.modelInput, classes: outputs, width: config.width,
                             layers: config.modelSpec, kernelSize: config.kernelSize)
        let model = try spec.build()
        if let pretrained = config.pretrained {
            // The backbone from the file; the head stays new (other classes), unless the file's
            // head fits the dataset's classes exactly.
            let file = try WeightCatalog.resolve(pretrained)
            let tensors = try PretrainedWeights.read(file)
            let head = Zoo.entry(config.modelName)?.head
            let fits = head.map { h in
                tensors.filter { $0.name.hasPrefix(h) }.allSatisfy { t in
                    model.namedParameters.first { $0.name == t.name }?.parameter.shape == t.tensor.shape
                }
            } ?? true
            try PretrainedWeights.apply(tensors, to: model, file: file) { name in !fits && head.map(name.hasPrefix) == true }
        }
        // Transfer learning: which parts train, and whether the frozen backbone's features are
        // computed once instead of on every batch.
        var frozenLayers: [any Layer] = []
        var trainedModel: any Layer = model
        var featureSources: [(cache: FeatureCache, images: DataLoader)] = []
        let unfreeze = config.freezeBackbone == true ? 0 : config.unfreezeLastBlocks
        let transfer = model as? any TransferableClassifier
        if (unfreeze != nil || config.backboneLearningRateScale != nil) && transfer == nil {
            throw RunError.invalid("--freeze-backbone, --unfreeze-last and --backbone-lr-scale need a zoo model with a known classifier (resnet18/34/50, mobilenet-v2, efficientnet-lite0)")
        }
        if let transfer, let scale = config.backboneLearningRateScale {
            for (name, parameter) in model.namedParameters where !name.hasPrefix(transfer.headPrefix) {
                parameter.learningRateScale = (parameter.learningRateScale ?? 1) * scale
            }
        }
        let workers = config.loaderWorkers ?? (data.streams ? max(1, Threading.availableCores - 1) : 1)
        var loader = DataLoader(dataset: data.train, batchSize: config.batchSize, shuffle: true, dropLast: true, seed: config.seed,
                                augmentation: data.augmentation, normalization: data.normalization, cropSize: data.cropSize,
                                prefetch: data.streams ? 3 : 4, workers: workers)
        var validation = evaluationLoader(data.validation, preprocessing: data.preprocessing, modelInput: data.modelInput,
                                          workers: max(workers, Threading.count))
        if let transfer, let unfreeze {
            let trained = [transfer.headPrefix] + transfer.prefixes(ofLastBlocks: unfreeze)
            func isTrained(_ name: String) -> Bool { trained.contains { name.hasPrefix($0) } }
            for (name, parameter) in model.namedParameters where !isTrained(name) { parameter.isTrainable = false }
            for (name, layer) in model.namedLayers where layer is BatchNorm2D && !isTrained(name + ".") { frozenLayers.append(layer) }
            if unfreeze == 0 && config.cacheFeatures != false {
                // Every image's features once, in its evaluation view (and mirrored when the
                // run flips); the classifier then trains on those.
                let trainCache = FeatureCache(images: data.train, featureCount: transfer.featureCount,
                                              mirrored: data.augmentation.horizontalFlip)
                let validationCache = FeatureCache(images: data.validation, featureCount: transfer.featureCount, mirrored: false)
                let imageWorkers = max(workers, Threading.count)
                featureSources = [
                    (trainCache, evaluationLoader(data.train, preprocessing: data.preprocessing, modelInput: data.modelInput, batchSize: 32,
                                                  workers: imageWorkers)),
                    (validationCache, evaluationLoader(data.validation, preprocessing: data.preprocessing, modelInput: data.modelInput,
                                                       batchSize: 32, workers: imageWorkers)),
                ]
                trainedModel = ClassifierOnFeatures(transfer)
                loader = DataLoader(dataset: trainCache, batchSize: config.batchSize, shuffle: true, dropLast: true, seed: config.seed,
                                    normalization: .unit)
                validation = DataLoader(dataset: validationCache, batchSize: 500, normalization: .unit)
            }
        }
        // Classes of different sizes: draw every class equally often, or weigh the loss.
        let classCounts = loader.dataset.classCounts
        if config.balancedSampling == true {
            guard case .classes(let labels) = loader.dataset.targets(Array(0..<loader.dataset.count)) else {
                throw RunError.invalid("--balanced-sampling needs class labels")
            }
            loader.sampleWeights = labels.map { 1 / Double(max(1, classCounts[$0])) }
        }
        var classWeights: Tensor?
        switch config.classWeights {
        case nil, "none"?: break
        case "auto"?:
            let n = Float(classCounts.reduce(0, +)), k = Float(classCounts.count)
            classWeights = Tensor(shape: [classCounts.count], scalars: classCounts.map { $0 > 0 ? n / (k * Float($0)) : 0 })
        case let other?:
            let values = other.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard values.count == classCounts.count, values.allSatisfy({ $0 >= 0 }) else {
                throw RunError.invalid("--class-weights: 'auto' or \(classCounts.count) non-negative numbers separated by commas, got '\(other)'")
            }
            classWeights = Tensor(shape: [values.count], scalars: values)
        }
        loader.shard = (rank, ranks)
        loader.skipFailures = config.skipBadImages ?? true
        validation.skipFailures = config.skipBadImages ?? true
        for source in featureSources { source.images.skipFailures = config.skipBadImages ?? true }
        if let initializable = model as? any TrainingDataInitializable {
            let sample = DataLoader(dataset: data.train, batchSize: min(data.streams ? 256 : 5000, data.train.count),
                                    normalization: data.normalization)
            initializable.initialize(fromTrainingImages: sample.batch(epoch: 0, index: 0).images)
        }
        if config.syncBatchNorm == true, let statistics = distribution?.statistics {
            model.forEachLayer { ($0 as? BatchNorm2D)?.statisticsReducer = statistics }
        }
        let (optimizer, schedule) = try makeOptimizer(config, model: model, stepsPerEpoch: loader.batchesPerEpoch)
        let trainer = Trainer(model: trainedModel, optimizer: optimizer)
        trainer.frozenLayers = frozenLayers
        trainer.gradientReducer = distribution?.gradients
        trainer.schedule = schedule
        if config.dataset.isSequence {
            trainer.objective = SequenceRecognition(blank: data.train.classCount, classNames: data.train.classNames)
        } else {
            trainer.objective = Classification(labelSmoothing: config.labelSmoothing, classWeights: classWeights,
                                               summed: config.summedLoss ?? false, augmentedFraction: config.ttaFraction)
        }
        trainer.validationInterval = config.validateEvery
        trainer.clipNorm = config.clipNorm
        trainer.testTimeAugmentation = config.testTimeAugmentation ?? .none
        if let decay = config.emaDecay { trainer.ema = ExponentialMovingAverage(model: trainedModel, decay: decay) }

        let classNames = data.train.classNames, preprocessing = data.preprocessing
        let recorded = ["seed": "\(config.seed)", "dataset": config.dataset.rawValue]
        checkpoints = CheckpointCallback(
            directory: directory.checkpoints, everySteps: config.checkpointEverySteps, everySeconds: config.checkpointEverySeconds,
            keep: config.keepCheckpoints) { t in
                var metrics: [String: Double] = [:]
                if let e = t.lastEvaluation {
                    metrics = ["val/accuracy": e.top1, "val/loss": e.loss]
                    if let s = e.sequence { metrics["val/cer"] = s.characterErrorRate } else { metrics["val/top5"] = e.top5 }
                }
                return CheckpointManifest(step: t.step, epoch: t.epoch, batchInEpoch: t.batchInEpoch, model: spec,
                                          classNames: classNames, preprocessing: preprocessing, metrics: metrics,
                                          hasEMA: t.ema != nil, weightsFile: "", stateFile: "", config: recorded)
            }
        (self.directory, self.configuration, self.data, self.spec, self.model) = (directory, config, data, spec, model)
        (self.trainer, self.trainLoader, self.validationLoader, self.rank, self.ranks) = (trainer, loader, validation, rank, ranks)
        self.featureSources = featureSources
    }

    /// A hash of the configuration, the model's shapes and the data that every rank of a
    /// data-parallel job must share (compared before the first step).
    public var fingerprint: UInt64 {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var bytes: [UInt8] = ((try? encoder.encode(configuration)).map { [UInt8]($0) }) ?? []
        bytes += Array("\(data.train.count) \(data.train.classNames) \(model.namedParameters.map { $0.parameter.value.count })".utf8)
        if let images = data.train as? ImageDataset { bytes += Array(images.pixels.prefix(1 << 16)) }
        if let photos = data.train as? PhotoDataset {
            bytes += Array((0..<min(photos.count, 1000)).map { photos.source.name(of: $0) }.joined(separator: "\n").utf8)
        }
        return stableHash(bytes)
    }

    /// Writes the directory and its configuration (rank 0); resuming, restores weights,
    /// optimizer state, EMA, generator states and the position from the newest checkpoint
    /// (every rank) and returns its path and manifest. Then attaches the logs and checkpoint
    /// writing (rank 0).
    @discardableResult
    public func start(resuming: Bool) throws -> (path: String, manifest: CheckpointManifest)? {
        if rank == 0 {
            try directory.create(configuration: configuration)
            try writeSplit()
        }
        var resumed: (String, CheckpointManifest)?
        if resuming {
            let path = try directory.manifestPath(.latest)
            resumed = (path, try trainer.resume(fromManifest: path).manifest)
        }
        if rank == 0 {
            trainer.callbacks += [
                ScalarLogCallback(tensorboard: try TensorBoardWriter(directory: directory.path),
                                  jsonl: try JSONLWriter(path: directory.metricsPath), every: configuration.logEverySteps ?? 50),
                checkpoints,
            ]
            if let metric = configuration.earlyStop {
                let stopping = EarlyStopping(metric: metric, patience: configuration.patience ?? 3, checkpoints: checkpoints)
                earlyStopping = stopping
                trainer.callbacks.append(stopping)
            }
        }
        return resumed
    }

    /// Photo folders: which files the run trains and validates on (`split.json`, paths as
    /// the folder lists them), so that another tool can use the very same split.
    func writeSplit() throws {
        guard let train = data.train as? PhotoDataset, let validation = data.validation as? PhotoDataset else { return }
        func names(_ d: PhotoDataset) -> [String] { (0..<d.count).map { d.source.name(of: $0) } }
        let object: [String: Any] = ["train": names(train), "validation": names(validation), "classes": train.classNames,
                                     "seed": configuration.seed]
        let bytes = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        try bytes.write(to: URL(fileURLWithPath: directory.path + "/split.json"), options: .atomic)
    }

    /// How a call of `fit` ended.
    public struct Outcome {
        public let steps: Int
        public let seconds: Double
        /// Images per second of this process's share… times the ranks: the job's rate.
        public let imagesPerSecond: Double
        /// Stopped on request (a signal) before the end; resume continues it.
        public let stopped: Bool
        /// The final evaluation on the validation data (rank 0, when not stopped).
        public let evaluation: Evaluation?
        public let lastCheckpoint: String?
    }

    /// Trains to the configured number of epochs or steps (rank 0 validates each epoch).
    public func fit() throws -> Outcome {
        guard let mode = configuration.winograd else { return try fitWithKernels() }
        return try WinogradRule.$mode.withValue(mode) { try fitWithKernels() }
    }

    func fitWithKernels() throws -> Outcome {
        let started = Date(), firstStep = trainer.step
        if let transfer = model as? any TransferableClassifier {
            for (cache, images) in featureSources where !cache.isComputed {
                try cache.compute(with: transfer, loader: images)
                if let error = images.stoppingFailure { throw error }
            }
        }
        try trainer.fit(trainLoader, validation: rank == 0 ? validationLoader : nil, epochs: configuration.epochs,
                        maxSteps: configuration.steps)
        let seconds = Date().timeIntervalSince(started)
        let steps = trainer.step - firstStep
        var evaluation: Evaluation?
        if rank == 0 && !trainer.stopRequested { evaluation = trainer.lastEvaluation ?? trainer.evaluate(validationLoader) }
        if let error = validationLoader.stoppingFailure { throw error }
        return Outcome(steps: steps, seconds: seconds, imagesPerSecond: Double(steps * configuration.batchSize) / max(seconds, 1e-9),
                       stopped: trainer.stopRequested, evaluation: evaluation, lastCheckpoint: checkpoints.lastManifest)
    }
}

/// FNV-1a: the same bytes give the same 64-bit value on every rank and platform.
public func stableHash(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}
