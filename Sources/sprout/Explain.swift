import ArgumentParser
import Foundation
import Sprout

extension Explanation.Method: ExpressibleByArgument {}

/// Loads a run's checkpoint for looking inside it (explain, show).
func loadClassifier(run: String, checkpoint: String?, noEma: Bool) throws -> ImageClassifier {
    let (loaded, _) = try RunDirectory(run).load(.init(checkpoint), useEMA: !noEma)
    loaded.model.eval()
    return ImageClassifier(checkpoint: loaded)
}

/// An image file as the classifier's input [1, C, H, W] and its preprocessed pixels (planar bytes).
func classifierInput(_ classifier: ImageClassifier, path: String) throws -> (input: Tensor, pixels: [UInt8], channels: Int) {
    guard let data = FileManager.default.contents(atPath: path) else { throw DatasetError.fileNotFound(path) }
    let images = try classifier.preprocess(bytes: [UInt8](data), name: path)
    return (classifier.inputs(images), images.withPixels(ofSample: 0) { Array($0) }, images.channels)
}

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Why this prediction: a Grad-CAM (or input-gradient) heat map over the image, as a PNG.",
        discussion: """
        Examples:
          sprout explain runs/flowers daisy.jpg -o daisy-heat.png
          sprout explain runs/flowers daisy.jpg rose.jpg -o heat/ --method saliency
          sprout explain runs/cifar cat.png -o cat.png --class dog     (why not "dog"?)
        """)

    @Argument(help: "A run directory, then one or more PNG/JPEG images.") var paths: [String]
    @Option(name: .shortAndLong, help: "Output PNG (one image) or directory (several).") var output: String
    @Option(help: "gradcam (the last feature map, weighted by the class's gradient) or saliency (input gradient).")
    var method: Explanation.Method = .gradcam
    @Option(name: .customLong("class"), help: "Explain this class (name or index) instead of the predicted one.") var className: String?
    @Option(help: "A checkpoint: latest (default), best, a step or a manifest.") var checkpoint: String?
    @Flag(help: "Use the live weights even when the checkpoint has EMA weights.") var noEma = false
    @Flag(help: "Print one JSON object per image, with center_share: the heat's share inside the central half of the image's area (0.5 for heat spread evenly).")
    var json = false
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try threadOptions.apply()
        guard paths.count >= 2 else { throw ValidationError("give a run directory and at least one image") }
        let classifier = try loadClassifier(run: paths[0], checkpoint: checkpoint, noEma: noEma)
        if classifier.manifest.preprocessing.isLineRecognizer {
            throw CLIError("\(paths[0]) reads lines of text; Grad-CAM explains image classifiers (sprout predict shows each character's confidence)")
        }
        let names = classifier.manifest.classNames
        var target: Int?
        if let className {
            guard let index = names.firstIndex(of: className) ?? Int(className).flatMap({ $0 >= 0 && $0 < names.count ? $0 : nil }) else {
                throw ValidationError("--class '\(className)' is not one of the run's classes: \(names.joined(separator: ", "))")
            }
            target = index
        }
        let images = Array(paths.dropFirst())
        if images.count > 1 { try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true) }
        for path in images {
            let (input, pixels, channels) = try classifierInput(classifier, path: path)
            let heat = try Explanation.heatMap(method, model: classifier.model, input: input, classIndex: target)
            let picture = Explanation.overlay(heat, on: pixels, channels: channels)
            let file = images.count > 1
                ? (output as NSString).appendingPathComponent(((path as NSString).lastPathComponent as NSString).deletingPathExtension + "-\(method.rawValue).png")
                : output
            try ImageWriter.writePNG(planar: picture, channels: 3, height: heat.height, width: heat.width, to: file)
            let p = heat.probabilities[heat.classIndex]
            if json {
                // The central box with half the image's area: 1/√2 of each side, centred.
                let margin = Float((1 - 0.5.squareRoot()) / 2)
                let object: [String: Any] = ["image": path, "class": names[heat.classIndex], "probability": Double(p),
                                             "method": method.rawValue, "location": heat.location, "output": file,
                                             "center_share": Double(Explanation.heatShare(heat, inside: (margin, margin, 1 - margin, 1 - margin)))]
                print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            } else {
                print(String(format: "%@: %@ (%.1f%%), %@ at %@ -> %@", path, names[heat.classIndex], 100 * p, method.rawValue, heat.location, file))
            }
        }
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What the network learned: its first-layer filters, or an image's feature maps layer by layer (PNG).",
        subcommands: [ShowFilters.self, ShowActivations.self])
}

struct ShowFilters: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "filters", abstract: "The first convolution's filters as an image grid.",
        discussion: "Example:\n  sprout show filters runs/cifar -o filters.png")

    @Argument(help: "Run directory.") var runDirectory: String
    @Option(name: .shortAndLong, help: "Output PNG.") var output: String
    @Option(help: "Pixels per filter tap.") var scale = 8
    @Option(help: "A checkpoint: latest (default), best, a step or a manifest.") var checkpoint: String?

    func run() throws {
        let classifier = try loadClassifier(run: runDirectory, checkpoint: checkpoint, noEma: false)
        guard let (name, weight) = classifier.model.namedParameters.first(where: { $0.1.value.rank == 4 }).map({ ($0.0, $0.1.value) }) else {
            throw ValidationError("\(runDirectory): the model has no convolution")
        }
        let grid = NetworkPictures.filterGrid(weight, scale: max(1, scale))
        try ImageWriter.writePNG(planar: grid.bytes, channels: 3, height: grid.height, width: grid.width, to: output)
        print("\(name): \(weight.shape[0]) filters of \(weight.shape[1])×\(weight.shape[2])×\(weight.shape[3]) -> \(output)")
    }
}

struct ShowActivations: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activations", abstract: "An image's feature maps, one PNG per layer.",
        discussion: "Example:\n  sprout show activations runs/cifar cat.png -o maps/")

    @Argument(help: "Run directory.") var runDirectory: String
    @Argument(help: "A PNG/JPEG image.") var image: String
    @Option(name: .shortAndLong, help: "Output directory.") var output: String
    @Option(help: "At most this many channels per layer.") var channels = 64
    @Option(help: "A checkpoint: latest (default), best, a step or a manifest.") var checkpoint: String?
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try threadOptions.apply()
        let classifier = try loadClassifier(run: runDirectory, checkpoint: checkpoint, noEma: false)
        let (input, _, _) = try classifierInput(classifier, path: image)
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let maps = withoutGradient { featureMaps(of: classifier.model, input: input) }
        for (i, m) in maps.enumerated() {
            let grid = NetworkPictures.activationGrid(m.map, limit: max(1, channels))
            let safe = m.name.map { $0.isLetter || $0.isNumber || $0 == "." ? $0 : "_" }
            let file = (output as NSString).appendingPathComponent(String(format: "%02d-", i) + String(safe) + ".png")
            try ImageWriter.writePNG(planar: grid.bytes, channels: 3, height: grid.height, width: grid.width, to: file)
            print("\(m.name): \(m.map.shape.dropFirst().map(String.init).joined(separator: "×")) -> \(file)")
        }
    }
}
