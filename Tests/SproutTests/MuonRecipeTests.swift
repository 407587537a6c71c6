import Foundation
import Testing
import SproutData
@testable import SproutNN
@testable import SproutOptim
import SproutTensor
@testable import SproutTrain

/// airbench94_muon's recipe as Sprout's pieces: the net's variant, the optimizer set, the
/// summed loss, alternating flips, validation only at the end.
@Suite struct MuonRecipeTests {
    @Test func theMuonVariantOfTheNet() throws {
        let model = try #require(GlobalRandom.withSeed(1) { try Zoo.build("airbench-muon", inputShape: [3, 32, 32], classes: 10) } as? Airbench)
        let bias = try #require(model.whiteningBias)
        #expect(bias.isTrainable && !model.whiten.weight.isTrainable)
        #expect(bias.value.scalars.contains { $0 != 0 }, "PyTorch's default initial bias, not zeros")
        let head = try #require(model.namedParameters.first { $0.parameter.value.rank == 2 }?.parameter.value.scalars)
        let mean = head.reduce(0, +) / Float(head.count)
        let std = (head.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(head.count - 1)).squareRoot()
        #expect(abs(std - 1) < 1e-4, "head weights rescaled to std 1, got \(std)")
        for (name, p) in model.namedParameters where name.hasSuffix("bias") && name != "whiten.bias" {
            #expect(p.learningRateScale == nil, "\(name): its own optimizer group, not airbench94's 64× scale")
        }
        // airbench94's net is unchanged.
        let classic = try #require(try Zoo.build("airbench", inputShape: [3, 32, 32], classes: 10) as? Airbench)
        #expect(classic.whiteningBias == nil && classic.whiten.bias?.isTrainable == false)
    }

    /// Muon for the filters, SGD for biases and the head at their own rates, the whitening
    /// bias on its own three-epoch decay; decay given as weightDecay / rate.
    @Test func theOptimizerSetAssignsEveryParameterOnce() throws {
        var config = try Recipe.named("cifar10-fast").configuration
        config.width = 0.25
        let model = try GlobalRandom.withSeed(1) { try Zoo.build("airbench-muon", inputShape: [3, 32, 32], classes: 10, width: 0.25) }
        let (optimizer, schedule) = try makeOptimizer(config, model: model, stepsPerEpoch: 22)
        let set = try #require(optimizer as? OptimizerSet)
        #expect(set.members.count == 4)
        #expect(set.members[0].optimizer is Muon && set.members[0].baseLearningRate == 0.24)
        #expect(set.members[1].baseLearningRate == 0.053 && set.members[2].baseLearningRate == 0.67)
        #expect(set.members[3].decaySteps == 66, "3 epochs of 22 steps")
        let groups = set.members.map { ($0.optimizer as! GroupedOptimizer).groups.flatMap(\.parameters) }
        #expect(groups[0].allSatisfy { $0.value.rank == 4 } && groups[2].allSatisfy { $0.value.rank == 2 })
        let all = groups.flatMap { $0 }
        #expect(all.count == model.trainableParameters.count)
        #expect(Set(all.map { ObjectIdentifier($0) }).count == all.count, "no parameter in two optimizers")
        #expect(abs(((set.members[1].optimizer as! SGD).weightDecay) - 0.004 / 0.053) < 1e-6)
        // Every rate linear to 0 with no warm-up.
        #expect(schedule.learningRate(at: 0) == 1 && schedule.learningRate(at: 110) == 0.5 && schedule.learningRate(at: 220) == 0)
    }

    @Test func aDecayingMemberStopsAtItsEnd() {
        let p = Parameter(Tensor([1, 1]))
        let sgd = SGD(groups: [ParameterGroup([p])], learningRate: 1)
        let set = OptimizerSet([.init(sgd, baseLearningRate: 0.5, decaySteps: 2)])
        let g = Gradients(parameters: [p], tensors: [Tensor([1, 1])])
        set.update(along: g)   // 0.5 × (1 − 0/2)
        set.update(along: g)   // 0.5 × (1 − 1/2)
        #expect(p.value.scalars == [0.25, 0.25])
        set.update(along: g)   // frozen
        #expect(p.value.scalars == [0.25, 0.25] && set.step == 3)
    }

    /// Each image's flip is drawn once; odd epochs see the mirror of what even epochs see.
    @Test func alternatingFlipsMirrorTheSetEveryOtherEpoch() {
        // A horizontal ramp: a flipped image is the reversed row.
        let n = 16
        let pixels = (0..<n).flatMap { _ in (0..<16).map { UInt8($0 % 4 * 60) } }
        let data = ImageDataset(pixels: pixels, labels: [Int32](repeating: 0, count: n), channels: 1, height: 4, width: 4,
                                classNames: ["a"], source: "ramp")
        var aug = Augmentation(horizontalFlip: true)
        aug.alternatingFlip = true
        let loader = DataLoader(dataset: data, batchSize: n, seed: 5, augmentation: aug)
        func flipped(_ epoch: Int) -> [Bool] {
            let b = loader.batch(epoch: epoch, index: 0)
            return (0..<n).map { k in b.images.scalars[k * 16] > b.images.scalars[k * 16 + 3] }
        }
        let (e0, e1, e2) = (flipped(0), flipped(1), flipped(2))
        #expect(e0 == e2 && zip(e0, e1).allSatisfy { $0 != $1 })
        #expect(e0.contains(true) && e0.contains(false))
    }

    /// A summed loss trains with B times the mean's gradient and logs the mean.
    @Test func aSummedLossLogsItsMean() throws {
        let data = bandsDataset(count: 20)
        let batch = DataLoader(dataset: data, batchSize: 20).batch(epoch: 0, index: 0)
        let logits = Tensor(shape: [20, 4], scalars: (0..<80).map { sinf(Float($0)) })
        let mean = Classification().loss(output: logits, batch: batch).scalar
        let summed = Classification(summed: true)
        #expect(abs(summed.loss(output: logits, batch: batch).scalar - 20 * mean) < 1e-4)
        #expect(abs(summed.meanLoss(summed.loss(output: logits, batch: batch).scalar, count: 20) - mean) < 1e-6)
    }

    @Test func validationEveryNEpochs() throws {
        let data = bandsDataset(count: 40)
        for (interval, expected) in [(0, [false, false, true]), (2, [false, true, true]), (nil, [true, true, true])] as [(Int?, [Bool])] {
            let model = GlobalRandom.withSeed(3) { Sequential { Flatten(); Linear(inFeatures: 64, outFeatures: 4) } }
            let trainer = Trainer(model: model, optimizer: SGD(for: model, learningRate: 0.1))
            trainer.validationInterval = interval
            try trainer.fit(DataLoader(dataset: data, batchSize: 10), validation: DataLoader(dataset: data, batchSize: 40), epochs: 3)
            #expect(trainer.history.map { $0["val/accuracy"] != nil } == expected, "interval \(String(describing: interval))")
        }
    }
}

/// --tta-fraction: the least confident images get the extra views, the rest keep the plain
/// view; fraction 1 is full test-time augmentation.
@Test func testTimeAugmentationOnTheLeastConfidentShare() {
    let model = GlobalRandom.withSeed(4) { Sequential { Flatten(); Linear(inFeatures: 3 * 4 * 4, outFeatures: 5) } }
    model.eval()
    let images = Tensor(shape: [8, 3, 4, 4], scalars: (0..<(8 * 48)).map { sinf(Float($0) * 0.37) * 2 })
    let plain = withoutGradient { model(images) }.scalars
    let full = withoutGradient { TestTimeAugmentation.flip.logits(model, images) }.scalars
    let quarter = withoutGradient { Classification(augmentedFraction: 0.25).logits(model, images, testTimeAugmentation: .flip) }.scalars
    let all = withoutGradient { Classification(augmentedFraction: 1).logits(model, images, testTimeAugmentation: .flip) }.scalars
    #expect(all == full)
    let changed = (0..<8).filter { i in (0..<5).contains { quarter[i * 5 + $0] != plain[i * 5 + $0] } }
    #expect(changed.count == 2, "a quarter of 8 images")
    for i in changed { #expect(Array(quarter[(i * 5)..<(i * 5 + 5)]) == Array(full[(i * 5)..<(i * 5 + 5)])) }
    // The chosen ones are the least confident under the plain view.
    let probabilities = softmax(Tensor(shape: [8, 5], scalars: plain), alongAxis: 1).scalars
    let confidence = (0..<8).map { i in probabilities[(i * 5)..<(i * 5 + 5)].max()! }
    #expect(Set(changed) == Set((0..<8).sorted { confidence[$0] < confidence[$1] }.prefix(2)))
}
