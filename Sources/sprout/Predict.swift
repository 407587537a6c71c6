import ArgumentParser
import Foundation
import Sprout

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify PNG/JPEG images (or read the text of line images) with a run's newest checkpoint, preprocessed as in training.",
        discussion: """
        Example:
          sprout predict runs/demo shoe.png shirt.jpg --top-k 3
          sprout predict --pretrained efficientnet-lite0 daisy.jpg      (ImageNet classes; sprout weights get efficientnet-lite0 first)
        """)

    @Argument(help: "A run directory written by sprout train, then PNG/JPEG files of any size (with --pretrained: the files only).")
    var paths: [String]
    @Option(help: "Labels to show per image.") var topK = 5
    @Option(help: "A checkpoint: a manifest (ckpt-….json), a step, best or latest (the default).") var checkpoint: String?
    @Option(help: "With --pretrained: the zoo model the weights are for (default: the catalogue entry's).") var model: String?
    @Option(help: "Classify with published weights as they are (ImageNet classes) instead of a run: a name from `sprout weights list` or a file.")
    var pretrained: String?
    @Flag(help: "Print one JSON object per image.") var json = false
    @Option(help: "Line recognisers: CTC beam-search width (1: greedy decoding).") var beam = 1
    @Flag(help: "With --json: add the raw logits (to compare with another framework).") var logits = false
    @Option(help: "Write each image's network input here as raw little-endian float32 [C, H, W] (IMAGE_NAME.f32): the exact tensor the model saw.")
    var saveInputs: String?
    @Flag(help: "Use the live weights even when the checkpoint has EMA weights.") var noEma = false
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try threadOptions.apply()
        let classifier: ImageClassifier
        var images = paths
        if let pretrained {
            guard let name = model ?? WeightCatalog.entry(pretrained)?.model else {
                throw ValidationError("--pretrained FILE needs --model (the zoo model the weights are for)")
            }
            classifier = try ImageClassifier.pretrained(model: name, weights: try WeightCatalog.resolve(pretrained))
        } else {
            guard paths.count >= 2 else { throw ValidationError("give a run directory and at least one image file (or --pretrained NAME and images)") }
            let (loaded, _) = try RunDirectory(paths[0]).load(.init(checkpoint), useEMA: !noEma)
            classifier = ImageClassifier(checkpoint: loaded)
            images = Array(paths.dropFirst())
        }
        let manifest = classifier.manifest
        var failures = 0
        for path in images {
            do {
                guard let data = FileManager.default.contents(atPath: path) else { throw DatasetError.fileNotFound(path) }
                if manifest.preprocessing.isLineRecognizer {
                    // A line reader: the text, each character's confidence.
                    let output = classifier.logits(classifier.inputs(try classifier.preprocess(bytes: [UInt8](data), name: path)))
                    let r = CTCDecoder.decode(logits: output, blank: manifest.classNames.count, classNames: manifest.classNames,
                                              beamWidth: max(1, beam))[0]
                    if json {
                        var object: [String: Any] = ["image": path, "step": manifest.step, "text": r.text,
                                                     "confidences": r.confidences.map(Double.init), "probability": Double(r.probability)]
                        if logits { object["logits"] = output.scalars.map { Double($0) }; object["logits_shape"] = output.shape }
                        print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
                    } else {
                        let each = zip(r.characters, r.confidences).map { String(format: "%@ %.2f", $0, $1) }.joined(separator: ", ")
                        print("\(path): \(r.text.isEmpty ? "(nothing read)" : r.text)   [\(each)]")
                    }
                    continue
                }
                let input = classifier.inputs(try classifier.preprocess(bytes: [UInt8](data), name: path))
                let output = classifier.logits(input)
                let predictions = classifier.topPredictions(softmax(output, alongAxis: 1), row: 0, k: min(topK, manifest.classNames.count))
                if let saveInputs {
                    try FileManager.default.createDirectory(atPath: saveInputs, withIntermediateDirectories: true)
                    let bytes = input.scalars.withUnsafeBytes { Data($0) }
                    try bytes.write(to: URL(fileURLWithPath: saveInputs + "/" + (path as NSString).lastPathComponent + ".f32"))
                }
                if json {
                    var object: [String: Any] = ["image": path, "step": manifest.step,
                                                 "predictions": predictions.map { ["label": $0.label, "probability": $0.probability] }]
                    if logits { object["logits"] = output.scalars.map { Double($0) } }
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
