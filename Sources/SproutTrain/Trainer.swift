import Foundation
import SproutData
import SproutNN
import SproutOptim
import SproutTensor

public enum TrainingError: Error, CustomStringConvertible {
    case nonFiniteLoss(step: Int, epoch: Int, loss: Float)
    public var description: String {
        switch self {
        case let .nonFiniteLoss(step, epoch, loss):
            return "loss became \(loss) at step \(step) (epoch \(epoch + 1)); training stopped, the last good checkpoint is kept"
        }
    }
}

/// Hooks with Keras's names; every method has an empty default.
public protocol TrainingCallback: AnyObject {
    func trainBegin(_ trainer: Trainer)
    func trainEnd(_ trainer: Trainer)
    func epochBegin(_ trainer: Trainer, epoch: Int)
    func epochEnd(_ trainer: Trainer, epoch: Int, logs: [String: Double])
    func batchBegin(_ trainer: Trainer, step: Int)
    func batchEnd(_ trainer: Trainer, step: Int, logs: [String: Double])
}

extension TrainingCallback {
    public func trainBegin(_ trainer: Trainer) {}
    public func trainEnd(_ trainer: Trainer) {}
    public func epochBegin(_ trainer: Trainer, epoch: Int) {}
    public func epochEnd(_ trainer: Trainer, epoch: Int, logs: [String: Double]) {}
    public func batchBegin(_ trainer: Trainer, step: Int) {}
    public func batchEnd(_ trainer: Trainer, step: Int, logs: [String: Double]) {}
}

/// The training loop: fit/evaluate with callbacks, a learning-rate schedule, gradient
/// clipping, weight EMA and a NaN guard, for whatever `objective` it is given.
public final class Trainer {
    public let model: any Layer
    public let optimizer: any Optimizer
    public var schedule: (any LearningRateSchedule)?
    /// The loss, the training metrics and the evaluation (default: plain classification).
    public var objective: any Objective = Classification()
    public var ema: ExponentialMovingAverage?
    public var clipNorm: Float?
    /// Averages gradients across processes in data-parallel training; nil in one process.
    public var gradientReducer: (any GradientReducer)?
    /// Used by `evaluate` (validation during training and the final figure).
    public var testTimeAugmentation: TestTimeAugmentation = .none
    public var callbacks: [any TrainingCallback] = []

    public private(set) var step = 0
    /// Epoch in progress (0-based) and batches of it already done: where a resume continues.
    public private(set) var epoch = 0
    public private(set) var batchInEpoch = 0
    /// Set (e.g. from a signal handler) to stop after the current batch.
    public var stopRequested: Bool {
        get { stopFlag.isSet }
        set { stopFlag.set(newValue) }
    }
    private let stopFlag = StopFlag()
    /// Set by a callback (early stopping) to end training after this epoch: the run is
    /// finished, not interrupted (Keras's `model.stop_training`).
    public var stopTraining = false
    public private(set) var lastEvaluation: Evaluation?
    /// The loop ended on an error (a non-finite loss): no checkpoint is written at the end.
    public private(set) var failed = false
    public private(set) var history: [[String: Double]] = []
    /// Images per second over the last epoch's training steps.
    public private(set) var imagesPerSecond: Double = 0
    /// Layers kept in evaluation mode while the rest trains: a frozen backbone's batch norms
    /// normalise with their running statistics and leave them as they are.
    public var frozenLayers: [any Layer] = []
    /// Validate every N epochs (nil: every epoch; 0: only after the last).
    public var validationInterval: Int?
    /// The share of the last epoch's time spent waiting for the data loader.
    public private(set) var dataWaitFraction: Double = 0

    public init(model: any Layer, optimizer: any Optimizer) {
        self.model = model
        self.optimizer = optimizer
    }

    /// Continues from a checkpoint's position.
    public func restorePosition(step: Int, epoch: Int, batchInEpoch: Int) {
        (self.step, self.epoch, self.batchInEpoch) = (step, epoch, batchInEpoch)
    }

    /// Continues a run from a checkpoint manifest: weights (names and shapes checked against
    /// this trainer's model), optimizer state, EMA, generator states and the position in the
    /// data, so that the run ends with the weights it would have had without the stop.
    @discardableResult
    public func resume(fromManifest path: String) throws -> LoadedCheckpoint {
        let checkpoint = try LoadedCheckpoint.load(manifest: path, into: model)
        let named = model.namedParameters
        let names = Dictionary(uniqueKeysWithValues: named.map { (ObjectIdentifier($0.parameter), $0.name) })
        var optimizerState: [String: Tensor] = [:]
        for (k, v) in checkpoint.state where k.hasPrefix("optimizer.") { optimizerState[String(k.dropFirst(10))] = v }
        try optimizer.loadState(optimizerState, names: names)
        if let ema, let shadow = checkpoint.emaWeights {
            ema.load(shadow: shadow, updates: Int(checkpoint.state["ema_updates"]?.scalar ?? 0))
        }
        if let states = checkpoint.manifest.randomStates {
            model.setRandomStates(states.mapValues { $0.compactMap { UInt64($0, radix: 16) } })
        }
        let m = checkpoint.manifest
        restorePosition(step: m.step, epoch: m.epoch, batchInEpoch: m.batchInEpoch)
        return checkpoint
    }

    /// What one optimisation step measured: the batch's mean loss and the objective's metric
    /// sums (over the global batch in data-parallel training).
    public struct StepResult: Sendable {
        public let loss: Float
        public let metricSums: [String: Double]
        public let count: Int
    }

    /// One optimisation step.
    public func trainStep(_ batch: Batch) throws -> StepResult {
        if let schedule { optimizer.learningRate = schedule.learningRate(at: step) }
        model.train()
        for layer in frozenLayers { layer.eval() }
        var output = Tensor(0)
        let objective = self.objective
        let (loss, grads) = valueWithGradient(of: model) { m in
            let out = m(batch.images)
            output = out.detached
            return objective.loss(output: out, batch: batch)
        }
        var value = objective.meanLoss(loss.scalar, count: batch.count)
        guard value.isFinite else { throw TrainingError.nonFiniteLoss(step: step, epoch: epoch, loss: value) }
        var g = grads
        var sums = withoutGradient { objective.metricSums(output: output, batch: batch) }
        var count = batch.count
        if let gradientReducer {
            // Data-parallel: every rank applies the mean gradient of the global batch; the
            // loss and metrics reported are the global batch's too.
            // A stop asked of any rank (a signal) stops every rank after this same step.
            let names = sums.keys.sorted()
            var extras = [value * Float(count), Float(count), stopRequested ? 1 : 0] + names.map { Float(sums[$0]!) }
            gradientReducer.average(&g, extras: &extras)
            count = Int(extras[1])
            value = extras[0] / extras[1]
            if extras[2] > 0 { stopRequested = true }
            for (i, name) in names.enumerated() { sums[name] = Double(extras[3 + i]) }
        }
        if let clipNorm { clipGradients(&g, maxNorm: clipNorm) }
        optimizer.update(along: g)
        ema?.update()
        step += 1
        try TensorMemory.checkLimit()
        return StepResult(loss: value, metricSums: sums, count: count)
    }

    /// Trains until `epochs` epochs (or `maxSteps` steps) are done, evaluating `validation`
    /// at the end of each epoch.
    public func fit(_ train: DataLoader, validation: DataLoader? = nil, epochs: Int, maxSteps: Int? = nil) throws {
        callbacks.forEach { $0.trainBegin(self) }
        defer { callbacks.forEach { $0.trainEnd(self) } }
        while epoch < epochs && !stopRequested && !stopTraining && (maxSteps.map { step < $0 } ?? true) {
            callbacks.forEach { $0.epochBegin(self, epoch: epoch) }
            var lossSum = 0.0, seen = 0, localSeen = 0
            var metricTotals: [String: Double] = [:]
            let started = Date()
            let batches = train.epoch(epoch, startingAt: batchInEpoch).makeIterator()
            var waited = 0.0
            while true {
                // Time spent waiting for the loader: zero when batches are ready ahead.
                let asked = Date()
                guard let batch = batches.next() else { break }
                waited += Date().timeIntervalSince(asked)
                if let error = train.stoppingFailure { failed = true; throw error }
                callbacks.forEach { $0.batchBegin(self, step: step) }
                let result: StepResult
                do { result = try trainStep(batch) } catch { failed = true; throw error }
                batchInEpoch += 1
                lossSum += Double(result.loss) * Double(result.count)
                seen += result.count
                localSeen += batch.count
                metricTotals.merge(result.metricSums, uniquingKeysWith: +)
                let elapsed = Date().timeIntervalSince(started)
                imagesPerSecond = elapsed > 0 ? Double(localSeen) / elapsed : 0
                var logs: [String: Double] = ["loss": Double(result.loss), "learning_rate": Double(optimizer.learningRate),
                                              "images_per_second": imagesPerSecond]
                for (name, sum) in result.metricSums { logs[name] = sum / Double(result.count) }
                callbacks.forEach { $0.batchEnd(self, step: step, logs: logs) }
                if stopRequested || (maxSteps.map { step >= $0 } ?? false) { break }
            }
            let finished = batchInEpoch >= train.batchesPerEpoch
            var logs: [String: Double] = [:]
            if seen > 0 {
                logs["train/loss"] = lossSum / Double(seen)
                for (name, sum) in metricTotals { logs["train/\(name)"] = sum / Double(seen) }
                logs["train/images_per_second"] = imagesPerSecond
                dataWaitFraction = waited / max(Date().timeIntervalSince(started), 1e-9)
                logs["train/data_wait_fraction"] = dataWaitFraction
                logs["train/epoch_seconds"] = Date().timeIntervalSince(started)
            }
            let lastEpoch = epoch + 1 >= epochs || (maxSteps.map { step >= $0 } ?? false)
            let due = validationInterval.map { $0 > 0 ? (epoch + 1) % $0 == 0 : false } ?? true
            if finished, let validation, due || lastEpoch {
                // Test-time augmentation costs several passes, so only the final evaluation
                // pays for it; `val/*` stays the plain series and the final adds `val_tta/*`.
                let e = evaluate(validation, testTimeAugmentation: TestTimeAugmentation.none)
                lastEvaluation = e
                logs["val/loss"] = e.loss
                logs["val/accuracy"] = e.top1
                if let sequence = e.sequence { logs["val/cer"] = sequence.characterErrorRate } else { logs["val/top5"] = e.top5 }
                let last = epoch + 1 >= epochs || (maxSteps.map { step >= $0 } ?? false)
                if last && testTimeAugmentation != .none {
                    let t = evaluate(validation)
                    lastEvaluation = t
                    logs["val_tta/loss"] = t.loss
                    logs["val_tta/accuracy"] = t.top1
                    if t.sequence == nil { logs["val_tta/top5"] = t.top5 }
                }
            }
            do { try TensorMemory.checkLimit() } catch { failed = true; throw error }
            if finished {
                history.append(logs)
                callbacks.forEach { $0.epochEnd(self, epoch: epoch, logs: logs) }
                epoch += 1
                batchInEpoch = 0
            }
        }
    }

    /// Loss, top-1/top-5 and the confusion matrix on `loader`, in evaluation mode, with the
    /// EMA weights when there are any.
    /// `testTimeAugmentation` nil: the trainer's setting.
    public func evaluate(_ loader: DataLoader, useEMA: Bool = true, testTimeAugmentation: TestTimeAugmentation? = nil) -> Evaluation {
        let views = testTimeAugmentation ?? self.testTimeAugmentation
        let run = { evaluateModel(self.model, on: loader, objective: self.objective, testTimeAugmentation: views) }
        if useEMA, let ema { return ema.withAveragedWeights(run) }
        return run()
    }
}

/// Averages gradients over the processes of a data-parallel job (SproutDistributed's
/// MPICommunicator): on return every process holds the same mean gradient, and `extras` the
/// sums of every process's extras.
public protocol GradientReducer: AnyObject {
    func average(_ gradients: inout Gradients, extras: inout [Float])
}

/// Averaging a model's logits over transformed copies of each image when evaluating.
public enum TestTimeAugmentation: String, Codable, Sendable, CaseIterable {
    case none
    /// Mean of the image and its mirror image.
    case flip
    /// airbench's level 2: half the flip average, half the flip average of the image
    /// translated by one pixel up-left and down-right (reflect padding).
    case flipTranslate = "flip-translate"

    //   x: [N, C, H, W] → logits [N, classes]
    public func logits(_ model: any Layer, _ x: Tensor) -> Tensor {
        func mirrored(_ x: Tensor) -> Tensor { 0.5 * (model(x) + model(x.flipped(alongAxes: [3]))) }
        switch self {
        case .none: return model(x)
        case .flip: return mirrored(x)
        case .flipTranslate:
            let (h, w) = (x.shape[2], x.shape[3])
            let padded = x.padded(top: 1, bottom: 1, left: 1, right: 1, mode: .reflect)
            let upLeft = padded.slice(0..<h, alongAxis: 2).slice(0..<w, alongAxis: 3)
            let downRight = padded.slice(2..<(h + 2), alongAxis: 2).slice(2..<(w + 2), alongAxis: 3)
            return 0.5 * mirrored(x) + 0.25 * (mirrored(upLeft) + mirrored(downRight))
        }
    }
}

/// Evaluates any model on a loader for an objective (evaluation mode, nothing recorded).
public func evaluateModel(_ model: any Layer, on loader: DataLoader, objective: any Objective = Classification(),
                          testTimeAugmentation: TestTimeAugmentation = .none) -> Evaluation {
    let wasTraining = model.isTraining
    model.eval()
    defer { model.setTraining(wasTraining) }
    return objective.evaluate(model, on: loader, testTimeAugmentation: testTimeAugmentation)
}

/// A flag set from one thread (a signal handler) and read by another (a loop).
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    public init() {}
    public func set(_ on: Bool = true) { lock.lock(); value = on; lock.unlock() }
    public var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
