import Foundation
import Testing
@testable import SproutData
import SproutNN
import SproutOptim
import SproutTensor
@testable import SproutTrain

/// Lines of digits, CTC decoding, the edit-distance metrics, and a CRNN learning to read.
@Suite struct SequenceRecognitionTests {
    /// Small 28×28 "digits": class k is a bar k+1 pixels wide, at a height that varies by sample.
    static func digits(count: Int, seed: UInt64 = 1) -> ImageDataset {
        var g = SeededGenerator(seed: seed)
        var pixels = [UInt8](repeating: 0, count: count * 784), labels = [Int32](repeating: 0, count: count)
        for i in 0..<count {
            let k = g.nextInt(below: 10)
            labels[i] = Int32(k)
            let top = 4 + g.nextInt(below: 4)
            for y in top..<(top + 18) { for x in (12 - k / 2)..<(13 + (k + 1) / 2) { pixels[i * 784 + y * 28 + x] = 255 } }
        }
        return ImageDataset(pixels: pixels, labels: labels, channels: 1, height: 28, width: 28, classNames: MNIST.digitNames, source: "bars")
    }

    @Test func linesAreDeterministicAndComposedFromTheirDigitsOnly() throws {
        let source = Self.digits(count: 50)
        let lines = try DigitLines(digits: source, count: 40, lengths: 1...8, seed: 7)
        let again = try DigitLines(digits: source, count: 40, lengths: 1...8, seed: 7)
        #expect(lines.width == 24 * 8 + 16 && lines.height == 32 && lines.channels == 1)
        #expect(lines.sources == again.sources)
        #expect(lines.sources.allSatisfy { (1...8).contains($0.count) && $0.allSatisfy { (0..<50).contains($0) } })
        #expect(Set(lines.sources.map(\.count)).count >= 6, "lengths vary over 1...8")
        for i in 0..<40 {
            #expect(lines.labels(of: i) == lines.sources[i].map { Int(source.labels[$0]) })
            #expect(lines.text(of: i) == lines.labels(of: i).map(String.init).joined())
        }
        guard case .sequences(let targets) = lines.targets([3, 5]) else { Issue.record("targets are sequences"); return }
        #expect(targets == [lines.labels(of: 3), lines.labels(of: 5)])
        // The canonical picture is the same every time; each digit's ink lands on the canvas.
        let a = lines.withPixels(ofSample: 3) { Array($0) }, b = again.withPixels(ofSample: 3) { Array($0) }
        #expect(a == b && a.count == 32 * lines.width)
        let ink = a.filter { $0 > 128 }.count
        #expect(ink > 20 * lines.labels(of: 3).count, "each digit leaves strokes (\(ink) bright pixels)")
        // A fresh layout (training) moves the digits; the text stays the sample's.
        var out = [Float](repeating: 0, count: 32 * lines.width)
        var g = SeededGenerator(seed: 99)
        var fresh = Augmentation.none
        fresh.freshLayout = true
        _ = try out.withUnsafeMutableBufferPointer { try lines.renderSample(3, augmentation: fresh, generator: &g, into: $0.baseAddress!) }
        #expect(out.map { UInt8(($0 * 255).rounded()) } != a)
        // Rotations are drawn after the layout: the same draws place the digits, then turn them
        // (the ink moves, its amount barely changes).
        var turned = [Float](repeating: 0, count: 32 * lines.width), straight = turned
        var g1 = SeededGenerator(seed: 99), g2 = SeededGenerator(seed: 99)
        fresh.rotation = 20
        _ = try turned.withUnsafeMutableBufferPointer { try lines.renderSample(3, augmentation: fresh, generator: &g1, into: $0.baseAddress!) }
        fresh.rotation = 0
        _ = try straight.withUnsafeMutableBufferPointer { try lines.renderSample(3, augmentation: fresh, generator: &g2, into: $0.baseAddress!) }
        #expect(straight == out && turned != straight)
        let (inkTurned, inkStraight) = (turned.reduce(0, +), straight.reduce(0, +))
        #expect(abs(inkTurned - inkStraight) < 0.1 * inkStraight, "ink \(inkTurned) vs \(inkStraight)")
        #expect(throws: DatasetError.self) { try DigitLines(digits: source, count: 1, lengths: 1...8, width: 100, seed: 0) }
    }

    /// Frames as probabilities [T, C] with the blank last.
    func frames(_ rows: [[Float]]) -> [Float] { rows.flatMap { $0 } }

    @Test func greedyDecodingCollapsesRepeatsAndDropsBlanks() {
        // Classes a=0, b=1, blank=2; best path a a _ a b b → "aab".
        let p = frames([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
        let (labels, probability) = p.withUnsafeBufferPointer { CTCDecoder.greedy($0, steps: 6, classes: 3, blank: 2) }
        #expect(labels == [0, 0, 1])
        #expect(abs(probability - 0.9 * 0.8 * 0.8 * 0.7 * 0.8 * 0.7) < 1e-6)
        let confidences = p.withUnsafeBufferPointer { CTCDecoder.confidences(of: labels, $0, steps: 6, classes: 3, blank: 2) }
        #expect(confidences == [0.9, 0.7, 0.8])
        // The training log's labels come from the logits' argmax: the same best path.
        #expect(CTCDecoder.greedyLabels(logits: Tensor(shape: [1, 6, 3], scalars: p.map { logf($0) }), blank: 2) == [labels])
    }

    @Test func beamSearchFindsTheMostProbableLabellingNotTheBestPath() {
        // Two frames over {a, blank}: best path is "_ _" (0.36) → "", but "a" sums a_, _a, aa:
        // 0.24 + 0.24 + 0.16 = 0.64.
        let p = frames([[0.4, 0.6], [0.4, 0.6]])
        let greedy = p.withUnsafeBufferPointer { CTCDecoder.greedy($0, steps: 2, classes: 2, blank: 1) }
        let beam = p.withUnsafeBufferPointer { CTCDecoder.beamSearch($0, steps: 2, classes: 2, blank: 1, width: 4) }
        #expect(greedy.labels == [] && abs(greedy.probability - 0.36) < 1e-6)
        #expect(beam.labels == [0] && abs(beam.probability - 0.64) < 1e-5)
        // Repeats need a blank between them: "aa" only through a _ a.
        let q = frames([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
        let repeated = q.withUnsafeBufferPointer { CTCDecoder.beamSearch($0, steps: 3, classes: 2, blank: 1, width: 8) }
        #expect(repeated.labels == [0], "a (6 of 8 paths… 'a' 0.625 vs '' 0.125 and 'aa' 0.125)")
    }

    @Test func decodingMatchesTheCTCLossOfItsLabelling() {
        // The beam's probability of a labelling equals exp(-CTC loss) when the beam keeps everything.
        var g = SeededGenerator(seed: 4)
        let logits = Tensor.normal([1, 5, 3], generator: &g)
        let r = CTCDecoder.decode(logits: logits, blank: 2, classNames: ["x", "y"], beamWidth: 64)[0]
        let nll = ctcLoss(logProbabilities: logSoftmax(logits.permuted([1, 0, 2]), alongAxis: 2), targets: [r.labels],
                          blank: 2, reduction: .sum).scalar
        #expect(abs(Double(r.probability) - exp(-Double(nll))) < 1e-4, "\(r.probability) vs \(exp(-Double(nll)))")
        #expect(r.text == r.labels.map { ["x", "y"][$0] }.joined() && r.confidences.count == r.labels.count)
    }

    @Test func editOperationsAndCharacterErrorRate() {
        #expect(editOperations(from: [1, 2, 3, 4, 5], to: [1, 2, 4, 5]) == [EditOperation(truth: 3, predicted: nil)])
        #expect(editOperations(from: [1, 2], to: [1, 7, 2]) == [EditOperation(truth: nil, predicted: 7)])
        #expect(editOperations(from: [4, 4], to: [9, 4]) == [EditOperation(truth: 4, predicted: 9)])
        #expect(editOperations(from: [], to: []).isEmpty && editOperations(from: [1], to: []).count == 1)
        var acc = SequenceAccumulator(classNames: MNIST.digitNames)
        acc.add(truth: [1, 2, 3], predicted: [1, 2, 3])
        acc.add(truth: [4, 4, 7], predicted: [9, 4])
        acc.add(truth: [7], predicted: [7, 1])
        let m = acc.result
        #expect(m.sequences == 3 && m.exact == 1 && m.characters == 7)
        #expect(m.substitutions == 1 && m.deletions == 1 && m.insertions == 1)
        #expect(abs(m.characterErrorRate - 3.0 / 7) < 1e-12)
        #expect(m.errors == [["447", "94"], ["7", "71"]])
        #expect(Set(m.confusions.map { "\($0.truth)→\($0.predicted)" }) == ["4→9", "7→∅", "∅→1"])
    }

    /// The classic sanity check of a sequence model: a small CRNN with CTC fits one batch of
    /// real MNIST lines until it reads every line of it exactly.
    @Test(.tags(.slow), .enabled(if: RealData.exists(RealData.mnist), "MNIST is not in ../shared/data/mnist"))
    func aCRNNFitsOneBatchOfRealLines() throws {
        seedEverything(3)
        let digits = try MNIST.load(directory: RealData.mnist, split: .train).subset(0..<1_000)
        let lines = try DigitLines(digits: digits, count: 8, lengths: 2...3, seed: 1)
        let model = try CRNN(inputShape: [1, 32, lines.width], classes: 11, width: 0.5, hidden: 32)
        let batch = DataLoader(dataset: lines, batchSize: 8, normalization: .meanStd(mean: [0.08], std: [0.24])).batch(epoch: 0, index: 0)
        let trainer = Trainer(model: model, optimizer: Adam(for: model, learningRate: 0.003))
        let objective = SequenceRecognition(blank: 10, classNames: MNIST.digitNames)
        trainer.objective = objective
        var first: Float = 0, last: Float = 0
        for step in 0..<300 {
            last = try trainer.trainStep(batch).loss
            if step == 0 { first = last }
        }
        // Read as trained (batch statistics): the fit, not batch norm's running averages, is under test.
        let read = CTCDecoder.decode(logits: withoutGradient { model(batch.images) }, blank: 10, classNames: MNIST.digitNames)
        let now = withoutGradient { objective.loss(output: model(batch.images), batch: batch).scalar }
        #expect(last < first / 100, "CTC loss \(first) → \(last), now \(now)")
        #expect(read.map(\.labels) == batch.sequences, "read \(read.map(\.text)) of \((0..<8).map(lines.text(of:)))")
    }
}

/// Writes `digits` as MNIST's official training files (IDX, uncompressed) in `directory`.
func writeMNIST(_ digits: ImageDataset, to directory: String) throws {
    func bigEndian(_ v: Int) -> [UInt8] { [24, 16, 8, 0].map { UInt8((v >> $0) & 0xFF) } }
    let images = bigEndian(0x0803) + bigEndian(digits.count) + bigEndian(28) + bigEndian(28) + digits.pixels
    let labels = bigEndian(0x0801) + bigEndian(digits.count) + digits.labels.map { UInt8($0) }
    try Data(images).write(to: URL(fileURLWithPath: directory + "/train-images-idx3-ubyte"))
    try Data(labels).write(to: URL(fileURLWithPath: directory + "/train-labels-idx1-ubyte"))
}

/// The line reader through the `sprout` executable: train, sample a line, read it, evaluate, export.
@Suite(.serialized, .tags(.slow)) struct LineReaderCLITests {
    @Test(.enabled(if: CLITests.binaryBuilt, CLITests.notBuilt)) func trainSampleReadEvaluateExport() throws {
        let cli = CLITests()
        let dir = TemporaryDirectory()
        let data = dir.file("digits")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try writeMNIST(SequenceRecognitionTests.digits(count: 600), to: data)
        let run = dir.file("run")
        let train = try cli.sprout(["train", "--dataset", "mnist-lines", "--data-dir", data, "--line-length", "2-3", "--lines", "128",
                                    "--val-split", "100", "--epochs", "1", "--batch-size", "32", "--optimizer", "adam", "--lr", "0.003",
                                    "--run-dir", run])
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.contains("model: crnn") && train.stdout.contains("input [1, 32, 88]"), "\(train.stdout)")
        #expect(train.stdout.contains("sequence accuracy") && train.stdout.contains("character error rate"), "\(train.stdout)")
        let sample = try cli.sprout(["data", "sample", data, "--split", "train", "--lines", "3", "--index", "2", "--output", dir.file("line.png")])
        #expect(sample.status == 0 && sample.stdout.contains("32×88, text "), "\(sample.stdout) \(sample.stderr)")
        let read = try cli.sprout(["predict", run, dir.file("line.png"), "--json", "--beam", "4"])
        #expect(read.status == 0, "\(read.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: Any]
        let text = try #require(object?["text"] as? String)
        #expect((object?["confidences"] as? [Double])?.count == text.count && text.allSatisfy(\.isNumber))
        let eval = try cli.sprout(["eval", run, "--split", "val", "--json", "--line-length", "3"])
        #expect(eval.status == 0, "\(eval.stderr)")
        let result = try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any]
        #expect(result?["count"] as? Int == 128 && result?["cer"] is Double && result?["sequence_accuracy"] is Double)
        #expect(result?["top5"] == nil)
        let export = try cli.sprout(["export", run, "--format", "onnx", "-o", dir.file("lines.onnx")])
        #expect(export.status == 0 && FileManager.default.fileExists(atPath: dir.file("lines.onnx")), "\(export.stderr)")
        let bad = try cli.sprout(["train", "--dataset", "mnist-lines", "--data-dir", data, "--line-length", "0-3", "--print-config"])
        #expect(bad.status != 0 && bad.stderr.contains("--line-length"))
    }
}

/// Words rendered with a Debian font (fonts-dejavu-core).
@Suite struct TextLinesTests {
    static let font = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

    @Test(.enabled(if: FileManager.default.fileExists(atPath: font), "fonts-dejavu-core is not installed"))
    func wordsRenderDeterministicallyWithTheirCharactersAsTargets() throws {
        let fonts = try Font.load(Self.font)
        let lines = try TextLines(fonts: fonts, words: ["cab", "bad", "dead", "toolongword"], count: 30, maxLength: 5, seed: 2)
        #expect(lines.words == ["cab", "bad", "dead"] && lines.alphabet == ["a", "b", "c", "d", "e"])
        #expect(lines.width == TextLines.width(forLength: 5) && lines.height == 32)
        for i in 0..<30 {
            #expect(lines.labels(of: i).map { lines.classNames[$0] }.joined() == lines.text(of: i))
        }
        let a = lines.withPixels(ofSample: 4) { Array($0) }, b = lines.withPixels(ofSample: 4) { Array($0) }
        #expect(a == b, "the canonical rendering is fixed")
        #expect(a.filter { $0 > 128 }.count > 30, "the glyphs leave ink")
        var fresh = Augmentation.none
        fresh.freshLayout = true
        var out = [Float](repeating: 0, count: 32 * lines.width)
        var g = SeededGenerator(seed: 5)
        _ = try out.withUnsafeMutableBufferPointer { try lines.renderSample(4, augmentation: fresh, generator: &g, into: $0.baseAddress!) }
        #expect(out.map { UInt8(($0 * 255).rounded()) } != a)
        #expect(throws: DatasetError.self) { try TextLines(fonts: fonts, words: ["abc"], alphabet: ["a", "b"], count: 1, maxLength: 5, seed: 0) }
        #expect(throws: DatasetError.self) { try Font(path: "/nonexistent.ttf") }
    }
}
