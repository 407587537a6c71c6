import Foundation
import SproutNN
import SproutTensor

/// Writes a Sprout conv net as a TensorFlow Lite / LiteRT flatbuffer (float32, schema v3):
/// what Android and iOS apps load with the LiteRT interpreter. Activations are NHWC, as
/// TFLite's kernels want: the graph takes `input` [N, H, W, C] (the preprocessed image,
/// channels last) and gives `logits` and `probabilities` [N, classes]. Batch norms are folded
/// into the convolutions before them; ReLU/ReLU6 ride on the convolution, linear layer or add
/// before them as TFLite's fused activations; padding TFLite cannot express (PyTorch-style
/// symmetric padding with stride 2) becomes an explicit PAD. Class names and preprocessing
/// travel as model metadata (`sprout.classes`, `sprout.preprocessing`, …).
public enum TFLiteExport {
    public static let schemaVersion: UInt32 = 3

    public static func export(_ model: any Layer, inputShape: [Int], metadata: [String: String] = [:],
                              description: String = "sprout") throws -> [UInt8] {
        precondition(inputShape.count == 3, "TFLite export: input shape is [C, H, W], got \(inputShape)")
        model.eval()
        var b = TFLiteBuilder()
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        let input = b.value("input", [1, h, w, c])
        let out = try withoutGradient { try b.emit(model, input, path: "") }
        guard out.shape.count == 2 else {
            throw UnsupportedLayerError(layer: "a model whose output is \(out.shape) (TFLite export writes classifiers: [N, classes])", path: "", format: "TFLite")
        }
        let logits = b.activation("logits", out.shape)
        b.operators.append(.init(code: .reshape, inputs: [out.tensor, b.int32Constant("logits_shape", [2], [-1, Int32(out.shape[1])])],
                                 outputs: [logits], options: .reshape))
        let probabilities = b.activation("probabilities", out.shape)
        b.operators.append(.init(code: .softmax, inputs: [logits], outputs: [probabilities], options: .softmax(beta: 1)))
        return b.serialize(inputs: [input.tensor], outputs: [logits, probabilities], metadata: metadata, description: description)
    }
}

/// TFLite's builtin operator codes and options (schema.fbs) that the exporter uses.
enum TFLiteOp: Int32 {
    case add = 0, averagePool2D = 1, conv2D = 3, depthwiseConv2D = 4, fullyConnected = 9, localResponseNorm = 13,
         logistic = 14, maxPool2D = 17, mul = 18, relu = 19, relu6 = 21, reshape = 22, softmax = 25, tanh = 28,
         pad = 34, mean = 40, padV2 = 60, reduceMax = 82, leakyRelu = 98, elu = 111, gelu = 150
}

enum TFLiteActivation: UInt8 { case none = 0, relu = 1, relu6 = 3 }

enum TFLitePadding: UInt8 { case same = 0, valid = 1 }

enum TFLiteOptions {
    case none
    case conv(padding: TFLitePadding, stride: (Int, Int), activation: TFLiteActivation)
    case depthwise(padding: TFLitePadding, stride: (Int, Int), multiplier: Int, activation: TFLiteActivation)
    case pool(padding: TFLitePadding, stride: (Int, Int), filter: (Int, Int), activation: TFLiteActivation)
    case fullyConnected(activation: TFLiteActivation)
    case softmax(beta: Float)
    case add(activation: TFLiteActivation), mul(activation: TFLiteActivation)
    case lrn(radius: Int, bias: Float, alpha: Float, beta: Float)
    case reshape, pad, padV2
    case reducer(keepDims: Bool)
    case leakyRelu(alpha: Float)
    case gelu(approximate: Bool)

    // (BuiltinOptions union index, the options table's fields)
    var encoded: (UInt8, [(slot: Int, field: FlatBuffer.Field)])? {
        typealias F = FlatBuffer.Field
        switch self {
        case .none: return nil
        case let .conv(p, s, a):
            return (1, [(0, .u8(p.rawValue)), (1, .i32(Int32(s.1))), (2, .i32(Int32(s.0))), (3, .u8(a.rawValue))])
        case let .depthwise(p, s, m, a):
            return (2, [(0, .u8(p.rawValue)), (1, .i32(Int32(s.1))), (2, .i32(Int32(s.0))), (3, .i32(Int32(m))), (4, .u8(a.rawValue))])
        case let .pool(p, s, f, a):
            return (5, [(0, .u8(p.rawValue)), (1, .i32(Int32(s.1))), (2, .i32(Int32(s.0))), (3, .i32(Int32(f.1))),
                        (4, .i32(Int32(f.0))), (5, .u8(a.rawValue))])
        case let .fullyConnected(a): return (8, [(0, .u8(a.rawValue))])
        case let .softmax(beta): return (9, [(0, .f32(beta))])
        case let .add(a): return (11, [(0, .u8(a.rawValue))])
        case let .lrn(r, bias, alpha, beta): return (13, [(0, .i32(Int32(r))), (1, .f32(bias)), (2, .f32(alpha)), (3, .f32(beta))])
        case .reshape: return (17, [])
        case let .mul(a): return (21, [(0, .u8(a.rawValue))])
        case .pad: return (22, [])
        case let .reducer(keep): return (27, [(0, .bool(keep))])
        case .padV2: return (43, [])
        case let .leakyRelu(alpha): return (75, [(0, .f32(alpha))])
        case let .gelu(approximate): return (116, [(0, .bool(approximate))])
        }
    }
}

/// A value in the TFLite graph: its tensor, its shape ([N, H, W, C] or [N, F]) and, after a
/// Flatten of a feature map, the [C, H, W] it came from (a linear layer reads it in NHWC
/// order, so its weight columns are permuted from PyTorch's CHW order).
struct TFLiteValue {
    let tensor: Int32
    let shape: [Int]
    var flattenedFrom: [Int]? = nil
}

struct TFLiteBuilder {
    struct TensorEntry { let name: String; let shape: [Int]; let buffer: UInt32; let type: UInt8; let dynamicBatch: Bool }
    struct Operator { let code: TFLiteOp; let inputs: [Int32]; let outputs: [Int32]; let options: TFLiteOptions }

    var tensors: [TensorEntry] = []
    var buffers: [[UInt8]] = [[]]  // buffer 0: the empty buffer of every activation
    var operators: [Operator] = []
    var counter = 0

    mutating func fresh(_ hint: String) -> String {
        counter += 1
        return "\(hint)_\(counter)"
    }

    /// A tensor computed by the graph (no data), batch axis dynamic.
    mutating func activation(_ name: String, _ shape: [Int]) -> Int32 {
        tensors.append(TensorEntry(name: name, shape: shape, buffer: 0, type: 0, dynamicBatch: true))
        return Int32(tensors.count - 1)
    }

    mutating func value(_ name: String, _ shape: [Int]) -> TFLiteValue {
        TFLiteValue(tensor: activation(name, shape), shape: shape)
    }

    mutating func constant(_ hint: String, _ shape: [Int], _ values: [Float]) -> Int32 {
        precondition(values.count == shape.reduce(1, *), "TFLite constant \(hint): \(values.count) values for \(shape)")
        var data = [UInt8]()
        data.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        buffers.append(data)
        tensors.append(TensorEntry(name: fresh(hint), shape: shape, buffer: UInt32(buffers.count - 1), type: 0, dynamicBatch: false))
        return Int32(tensors.count - 1)
    }

    mutating func int32Constant(_ hint: String, _ shape: [Int], _ values: [Int32]) -> Int32 {
        var data = [UInt8]()
        for v in values { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        buffers.append(data)
        tensors.append(TensorEntry(name: fresh(hint), shape: shape, buffer: UInt32(buffers.count - 1), type: 2, dynamicBatch: false))
        return Int32(tensors.count - 1)
    }

    mutating func op(_ code: TFLiteOp, _ inputs: [Int32], shape: [Int], _ options: TFLiteOptions = .none, hint: String) -> TFLiteValue {
        let out = value(fresh(hint), shape)
        operators.append(Operator(code: code, inputs: inputs, outputs: [out.tensor], options: options))
        return out
    }

    // MARK: lowering

    mutating func emit(_ layer: any Layer, _ x: TFLiteValue, path: String) throws -> TFLiteValue {
        switch layer {
        case let d as InferenceDecomposable:
            switch d.inferenceStructure {
            case let .chain(steps):
                return try chain(steps.map { ($0.name, $0.layer) }, x, path)
            case let .residual(main, shortcut, relu):
                let body = try chain(main.map { ($0.name, $0.layer) }, x, path)
                let other = try shortcut.map { try emit($0.layer, x, path: "\(path).\($0.name)") } ?? x
                return add(body, other, relu ? .relu : .none)
            }
        case let c as Conv2D:
            return try convolution(c, x, folding: nil, activation: .none, path: path)
        case let l as Linear:
            return try linear(l, x, activation: .none, path: path)
        case let p as MaxPool2D:
            return try pool(p, x, max: true, path: path)
        case let p as AvgPool2D:
            return try pool(p, x, max: false, path: path)
        case is GlobalAvgPool, is GlobalMaxPool:
            guard x.shape.count == 4 else { throw UnsupportedLayerError(layer: "global pooling on \(x.shape)", path: path, format: "TFLite") }
            return op(layer is GlobalAvgPool ? .mean : .reduceMax, [x.tensor, int32Constant("axes", [2], [1, 2])], shape: [x.shape[0], x.shape[3]],
                      .reducer(keepDims: false), hint: layer is GlobalAvgPool ? "mean" : "reduce_max")
        case is Flatten:
            guard x.shape.count == 4 else { return x }
            // FULLY_CONNECTED flattens its input itself; remember the feature map's layout.
            var v = x
            v.flattenedFrom = [x.shape[3], x.shape[1], x.shape[2]]
            return v
        case let n as BatchNorm2D:
            // A batch norm not after a convolution: x·scale + shift over the channel (last) axis.
            let (scale, shift) = n.inferenceAffine
            let scaled = op(.mul, [x.tensor, constant("bn_scale", [n.features], scale.scalars)], shape: x.shape, .mul(activation: .none), hint: "bn_mul")
            return keep(x, op(.add, [scaled.tensor, constant("bn_shift", [n.features], shift.scalars)], shape: x.shape, .add(activation: .none), hint: "bn_add"))
        case let n as LocalResponseNorm:
            // TFLite's LRN is TensorFlow's: the same radius, bias, alpha and beta.
            return op(.localResponseNorm, [x.tensor], shape: x.shape, .lrn(radius: n.depthRadius, bias: n.bias, alpha: n.alpha, beta: n.beta), hint: "lrn")
        case is ReLU:
            return keep(x, op(.relu, [x.tensor], shape: x.shape, hint: "relu"))
        case is ReLU6:
            return keep(x, op(.relu6, [x.tensor], shape: x.shape, hint: "relu6"))
        case let l as LeakyReLU:
            return keep(x, op(.leakyRelu, [x.tensor], shape: x.shape, .leakyRelu(alpha: l.negativeSlope), hint: "leaky_relu"))
        case is ELU:
            guard (layer as! ELU).alpha == 1 else { throw UnsupportedLayerError(layer: "ELU with alpha ≠ 1 (TFLite's ELU has alpha 1)", path: path, format: "TFLite") }
            return keep(x, op(.elu, [x.tensor], shape: x.shape, hint: "elu"))
        case let g as GELU:
            return keep(x, op(.gelu, [x.tensor], shape: x.shape, .gelu(approximate: g.approximate), hint: "gelu"))
        case is Sigmoid:
            return keep(x, op(.logistic, [x.tensor], shape: x.shape, hint: "sigmoid"))
        case is Tanh:
            return keep(x, op(.tanh, [x.tensor], shape: x.shape, hint: "tanh"))
        case let s as Scale:
            return keep(x, op(.mul, [x.tensor, constant("scale", [], [s.factor])], shape: x.shape, .mul(activation: .none), hint: "scale"))
        case is Dropout, is Identity:
            return x
        default:
            throw UnsupportedLayerError(layer: layer.summaryName, path: path, format: "TFLite")
        }
    }

    /// An element-wise result keeps what the input knew about its layout.
    func keep(_ x: TFLiteValue, _ y: TFLiteValue) -> TFLiteValue {
        var y = y
        y.flattenedFrom = x.flattenedFrom
        return y
    }

    /// Layers in order: batch norms folded into the convolution before them, ReLU/ReLU6
    /// fused into the convolution or linear layer before them.
    mutating func chain(_ steps: [(String, any Layer)], _ x: TFLiteValue, _ path: String) throws -> TFLiteValue {
        var v = x, i = 0
        func at(_ k: Int) -> (any Layer)? { k < steps.count ? steps[k].1 : nil }
        func fused(_ k: Int) -> TFLiteActivation {
            if at(k) is ReLU { return .relu }
            if at(k) is ReLU6 { return .relu6 }
            return .none
        }
        while i < steps.count {
            let childPath = path.isEmpty ? steps[i].0 : "\(path).\(steps[i].0)"
            if let conv = at(i) as? Conv2D {
                let norm = at(i + 1) as? BatchNorm2D
                let next = i + (norm == nil ? 1 : 2)
                let act = fused(next)
                v = try convolution(conv, v, folding: norm, activation: act, path: childPath)
                i = next + (act == .none ? 0 : 1)
            } else if let l = at(i) as? Linear {
                let act = fused(i + 1)
                v = try linear(l, v, activation: act, path: childPath)
                i += act == .none ? 1 : 2
            } else {
                v = try emit(steps[i].1, v, path: childPath)
                i += 1
            }
        }
        return v
    }

    mutating func add(_ a: TFLiteValue, _ b: TFLiteValue, _ act: TFLiteActivation) -> TFLiteValue {
        op(.add, [a.tensor, b.tensor], shape: a.shape, .add(activation: act), hint: "add")
    }

    /// SAME, VALID, or the explicit padding TFLite needs a PAD op for.
    enum PadPlan { case same, valid, explicit(top: Int, left: Int, bottom: Int, right: Int) }

    static func padPlan(input: (Int, Int), kernel: (Int, Int), stride: (Int, Int), padding: Padding) -> (PadPlan, (Int, Int)) {
        let (t, b, oh) = padding.resolve(input: input.0, kernel: kernel.0, stride: stride.0, axis: 0)
        let (l, r, ow) = padding.resolve(input: input.1, kernel: kernel.1, stride: stride.1, axis: 1)
        func same(_ n: Int, _ k: Int, _ s: Int, _ before: Int, _ after: Int, _ out: Int) -> Bool {
            let o = (n + s - 1) / s
            let total = max((o - 1) * s + k - n, 0)
            return out == o && before == total / 2 && after == total - total / 2
        }
        if t == 0 && b == 0 && l == 0 && r == 0 { return (.valid, (oh, ow)) }
        if same(input.0, kernel.0, stride.0, t, b, oh) && same(input.1, kernel.1, stride.1, l, r, ow) { return (.same, (oh, ow)) }
        return (.explicit(top: t, left: l, bottom: b, right: r), (oh, ow))
    }

    /// x padded explicitly (zeros, or the lowest float for max pooling).
    mutating func padded(_ x: TFLiteValue, _ p: (top: Int, left: Int, bottom: Int, right: Int), lowest: Bool) -> TFLiteValue {
        let paddings = int32Constant("paddings", [4, 2], [0, 0, Int32(p.top), Int32(p.bottom), Int32(p.left), Int32(p.right), 0, 0])
        let shape = [x.shape[0], x.shape[1] + p.top + p.bottom, x.shape[2] + p.left + p.right, x.shape[3]]
        if lowest {
            return op(.padV2, [x.tensor, paddings, constant("lowest", [], [-Float.greatestFiniteMagnitude])], shape: shape, .padV2, hint: "pad")
        }
        return op(.pad, [x.tensor, paddings], shape: shape, .pad, hint: "pad")
    }

    //   x: [N, H, W, C] → [N, OH, OW, K]; weights OIHW → OHWI (depthwise: → [1, KH, KW, K])
    mutating func convolution(_ c: Conv2D, _ x: TFLiteValue, folding norm: BatchNorm2D?, activation: TFLiteActivation,
                              path: String) throws -> TFLiteValue {
        guard x.shape.count == 4 else { throw UnsupportedLayerError(layer: "Conv2D on \(x.shape)", path: path, format: "TFLite") }
        let (weight, folded) = c.folding(norm)
        let (k, cin, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let bias = folded ?? Tensor.zeros([k])
        let channels = x.shape[3]
        var input = x
        var (plan, out) = Self.padPlan(input: (x.shape[1], x.shape[2]), kernel: (kh, kw), stride: c.stride, padding: c.padding)
        if case let .explicit(t, l, b, r) = plan {
            input = padded(x, (t, l, b, r), lowest: false)
            plan = .valid
        }
        let padding: TFLitePadding = { if case .same = plan { return .same } else { return .valid } }()
        let shape = [x.shape[0], out.0, out.1, k]
        let biasTensor = constant("conv_bias", [k], bias.scalars)
        if c.groups == 1 {
            let w = constant("conv_weight", [k, kh, kw, cin], weight.permuted([0, 2, 3, 1]).scalars)
            return op(.conv2D, [input.tensor, w, biasTensor], shape: shape, .conv(padding: padding, stride: c.stride, activation: activation), hint: "conv")
        }
        guard c.groups == channels, cin == 1 else {
            throw UnsupportedLayerError(layer: "\(c.summaryName) (TFLite has depthwise and ungrouped convolutions only)", path: path, format: "TFLite")
        }
        // [K, 1, KH, KW] → [1, KH, KW, K]
        let w = constant("depthwise_weight", [1, kh, kw, k], weight.permuted([1, 2, 3, 0]).scalars)
        return op(.depthwiseConv2D, [input.tensor, w, biasTensor], shape: shape,
                  .depthwise(padding: padding, stride: c.stride, multiplier: k / channels, activation: activation), hint: "depthwise")
    }

    mutating func pool(_ p: Pool2DBase, _ x: TFLiteValue, max: Bool, path: String) throws -> TFLiteValue {
        guard x.shape.count == 4 else { throw UnsupportedLayerError(layer: "pooling on \(x.shape)", path: path, format: "TFLite") }
        var input = x
        var (plan, out) = Self.padPlan(input: (x.shape[1], x.shape[2]), kernel: p.kernelSize, stride: p.stride, padding: p.padding)
        if case let .explicit(t, l, b, r) = plan {
            // Average pooling would count the padded zeros: only max pooling pads explicitly.
            guard max else { throw UnsupportedLayerError(layer: "AvgPool2D with padding other than SAME or VALID (TFLite export)", path: path, format: "TFLite") }
            input = padded(x, (t, l, b, r), lowest: true)
            plan = .valid
        }
        let padding: TFLitePadding = { if case .same = plan { return .same } else { return .valid } }()
        return op(max ? .maxPool2D : .averagePool2D, [input.tensor], shape: [x.shape[0], out.0, out.1, x.shape[3]],
                  .pool(padding: padding, stride: p.stride, filter: p.kernelSize, activation: .none), hint: max ? "maxpool" : "avgpool")
    }

    //   x: [N, F] (or a flattened [N, H, W, C]) → [N, K]; weight [K, F], columns in the input's order
    mutating func linear(_ l: Linear, _ x: TFLiteValue, activation: TFLiteActivation, path: String) throws -> TFLiteValue {
        var weight = l.weight.value
        let k = weight.shape[0]
        if let chw = x.flattenedFrom, chw[1] * chw[2] > 1 {
            // PyTorch flattens C·H·W; TFLite's NHWC map flattens H·W·C.
            weight = weight.reshaped(to: [k, chw[0], chw[1], chw[2]]).permuted([0, 2, 3, 1]).reshaped(to: [k, chw.reduce(1, *)])
        } else if x.shape.count == 4 && x.flattenedFrom == nil {
            throw UnsupportedLayerError(layer: "Linear on a feature map without Flatten", path: path, format: "TFLite")
        }
        let w = constant("fc_weight", [k, weight.shape[1]], weight.scalars)
        let b = constant("fc_bias", [k], (l.bias?.value ?? Tensor.zeros([k])).scalars)
        return op(.fullyConnected, [x.tensor, w, b], shape: [x.shape[0], k], .fullyConnected(activation: activation), hint: "fc")
    }

    // MARK: serialization

    func serialize(inputs: [Int32], outputs: [Int32], metadata: [String: String], description: String) -> [UInt8] {
        typealias O = FlatBuffer.Object
        var codes: [TFLiteOp] = []
        for o in operators where !codes.contains(o.code) { codes.append(o.code) }
        let operatorCodes: [O] = codes.map { code in
            // Codes above 127 live in builtin_code; the deprecated byte says "look there" (127).
            .table([(0, .u8(UInt8(min(code.rawValue, 127)))), (2, .i32(1)), (3, .i32(code.rawValue))])
        }
        let tensorTables: [O] = tensors.map { t in
            var fields: [(slot: Int, field: FlatBuffer.Field)] = [
                (0, .object(.int32s(t.shape.map { Int32($0) }))), (1, .u8(t.type)), (2, .u32(t.buffer)), (3, .object(.string(t.name))),
            ]
            if t.dynamicBatch { fields.append((7, .object(.int32s([-1] + t.shape.dropFirst().map { Int32($0) })))) }
            return .table(fields)
        }
        let operatorTables: [O] = operators.map { o in
            var fields: [(slot: Int, field: FlatBuffer.Field)] = [
                (0, .u32(UInt32(codes.firstIndex(of: o.code)!))), (1, .object(.int32s(o.inputs))), (2, .object(.int32s(o.outputs))),
            ]
            if let (type, options) = o.options.encoded {
                fields.append((3, .u8(type)))
                fields.append((4, .object(.table(options))))
            }
            return .table(fields)
        }
        let subgraph: O = .table([(0, .object(.tables(tensorTables))), (1, .object(.int32s(inputs))), (2, .object(.int32s(outputs))),
                                  (3, .object(.tables(operatorTables))), (4, .object(.string("main")))])
        var allBuffers = buffers
        var metadataTables: [O] = []
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            allBuffers.append(Array(value.utf8))
            metadataTables.append(.table([(0, .object(.string(key))), (1, .u32(UInt32(allBuffers.count - 1)))]))
        }
        let bufferTables: [O] = allBuffers.map { data in data.isEmpty ? .table([]) : .table([(0, .object(.bytes(data, alignment: 16)))]) }
        var model: [(slot: Int, field: FlatBuffer.Field)] = [
            (0, .u32(TFLiteExport.schemaVersion)), (1, .object(.tables(operatorCodes))), (2, .object(.tables([subgraph]))),
            (3, .object(.string(description))), (4, .object(.tables(bufferTables))),
        ]
        if !metadataTables.isEmpty { model.append((6, .object(.tables(metadataTables)))) }
        return FlatBuffer.serialize(.table(model), identifier: "TFL3")
    }
}
