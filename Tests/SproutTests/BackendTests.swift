import Foundation
import Testing
import SproutData
import SproutNN
import SproutOptim
import SproutTensor
import SproutTrain

/// The backend seam is real: one training step (forward, backward, Nesterov SGD with weight
/// decay, EMA, batch-norm running statistics, dropout) of every zoo model on the CPU backend
/// and on the plain-Swift reference backend gives the same loss and the same updates.
@Suite(.tags(.slow)) struct BackendTests {
    /// Small inputs and widths: the reference backend runs one element at a time.
    static let cases: [(name: String, input: [Int], width: Float)] = [
        ("mlp", [1, 8, 8], 1), ("mnist-cnn", [1, 10, 10], 1), ("mnist-bn", [1, 8, 8], 1), ("lenet5", [1, 12, 12], 1),
        ("tf-cifar10", [3, 8, 8], 1), ("tf-cifar10-nolrn", [3, 8, 8], 1), ("resnet9", [3, 16, 16], 0.125),
        ("airbench", [3, 32, 32], 0.0625), ("resnet18-cifar", [3, 8, 8], 0.0625), ("crnn", [1, 32, 16], 0.125),
    ]

    struct Step {
        let loss: Float
        let before: [String: [Float]], after: [String: [Float]], average: [String: [Float]]
        let devices: Set<Device>
    }

    /// One step from the given weights and generator states (other tests share the global
    /// generator, so each side gets them copied rather than re-drawn).
    func trainingStep(_ name: String, input: [Int], width: Float, on device: Device,
                      weights: [String: [Float]], randomStates: [String: [UInt64]]) throws -> Step {
        try Device.with(device) {
            let model = try Zoo.build(name, inputShape: input, classes: 5, width: width)
            for (key, p) in model.namedParameters { p.value = Tensor(shape: p.shape, scalars: weights[key]!) }
            model.setRandomStates(randomStates)
            var g = SeededGenerator(seed: 3)
            let x = Tensor.normal([4] + input, generator: &g)
            (model as? Airbench)?.initializeWhitening(from: x)
            let before = model.namedParameters.reduce(into: [String: [Float]]()) { $0[$1.name] = $1.parameter.value.scalars }
            let trainer = Trainer(model: model, optimizer: SGD(for: model, learningRate: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4))
            trainer.ema = ExponentialMovingAverage(model: model, decay: 0.9)
            trainer.objective = Classification(labelSmoothing: 0.1)
            var batch = Batch(images: x, labels: [0, 3, 1, 4], indices: [0, 1, 2, 3])
            if name == "crnn" {
                // A line reader: CTC over its 4 columns, blank = class 4.
                trainer.objective = SequenceRecognition(blank: 4, classNames: ["a", "b", "c", "d"])
                batch = Batch(images: x, targets: .sequences([[0, 3], [1], [2, 2], []]), indices: [0, 1, 2, 3])
            }
            let result = try trainer.trainStep(batch)
            let after = model.namedParameters.reduce(into: [String: [Float]]()) { $0[$1.name] = $1.parameter.value.scalars }
            let average = trainer.ema!.shadow.mapValues(\.scalars)
            let devices = Set(model.namedParameters.map(\.parameter.value.device) + trainer.ema!.shadow.values.map(\.device))
            return Step(loss: result.loss, before: before, after: after, average: average, devices: devices)
        }
    }

    @Test(arguments: cases.map(\.name))
    func aTrainingStepAgreesOnBothBackends(model name: String) throws {
        let c = Self.cases.first { $0.name == name }!
        // Weights of their own seed: concurrent tests drawing from the global generator would
        // make every run start elsewhere.
        let initial = try GlobalRandom.withSeed(17) { try Zoo.build(name, inputShape: c.input, classes: 5, width: c.width) }
        let weights = initial.namedParameters.reduce(into: [String: [Float]]()) { $0[$1.name] = $1.parameter.value.scalars }
        let fast = try trainingStep(name, input: c.input, width: c.width, on: .cpu, weights: weights, randomStates: initial.randomStates)
        let reference = try trainingStep(name, input: c.input, width: c.width, on: .reference, weights: weights,
                                         randomStates: initial.randomStates)
        #expect(fast.devices == [.cpu] && reference.devices == [.reference], "tensors stayed on their backend's device")
        #expect(fast.before == reference.before, "both start from the same weights (airbench's whitening computed on each)")
        #expect(abs(fast.loss - reference.loss) <= 1e-4 * max(1, abs(reference.loss)), "\(name): loss \(fast.loss) vs \(reference.loss)")
        for (key, ref) in reference.after {
            // What the step changed (learning rate × update): the same on both, to float round-off.
            let start = reference.before[key]!, got = fast.after[key]!
            let delta = zip(ref, start).map { Double($0 - $1) }, fastDelta = zip(got, start).map { Double($0 - $1) }
            let scale = delta.reduce(0) { $0 + $1 * $1 }.squareRoot(), diff = zip(delta, fastDelta).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
            #expect(diff <= 2e-3 * scale + 1e-6 * Double(ref.count).squareRoot(), "\(name) \(key): update differs by \(diff) (size \(scale))")
            // The average moved by a tenth of the update (decay 0.9): the same tolerance, relative to that move.
            let averageDelta = zip(reference.average[key]!, start).map { Double($0 - $1) }
            let fastAverageDelta = zip(fast.average[key]!, start).map { Double($0 - $1) }
            let averageScale = averageDelta.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let averageDiff = zip(averageDelta, fastAverageDelta).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
            #expect(averageDiff <= 2e-3 * averageScale + 1e-6 * Double(ref.count).squareRoot(),
                    "\(name) \(key): EMA differs by \(averageDiff) (its move \(averageScale))")
        }
    }

    @Test func devicesParseAndABuildWithoutAGPUSaysSo() throws {
        #expect(try Device(parsing: "cpu") == .cpu && Device(parsing: "Reference") == .reference)
        #expect(throws: DeviceError.unavailable("cuda")) { try Device(parsing: "cuda") }
        #expect(throws: DeviceError.unknown("tpu")) { try Device(parsing: "tpu") }
        #expect(Tensor.zeros([2]).device == .cpu)
        #expect(Device.with(.reference) { Tensor.ones([2]) + Tensor.ones([2]) }.device == .reference)
    }
}
