import Foundation
import SproutNN
import SproutTensor

/// Published weights put into a zoo model by name. The zoo's models carry the reference
/// implementations' names (torchvision's ResNet and MobileNetV2, lukemelas' EfficientNet),
/// so a state dict maps one to one; bookkeeping buffers PyTorch keeps and Sprout does not
/// (`num_batches_tracked`) are ignored. Anything else that does not match is an error naming
/// the tensor: a missing one, an extra one, a wrong shape.
public enum PretrainedWeights {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case missing(file: String, names: [String])
        case unexpected(file: String, names: [String])
        case shape(file: String, name: String, expected: [Int], found: [Int])

        public var description: String {
            func list(_ n: [String]) -> String { n.prefix(5).joined(separator: ", ") + (n.count > 5 ? " and \(n.count - 5) more" : "") }
            switch self {
            case let .missing(f, n): return "\(f): the model's \(list(n)) \(n.count == 1 ? "is" : "are") not in the file"
            case let .unexpected(f, n): return "\(f): \(list(n)) \(n.count == 1 ? "is" : "are") not in the model (a different architecture or width?)"
            case let .shape(f, n, e, found): return "\(f): \(n) has shape \(found), the model expects \(e)"
            }
        }
    }

    /// Names PyTorch saves that carry no weights Sprout uses.
    static func ignored(_ name: String) -> Bool { name.hasSuffix("num_batches_tracked") }

    /// The weights of the file at `path` (safetensors, or a PyTorch `.pth`/`.pt` in either format).
    public static func read(_ path: String) throws -> [(name: String, tensor: Tensor)] {
        if path.hasSuffix(".safetensors") {
            let file = try SafeTensors.read(path)
            return file.order.map { ($0, file.tensors[$0]!) }
        }
        return try TorchWeights.load(path)
    }

    /// Sets `model`'s parameters and buffers from `tensors`. Names in `skipping` (e.g. the
    /// classifier of a model fine-tuned for other classes) are left as they are, on both sides.
    public static func apply(_ tensors: [(name: String, tensor: Tensor)], to model: any Layer, file: String,
                             skipping: (String) -> Bool = { _ in false }) throws {
        var byName: [String: Tensor] = [:]
        for (n, t) in tensors where !ignored(n) && !skipping(n) { byName[n] = t }
        let wanted = model.namedParameters.filter { !skipping($0.name) }
        let missing = wanted.map(\.name).filter { byName[$0] == nil }
        if !missing.isEmpty { throw Failure.missing(file: file, names: missing) }
        let known = Set(wanted.map(\.name))
        let extra = tensors.map(\.name).filter { !ignored($0) && !skipping($0) && !known.contains($0) }
        if !extra.isEmpty { throw Failure.unexpected(file: file, names: extra) }
        for (name, parameter) in wanted {
            let t = byName[name]!
            guard t.shape == parameter.shape else { throw Failure.shape(file: file, name: name, expected: parameter.shape, found: t.shape) }
        }
        for (name, parameter) in wanted { parameter.value = byName[name]! }
    }
}
