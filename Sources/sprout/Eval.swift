import ArgumentParser
import Dispatch
import Foundation
import Sprout

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate the newest (or a named) checkpoint of a run: loss, top-1/top-5, per-class metrics, confusion matrix.",
        discussion: """
        Examples:
          sprout eval runs/demo                      # newest checkpoint on the test split (val when there is none)
          sprout eval runs/cifar --split val --json
          sprout eval runs/cifar --watch --interval 60   # beside a training process: each new checkpoint once
          sprout eval runs/flowers --report report       # report/index.html: confusion cells with their images, worst mistakes, calibration
        Results go to RUN_DIR/eval/<split>-<step>.json and .svg; with --watch also eval/* TensorBoard scalars.
        """)

    @Argument(help: "Run directory written by sprout train.") var runDir: String
    @Option(help: "A checkpoint manifest (ckpt-….json) or a step number (default: the newest).") var checkpoint: String?
    @Option(help: "test, val or train (default: test when the dataset has one, else val).") var split: String?
    @Option(help: "Dataset directory (default: the run's).") var dataDir: String?
    @Option(help: "Images per forward pass.") var batchSize = 500
    @Option(help: "Line recognisers: CTC beam-search width (1: greedy decoding).") var beam = 1
    @Option(help: "mnist-lines: evaluate on lines of this many digits (e.g. 5) instead of the run's lengths.") var lineLength: String?
    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: "Write an error-analysis page, DIR/index.html (self-contained): the confusion matrix with each cell's images, the most confidently wrong images, calibration.")
    var report: String?
    @Flag(help: "Use the live weights even when the checkpoint has EMA weights.") var noEma = false
    @Option(help: "Test-time augmentation: none, flip or flip-translate (default: the run's).") var tta: TestTimeAugmentation?
    @Flag(help: "Keep polling the run and evaluate each new checkpoint exactly once.") var watch = false
    @Option(help: "Seconds between polls with --watch.") var interval: Double = 300
    @Option(help: "With --watch: exit after evaluating a checkpoint at or past this step.") var untilStep: Int?
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try threadOptions.apply()
        let run = RunDirectory(runDir)
        var config = try run.configuration()
        if let dataDir { config.dataDir = dataDir }
        let augmentation = tta ?? config.testTimeAugmentation ?? .none
        let checkpoints = run.checkpoints
        let (splitName, dataset) = try run.evaluationSplit(split, configuration: config, lineLength: lineLength)
        guard beam >= 1 else { throw ValidationError("--beam must be at least 1") }
        let evalDir = run.evaluationDirectory
        try FileManager.default.createDirectory(atPath: evalDir, withIntermediateDirectories: true)

        if !watch {
            let manifest = try run.manifestPath(.init(checkpoint))
            try evaluate(manifest: manifest, dataset: dataset, split: splitName, evalDir: evalDir, tensorboard: nil,
                         augmentation: augmentation)
            return
        }
        // --watch: poll, evaluate each new complete checkpoint once, survive pruning races.
        let tensorboard = try TensorBoardWriter(directory: evalDir)
        let donePath = (evalDir as NSString).appendingPathComponent("watch-\(splitName).json")
        var done = Set((try? JSONDecoder().decode([Int].self, from: Data(contentsOf: URL(fileURLWithPath: donePath)))) ?? [])
        let stop = StopFlag()
        let sources = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { stop.set() }
            s.resume()
            return s
        }
        defer { sources.forEach { $0.cancel() } }
        print("watching \(checkpoints.path) every \(interval) s (Ctrl-C to stop)")
        while !stop.isSet {
            for manifest in checkpoints.manifests() {
                guard let m = try? CheckpointDirectory.readManifest(manifest), !done.contains(m.step) else { continue }
                do {
                    try evaluate(manifest: manifest, dataset: dataset, split: splitName, evalDir: evalDir, tensorboard: tensorboard,
                                 augmentation: augmentation)
                    done.insert(m.step)
                    try writeAtomically([UInt8](try JSONEncoder().encode(done.sorted())), to: donePath)
                    if let untilStep, m.step >= untilStep { return }
                } catch {
                    // Pruned while we read it, or damaged: say so and carry on.
                    FileHandle.standardError.write(Data("skipping \(manifest): \(error)\n".utf8))
                }
            }
            let deadline = Date().addingTimeInterval(interval)
            while !stop.isSet && Date() < deadline { Thread.sleep(forTimeInterval: min(0.5, interval)) }
        }
    }

    func evaluate(manifest path: String, dataset: any Dataset, split: String, evalDir: String, tensorboard: TensorBoardWriter?,
                  augmentation: TestTimeAugmentation) throws {
        let (loaded, usesEMA) = try RunDirectory(runDir).load(.manifest(path), useEMA: !noEma)
        let loader = evaluationLoader(dataset, preprocessing: loaded.manifest.preprocessing, modelInput: loaded.manifest.model.inputShape,
                                      batchSize: batchSize)
        let started = Date()
        let result = evaluateModel(loaded.model, on: loader, objective: loaded.manifest.objective(beamWidth: beam),
                                   testTimeAugmentation: augmentation)
        if report != nil && result.sequence != nil {
            throw ValidationError("--report pages are for image classifiers; a line recogniser's errors are in the text and --json output")
        }
        if !loader.failures.isEmpty {
            FileHandle.standardError.write(Data("skipped \(loader.failures.count) images that did not load (each replaced by the next one), e.g. \(loader.failures[0])\n".utf8))
        }
        let seconds = Date().timeIntervalSince(started)
        let step = loaded.manifest.step
        let title = "\(runDir) · step \(step) · \(split) split · \(loaded.manifest.model.name)\(usesEMA ? " (EMA weights)" : "")"
        let base = (evalDir as NSString).appendingPathComponent(String(format: "%@-%08d", split, step))
        let object = result.jsonObject(extra: ["step": step, "split": split, "checkpoint": path, "ema": usesEMA,
                                               "model": loaded.manifest.model.name, "seconds": seconds,
                                               "tta": augmentation.rawValue])
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
        try writeAtomically([UInt8](data), to: base + ".json")
        var reportPath: String?
        if let report {
            try FileManager.default.createDirectory(atPath: report, withIntermediateDirectories: true)
            let page = try ErrorReport.html(evaluation: result, dataset: dataset, title: title)
            reportPath = (report as NSString).appendingPathComponent("index.html")
            try writeAtomically(Array(page.utf8), to: reportPath!)
        }
        try writeAtomically(Array(result.confusionSVG(title: title).utf8), to: base + ".svg")
        if let sequence = result.sequence {
            tensorboard?.add(scalars: [("eval/\(split)/sequence_accuracy", Float(result.top1)), ("eval/\(split)/cer", Float(sequence.characterErrorRate)),
                                       ("eval/\(split)/loss", Float(result.loss))], step: step)
        } else {
        tensorboard?.add(scalars: [("eval/\(split)/top1", Float(result.top1)), ("eval/\(split)/top5", Float(result.top5)),
                                   ("eval/\(split)/loss", Float(result.loss))], step: step)
        }
        tensorboard?.flush()
        if json {
            let line = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: line, as: UTF8.self))
        } else {
            print(result.textReport(title: title))
            print("saved \(base).json and \(base).svg" + (reportPath.map { " and \($0)" } ?? ""))
        }
    }
}
