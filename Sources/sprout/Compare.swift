import ArgumentParser
import Foundation
import Sprout

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare runs on the same images: configuration differences, accuracy with 95% intervals, per-class precision/recall/F1 and McNemar's test.",
        discussion: """
        The first run is the baseline. Each run's checkpoint is evaluated on its evaluation split (the test
        split when the dataset has one on disk, else its validation hold-out); the runs must hold out the
        same images. McNemar's test uses the paired predictions: it asks whether the images one run got
        right and the other wrong split more unevenly than chance would.
        Examples:
          sprout compare runs/k5 runs/k3
          sprout compare runs/k5 runs/k3 --html compare.html --json
        """)

    @Argument(help: "Two or more run directories written by sprout train (the first is the baseline).") var runs: [String]
    @Option(help: "Checkpoint of every run: latest, best or a step number (default: latest).") var checkpoint: String?
    @Option(help: "test, val or train (default: test when the dataset has one, else val).") var split: String?
    @Option(help: "Dataset directory (default: each run's).") var dataDir: String?
    @Option(help: "Test-time augmentation: none, flip or flip-translate (default: each run's).") var tta: TestTimeAugmentation?
    @Option(help: "Images per forward pass.") var batchSize = 500
    @Option(help: "Also write the comparison as a self-contained HTML page here.") var html: String?
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        guard runs.count >= 2 else { throw ValidationError("compare needs at least two run directories, got \(runs.count)") }
    }

    func run() throws {
        try threadOptions.apply()
        var compared: [RunComparison.Run] = []
        for path in runs {
            let run = RunDirectory(path)
            var config = try run.configuration()
            if let dataDir { config.dataDir = dataDir }
            let (splitName, dataset) = try run.evaluationSplit(split, configuration: config)
            let (loaded, usesEMA) = try run.load(.init(checkpoint))
            if loaded.manifest.preprocessing.isLineRecognizer {
                throw CLIError("\(path) reads lines of text; compare pairs classifiers' predictions — compare line readers with sprout eval RUN --json")
            }
            let loader = evaluationLoader(dataset, preprocessing: loaded.manifest.preprocessing,
                                          modelInput: loaded.manifest.model.inputShape, batchSize: batchSize)
            let augmentation = tta ?? config.testTimeAugmentation ?? .none
            let evaluation = evaluateModel(loaded.model, on: loader, testTimeAugmentation: augmentation)
            let described = "step \(loaded.manifest.step)\(usesEMA ? " (EMA weights)" : ""), \(splitName) split, TTA \(augmentation.rawValue)"
            compared.append(.init(name: run.name, configuration: config, evaluation: evaluation, checkpoint: described))
        }
        let comparison = try RunComparison(compared)
        if let html {
            try writeAtomically(Array(comparison.html(title: "sprout compare " + runs.joined(separator: " ")).utf8), to: html)
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: comparison.jsonObject, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(comparison.textReport)
            if let html { print("\nsaved \(html)") }
        }
    }
}
