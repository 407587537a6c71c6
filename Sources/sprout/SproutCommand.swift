import ArgumentParser
import Sprout

struct SproutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sprout",
        abstract: "Sprout: deep learning in Swift, CPU first — train, evaluate, benchmark.",
        version: SproutVersion.string,
        subcommands: [Info.self, Bench.self])
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
