import ArgumentParser
import Foundation
import Sprout

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify PNG/JPEG images with a run's newest checkpoint, preprocessed as in training.",
        discussion: """
        Example:
          sprout predict runs/demo shoe.png shirt.jpg --top-k 3
        """)

    @Argument(help: "Run directory written by sprout train.") var runDir: String
    @Argument(help: "PNG or JPEG files, any size.") var images: [String]
    @Option(help: "Labels to show per image.") var topK = 5
    @Option(help: "A checkpoint: a manifest (ckpt-….json), a step, best or latest (the default).") var checkpoint: String?
    @Flag(help: "Print one JSON object per image.") var json = false
    @Flag(help: "Use the live weights even when the checkpoint has EMA weights.") var noEma = false
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try threadOptions.apply()
        guard !images.isEmpty else { throw ValidationError("give at least one image file") }
        let (loaded, _) = try RunDirectory(runDir).load(.init(checkpoint), useEMA: !noEma)
        let classifier = ImageClassifier(checkpoint: loaded)
        var failures = 0
        for path in images {
            do {
                let predictions = try classifier.classify(path: path, topK: min(topK, loaded.manifest.classNames.count))
                if json {
                    let object: [String: Any] = ["image": path, "step": loaded.manifest.step,
                                                 "predictions": predictions.map { ["label": $0.label, "probability": $0.probability] }]
                    print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
                } else {
                    print(path)
                    for p in predictions { print(String(format: "  %6.2f%%  %@", 100 * p.probability, p.label)) }
                }
            } catch {
                failures += 1
                FileHandle.standardError.write(Data("sprout predict: \(error)\n".utf8))
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}
