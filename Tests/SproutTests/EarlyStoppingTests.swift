import Foundation
import Testing
import SproutData
import SproutNN
import SproutOptim
import SproutTensor
@testable import SproutTrain

/// --early-stop: training ends when the validation metric stops improving, and the best
/// checkpoint is marked and survives pruning.
@Suite struct EarlyStoppingTests {
    func trainer(_ dir: TemporaryDirectory, keep: Int) -> (Trainer, CheckpointCallback) {
        let model = GlobalRandom.withSeed(3) { Sequential { Flatten(); Linear(inFeatures: 64, outFeatures: 4) } }
        let trainer = Trainer(model: model, optimizer: SGD(for: model, learningRate: 0.1))
        let checkpoints = CheckpointCallback(directory: CheckpointDirectory(dir.path), keep: keep) { t in
            CheckpointManifest(step: t.step, epoch: t.epoch, batchInEpoch: t.batchInEpoch,
                               model: ModelSpec(name: "custom", inputShape: [1, 8, 8], classes: 4), classNames: ["a", "b", "c", "d"],
                               preprocessing: PreprocessingSpec(normalization: .unit, resize: 8, channels: 1),
                               metrics: [:], hasEMA: false, weightsFile: "", stateFile: "", config: [:])
        }
        return (trainer, checkpoints)
    }

    @Test func itStopsAfterPatienceAndMarksTheBest() throws {
        let dir = TemporaryDirectory()
        let (trainer, checkpoints) = trainer(dir, keep: 1)
        let stopping = EarlyStopping(metric: .loss, patience: 2, checkpoints: checkpoints)
        let batch = DataLoader(dataset: bandsDataset(count: 8), batchSize: 8).batch(epoch: 0, index: 0)
        var marked: [String] = []
        for (epoch, loss) in [1.0, 0.8, 0.9, 0.85, 0.95].enumerated() where !trainer.stopTraining {
            _ = try trainer.trainStep(batch)
            checkpoints.save(trainer)
            stopping.epochEnd(trainer, epoch: epoch, logs: ["val/loss": loss])
            marked.append(CheckpointDirectory(dir.path).markedBest() ?? "")
        }
        #expect(trainer.stopTraining && stopping.stoppedEpoch == 3, "two epochs without a loss under 0.8")
        #expect(stopping.bestEpoch == 1 && stopping.best == 0.8 && stopping.bestStep == 2)
        let best = CheckpointDirectory(dir.path).base(step: 2) + ".json"
        #expect(marked.last == best)
        // keep 1 pruned everything but the newest and the marked best.
        #expect(CheckpointDirectory(dir.path).manifests() == [best, CheckpointDirectory(dir.path).base(step: 4) + ".json"])
    }

    /// In `fit`, an early stop ends the run as finished (not interrupted), after the epoch.
    @Test func fitEndsAfterTheStoppingEpoch() throws {
        let dir = TemporaryDirectory()
        let (trainer, checkpoints) = trainer(dir, keep: 3)
        let data = bandsDataset(count: 40)
        // Accuracy on constant data never improves after the first validation.
        let stopping = EarlyStopping(metric: .accuracy, patience: 1, minDelta: 2, checkpoints: checkpoints)
        trainer.callbacks = [checkpoints, stopping]
        try trainer.fit(DataLoader(dataset: data, batchSize: 10), validation: DataLoader(dataset: data, batchSize: 40), epochs: 10)
        #expect(trainer.epoch == 2 && !trainer.stopRequested && stopping.stoppedEpoch == 1)
        #expect(CheckpointDirectory(dir.path).markedBest() == CheckpointDirectory(dir.path).base(step: 4) + ".json")
    }
}
