import ArgumentParser
import Dispatch
import Foundation
import Sprout
import SproutDistributed

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model on a dataset, with checkpoints, TensorBoard logs and resume.",
        discussion: """
        Examples:
          sprout train                                   # mnist-cnn on Fashion-MNIST (Debian's dataset-fashion-mnist)
          sprout train --dataset mnist --data-dir DIR --val-split 5000 --optimizer adam --epochs 4
          sprout train --dataset cifar10 --data-dir DIR --model tf-cifar10 --val-split 5000
          sprout train --resume --run-dir runs/NAME      # continue a stopped run exactly
          sprout train --recipe cifar10-fast --data-dir DIR --print-config
          sprout train --recipe cifar10-fast --data-dir DIR --seed 1

        Recipes (settings with --print-config; any flag overrides them):
        \(Recipe.all.map { "  \($0.name.padding(toLength: 24, withPad: " ", startingAt: 0))\($0.summary)" }.joined(separator: "\n"))
        """)

    @Option(help: "Start from a named recipe (listed below); other flags override its settings.") var recipe: String?
    @Flag(help: "Print the resolved configuration as JSON and exit.") var printConfig = false

    @Option(help: "mnist, fashion-mnist, cifar10, cifar100, folder (ROOT/<class>/*.png|jpg), mnist-lines (lines of MNIST digits to read with CTC) or text-lines (words rendered with the fonts at --data-dir).") var dataset: DatasetKind?
    @Option(help: "Directory holding the dataset's official files.") var dataDir: String?
    @Option(help: "Zoo model (sprout models lists them).") var model: String?
    @Option(help: "A JSON file describing the layers (see docs/model-spec.md) instead of a zoo model.") var modelSpec: String?
    @Option(help: "Channel-width multiplier (resnet9, resnet18, airbench).") var width: Float?
    @Option(help: "Epochs to train.") var epochs: Int?
    @Option(help: "Stop after this many steps in all.") var steps: Int?
    @Option(help: "Images per step.") var batchSize: Int?
    @Option(help: "sgd, nesterov, adam or adamw.") var optimizer: RunConfiguration.OptimizerKind?
    @Option(name: [.customLong("lr"), .customLong("learning-rate")], help: "Peak learning rate.") var learningRate: Float?
    @Option(help: "SGD momentum.") var momentum: Float?
    @Option(help: "Weight decay (L2 for sgd/adam, decoupled for adamw).") var weightDecay: Float?
    @Option(help: "constant, onecycle, cosine or staircase.") var schedule: RunConfiguration.ScheduleKind?
    @Option(help: "Fraction of the run spent warming up (onecycle, cosine).") var warmup: Float?
    @Option(help: "One-cycle: learning rate at the first step, as a fraction of the peak (default 0.1).") var lrStart: Float?
    @Option(help: "One-cycle: learning rate at the last step, as a fraction of the peak (default 0).") var lrEnd: Float?
    @Option(help: "Label smoothing ε.") var labelSmoothing: Float?
    @Option(help: "Keep an exponential moving average of the weights with this decay (evaluation uses it).") var ema: Float?
    @Option(help: "Clip gradients to this global L2 norm.") var clipNorm: Float?
    @Option(help: "Hold out training images for validation: a count (5000) or a share (20%). Photo folders split every class by its share (seeded); the other datasets hold out their last images. Default: the test split (a folder's val/) when present, else 10% (at most 5,000).") var valSplit: ValidationSplitArgument?
    @Option(help: "Augment training images (flip/crop/translate): true or false. Default: on for colour datasets.") var augment: Bool?
    @Option(help: "Random translation in pixels when augmenting (default 4 for colour, 2 for grey).") var translate: Int?
    @Option(help: "Random horizontal flips when augmenting: true or false. Default: on for colour datasets.") var flip: Bool?
    @Option(help: "Photo models (resnet18, mobilenet-v2, …) on a folder: the side photos are resampled to (default 224).") var imageSize: Int?
    @Option(help: "Start from these weights (PyTorch .pth in either format, or safetensors; the model's reference names); the classifier is replaced for the dataset's classes.") var pretrained: String?
    @Flag(help: "With --pretrained: train only the new classifier; the backbone is frozen, its batch norms in inference mode, and its features are computed once (see --cache-features).") var freezeBackbone = false
    @Option(name: .customLong("unfreeze-last"), help: "With --pretrained: train the classifier and the backbone's last N blocks; the blocks below stay frozen.") var unfreezeLast: Int?
    @Option(name: .customLong("backbone-lr-scale"), help: "With --pretrained: the backbone's learning rate as a fraction of the classifier's (e.g. 0.1).") var backboneLrScale: Float?
    @Option(name: .customLong("tta-fraction"), help: "With --tta: augment only this share of the validation images, the least confident (e.g. 0.25).") var ttaFraction: Float?
    @Option(name: .customLong("early-stop"), help: "End training when this validation metric stops improving: val/loss or val/accuracy; the best checkpoint is marked (--checkpoint best).") var earlyStop: EarlyStopping.Metric?
    @Option(help: "With --early-stop: validations without improvement before stopping (default 3).") var patience: Int?
    @Option(help: "The convolutions' kernel size, for models with that setting (tf-cifar10: 5 by default).") var kernelSize: Int?
    @Option(help: "Sprout's Winograd kernels for 3x3 convolutions: auto (where measured faster), on or off (default: SPROUT_WINOGRAD, else auto).")
    var winograd: RuntimeSettings.Winograd?
    @Option(help: "Weigh each class's loss: auto (n / (classes × n_class): rare classes count as much as common ones) or one number per class, comma-separated.")
    var classWeights: String?
    @Flag(help: "Draw each epoch's images with replacement, every class equally likely (for folders whose classes differ in size).")
    var balancedSampling = false
    @Option(name: .customLong("val-every"), help: "Validate every N epochs (0: only at the end; default: every epoch).") var valEvery: Int?
    @Option(help: "With --freeze-backbone: compute the backbone's features once (centre crops, and their mirror images when flipping) and train the classifier on them (default true).") var cacheFeatures: Bool?
    @Option(help: "Photo folders: leave out files that do not decode, naming them and counting them at the end (default true); false makes the first one an error.") var skipBadImages: Bool?
    @Option(help: "Photo models: colour jitter strength when augmenting (brightness, contrast, saturation; e.g. 0.4). Default off.") var colorJitter: Float?
    @Option(help: "Photo models and mnist-lines: random rotations of up to this many degrees when augmenting (mnist-lines: each digit). Default off.") var rotation: Float?
    @Option(help: "Threads preparing training batches (default: 1 for in-memory data; for photo folders all cores but one).") var workers: Int?
    @Option(help: "Test-time augmentation for the final evaluation (epochs before it evaluate plain images): none, flip or flip-translate.") var tta: TestTimeAugmentation?
    @Option(help: "mnist-lines: digits per line, a count or a range (5, 1-8; default 1-8).") var lineLength: String?
    @Option(help: "mnist-lines, text-lines: lines per training epoch (default 50000).") var lines: Int?
    @Option(help: "text-lines: a word list, one word per line (default: a built-in list of common English words).") var words: String?
    @Option(help: "Run directory (default runs/<dataset>-<model>-<time>).") var runDir: String?
    @Option(help: "Random seed (weights, data order, augmentation).") var seed: UInt64?
    @Option(help: "Checkpoint every N steps.") var checkpointEverySteps: Int?
    @Option(help: "Checkpoint every N seconds (default 600).") var checkpointEverySeconds: Double?
    @Option(help: "Complete checkpoints to keep (default 3; older ones are removed after each save, the best one stays).") var keepCheckpoints: Int?
    @Option(help: "Log training scalars (TensorBoard, metrics.jsonl) every N steps (default 50).") var logEvery: Int?
    @Flag(help: "Under mpirun: batch-norm statistics over the global batch (default: each rank's own).") var syncBn = false
    @Flag(help: "Continue the run in --run-dir from its newest checkpoint.") var resume = false
    @Flag(help: "Instead of training: the learning-rate range test (rates growing from 1e-6 to 10 over --find-lr-steps batches); prints a suggested --lr and writes RUN_DIR/lr-finder.svg.")
    var findLr = false
    @Option(help: "Batches of the --find-lr sweep.") var findLrSteps = 100
    @OptionGroup var threadOptions: ThreadOptions

    func makeConfiguration() throws -> RunConfiguration {
        var c = try recipe.map { try Recipe.named($0).configuration } ?? RunConfiguration()
        if let dataset { c.dataset = dataset }
        c.dataDir = dataDir ?? c.dataDir
        c.model = model ?? c.model
        if let modelSpec {
            guard let data = FileManager.default.contents(atPath: modelSpec) else { throw CLIError("\(modelSpec): no such file") }
            c.modelSpec = String(decoding: data, as: UTF8.self)
            c.model = c.model ?? ((modelSpec as NSString).lastPathComponent as NSString).deletingPathExtension
        }
        if let width { c.width = width }
        if let epochs { c.epochs = epochs }
        c.steps = steps ?? c.steps
        if let batchSize { c.batchSize = batchSize }
        if let optimizer { c.optimizer = optimizer }
        c.learningRate = learningRate ?? c.learningRate
        if let momentum { c.momentum = momentum }
        if let weightDecay { c.weightDecay = weightDecay }
        if let schedule { c.schedule = schedule }
        if let warmup { c.warmupFraction = warmup }
        c.scheduleStart = lrStart ?? c.scheduleStart
        c.scheduleEnd = lrEnd ?? c.scheduleEnd
        if let labelSmoothing { c.labelSmoothing = labelSmoothing }
        c.emaDecay = ema ?? c.emaDecay
        c.clipNorm = clipNorm ?? c.clipNorm
        switch valSplit {
        case .count(let n)?: (c.validationSplit, c.validationFraction) = (n, nil)
        case .fraction(let f)?: (c.validationSplit, c.validationFraction) = (nil, f)
        case nil: break
        }
        c.augment = augment ?? c.augment
        c.translate = translate ?? c.translate
        c.flip = flip ?? c.flip
        c.imageSize = imageSize ?? c.imageSize
        c.loaderWorkers = workers ?? c.loaderWorkers
        c.colorJitter = colorJitter ?? c.colorJitter
        c.skipBadImages = skipBadImages ?? c.skipBadImages
        c.pretrained = pretrained ?? c.pretrained
        if freezeBackbone { c.freezeBackbone = true }
        c.unfreezeLastBlocks = unfreezeLast ?? c.unfreezeLastBlocks
        c.backboneLearningRateScale = backboneLrScale ?? c.backboneLearningRateScale
        c.cacheFeatures = cacheFeatures ?? c.cacheFeatures
        c.validateEvery = valEvery ?? c.validateEvery
        c.earlyStop = earlyStop ?? c.earlyStop
        c.patience = patience ?? c.patience
        c.classWeights = classWeights ?? c.classWeights
        c.winograd = winograd ?? c.winograd
        c.lineLength = lineLength ?? c.lineLength
        c.lineCount = lines ?? c.lineCount
        c.wordList = words ?? c.wordList
        if c.dataset.isSequence { _ = try RunData.lineLengths(c.lineLength) }
        if let n = c.lineCount, n < 1 { throw ValidationError("--lines must be positive") }
        if let kernelSize {
            guard kernelSize >= 1 && kernelSize % 2 == 1 else { throw ValidationError("--kernel-size must be odd and positive, got \(kernelSize)") }
            c.kernelSize = kernelSize
        }
        if balancedSampling { c.balancedSampling = true }
        if let p = c.patience, p < 1 { throw ValidationError("--patience must be at least 1") }
        if c.earlyStop != nil && c.validateEvery == 0 { throw ValidationError("--early-stop needs validation during training: --val-every 1 (or more)") }
        c.ttaFraction = ttaFraction ?? c.ttaFraction
        if let f = c.ttaFraction, !(f >= 0 && f <= 1) { throw ValidationError("--tta-fraction must be between 0 and 1") }
        if let n = c.validateEvery, n < 0 { throw ValidationError("--val-every must be 0 or more") }
        if let n = c.unfreezeLastBlocks, n < 0 { throw ValidationError("--unfreeze-last must be 0 or more") }
        if let s = c.backboneLearningRateScale, !(s >= 0) { throw ValidationError("--backbone-lr-scale must be 0 or more") }
        c.rotation = rotation ?? c.rotation
        c.testTimeAugmentation = tta ?? c.testTimeAugmentation
        if syncBn { c.syncBatchNorm = true }
        if let seed { c.seed = seed }
        c.checkpointEverySteps = checkpointEverySteps ?? c.checkpointEverySteps
        c.checkpointEverySeconds = checkpointEverySeconds ?? c.checkpointEverySeconds
        try applyHousekeeping(&c)
        guard c.batchSize > 0, c.epochs > 0 else { throw ValidationError("--batch-size and --epochs must be positive") }
        return c
    }

    /// Settings that change how a run is kept, not what it computes: they apply on --resume too.
    func applyHousekeeping(_ c: inout RunConfiguration) throws {
        if let keepCheckpoints {
            guard keepCheckpoints >= 1 else { throw ValidationError("--keep-checkpoints must be at least 1") }
            c.keepCheckpoints = keepCheckpoints
        }
        if let logEvery {
            guard logEvery >= 1 else { throw ValidationError("--log-every must be at least 1") }
            c.logEverySteps = logEvery
        }
    }

    func run() throws {
        // Under mpirun: one rank of a data-parallel job (single processes never touch MPI).
        let comm = MPICommunicator.fromLauncher()
        let rank = comm?.rank ?? 0, ranks = comm?.size ?? 1
        if let comm, threadOptions.threads == nil {
            // Share the machine's cores between the ranks placed on it.
            let local = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? comm.size
            Threading.configure(threads: max(1, Threading.availableCores / max(1, local)))
        }
        try threadOptions.apply()
        let runDirectory: String
        var config: RunConfiguration
        if resume {
            guard let runDir else { throw ValidationError("--resume needs --run-dir") }
            runDirectory = runDir
            config = try RunDirectory(runDir).configuration()
            if let epochs { config.epochs = epochs }
            if let steps { config.steps = steps }
            try applyHousekeeping(&config)
        } else {
            config = try makeConfiguration()
            if printConfig {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(config), as: UTF8.self))
                return
            }
            let stamp = utcTimestamp(compact: true)
            if ranks > 1 && runDir == nil {
                throw ValidationError("under mpirun every rank must name the same run directory: give --run-dir")
            }
            runDirectory = runDir ?? "runs/\(config.recipe ?? "\(config.dataset.rawValue)-\(config.modelName)")-\(stamp)"
        }
        // Data and model first: a run that cannot start leaves no directory behind.
        let distribution = comm.map { TrainingRun.Distribution(rank: rank, ranks: ranks, gradients: $0, statistics: $0) }
        let run = try TrainingRun(configuration: config, directory: RunDirectory(runDirectory), distribution: distribution)
        let data = run.data, trainer = run.trainer
        if !data.skippedImages.isEmpty {
            print("skipped \(data.skippedImages.count) images that do not decode, e.g. \(data.skippedImages[0].path): \(data.skippedImages[0].reason)")
        }
        print("data: \(config.dataset.rawValue) — train \(data.train.count) images, \(data.validationName) \(data.validation.count), \(data.train.classCount) classes, input \(data.modelInput)")
        if let comm {
            // Every rank must run the same configuration on the same data, or the averaged
            // gradients mean nothing: compare before the first step.
            let all = comm.allGather(run.fingerprint)
            if let bad = all.indices.first(where: { all[$0] != all[0] }) {
                FileHandle.standardError.write(Data("sprout train: rank \(bad) of \(ranks) has a different configuration, model or data than rank 0 (same command, same files on every host?)\n".utf8))
                comm.finalize()
                throw ExitCode(2)
            }
        }
        if let (path, m) = try run.start(resuming: resume) {
            print("resumed from \(path): step \(m.step), epoch \(m.epoch + 1), batch \(m.batchInEpoch)")
        }
        if findLr {
            guard run.featureSources.isEmpty else {
                throw ValidationError("--find-lr with cached backbone features: add --cache-features false")
            }
            let result = try LearningRateFinder(steps: findLrSteps).run(trainer: trainer, loader: run.trainLoader)
            let base = (runDirectory as NSString).appendingPathComponent("lr-finder")
            let title = "learning-rate range test: \(run.spec.name), batch \(config.batchSize), \(config.optimizer.rawValue)"
            try writeAtomically(Array(result.svg(title: title).utf8), to: base + ".svg")
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeAtomically([UInt8](try encoder.encode(result)), to: base + ".json")
            print(String(format: "swept %d batches (%@): steepest descent at lr %.3g (suggested), lowest loss at %.3g",
                         result.rates.count, result.stopReason, result.steepest, result.minimum))
            print("wrote \(base).svg and \(base).json; train with --lr \(String(format: "%.3g", result.suggestion))")
            return
        }
        let summaryText = summary(run.model, inputShape: data.modelInput)
        print("model: \(run.spec.name) — \(grouped(summaryText.totalParameters)) parameters, \(grouped(summaryText.totalFlops)) forward FLOPs per image")
        print("run dir: \(runDirectory)  (tensorboard --logdir \(runDirectory))")
        if rank == 0 {
            trainer.callbacks.insert(ProgressCallback(epochs: config.epochs, batchesPerEpoch: run.trainLoader.batchesPerEpoch,
                                                      maxSteps: config.steps), at: 0)
        }

        // SIGINT/SIGTERM: finish the batch, write a checkpoint, exit 0.
        let signals = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                print("\nsignal \(sig): stopping after this batch and writing a checkpoint")
                trainer.stopRequested = true
            }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }

        let outcome = try run.fit()
        if let comm {
            if rank == 0 {
                print(String(format: "data-parallel: %d ranks × %d threads, global batch %d, %.1f img/s; allreduce %.2f s in %d calls (%.1f ms a step), %.1f%% of %.1f s",
                             ranks, Threading.count, config.batchSize, outcome.imagesPerSecond, comm.allreduceSeconds, comm.allreduceCalls,
                             1000 * comm.allreduceSeconds / Double(max(1, outcome.steps)),
                             100 * comm.allreduceSeconds / max(outcome.seconds, 1e-9), outcome.seconds))
            }
            comm.finalize()
            if rank != 0 { return }
        }
        // A run whose last state could not be written (a full disk) must not look finished.
        if let error = run.checkpoints.lastError, run.checkpoints.lastSavedStep != trainer.step {
            let kept = run.checkpoints.lastSavedStep >= 0 ? "step \(run.checkpoints.lastSavedStep)" : "the newest one on disk"
            FileHandle.standardError.write(Data("sprout train: the checkpoint of step \(trainer.step) could not be written (\(error)); resume continues from \(kept)\n".utf8))
            throw ExitCode(1)
        }
        if outcome.stopped {
            print("stopped at step \(trainer.step); resume with: sprout train --resume --run-dir \(runDirectory)")
            return
        }
        guard let final = outcome.evaluation else { return }
        let views = trainer.testTimeAugmentation == .none ? "" : " with \(trainer.testTimeAugmentation.rawValue) test-time augmentation"
        if let sequence = final.sequence {
            print(String(format: "done: %d steps in %@ (%.1f img/s, %.1f%% of the last epoch waiting for data) — %@ sequence accuracy %.4f, character error rate %.4f, loss %.4f",
                         trainer.step, formatDuration(outcome.seconds), outcome.imagesPerSecond, 100 * trainer.dataWaitFraction,
                         data.validationName, final.top1, sequence.characterErrorRate, final.loss))
        } else {
        print(String(format: "done: %d steps in %@ (%.1f img/s, %.1f%% of the last epoch waiting for data) — %@ accuracy%@ %.4f (top-5 %.4f), loss %.4f",
                     trainer.step, formatDuration(outcome.seconds), outcome.imagesPerSecond, 100 * trainer.dataWaitFraction,
                     data.validationName, views, final.top1, final.top5, final.loss))
        }
        if !run.featureSources.isEmpty {
            let computed = run.featureSources.map(\.cache)
            let epochs = trainer.history.compactMap { $0["train/epoch_seconds"] }
            print(String(format: "features: %d training views and %d validation images through the frozen backbone once, in %.1f s; then %d epochs of the classifier alone, %.2f s each",
                         computed[0].count, computed[1].count, computed.map(\.seconds).reduce(0, +), epochs.count,
                         epochs.reduce(0, +) / Double(max(epochs.count, 1))))
        }
        if let stopping = run.earlyStopping, let stopped = stopping.stoppedEpoch, let bestEpoch = stopping.bestEpoch, let best = stopping.best {
            print(String(format: "stopped early after epoch %d: %@ has not improved for %d epochs; best %.4f at epoch %d, marked: sprout eval %@ --checkpoint best",
                         stopped + 1, stopping.metric.rawValue, stopping.patience, best, bestEpoch + 1, runDirectory))
        }
        let failures = run.loaderFailures
        if !failures.isEmpty {
            print("skipped \(failures.count) images that did not load (each replaced by the next one), e.g. \(failures[0])")
        }
        if let m = outcome.lastCheckpoint { print("checkpoint: \(m)") }
    }
}

extension TestTimeAugmentation: ExpressibleByArgument {}

/// `--val-split 5000` or `--val-split 20%` (also 0.2).
enum ValidationSplitArgument: ExpressibleByArgument {
    case count(Int), fraction(Double)
    init?(argument: String) {
        let t = argument.trimmingCharacters(in: .whitespaces)
        if t.hasSuffix("%"), let p = Double(t.dropLast()), p > 0, p < 100 { self = .fraction(p / 100) }
        else if let n = Int(t), n > 0 { self = .count(n) }
        else if let f = Double(t), f > 0, f < 1 { self = .fraction(f) }
        else { return nil }
    }
}
extension DatasetKind: ExpressibleByArgument {}
extension RunConfiguration.OptimizerKind: ExpressibleByArgument {}
extension RunConfiguration.ScheduleKind: ExpressibleByArgument {}
extension EarlyStopping.Metric: ExpressibleByArgument {}

extension RuntimeSettings.Winograd: ExpressibleByArgument {}
