import Foundation
import Testing
import SproutData
import SproutNN
import SproutOptim
import SproutTensor
@testable import SproutTrain

/// The tools for seeing what a change does: compare, the error report, Grad-CAM and
/// saliency, the learning-rate finder, class-imbalance options.
@Suite struct InsightTests {
    // MARK: compare

    @Test func mcNemarAndWilsonMatchTheirTextbookValues() {
        // All 10 discordant images favour one model: p = 2 · 0.5¹⁰.
        let tenToNothing = RunComparison.mcNemar(baseline: Array(repeating: true, count: 10) + [true],
                                                 other: Array(repeating: false, count: 10) + [true])
        #expect(tenToNothing.baselineOnly == 10 && tenToNothing.runOnly == 0)
        #expect(abs(tenToNothing.pValue - 2 * pow(0.5, 10)) < 1e-12 && tenToNothing.significant)
        // 15 against 5: 2 · P(X ≤ 5), X ~ Binomial(20, ½) = 2 · 21700 / 2²⁰ = 0.041389.
        #expect(abs(RunComparison.exactBinomialTwoSided(5, of: 20) - 0.0413894) < 1e-6)
        #expect(RunComparison.exactBinomialTwoSided(5, of: 10) == 1)
        #expect(RunComparison.exactBinomialTwoSided(0, of: 0) == 1)
        // Wilson's interval for 50/100: 0.5 ± 0.0962.
        let (lo, hi) = RunComparison.wilsonInterval(hits: 50, of: 100)
        #expect(abs(lo - 0.40383) < 1e-4 && abs(hi - 0.59617) < 1e-4)
        let (zeroLo, zeroHi) = RunComparison.wilsonInterval(hits: 0, of: 20)
        #expect(zeroLo == 0 && zeroHi > 0.1 && zeroHi < 0.2, "never a zero-width interval at 0")
    }

    func evaluation(truth: [Int], predicted: [Int], classes: [String] = ["a", "b"]) -> Evaluation {
        var acc = EvaluationAccumulator(classNames: classes)
        let logits = Tensor(shape: [truth.count, classes.count], scalars: predicted.flatMap { p in
            (0..<classes.count).map { $0 == p ? Float(2) : 0 }
        })
        acc.add(logits: logits, labels: truth, loss: 0)
        return acc.result
    }

    @Test func comparisonListsOnlyDifferencesAndPairsPredictions() throws {
        var a = RunConfiguration(), b = RunConfiguration()
        a.epochs = 4
        b.epochs = 4
        b.kernelSize = 3
        b.learningRate = 0.05
        let truth = [0, 0, 1, 1, 0, 1, 0, 1]
        let runA = RunComparison.Run(name: "k5", configuration: a, evaluation: evaluation(truth: truth, predicted: [0, 1, 1, 0, 0, 1, 1, 1]),
                                     checkpoint: "step 1")
        let runB = RunComparison.Run(name: "k3", configuration: b, evaluation: evaluation(truth: truth, predicted: truth), checkpoint: "step 1")
        let c = try RunComparison([runA, runB])
        #expect(c.differences.map(\.key) == ["kernelSize", "learningRate"])
        #expect(c.differences[0].values == ["—", "3"])
        #expect(c.tests[0].baselineOnly == 0 && c.tests[0].runOnly == 3)
        #expect(c.textReport.contains("McNemar p = 0.2500") && c.textReport.contains("not significant"))
        let html = c.html(title: "k5 vs k3")
        #expect(html.contains("<svg") && html.contains("kernelSize") && !html.contains("src=\"http"))
        let json = c.jsonObject
        #expect((json["tests"] as? [[String: Any]])?.first?["run_only_correct"] as? Int == 3)

        // Other images (labels differ): refused, naming the run.
        let other = RunComparison.Run(name: "other", configuration: b, evaluation: evaluation(truth: [1, 1], predicted: [1, 1]), checkpoint: "")
        #expect(throws: RunError.self) { try RunComparison([runA, other]) }
    }

    // MARK: error report

    @Test func theErrorReportLinksEveryNonEmptyCellToItsImages() throws {
        let data = bandsDataset(count: 12, classes: 3)
        let truth = (0..<12).map { $0 % 3 }
        var predicted = truth
        predicted[4] = 2  // one band1 image called band2
        let e = evaluation(truth: truth, predicted: predicted, classes: data.classNames)
        let html = try ErrorReport.html(evaluation: e, dataset: data, title: "bands")
        #expect(html.contains("href=\"#cell-1-2\"") && html.contains("id=\"cell-1-2\""))
        #expect(html.components(separatedBy: "data:image/png;base64,").count - 1 >= 12, "every image appears in its cell")
        #expect(!html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("<script"), "self-contained")
        #expect(html.contains("Most confidently wrong") && html.contains("#4 true: <b>band1</b>"))
        // Calibration: 11 of 12 right, all at the same confidence.
        let (bins, ece) = ErrorReport.calibration(e.samples!)
        #expect(bins.map(\.count).reduce(0, +) == 12)
        let p = Double(e.samples!.confidence[0])
        #expect(abs(ece - abs(11.0 / 12 - p)) < 1e-6)
    }

    // MARK: Grad-CAM and saliency

    /// A net whose evidence for class 0 is, by construction, where the image is bright:
    /// positive filters, ReLU, global average, a positive weight for class 0.
    func brightSpotNet() -> Sequential {
        let conv = Conv2D(inChannels: 1, outChannels: 2, kernelSize: 3, padding: .same)
        conv.weight.value = Tensor(shape: [2, 1, 3, 3], repeating: 0.1)
        conv.bias!.value = Tensor(shape: [2], repeating: 0)
        let head = Linear(inFeatures: 2, outFeatures: 2)
        head.weight.value = Tensor(shape: [2, 2], scalars: [1, 1, -1, -1])
        head.bias!.value = Tensor(shape: [2], repeating: 0)
        let net = Sequential { conv; ReLU(); GlobalAvgPool(); head }
        net.eval()
        return net
    }

    func imageWithSpot() -> Tensor {
        var pixels = [Float](repeating: 0, count: 16 * 16)
        for y in 2..<6 { for x in 2..<6 { pixels[y * 16 + x] = 1 } }
        return Tensor(shape: [1, 1, 16, 16], scalars: pixels)
    }

    @Test func gradCAMPutsTheHeatWhereTheEvidenceIs() throws {
        let heat = try Explanation.heatMap(.gradcam, model: brightSpotNet(), input: imageWithSpot())
        #expect(heat.classIndex == 0 && heat.location == "1" && heat.height == 16 && heat.width == 16)
        #expect(heat.values.max() == 1)
        #expect(Explanation.heatShare(heat, inside: (0, 0, 0.5, 0.5)) > 0.95, "the spot is in the top-left quarter")
        // Class 1's evidence is negative everywhere: no positive heat at all.
        let against = try Explanation.heatMap(.gradcam, model: brightSpotNet(), input: imageWithSpot(), classIndex: 1)
        #expect(against.values.allSatisfy { $0 == 0 })
        let saliency = try Explanation.heatMap(.saliency, model: brightSpotNet(), input: imageWithSpot())
        #expect(Explanation.heatShare(saliency, inside: (0, 0, 0.5, 0.5)) > 0.9 && saliency.location == "input")
        let picture = Explanation.overlay(heat, on: [UInt8](repeating: 128, count: 256), channels: 1)
        #expect(picture.count == 3 * 256 && picture[2 * 16 + 3] != picture[12 * 16 + 12], "hot and cold pixels differ")
    }

    @Test func featureMapsAndCutsCoverTheZoo() throws {
        let x = randomImages(1, channels: 3, size: 32)
        for name in ["tf-cifar10", "resnet9", "airbench-muon", "resnet18-cifar"] {
            let model = try GlobalRandom.withSeed(1) { try Zoo.build(name, inputShape: [3, 32, 32], classes: 10) }
            model.eval()
            let cut = try #require(withoutGradient { FeatureMapCut.find(in: model, input: x) }, "\(name)")
            #expect(cut.map.rank == 4 && cut.map.shape[2] * cut.map.shape[3] > 1, "\(name)")
            let direct = withoutGradient { model(x) }.scalars, viaCut = withoutGradient { cut.rest(cut.map) }.scalars
            #expect(zip(direct, viaCut).allSatisfy { abs($0 - $1) < 1e-4 }, "\(name): the two halves are the whole net")
            #expect(!withoutGradient { featureMaps(of: model, input: x) }.isEmpty)
        }
        let mlp = try Zoo.build("mlp", inputShape: [1, 28, 28], classes: 10)
        #expect(throws: RunError.self) { try Explanation.heatMap(.gradcam, model: mlp, input: randomImages(1, channels: 1, size: 28)) }
    }

    func randomImages(_ n: Int, channels: Int, size: Int) -> Tensor {
        var g = SeededGenerator(seed: 5)
        return Tensor.normal([n, channels, size, size], generator: &g)
    }

    @Test func filterGridShowsEveryFilter() {
        let w = Tensor(shape: [5, 3, 2, 2], scalars: (0..<60).map(Float.init))
        let grid = NetworkPictures.filterGrid(w, scale: 4, gap: 1)
        // 5 filters: 3 columns, 2 rows of 8-pixel cells with 1-pixel gaps.
        #expect(grid.height == 2 * 9 + 1 && grid.width == 3 * 9 + 1 && grid.bytes.count == 3 * grid.height * grid.width)
    }

    // MARK: learning-rate finder

    @Test func theLearningRateFinderSweepsAndSuggests() throws {
        let data = bandsDataset(count: 256)
        let model = GlobalRandom.withSeed(2) { Sequential { Flatten(); Linear(inFeatures: 64, outFeatures: 4) } }
        let trainer = Trainer(model: model, optimizer: SGD(for: model, learningRate: 0.1, momentum: 0.9))
        let loader = DataLoader(dataset: data, batchSize: 16, shuffle: true, dropLast: true, seed: 1)
        let result = try LearningRateFinder(start: 1e-5, end: 100, steps: 60).run(trainer: trainer, loader: loader)
        #expect(result.rates.count >= 20 && result.rates.count <= 60, "one rate per step, across epochs (16 batches each)")
        #expect(zip(result.rates, result.rates.dropFirst()).allSatisfy { $0 < $1 })
        #expect(result.steepest > 1e-5 && result.steepest < result.rates.last!)
        #expect(["diverged", "non-finite loss", "end of range"].contains(result.stopReason))
        #expect(result.svg(title: "t").contains("suggested"))
    }

    // MARK: class imbalance

    @Test func balancedSamplingDrawsEveryClassAlike() {
        var labels = [Int32](repeating: 0, count: 100)
        for i in 90..<100 { labels[i] = 1 }
        let data = ImageDataset(pixels: [UInt8](repeating: 0, count: 100), labels: labels, channels: 1, height: 1, width: 1,
                                classNames: ["common", "rare"], source: "t")
        var loader = DataLoader(dataset: data, batchSize: 10, shuffle: true, seed: 3)
        loader.sampleWeights = labels.map { $0 == 0 ? 1.0 / 90 : 1.0 / 10 }
        var rare = 0
        for epoch in 0..<10 { rare += loader.order(epoch: epoch).filter { $0 >= 90 }.count }
        #expect(rare > 400 && rare < 600, "about half of 1,000 draws are the 10% class, got \(rare)")
        #expect(loader.order(epoch: 4) == loader.order(epoch: 4), "seeded")
    }
}
