import Foundation
import SproutData
import SproutNN
import SproutOptim
import SproutTensor

/// How to rebuild the model of a checkpoint.
public struct ModelSpec: Codable, Sendable, Equatable {
    public var name: String
    /// [C, H, W] the network takes.
    public var inputShape: [Int]
    public var classes: Int
    public var width: Float
    /// The JSON layer description of a `--model-spec` net (name is then the file's name).
    public var layers: String?
    /// The convolutions' kernel size where the zoo model has that setting (nil: its own).
    public var kernelSize: Int?

    public init(name: String, inputShape: [Int], classes: Int, width: Float = 1, layers: String? = nil, kernelSize: Int? = nil) {
        (self.name, self.inputShape, self.classes, self.width, self.layers) = (name, inputShape, classes, width, layers)
        self.kernelSize = kernelSize
    }

    public func build() throws -> any Layer {
        if let layers { return try ModelSpecFile.build(json: layers, inputShape: inputShape, classes: classes) }
        return try Zoo.build(name, inputShape: inputShape, classes: classes, width: width, kernelSize: kernelSize)
    }
}

/// How images were prepared for the model (so `predict`/`serve` do the same).
public struct PreprocessingSpec: Codable, Sendable, Equatable {
    /// The manifest's `normalization` value.
    public enum Normalization: String, Codable, Sendable {
        case unit
        case meanStd = "mean_std"
        case perImageStandardization = "per_image_standardization"
    }
    public var normalization: Normalization
    public var mean: [Float]?
    public var std: [Float]?
    /// Images are resized (shorter side) to this, then centre-cropped to the model's input.
    public var resize: Int
    public var channels: Int
    /// Photos (224-px models): the centre square of side shorter × input / resize is
    /// resampled once to the input, exactly as the training run evaluated (`PhotoDataset`);
    /// nil or false: resized to `resize`, then cropped.
    public var photo: Bool?
    /// Text-line recognisers: images are resized to `resize` × `lineWidth` (height × width)
    /// and the model's per-column logits [N, T, classes] are decoded by CTC, the blank being
    /// the class after `classNames`.
    public var lineWidth: Int?

    public init(normalization: Normalization, mean: [Float]? = nil, std: [Float]? = nil, resize: Int, channels: Int,
                photo: Bool? = nil, lineWidth: Int? = nil) {
        (self.normalization, self.mean, self.std, self.resize, self.channels) = (normalization, mean, std, resize, channels)
        (self.photo, self.lineWidth) = (photo, lineWidth)
    }

    /// Whether the model reads lines of text (CTC) instead of classifying whole images.
    public var isLineRecognizer: Bool { lineWidth != nil }
}

extension CheckpointManifest {
    /// What the checkpoint's model is evaluated for: reading lines (CTC, blank after the
    /// classes; `beamWidth` 1 decodes greedily) or classifying images.
    public func objective(beamWidth: Int = 1) -> any Objective {
        preprocessing.isLineRecognizer
            ? SequenceRecognition(blank: classNames.count, classNames: classNames, beamWidth: beamWidth)
            : Classification()
    }
}

extension PreprocessingSpec {
    /// The data loader's normalisation for this spec.
    public var loaderNormalization: SproutData.Normalization {
        switch normalization {
        case .perImageStandardization: return .perImageStandardization
        case .meanStd: return .meanStd(mean: mean ?? [], std: std ?? [])
        case .unit: return .unit
        }
    }
}

/// The manifest of one checkpoint; written last, so its presence means the checkpoint is whole.
public struct CheckpointManifest: Codable, Sendable {
    public var format = "sprout-checkpoint-1"
    public var step: Int
    public var epoch: Int
    /// Batches of `epoch` already done (resume continues from here).
    public var batchInEpoch: Int
    public var model: ModelSpec
    public var classNames: [String]
    public var preprocessing: PreprocessingSpec
    public var metrics: [String: Double]
    public var hasEMA: Bool
    public var weightsFile: String
    public var stateFile: String
    public var config: [String: String]
    public var createdAt: String
    /// Generator states of layers that draw random numbers (hex words), for exact resume.
    public var randomStates: [String: [String]]?

    public init(step: Int, epoch: Int, batchInEpoch: Int, model: ModelSpec, classNames: [String],
                preprocessing: PreprocessingSpec, metrics: [String: Double], hasEMA: Bool,
                weightsFile: String, stateFile: String, config: [String: String]) {
        (self.step, self.epoch, self.batchInEpoch, self.model) = (step, epoch, batchInEpoch, model)
        (self.classNames, self.preprocessing, self.metrics, self.hasEMA) = (classNames, preprocessing, metrics, hasEMA)
        (self.weightsFile, self.stateFile, self.config) = (weightsFile, stateFile, config)
        createdAt = utcTimestamp()
    }
}

/// Checkpoints of one run: `DIR/ckpt-<step>.safetensors` (model weights, names as in the
/// model summary), `DIR/ckpt-<step>.state.safetensors` (optimizer state, EMA weights) and
/// `DIR/ckpt-<step>.json` (manifest, written last).
public struct CheckpointDirectory: Sendable {
    public let path: String

    public init(_ path: String) { self.path = path }

    public func base(step: Int) -> String { (path as NSString).appendingPathComponent(String(format: "ckpt-%08d", step)) }

    @discardableResult
    public func save(model: any Layer, optimizer: (any Optimizer)?, ema: ExponentialMovingAverage?,
                     manifest: CheckpointManifest, keep: Int = 5) throws -> String {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let base = base(step: manifest.step)
        var m = manifest
        m.weightsFile = (base as NSString).lastPathComponent + ".safetensors"
        m.stateFile = (base as NSString).lastPathComponent + ".state.safetensors"
        m.hasEMA = ema != nil
        let states = model.randomStates
        if !states.isEmpty { m.randomStates = states.mapValues { $0.map { String($0, radix: 16) } } }
        let named = model.namedParameters
        try SafeTensors.write(named.map { ($0.name, $0.parameter.value) },
                              metadata: ["format": "sprout", "model": manifest.model.name], to: base + ".safetensors")
        var state: [(name: String, tensor: Tensor)] = []
        if let optimizer {
            let names = Dictionary(uniqueKeysWithValues: named.map { (ObjectIdentifier($0.parameter), $0.name) })
            state += optimizer.stateTensors(names: names).sorted { $0.key < $1.key }.map { ("optimizer.\($0.key)", $0.value) }
        }
        if let ema {
            state += ema.shadow.sorted { $0.key < $1.key }.map { ("ema.\($0.key)", $0.value) }
            state.append(("ema_updates", Tensor(Float(ema.updates))))
        }
        try SafeTensors.write(state, metadata: ["format": "sprout-state"], to: base + ".state.safetensors")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically([UInt8](try encoder.encode(m)), to: base + ".json")
        try prune(keep: keep)
        return base + ".json"
    }

    /// Manifests of complete checkpoints, oldest first.
    public func manifests() -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return files.filter { $0.hasPrefix("ckpt-") && $0.hasSuffix(".json") }.sorted()
            .map { (path as NSString).appendingPathComponent($0) }
    }

    public func latest() -> String? { manifests().last }

    /// The file naming the best checkpoint by the monitored metric (`--early-stop`), written
    /// atomically each time a better one is saved; pruning never removes the one it names.
    public var bestPointerPath: String { (path as NSString).appendingPathComponent("best") }

    /// The manifest the best pointer names, if there is one and it still exists.
    public func markedBest() -> String? {
        guard let data = FileManager.default.contents(atPath: bestPointerPath) else { return nil }
        let name = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let manifest = (path as NSString).appendingPathComponent(name)
        return FileManager.default.fileExists(atPath: manifest) ? manifest : nil
    }

    /// Marks `manifest` (a path in this directory) as the best checkpoint.
    public func markBest(_ manifest: String) throws {
        try writeAtomically(Array(((manifest as NSString).lastPathComponent + "\n").utf8), to: bestPointerPath)
    }

    func prune(keep: Int) throws {
        guard keep > 0 else { return }
        let best = markedBest()
        let all = manifests()
        for manifest in all.dropLast(keep) where manifest != best {
            let base = String(manifest.dropLast(5))
            // The manifest goes first: a reader never finds a manifest without its data.
            for f in [manifest, base + ".safetensors", base + ".state.safetensors"] { try? FileManager.default.removeItem(atPath: f) }
        }
        removeLeftovers(newest: all.last)
    }

    /// What a process killed mid-save leaves: temporary files, and the data files of a
    /// checkpoint whose manifest was never written (older than the newest complete one, so
    /// no save of this process is still writing them).
    func removeLeftovers(newest: String?) {
        removeStaleTemporaries(in: path)
        guard let newest else { return }
        let newestName = (newest as NSString).lastPathComponent
        let files = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for name in files where name.hasPrefix("ckpt-") && name.hasSuffix(".safetensors") {
            let stem = String(name.prefix { $0 != "." })  // ckpt-00000040
            guard stem + ".json" < newestName, !files.contains(stem + ".json") else { continue }
            try? FileManager.default.removeItem(atPath: (path as NSString).appendingPathComponent(name))
        }
    }

    public static func readManifest(_ path: String) throws -> CheckpointManifest {
        guard let data = FileManager.default.contents(atPath: path) else { throw CheckpointError.fileNotFound(path) }
        do { return try JSONDecoder().decode(CheckpointManifest.self, from: data) } catch {
            throw CheckpointError.badHeader(path, reason: "manifest is not valid: \(error)")
        }
    }
}

/// A checkpoint loaded from disk.
public struct LoadedCheckpoint {
    public let manifestPath: String
    public let manifest: CheckpointManifest
    public let model: any Layer
    /// Optimizer state and EMA shadow, by name.
    public let state: [String: Tensor]

    /// Rebuilds the model from the manifest (or uses `model`, which must have the same
    /// architecture) and loads its weights, checked tensor by tensor.
    public static func load(manifest path: String, into existing: (any Layer)? = nil) throws -> LoadedCheckpoint {
        let manifest = try CheckpointDirectory.readManifest(path)
        let dir = (path as NSString).deletingLastPathComponent
        let model = try existing ?? manifest.model.build()
        try loadWeights(into: model, from: (dir as NSString).appendingPathComponent(manifest.weightsFile))
        let statePath = (dir as NSString).appendingPathComponent(manifest.stateFile)
        let state = FileManager.default.fileExists(atPath: statePath) ? try SafeTensors.read(statePath).tensors : [:]
        return LoadedCheckpoint(manifestPath: path, manifest: manifest, model: model, state: state)
    }

    /// The EMA weights of the checkpoint, if it has them.
    public var emaWeights: [String: Tensor]? {
        guard manifest.hasEMA else { return nil }
        var out: [String: Tensor] = [:]
        for (k, v) in state where k.hasPrefix("ema.") { out[String(k.dropFirst(4))] = v }
        return out.isEmpty ? nil : out
    }

    /// Puts the EMA weights into the model (for evaluation and serving).
    public func useEMAWeights() {
        guard let ema = emaWeights else { return }
        for (name, p) in model.namedParameters { if let v = ema[name], v.shape == p.value.shape { p.value = v } }
    }
}

/// Loads a safetensors file into `model`: every parameter must be present with its shape,
/// and every tensor in the file must belong to the model.
public func loadWeights(into model: any Layer, from path: String) throws {
    let (tensors, order, _) = try SafeTensors.read(path)
    let named = model.namedParameters
    let expected = Set(named.map(\.name))
    for name in order where !expected.contains(name) { throw CheckpointError.unexpectedTensor(path, tensor: name) }
    for (name, p) in named {
        guard let t = tensors[name] else { throw CheckpointError.missingTensor(path, tensor: name) }
        guard t.shape == p.value.shape else { throw CheckpointError.shapeMismatch(path, tensor: name, expected: p.value.shape, found: t.shape) }
    }
    for (name, p) in named { p.value = tensors[name]! }
}
