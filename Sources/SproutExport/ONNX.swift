import Foundation
import SproutNN
import SproutTensor

/// Writes a Sprout model as an ONNX graph (opset 13): convolutions, pooling, batch norm
/// (optionally folded into the preceding convolution), LRN, activations, linear layers,
/// residual adds, the airbench whitening and head scaling, LSTM/GRU and the CRNN. The graph
/// takes the preprocessed image batch `input` [N, C, H, W] and gives `logits` and
/// `probabilities` [N, classes] ([N, T, classes] for a line reader); preprocessing and class
/// names travel as metadata.
public enum ONNXExport {
    public static let opset = 13
    /// IR version 7 is the one that goes with opset 13.
    static let irVersion = 7

    public struct Options: Sendable {
        /// Fold each batch norm that directly follows a convolution into that convolution.
        public var foldBatchNorm = false
        /// Model metadata (`metadata_props`), e.g. class names and preprocessing as JSON.
        public var metadata: [String: String] = [:]
        public var graphName = "sprout"
        public init(foldBatchNorm: Bool = false, metadata: [String: String] = [:]) {
            self.foldBatchNorm = foldBatchNorm
            self.metadata = metadata
        }
    }

    /// The serialized ModelProto of `model` (put in evaluation mode) for inputs of
    /// `inputShape` [C, H, W].
    public static func export(_ model: any Layer, inputShape: [Int], options: Options = Options()) throws -> [UInt8] {
        model.eval()
        var graph = GraphBuilder(foldBatchNorm: options.foldBatchNorm)
        let sample = Tensor.zeros([1] + inputShape)
        let out = try withoutGradient { try graph.emit(model, Value(name: "input", sample: sample)) }
        // Classifiers give [N, classes]; line readers [N, T, classes] (a softmax per column).
        precondition(out.sample.rank == 2 || out.sample.rank == 3,
                     "export: the model's output is \(out.sample.shape), expected [N, classes] or [N, T, classes]")
        let logits = graph.node("Identity", [out.name], output: "logits")
        let probabilities = graph.node("Softmax", [logits], [("axis", .int(out.sample.rank - 1))], output: "probabilities")
        let outputDims: [Dim] = [Dim.symbol("N")] + out.sample.shape.dropFirst().map { Dim.value($0) }

        var w = ProtoWriter()
        w.int(1, irVersion)                                  // ir_version
        w.string(2, "sprout")                                // producer_name
        w.string(3, SproutExportVersion.string)              // producer_version
        w.message(7) { g in                                  // graph
            for n in graph.nodes { g.message(1) { n.write(&$0) } }
            g.string(2, options.graphName)
            for t in graph.initializers { g.message(5) { t.write(&$0) } }
            g.message(11) { valueInfo(&$0, "input", dims: ["N"] + inputShape.map { .value($0) }) }
            g.message(12) { valueInfo(&$0, logits, dims: outputDims) }
            g.message(12) { valueInfo(&$0, probabilities, dims: outputDims) }
        }
        w.message(8) { o in o.string(1, ""); o.int(2, opset) }  // opset_import (default domain)
        for (k, v) in options.metadata.sorted(by: { $0.key < $1.key }) {
            w.message(14) { e in e.string(1, k); e.string(2, v) }
        }
        return w.bytes
    }

    enum Dim: ExpressibleByStringLiteral {
        case value(Int), symbol(String)
        init(stringLiteral s: String) { self = .symbol(s) }
    }

    // ValueInfoProto { name = 1; type = 2 { tensor_type = 1 { elem_type = 1; shape = 2 { dim = 1 } } } }
    static func valueInfo(_ w: inout ProtoWriter, _ name: String, dims: [Dim]) {
        w.string(1, name)
        w.message(2) { t in
            t.message(1) { tt in
                tt.int(1, 1)  // FLOAT
                tt.message(2) { shape in
                    for d in dims {
                        shape.message(1) { dim in
                            switch d {
                            case .value(let v): dim.int(1, v)
                            case .symbol(let s): dim.string(2, s)
                            }
                        }
                    }
                }
            }
        }
    }
}

public enum SproutExportVersion {
    public static let string = "0.1.0"
}

/// A layer that an exporter cannot write.
public struct UnsupportedLayerError: Error, CustomStringConvertible {
    public let layer: String
    public let path: String
    /// "ONNX" or "TFLite".
    public let format: String

    public init(layer: String, path: String, format: String = "ONNX") {
        (self.layer, self.path, self.format) = (layer, path, format)
    }

    public var description: String {
        let supported = format == "ONNX"
            ? "Conv2D, Linear, MaxPool2D, AvgPool2D, GlobalAvgPool, GlobalMaxPool, Flatten, BatchNorm2D, LocalResponseNorm, ReLU, "
                + "LeakyReLU, PReLU, ELU, GELU, Sigmoid, Tanh, Softmax, Scale, Dropout, Identity, Sequential, Residual, "
                + "BasicBlock, Airbench, the 224-px zoo, LSTM, GRU, CRNN"
            : "Conv2D (ungrouped or depthwise), Linear, MaxPool2D, AvgPool2D, GlobalAvgPool, GlobalMaxPool, Flatten, BatchNorm2D, "
                + "LocalResponseNorm, ReLU, ReLU6, LeakyReLU, ELU, GELU, Sigmoid, Tanh, Scale, Dropout, Identity, Sequential, "
                + "Residual, BasicBlock, Airbench, the 224-px zoo"
        return "export: layer \(path.isEmpty ? "" : "'\(path)' ")\(layer) has no \(format) mapping (supported: \(supported))"
    }
}

/// A value in the graph and a batch-1 sample of it (for shapes and SAME padding).
struct Value {
    let name: String
    let sample: Tensor
}

enum AttributeValue {
    case int(Int), float(Float), ints([Int]), string(String)
}

struct Node {
    let op: String, inputs: [String], output: String, name: String
    let attributes: [(String, AttributeValue)]

    // NodeProto { input = 1; output = 2; name = 3; op_type = 4; attribute = 5 }
    // AttributeProto { name = 1; f = 2; i = 3; s = 4; ints = 8; type = 20 }
    func write(_ w: inout ProtoWriter) {
        for i in inputs { w.string(1, i) }
        w.string(2, output)
        w.string(3, name)
        w.string(4, op)
        for (key, value) in attributes {
            w.message(5) { a in
                a.string(1, key)
                switch value {
                case .float(let f): a.float(2, f); a.int(20, 1)
                case .int(let i): a.int(3, i); a.int(20, 2)
                case .string(let s): a.string(4, s); a.int(20, 3)
                case .ints(let v): a.ints(8, v); a.int(20, 7)
                }
            }
        }
    }
}

struct Initializer {
    let name: String, tensor: Tensor
    /// Written as INT64 (shapes for Reshape) instead of FLOAT.
    var integers: [Int64]?

    init(name: String, tensor: Tensor) { (self.name, self.tensor) = (name, tensor) }
    init(name: String, integers: [Int64]) { (self.name, self.tensor, self.integers) = (name, Tensor.zeros([integers.count]), integers) }

    // TensorProto { dims = 1; data_type = 2; name = 8; raw_data = 9 } (little-endian)
    func write(_ w: inout ProtoWriter) {
        w.ints(1, tensor.shape)
        w.int(2, integers == nil ? 1 : 7)  // FLOAT or INT64
        w.string(8, name)
        var raw = [UInt8]()
        if let integers {
            for v in integers { withUnsafeBytes(of: v.littleEndian) { raw.append(contentsOf: $0) } }
        } else {
            raw.reserveCapacity(tensor.count * 4)
            for v in tensor.scalars { withUnsafeBytes(of: v.bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
        }
        w.bytes(9, raw)
    }
}

struct GraphBuilder {
    let foldBatchNorm: Bool
    var nodes: [Node] = []
    var initializers: [Initializer] = []
    var counter = 0

    init(foldBatchNorm: Bool) { self.foldBatchNorm = foldBatchNorm }

    mutating func fresh(_ hint: String) -> String {
        counter += 1
        return "\(hint)_\(counter)"
    }

    mutating func constant(_ hint: String, _ t: Tensor) -> String {
        let name = fresh(hint)
        initializers.append(Initializer(name: name, tensor: t))
        return name
    }

    /// An INT64 constant (a Reshape's target shape: 0 keeps that axis, -1 takes the rest).
    mutating func shape(_ dims: [Int64]) -> String {
        let name = fresh("shape")
        initializers.append(Initializer(name: name, integers: dims))
        return name
    }

    @discardableResult
    mutating func node(_ op: String, _ inputs: [String], _ attributes: [(String, AttributeValue)] = [],
                       output: String? = nil) -> String {
        let out = output ?? fresh(op)
        nodes.append(Node(op: op, inputs: inputs, output: out, name: "\(op)_\(nodes.count)", attributes: attributes))
        return out
    }

    /// Emits `layer` applied to `x`; returns its output.
    mutating func emit(_ layer: any Layer, _ x: Value, path: String = "") throws -> Value {
        let y = { (name: String) in Value(name: name, sample: layer.forward(x.sample)) }
        switch layer {
        case let d as InferenceDecomposable:
            switch d.inferenceStructure {
            case let .chain(steps):
                return try chain(steps.map { ($0.name, $0.layer) }, x, path)
            case let .residual(main, shortcut, relu):
                let body = try chain(main.map { ($0.name, $0.layer) }, x, path)
                let other = try shortcut.map { try emit($0.layer, x, path: "\(path).\($0.name)") } ?? x
                let sum = add(body, other)
                return relu ? reluNode(sum) : sum
            }
        case is ReLU6:
            return y(node("Clip", [x.name, constant("zero", Tensor(0)), constant("six", Tensor(6))]))
        case let c as Conv2D:
            return conv2d(c, x, folding: nil)
        case let c as CRNN:
            let f = try emit(c.features, x, path: "features")
            // [N, C, H, W] → columns [W, N, C·H]
            let columns = node("Reshape", [node("Transpose", [f.name], [("perm", .ints([3, 0, 1, 2]))]),
                                           shape([0, 0, -1])])
            let sequence = try emit(c.rnn, Value(name: columns, sample: CRNN.columns(f.sample)), path: "rnn")
            let scores = try emit(c.classifier, sequence, path: "classifier")
            return y(node("Transpose", [scores.name], [("perm", .ints([1, 0, 2]))]))
        case let r as LSTM:
            return y(try recurrent(r, x, gates: [0, 3, 1, 2], op: "LSTM"))
        case let r as GRU:
            return y(try recurrent(r, x, gates: [1, 0, 2], op: "GRU"))
        case let l as Linear where x.sample.rank > 2:
            // Gemm is 2-D only: x·Wᵀ + b over the last axis.
            var out = node("MatMul", [x.name, constant("weight_t", l.weight.value.transposed())])
            if let b = l.bias { out = node("Add", [out, constant("bias", b.value)]) }
            return y(out)
        case let l as Linear:
            var inputs = [x.name, constant("weight", l.weight.value)]
            if let b = l.bias { inputs.append(constant("bias", b.value)) }
            return y(node("Gemm", inputs, [("transB", .int(1))]))
        case let p as MaxPool2D:
            return y(node("MaxPool", [x.name], poolAttributes(p, x)))
        case let p as AvgPool2D:
            return y(node("AveragePool", [x.name], poolAttributes(p, x) + [("count_include_pad", .int(0))]))
        case is GlobalAvgPool:
            return y(node("Flatten", [node("GlobalAveragePool", [x.name])], [("axis", .int(1))]))
        case is GlobalMaxPool:
            return y(node("Flatten", [node("GlobalMaxPool", [x.name])], [("axis", .int(1))]))
        case is Flatten:
            return y(node("Flatten", [x.name], [("axis", .int(1))]))
        case let n as BatchNorm2D:
            let c = n.features
            let scale = n.weight?.value ?? Tensor.ones([c]), shift = n.bias?.value ?? Tensor.zeros([c])
            let inputs = [x.name, constant("bn_scale", scale), constant("bn_bias", shift),
                          constant("bn_mean", n.runningMean.value), constant("bn_var", n.runningVariance.value)]
            return y(node("BatchNormalization", inputs, [("epsilon", .float(n.epsilon))]))
        case let n as LocalResponseNorm:
            // TensorFlow sums x² over c−r…c+r and scales by alpha; ONNX sums over `size`
            // channels and scales by alpha/size. Same window and scale with size = 2r+1 and
            // alpha_onnx = alpha·size.
            let size = 2 * n.depthRadius + 1
            return y(node("LRN", [x.name], [("size", .int(size)), ("alpha", .float(n.alpha * Float(size))),
                                             ("beta", .float(n.beta)), ("bias", .float(n.bias))]))
        case is ReLU:
            return y(node("Relu", [x.name]))
        case let l as LeakyReLU:
            return y(node("LeakyRelu", [x.name], [("alpha", .float(l.negativeSlope))]))
        case let p as PReLU:
            // The slope broadcasts from the channel axis: [C] → [C, 1, 1] for images.
            var slope = p.slope.value
            if slope.count > 1 && x.sample.rank > 2 {
                slope = slope.reshaped(to: [slope.count] + [Int](repeating: 1, count: x.sample.rank - 2))
            }
            return y(node("PRelu", [x.name, constant("prelu_slope", slope)]))
        case let e as ELU:
            return y(node("Elu", [x.name], [("alpha", .float(e.alpha))]))
        case let g as GELU:
            return y(gelu(x.name, approximate: g.approximate))
        case is Sigmoid:
            return y(node("Sigmoid", [x.name]))
        case is Tanh:
            return y(node("Tanh", [x.name]))
        case is Softmax:
            return y(node("Softmax", [x.name], [("axis", .int(1))]))
        case let s as Scale:
            return y(node("Mul", [x.name, constant("scale", Tensor(s.factor))]))
        case is Dropout, is Identity:
            return x
        default:
            throw UnsupportedLayerError(layer: layer.summaryName, path: path)
        }
    }

    /// Layers applied one after another, a convolution and the batch norm after it folded
    /// into one Conv when folding is on.
    mutating func chain(_ steps: [(String, any Layer)], _ x: Value, _ path: String = "") throws -> Value {
        var v = x, i = 0
        while i < steps.count {
            let childPath = path.isEmpty ? steps[i].0 : "\(path).\(steps[i].0)"
            if foldBatchNorm, let conv = steps[i].1 as? Conv2D, i + 1 < steps.count, let norm = steps[i + 1].1 as? BatchNorm2D {
                v = conv2d(conv, v, folding: norm)
                i += 2
            } else {
                v = try emit(steps[i].1, v, path: childPath)
                i += 1
            }
        }
        return v
    }

    /// ONNX's LSTM / GRU, one node per layer: weights [directions, G·H, in] with the gate
    /// blocks in ONNX's order (`gates[k]`: which of PyTorch's blocks comes k-th — LSTM iofc
    /// from ifgo, GRU zrh from rzn), biases [directions, 2·G·H] (input then recurrent). Y
    /// [T, directions, N, H] is laid out as PyTorch's [T, N, directions·H]. GRU applies the
    /// reset gate after the recurrent product, as PyTorch does (linear_before_reset).
    mutating func recurrent(_ r: RecurrentBase, _ x: Value, gates order: [Int], op: String) throws -> String {
        guard !r.batchFirst else { throw UnsupportedLayerError(layer: "\(op) (batch-first)", path: "") }
        let (h, dirs) = (r.hiddenSize, r.bidirectional ? 2 : 1)
        func reordered(_ t: Tensor) -> Tensor { Tensor.concatenate(order.map { t.slice(($0 * h)..<(($0 + 1) * h), alongAxis: 0) }, alongAxis: 0) }
        var input = x.name
        for layer in 0..<r.layerCount {
            var w: [Tensor] = [], rec: [Tensor] = [], b: [Tensor] = []
            for direction in 0..<dirs {
                let k = (layer * dirs + direction) * 4
                w.append(reordered(r.weights[k].value))
                rec.append(reordered(r.weights[k + 1].value))
                b.append(Tensor.concatenate([reordered(r.weights[k + 2].value), reordered(r.weights[k + 3].value)], alongAxis: 0))
            }
            var attributes: [(String, AttributeValue)] = [("hidden_size", .int(h)), ("direction", .string(dirs == 2 ? "bidirectional" : "forward"))]
            if op == "GRU" { attributes.append(("linear_before_reset", .int(1))) }
            let y = node(op, [input, constant("W", Tensor.stacked(w)), constant("R", Tensor.stacked(rec)), constant("B", Tensor.stacked(b))],
                         attributes)
            input = node("Reshape", [node("Transpose", [y], [("perm", .ints([0, 2, 1, 3]))]), shape([0, 0, -1])])
        }
        return input
    }

    mutating func add(_ a: Value, _ b: Value) -> Value {
        Value(name: node("Add", [a.name, b.name]), sample: a.sample + b.sample)
    }

    mutating func reluNode(_ a: Value) -> Value {
        Value(name: node("Relu", [a.name]), sample: relu(a.sample))
    }

    mutating func poolAttributes(_ p: Pool2DBase, _ x: Value) -> [(String, AttributeValue)] {
        let (h, w) = (x.sample.shape[2], x.sample.shape[3])
        let (top, bottom, _) = p.padding.resolve(input: h, kernel: p.kernelSize.0, stride: p.stride.0, axis: 0)
        let (left, right, _) = p.padding.resolve(input: w, kernel: p.kernelSize.1, stride: p.stride.1, axis: 1)
        return [("kernel_shape", .ints([p.kernelSize.0, p.kernelSize.1])), ("strides", .ints([p.stride.0, p.stride.1])),
                ("pads", .ints([top, left, bottom, right]))]
    }

    /// Conv (with explicit pads resolved for this input size), optionally with a batch norm
    /// folded in (`Conv2D.folding`).
    mutating func conv2d(_ c: Conv2D, _ x: Value, folding norm: BatchNorm2D?) -> Value {
        let (h, w) = (x.sample.shape[2], x.sample.shape[3])
        let (w2, b2) = c.folding(norm)
        let (kh, kw) = (w2.shape[2], w2.shape[3])
        let (top, bottom, _) = c.padding.resolve(input: h, kernel: kh, stride: c.stride.0, axis: 0)
        let (left, right, _) = c.padding.resolve(input: w, kernel: kw, stride: c.stride.1, axis: 1)
        var sample = c.forward(x.sample)
        if let norm { sample = norm.forward(sample) }
        var inputs = [x.name, constant("conv_weight", w2)]
        if let b2 { inputs.append(constant("conv_bias", b2)) }
        let out = node("Conv", inputs, [("kernel_shape", .ints([kh, kw])), ("strides", .ints([c.stride.0, c.stride.1])),
                                        ("pads", .ints([top, left, bottom, right])), ("group", .int(c.groups)),
                                        ("dilations", .ints([1, 1]))])
        return Value(name: out, sample: sample)
    }

    /// GELU from opset-13 operators: exact x·½(1 + erf(x/√2)), or the tanh form.
    mutating func gelu(_ x: String, approximate: Bool) -> String {
        let half = constant("half", Tensor(0.5)), one = constant("one", Tensor(1))
        let inner: String
        if approximate {
            // tanh(√(2/π)·(x + 0.044715·x³))
            let cube = node("Mul", [node("Mul", [x, x]), x])
            let sum = node("Add", [x, node("Mul", [cube, constant("c", Tensor(0.044715))])])
            inner = node("Tanh", [node("Mul", [sum, constant("sqrt_2_over_pi", Tensor(0.7978845608))])])
        } else {
            inner = node("Erf", [node("Div", [x, constant("sqrt2", Tensor(Float(2).squareRoot()))])])
        }
        return node("Mul", [node("Mul", [x, half]), node("Add", [inner, one])])
    }
}
