import Foundation
import SproutData

/// A run directory as `sprout train` writes it, for every command that reads one (eval,
/// predict, export, serve, resume): `config.json`, `checkpoints/`, `eval/`, `metrics.jsonl`
/// and TensorBoard events.
public struct RunDirectory: Sendable, Equatable {
    public let path: String

    public init(_ path: String) { self.path = path }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    public var configurationPath: String { file("config.json") }
    public var checkpoints: CheckpointDirectory { CheckpointDirectory(file("checkpoints")) }
    public var evaluationDirectory: String { file("eval") }
    public var metricsPath: String { file("metrics.jsonl") }
    /// The directory's last path component (the name `sprout serve` gives its model).
    public var name: String { ((path as NSString).standardizingPath as NSString).lastPathComponent }

    /// The run's configuration; an error naming the file when this is not a run directory.
    public func configuration() throws -> RunConfiguration {
        guard let data = FileManager.default.contents(atPath: configurationPath) else {
            throw RunError.invalid("\(configurationPath): no such file; is \(path) a run directory of sprout train?")
        }
        do { return try JSONDecoder().decode(RunConfiguration.self, from: data) } catch {
            throw RunError.invalid("\(configurationPath): not a run configuration: \(error)")
        }
    }

    /// Creates the directory and writes `config.json` atomically.
    public func create(configuration: RunConfiguration) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        removeStaleTemporaries(in: path)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically([UInt8](try encoder.encode(configuration)), to: configurationPath)
    }

    /// Which checkpoint a command means.
    public enum CheckpointChoice: Sendable, Equatable {
        case latest
        /// The one with the highest validation accuracy in its manifest.
        case best
        case step(Int)
        case manifest(String)

        /// nil → latest; "latest", "best", a step number, or a manifest path.
        public init(_ text: String?) {
            switch text {
            case nil, "latest": self = .latest
            case "best": self = .best
            case let t? where Int(t) != nil: self = .step(Int(t)!)
            case let t?: self = .manifest(t)
            }
        }
    }

    /// The manifest path of a checkpoint of this run.
    public func manifestPath(_ choice: CheckpointChoice = .latest) throws -> String {
        let checkpoints = self.checkpoints
        switch choice {
        case .latest:
            guard let latest = checkpoints.latest() else { throw CheckpointError.noCheckpoint(checkpoints.path) }
            return latest
        case .best:
            // The checkpoint early stopping marked, else the highest validation accuracy.
            if let marked = checkpoints.markedBest() { return marked }
            let scored = checkpoints.manifests().compactMap { path -> (String, Double)? in
                guard let m = try? CheckpointDirectory.readManifest(path), let a = m.metrics["val/accuracy"] else { return nil }
                return (path, a)
            }
            // Ties go to the later checkpoint.
            guard let best = scored.max(by: { $0.1 <= $1.1 }) else {
                throw RunError.invalid("\(checkpoints.path): no checkpoint with a validation accuracy")
            }
            return best.0
        case .step(let step):
            let path = checkpoints.base(step: step) + ".json"
            guard FileManager.default.fileExists(atPath: path) else { throw CheckpointError.noCheckpoint(path) }
            return path
        case .manifest(let path):
            return path
        }
    }

    /// A checkpoint loaded with its model, the EMA weights swapped in when it has them and
    /// `useEMA` (what evaluation, prediction, export and serving want).
    public func load(_ choice: CheckpointChoice = .latest, useEMA: Bool = true) throws -> (checkpoint: LoadedCheckpoint, usesEMA: Bool) {
        let loaded = try LoadedCheckpoint.load(manifest: try manifestPath(choice))
        let usesEMA = useEMA && loaded.manifest.hasEMA
        if usesEMA { loaded.useEMAWeights() }
        return (loaded, usesEMA)
    }

    /// The split evaluation reads: the one asked for, else the official test split when it is
    /// on disk, else the run's validation hold-out.
    public func evaluationSplit(_ name: String?, configuration config: RunConfiguration, lineLength: String? = nil) throws -> (name: String, dataset: any Dataset) {
        if let name { return (name, try RunData.split(name, of: config, lineLength: lineLength)) }
        if config.dataset != .folder, let test = try? RunData.split("test", of: config, lineLength: lineLength) { return ("test", test) }
        return ("val", try RunData.split("val", of: config, lineLength: lineLength))
    }
}
