import Foundation
import SproutData
import SproutTensor
import SproutTrain

/// One version of a served model: a loaded checkpoint, ready to classify.
public final class ServedVersion: @unchecked Sendable {
    public let classifier: ImageClassifier
    public let step: Int
    public let manifestPath: String
    public var manifest: CheckpointManifest { classifier.manifest }

    init(run: RunDirectory, manifestPath: String, useEMA: Bool) throws {
        let (loaded, _) = try run.load(.manifest(manifestPath), useEMA: useEMA)
        classifier = ImageClassifier(checkpoint: loaded)
        step = loaded.manifest.step
        self.manifestPath = manifestPath
    }
}

/// A model served from a run directory. `current` is swapped atomically when a newer
/// checkpoint loads; a request keeps the version it started with to the end.
public final class ModelSlot: @unchecked Sendable {
    public let name: String
    public let runDirectory: String
    let useEMA: Bool
    private let lock = NSLock()
    private var version: ServedVersion
    /// The last reload failure (path and reason), for logs and /v1/models/{name}.
    public private(set) var lastReloadError: String?

    public init(runDirectory: String, name: String? = nil, useEMA: Bool = true) throws {
        let run = RunDirectory(runDirectory)
        guard let latest = run.checkpoints.latest() else { throw ServeError.noCheckpoint(run.checkpoints.path) }
        self.runDirectory = runDirectory
        self.name = name ?? run.name
        self.useEMA = useEMA
        version = try ServedVersion(run: run, manifestPath: latest, useEMA: useEMA)
    }

    public var current: ServedVersion {
        lock.lock()
        defer { lock.unlock() }
        return version
    }

    /// Loads the run's newest checkpoint when it is newer than the one served. Returns the new
    /// step, nil when there is nothing newer; throws (keeping the old version) when it fails.
    @discardableResult
    public func reloadIfNewer() throws -> Int? {
        let run = RunDirectory(runDirectory)
        guard let latest = run.checkpoints.latest(), let manifest = try? CheckpointDirectory.readManifest(latest),
              manifest.step > current.step else { return nil }
        do {
            let next = try ServedVersion(run: run, manifestPath: latest, useEMA: useEMA)
            lock.lock()
            version = next
            lastReloadError = nil
            lock.unlock()
            return next.step
        } catch {
            lock.lock()
            lastReloadError = "\(latest): \(error)"
            lock.unlock()
            throw error
        }
    }
}

public enum ServeError: Error, CustomStringConvertible, Equatable {
    case noCheckpoint(String)
    case duplicateName(String)
    public var description: String {
        switch self {
        case .noCheckpoint(let p): return "\(p): no checkpoint to serve"
        case .duplicateName(let n): return "two runs would both be served as '\(n)'; give them different directory names"
        }
    }
}
