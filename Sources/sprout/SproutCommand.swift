import ArgumentParser
import Sprout

struct SproutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sprout",
        abstract: "Sprout: deep learning in Swift, CPU first — train, evaluate, benchmark.",
        version: SproutVersion.string,
        subcommands: [Train.self, Models.self, Info.self, Bench.self])
}

/// `--threads`, shared by every command that computes.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for Sprout, BLAS and oneDNN (default: SPROUT_NUM_THREADS, else the available cores).")
    var threads: Int?

    func apply() throws {
        if let threads {
            guard threads > 0 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
            Threading.configure(threads: threads)
        }
    }
}

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the model zoo, or print one model's summary.")

    @Argument(help: "A model to summarise.") var name: String?
    @Option(help: "Input shape C,H,W for the summary (default: the model's own).") var input: String?
    @Option(help: "Classes for the summary.") var classes = 10
    @Option(help: "Width multiplier.") var width: Float = 1

    func run() throws {
        guard let name else {
            for e in Zoo.entries { print(pad(e.name, 18) + "\(e.defaultInput)  " + e.summary) }
            return
        }
        guard let entry = Zoo.entries.first(where: { $0.name == name }) else {
            throw ValidationError("\(ModelError.unknownModel(name, known: Zoo.names))")
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
