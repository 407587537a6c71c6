import ArgumentParser
import Foundation
import Sprout

@available(macOS 10.15, macCatalyst 13, iOS 13, tvOS 13, watchOS 6, *)
@main
struct SproutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sprout",
        abstract: "Sprout: deep learning in Swift, CPU first — train, evaluate, serve, export, benchmark.",
        version: SproutVersion.string,
        subcommands: [Train.self, Eval.self, Compare.self, Predict.self, Explain.self, Show.self, Serve.self, Export.self, Bench.self, DataCommand.self, Weights.self, Models.self, SummaryCommand.self, Info.self])

    /// ArgumentParser's entry, plus the memory cap: a command that went over --max-memory
    /// (checked at each training step and at its end) stops with one line and exit code 3.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            try TensorMemory.checkLimit()
        } catch let error as TensorMemoryError {
            FileHandle.standardError.write(Data("sprout: \(error)\n".utf8))
            exit(withError: ExitCode(3))
        } catch {
            exit(withError: error)
        }
    }
}

/// `--threads`, `--max-memory` and `--device`, shared by every command that computes.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for Sprout, BLAS and oneDNN (default: SPROUT_NUM_THREADS, else the available cores).")
    var threads: Int?
    @Option(help: "Cap on tensor memory, e.g. 2G or 512M (default: SPROUT_MAX_MEMORY, else none; nothing is reserved up front).")
    var maxMemory: String?
    @Option(help: "Compute device: cpu (this build has no GPU backend).", transform: { try Device(parsing: $0) })
    var device: Device = .cpu

    func apply() throws {
        // Progress lines reach pipes and CI logs as they are printed.
        SystemInfo.lineBufferStandardOutput()
        if let threads {
            guard threads > 0 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
            Threading.configure(threads: threads)
        }
        guard device == .cpu else {
            throw ValidationError("--device reference: the reference backend computes one element at a time, for tests and backend authors; use it from the library (Device.with(.reference) { … })")
        }
        if let text = maxMemory ?? RuntimeSettings.current.maxMemory {
            guard let bytes = TensorMemory.parseSize(text) else {
                throw ValidationError("--max-memory '\(text)' is not a size (examples: 512M, 2G, 1.5GiB)")
            }
            TensorMemory.setLimit(bytes: bytes)
        }
    }
}

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the model zoo with parameters and FLOPs, or print one model's summary.",
        discussion: """
        Examples:
          sprout models
          sprout models resnet9 --width 0.5
        """)

    @Argument(help: "A model to summarise.") var name: String?
    @Option(help: "Input shape C,H,W for the summary (default: the model's own).") var input: String?
    @Option(help: "Classes for the summary.") var classes = 10
    @Option(help: "Width multiplier.") var width: Float = 1

    func run() throws {
        guard let name else {
            print(pad("model", 18) + pad("input", 14) + lpad("parameters", 12) + lpad("FLOPs/image", 15) + "  description")
            for e in Zoo.entries {
                seedEverything(0)
                let s = (try? Zoo.build(e.name, inputShape: e.defaultInput, classes: 10)).map { summary($0, inputShape: e.defaultInput) }
                print(pad(e.name, 18) + pad("\(e.defaultInput)", 14) + lpad(grouped(s?.totalParameters ?? 0), 12)
                      + lpad(grouped(s?.totalFlops ?? 0), 15) + "  " + e.summary)
            }
            return
        }
        guard let entry = Zoo.entries.first(where: { $0.name == name }) else {
            throw CLIError("\(ModelError.unknownModel(name, known: Zoo.names))")
        }
        let shape = try input.map { text -> [Int] in
            let parts = text.split(separator: ",").compactMap { Int($0) }
            guard parts.count == 3 else { throw ValidationError("--input must be C,H,W") }
            return parts
        } ?? entry.defaultInput
        let model = try Zoo.build(name, inputShape: shape, classes: classes, width: width)
        print(summary(model, inputShape: shape))
    }
}

struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Per-layer output shapes, parameters and FLOPs of a zoo model or a JSON model spec.",
        discussion: """
        Examples:
          sprout summary resnet9 --width 0.5
          sprout summary net.json --input 1,28,28
        """)

    @Argument(help: "A zoo model, or a JSON model-spec file (docs/model-spec.md).") var model: String
    @Option(help: "Input shape C,H,W (default: the model's own).") var input: String?
    @Option(help: "Classes.") var classes = 10
    @Option(help: "Width multiplier.") var width: Float = 1

    func run() throws {
        if model.hasSuffix(".json") {
            guard let data = FileManager.default.contents(atPath: model) else { throw CLIError("\(model): no such file") }
            guard let input else { throw ValidationError("a model spec needs --input C,H,W") }
            let shape = try parseShape(input)
            let net = try ModelSpecFile.build(json: String(decoding: data, as: UTF8.self), inputShape: shape, classes: classes)
            print(summary(net, inputShape: shape))
            return
        }
        guard let entry = Zoo.entries.first(where: { $0.name == model }) else {
            throw CLIError("\(ModelError.unknownModel(model, known: Zoo.names))")
        }
        let shape = try input.map(parseShape) ?? entry.defaultInput
        print(summary(try Zoo.build(model, inputShape: shape, classes: classes, width: width), inputShape: shape))
    }
}

/// A failure at run time (not a bad flag): printed as one line on stderr, exit code 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
