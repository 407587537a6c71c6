import Foundation
import SproutNN
import SproutOptim

#if canImport(Glibc)
import Glibc
#endif

/// A live progress line on a terminal (rewritten in place), plain periodic lines otherwise
/// (CI logs, pipes): epoch, step, loss, accuracy, learning rate, img/s, ETA.
public final class ProgressCallback: TrainingCallback {
    let totalEpochs: Int
    let batchesPerEpoch: Int
    /// A step budget (`--steps`) that ends the run before the epochs do.
    let maxSteps: Int?
    let interactive: Bool
    let everySeconds: Double
    var lastPrint = Date.distantPast
    var runningLoss: Double?
    var runningAccuracy: Double?
    var runningCER: Double?
    let started = Date()
    var firstStep: Int?
    let output: (String) -> Void

    public init(epochs: Int, batchesPerEpoch: Int, maxSteps: Int? = nil, interactive: Bool = isatty(STDOUT_FILENO) != 0,
                everySeconds: Double? = nil, output: @escaping (String) -> Void = { print($0) }) {
        self.totalEpochs = epochs
        self.batchesPerEpoch = batchesPerEpoch
        self.maxSteps = maxSteps
        self.interactive = interactive
        self.everySeconds = everySeconds ?? (interactive ? 0.2 : 10)
        self.output = output
    }

    public func batchEnd(_ trainer: Trainer, step: Int, logs: [String: Double]) {
        if firstStep == nil { firstStep = step - 1 }
        let loss = logs["loss"] ?? .nan, accuracy = logs["accuracy"] ?? .nan
        runningLoss = runningLoss.map { 0.95 * $0 + 0.05 * loss } ?? loss
        runningAccuracy = runningAccuracy.map { 0.95 * $0 + 0.05 * accuracy } ?? accuracy
        if let cer = logs["cer"] { runningCER = runningCER.map { 0.95 * $0 + 0.05 * cer } ?? cer }
        guard Date().timeIntervalSince(lastPrint) >= everySeconds else { return }
        lastPrint = Date()
        let done = Double(step - (firstStep ?? 0))
        let lastStep = min(totalEpochs * batchesPerEpoch, maxSteps ?? Int.max)
        let remaining = Double(lastStep - step)
        let elapsed = Date().timeIntervalSince(started)
        let eta = done > 0 ? elapsed / done * max(0, remaining) : 0
        // Sequence models: the share of lines read exactly, and the character error rate.
        let cerPart = runningCER.map { String(format: "  cer %.4f", $0) } ?? ""
        let line = String(format: "epoch %d/%d  step %d (%d/%d)  loss %.4f  acc %.3f%@  lr %.4g  %.0f img/s  ETA %@",
                          trainer.epoch + 1, totalEpochs, step, trainer.batchInEpoch, batchesPerEpoch,
                          runningLoss ?? .nan, runningAccuracy ?? .nan, cerPart, logs["learning_rate"] ?? .nan,
                          logs["images_per_second"] ?? 0, formatDuration(eta))
        if interactive {
            FileHandle.standardOutput.write(Data(("\r\u{1B}[2K" + line).utf8))
        } else {
            output(line)
        }
    }

    public func trainEnd(_ trainer: Trainer) {
        // A run stopped mid-epoch (--steps, a signal) leaves the live line unterminated.
        if interactive && trainer.batchInEpoch > 0 { FileHandle.standardOutput.write(Data("\n".utf8)) }
    }

    public func epochEnd(_ trainer: Trainer, epoch: Int, logs: [String: Double]) {
        if interactive { FileHandle.standardOutput.write(Data("\n".utf8)) }
        var parts = ["epoch \(epoch + 1)/\(totalEpochs) done in \(formatDuration(Date().timeIntervalSince(started)))"]
        for key in ["train/loss", "train/accuracy", "train/cer", "val/loss", "val/accuracy", "val/top5", "val/cer", "val_tta/accuracy",
                    "train/images_per_second"] {
            if let v = logs[key] { parts.append(String(format: "%@ %.4f", key, v)) }
        }
        output(parts.joined(separator: "  "))
    }
}

public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}

/// Scalars to TensorBoard and JSONL in the run directory: every `every` steps for the
/// training batch, and the epoch summaries.
public final class ScalarLogCallback: TrainingCallback {
    let tensorboard: TensorBoardWriter?
    let jsonl: JSONLWriter?
    let every: Int

    public init(tensorboard: TensorBoardWriter?, jsonl: JSONLWriter?, every: Int = 50) {
        (self.tensorboard, self.jsonl, self.every) = (tensorboard, jsonl, max(1, every))
    }

    public func batchEnd(_ trainer: Trainer, step: Int, logs: [String: Double]) {
        guard step % every == 0 else { return }
        let scalars = ["train/batch_loss": logs["loss"], "train/batch_accuracy": logs["accuracy"], "train/batch_cer": logs["cer"],
                       "train/learning_rate": logs["learning_rate"], "train/images_per_second": logs["images_per_second"]]
            .compactMapValues { $0 }
        write(scalars, step: step)
    }

    public func epochEnd(_ trainer: Trainer, epoch: Int, logs: [String: Double]) {
        write(logs.merging(["epoch": Double(epoch + 1)]) { a, _ in a }, step: trainer.step)
        tensorboard?.flush()
        jsonl?.flush()
    }

    func write(_ values: [String: Double], step: Int) {
        tensorboard?.add(scalars: values.sorted { $0.key < $1.key }.map { ($0.key, Float($0.value)) }, step: step)
        jsonl?.add(values, step: step)
    }
}

/// Writes checkpoints every `everySteps` steps and/or `everySeconds` seconds, at each
/// epoch end and when training ends or is stopped — never after a non-finite loss.
public final class CheckpointCallback: TrainingCallback {
    public let directory: CheckpointDirectory
    let everySteps: Int?
    let everySeconds: Double?
    let keep: Int
    let makeManifest: (Trainer) -> CheckpointManifest
    var lastSave = Date()
    /// The step of the last checkpoint this callback wrote (-1: none).
    public private(set) var lastSavedStep = -1
    public private(set) var lastManifest: String?
    /// The last save that failed (a full disk, a read-only directory), cleared by the next success.
    public private(set) var lastError: Error?
    public var onError: (Error) -> Void = { print("checkpoint failed: \($0)") }

    public init(directory: CheckpointDirectory, everySteps: Int? = nil, everySeconds: Double? = nil, keep: Int = 5,
                manifest: @escaping (Trainer) -> CheckpointManifest) {
        (self.directory, self.everySteps, self.everySeconds, self.keep) = (directory, everySteps, everySeconds, keep)
        makeManifest = manifest
    }

    public func save(_ trainer: Trainer) {
        guard trainer.step != lastSavedStep else { return }
        do {
            lastManifest = try directory.save(model: trainer.model, optimizer: trainer.optimizer, ema: trainer.ema,
                                              manifest: makeManifest(trainer), keep: keep)
            lastSavedStep = trainer.step
            lastSave = Date()
            lastError = nil
        } catch {
            lastError = error
            onError(error)
        }
    }

    public func batchEnd(_ trainer: Trainer, step: Int, logs: [String: Double]) {
        if let everySteps, step % everySteps == 0 { save(trainer); return }
        if let everySeconds, Date().timeIntervalSince(lastSave) >= everySeconds { save(trainer) }
    }

    public func epochEnd(_ trainer: Trainer, epoch: Int, logs: [String: Double]) { save(trainer) }
    public func trainEnd(_ trainer: Trainer) { if !trainer.failed { save(trainer) } }
}

/// Keras's `EarlyStopping`: ends training when the monitored validation metric has not
/// improved for `patience` validations in a row, and marks the checkpoint of the best one
/// (`--checkpoint best` in eval, predict, serve and export). Runs after the checkpoint
/// callback, so the epoch's checkpoint exists when it is marked.
public final class EarlyStopping: TrainingCallback {
    public enum Metric: String, Codable, Sendable, CaseIterable {
        case loss = "val/loss"
        case accuracy = "val/accuracy"
        var lowerIsBetter: Bool { self == .loss }
    }
    public let metric: Metric
    public let patience: Int
    public let minDelta: Double
    let checkpoints: CheckpointCallback?
    public private(set) var best: Double?
    public private(set) var bestEpoch: Int?
    public private(set) var bestStep: Int?
    public private(set) var waited = 0
    /// The epoch (0-based) after which training stopped, if it stopped early.
    public private(set) var stoppedEpoch: Int?

    public init(metric: Metric, patience: Int, minDelta: Double = 0, checkpoints: CheckpointCallback? = nil) {
        (self.metric, self.patience, self.minDelta, self.checkpoints) = (metric, max(1, patience), minDelta, checkpoints)
    }

    public func epochEnd(_ trainer: Trainer, epoch: Int, logs: [String: Double]) {
        guard let value = logs[metric.rawValue] else { return }   // an epoch without validation
        let improved = best.map { metric.lowerIsBetter ? value < $0 - minDelta : value > $0 + minDelta } ?? true
        if improved {
            (best, bestEpoch, bestStep, waited) = (value, epoch, trainer.step, 0)
            if let checkpoints, let manifest = checkpoints.lastManifest {
                do { try checkpoints.directory.markBest(manifest) } catch { checkpoints.onError(error) }
            }
        } else {
            waited += 1
            if waited >= patience {
                stoppedEpoch = epoch
                trainer.stopTraining = true
            }
        }
    }
}

