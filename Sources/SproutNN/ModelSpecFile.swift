import Foundation
import SproutTensor

/// Builds a network from a JSON description, so a user changes the net without
/// recompiling (`sprout train --model-spec net.json`):
///
///     {"layers": [
///       {"type": "conv2d", "out": 32, "kernel": 3, "padding": "same"}, {"type": "relu"},
///       {"type": "maxpool", "kernel": 2},
///       {"type": "residual", "layers": [{"type": "conv2d", "out": 32, "kernel": 3, "padding": "same"}, {"type": "relu"}]},
///       {"type": "flatten"}, {"type": "dropout", "p": 0.25},
///       {"type": "linear", "out": 128}, {"type": "relu"}, {"type": "linear"}
///     ]}
///
/// Input channels and features are inferred from the input shape; a final `linear` without
/// `out` has one output per class.
public enum ModelSpecFile {
    public enum SpecError: Error, CustomStringConvertible {
        case invalid(String)
        public var description: String { switch self { case .invalid(let m): return "model spec: \(m)" } }
    }

    public static let layerTypes = ["conv2d", "linear", "relu", "leaky_relu", "prelu", "gelu", "elu", "sigmoid", "tanh",
                                    "maxpool", "avgpool", "global_avgpool", "global_maxpool", "batchnorm", "lrn", "dropout",
                                    "flatten", "scale", "residual"]

    public static func build(json: String, inputShape: [Int], classes: Int) throws -> any Layer {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let layers = object["layers"] as? [[String: Any]] else {
            throw SpecError.invalid("expected a JSON object with a \"layers\" array")
        }
        var shape = inputShape
        return Sequential(try buildList(layers, shape: &shape, classes: classes, path: "layers"))
    }

    static func buildList(_ list: [[String: Any]], shape: inout [Int], classes: Int, path: String) throws -> [any Layer] {
        var out: [any Layer] = []
        for (i, spec) in list.enumerated() {
            let isLast = i == list.count - 1
            let layer = try buildOne(spec, shape: &shape, classes: classes, isLast: isLast, path: "\(path)[\(i)]")
            out.append(layer)
        }
        return out
    }

    static func buildOne(_ spec: [String: Any], shape: inout [Int], classes: Int, isLast: Bool, path: String) throws -> any Layer {
        guard let type = spec["type"] as? String else { throw SpecError.invalid("\(path): missing \"type\"") }
        // Sizes are whole numbers from `minimum` to 2^24: a spec is outside input, and a zero
        // stride, a negative count or 1e300 channels must be an error, not a trap or an
        // allocation of the whole machine.
        func int(_ key: String, _ fallback: Int? = nil, minimum: Int = 1) throws -> Int {
            guard let value = spec[key] else {
                if let fallback { return fallback }
                throw SpecError.invalid("\(path) (\(type)): missing integer \"\(key)\"")
            }
            guard let number = value as? NSNumber, !number.isBoolean, number.doubleValue == number.doubleValue.rounded(),
                  number.doubleValue >= Double(minimum), number.doubleValue <= Double(1 << 24) else {
                throw SpecError.invalid("\(path) (\(type)): \"\(key)\" must be a whole number from \(minimum) to \(1 << 24), got \(value)")
            }
            return Int(number.doubleValue)
        }
        // Each layer's weights and each activation stay below 2^28 numbers (1 GiB of floats).
        func checkSize(_ factors: [Int], _ what: String) throws {
            let count = factors.reduce(1.0) { $0 * Double($1) }  // in Double: 2^24-sized factors overflow Int
            guard count <= Double(1 << 28) else {
                throw SpecError.invalid("\(path) (\(type)): \(what) of \(factors.map(String.init).joined(separator: "×")) numbers is over the limit of \(1 << 28)")
            }
        }
        func float(_ key: String, _ fallback: Float) -> Float { (spec[key] as? NSNumber)?.floatValue ?? fallback }
        func padding() throws -> Padding {
            switch spec["padding"] {
            case nil: return .valid
            case let s as String where s == "same": return .same
            case let s as String where s == "valid": return .valid
            case let n as NSNumber where !n.isBoolean && n.doubleValue == n.doubleValue.rounded()
                                         && n.doubleValue >= 0 && n.doubleValue <= 65536:
                return .symmetric(n.intValue, n.intValue)
            default: throw SpecError.invalid("\(path): padding must be \"same\", \"valid\" or a whole number from 0 to 65536")
            }
        }
        func needImage() throws -> (Int, Int, Int) {
            guard shape.count == 3 else { throw SpecError.invalid("\(path) (\(type)): needs an image input [C, H, W], got \(shape)") }
            return (shape[0], shape[1], shape[2])
        }
        func probe(_ layer: any Layer) throws -> any Layer {
            // Run one zero sample through to learn the output shape (and check it fits).
            let y = withoutGradient { () -> Tensor in layer.setTraining(false); return layer(Tensor.zeros([1] + shape)) }
            layer.setTraining(true)
            shape = Array(y.shape.dropFirst())
            return layer
        }
        switch type {
        case "conv2d":
            let (c, h, w) = try needImage()
            let k = try int("kernel"), s = try int("stride", 1), pad = try padding()
            let (_, _, oh) = pad.resolve(input: h, kernel: k, stride: s, axis: 0)
            let (_, _, ow) = pad.resolve(input: w, kernel: k, stride: s, axis: 1)
            guard oh > 0, ow > 0 else { throw SpecError.invalid("\(path): kernel \(k) does not fit input \(h)×\(w)") }
            let groups = try int("groups", 1)
            let outC = try int("out")
            guard c % groups == 0, outC % groups == 0 else { throw SpecError.invalid("\(path): channels \(c)→\(outC) not divisible by groups \(groups)") }
            try checkSize([outC, c / groups, k, k], "a weight")
            try checkSize([outC, oh, ow], "an output")
            shape = [outC, oh, ow]
            return Conv2D(inChannels: c, outChannels: outC, kernelSize: k, stride: s, padding: pad, groups: groups,
                          bias: (spec["bias"] as? Bool) ?? true)
        case "linear":
            guard shape.count == 1 else { throw SpecError.invalid("\(path): linear needs a flat input, got \(shape); add {\"type\": \"flatten\"}") }
            let outF = try int("out", isLast ? classes : nil)
            try checkSize([shape[0], outF], "a weight")
            defer { shape = [outF] }
            return Linear(inFeatures: shape[0], outFeatures: outF, bias: (spec["bias"] as? Bool) ?? true)
        case "relu": return ReLU()
        case "leaky_relu": return LeakyReLU(negativeSlope: float("slope", 0.01))
        case "prelu": return PReLU(channels: shape.first ?? 1)
        case "gelu": return GELU(approximate: (spec["approximate"] as? Bool) ?? false)
        case "elu": return ELU(alpha: float("alpha", 1))
        case "sigmoid": return Sigmoid()
        case "tanh": return Tanh()
        case "maxpool", "avgpool":
            let (c, h, w) = try needImage()
            let k = try int("kernel"), s = try int("stride", k), pad = try padding()
            let (_, _, oh) = pad.resolve(input: h, kernel: k, stride: s, axis: 0)
            let (_, _, ow) = pad.resolve(input: w, kernel: k, stride: s, axis: 1)
            guard oh > 0, ow > 0 else { throw SpecError.invalid("\(path): kernel \(k) does not fit input \(h)×\(w)") }
            try checkSize([c, oh, ow], "an output")
            return try probe(type == "maxpool" ? MaxPool2D(kernelSize: k, stride: s, padding: pad) as any Layer
                                                : AvgPool2D(kernelSize: k, stride: s, padding: pad))
        case "global_avgpool", "global_maxpool":
            let (c, _, _) = try needImage()
            shape = [c]
            return type == "global_avgpool" ? GlobalAvgPool() as any Layer : GlobalMaxPool()
        case "batchnorm": return BatchNorm2D(features: shape[0], momentum: float("momentum", 0.1), epsilon: float("epsilon", 1e-5))
        case "lrn":
            _ = try needImage()
            return LocalResponseNorm(depthRadius: try int("radius", 5, minimum: 0), bias: float("bias", 1), alpha: float("alpha", 1), beta: float("beta", 0.5))
        case "dropout":
            let p = float("p", 0.5)
            guard p >= 0, p < 1 else { throw SpecError.invalid("\(path): dropout \"p\" must be in [0, 1), got \(p)") }
            return Dropout(probability: p)
        case "flatten":
            shape = [shape.reduce(1, *)]
            return Flatten()
        case "scale": return Scale(float("factor", 1))
        case "residual":
            guard let inner = spec["layers"] as? [[String: Any]] else { throw SpecError.invalid("\(path): residual needs \"layers\"") }
            let before = shape
            let body = try buildList(inner, shape: &shape, classes: classes, path: "\(path).layers")
            guard shape == before else { throw SpecError.invalid("\(path): residual body changes the shape \(before) → \(shape)") }
            return Residual { body }
        default:
            throw SpecError.invalid("\(path): unknown layer type \"\(type)\" (known: \(layerTypes.joined(separator: ", ")))")
        }
    }
}

extension NSNumber {
    /// Whether JSONSerialization made this number from `true` or `false`. `is Bool` cannot tell:
    /// on Linux every NSNumber holding 0 or 1 casts to Bool.
    public var isBoolean: Bool { String(cString: objCType) == "c" }
}
