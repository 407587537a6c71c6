import SproutTensor

/// A model lowered for fast inference: its layers as one oneDNN graph (`InferenceGraph`)
/// for one input shape, with each batch norm that follows a convolution folded into it, a
/// batch norm after a convolution and a max-pool folded too when its scales are positive
/// (max pooling commutes with an increasing affine map), and activations, residual adds and
/// scales fused into the convolution or linear layer before them.
///
/// The plan copies the weights when it is made: a model that trains on afterwards needs a
/// new plan. Models with layers the graph has no operation for (recurrent layers, PReLU,
/// softmax inside the net) cannot be planned: `make` throws `InferencePlan.Unsupported`
/// and callers run the layers.
public final class InferencePlan: @unchecked Sendable {
    public let graph: InferenceGraph
    /// The model's output shape without the batch axis (e.g. [classes]).
    public let outputShape: [Int]

    public struct Unsupported: Error, CustomStringConvertible {
        public let description: String
    }

    /// Each optimisation can be switched off, to measure what it buys (`sprout bench infer --ablation`).
    public struct Options: Sendable, Equatable {
        public var foldBatchNorm = true
        public var fusePostOps = true
        public var winograd = true
        public init(foldBatchNorm: Bool = true, fusePostOps: Bool = true, winograd: Bool = true) {
            (self.foldBatchNorm, self.fusePostOps, self.winograd) = (foldBatchNorm, fusePostOps, winograd)
        }
    }

    init(graph: InferenceGraph, outputShape: [Int]) {
        (self.graph, self.outputShape) = (graph, outputShape)
    }

    /// Lowers `model` (put in evaluation mode) for inputs of `inputShape` [C, H, W].
    public static func make(_ model: any Layer, inputShape: [Int], options: Options = Options()) throws -> InferencePlan {
        guard RuntimeSettings.current.inference == .graph else { throw Unsupported(description: "SPROUT_INFERENCE=layers") }
        guard let graph = InferenceGraph(inputShape: inputShape, fusePostOps: options.fusePostOps, winograd: options.winograd) else {
            throw Unsupported(description: "oneDNN is not available")
        }
        model.eval()
        var lowering = Lowering(graph: graph, fold: options.foldBatchNorm)
        let out = try withoutGradient { try lowering.emit(model, graph.input, path: "") }
        try graph.setOutput(out)
        let expected = withoutGradient { model.forward(Tensor.zeros([1] + inputShape)) }.shape.dropFirst()
        guard graph.outputShape.reduce(1, *) == expected.reduce(1, *) else {
            throw Unsupported(description: "the graph's output \(graph.outputShape) does not match the model's \(Array(expected))")
        }
        return InferencePlan(graph: graph, outputShape: Array(expected))
    }

    //   x: [N, C, H, W] → [N, outputShape…]
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try graph.run(x).reshaped(to: [x.shape[0]] + outputShape)
    }
}

private struct Lowering {
    let graph: InferenceGraph
    /// Fold batch norms into the convolutions before them.
    let fold: Bool
    typealias Value = InferenceGraph.Value

    func unsupported(_ layer: any Layer, _ path: String) -> InferencePlan.Unsupported {
        InferencePlan.Unsupported(description: "layer \(path.isEmpty ? "" : "'\(path)' ")\(layer.summaryName) has no inference-graph operation")
    }

    mutating func emit(_ layer: any Layer, _ x: Value, path: String) throws -> Value {
        switch layer {
        case let d as InferenceDecomposable:
            switch d.inferenceStructure {
            case let .chain(steps):
                return try chain(steps, x, path)
            case let .residual(main, shortcut, relu):
                let body = try chain(main, x, path)
                let other = try shortcut.map { try emit($0.layer, x, path: "\(path).\($0.name)") } ?? x
                let sum = try graph.add(body, other)
                return relu ? try graph.activation(sum, .relu) : sum
            }
        case let c as Conv2D:
            return try convolution(c, x, folding: nil)
        case let l as Linear:
            guard graph.shape(of: x).count == 3 || graph.shape(of: x).count == 1 else { throw unsupported(layer, path) }
            return try graph.linear(x, weight: l.weight.value, bias: l.bias?.value)
        case let p as MaxPool2D:
            return try pool(p, x, max: true)
        case let p as AvgPool2D:
            return try pool(p, x, max: false)
        case is GlobalAvgPool, is GlobalMaxPool:
            let s = graph.shape(of: x)
            guard s.count == 3 else { throw unsupported(layer, path) }
            return try graph.pool(x, max: layer is GlobalMaxPool, kernel: (s[1], s[2]), stride: (s[1], s[2]),
                                  padding: (0, 0, 0, 0), outputSize: (1, 1))
        case is Flatten, is Dropout, is Identity:
            // The graph keeps [N, C, H, W]; a linear layer reads it flattened, the output is read as NCHW.
            return x
        case let n as BatchNorm2D:
            let (scale, shift) = n.inferenceAffine
            return try graph.affine(x, scale: scale, shift: shift)
        case let n as LocalResponseNorm:
            // TensorFlow's window c−r…c+r scaled by alpha is oneDNN's size 2r+1 scaled by alpha/size.
            let size = 2 * n.depthRadius + 1
            return try graph.localResponseNorm(x, size: size, alpha: n.alpha * Float(size), beta: n.beta, k: n.bias)
        case is ReLU:
            return try graph.activation(x, .relu)
        case is ReLU6:
            return try graph.activation(x, .clamp(min: 0, max: 6))
        case let l as LeakyReLU:
            return try graph.activation(x, .leakyReLU(slope: l.negativeSlope))
        case let e as ELU:
            return try graph.activation(x, .elu(alpha: e.alpha))
        case let g as GELU:
            return try graph.activation(x, .gelu(approximate: g.approximate))
        case is Sigmoid:
            return try graph.activation(x, .sigmoid)
        case is Tanh:
            return try graph.activation(x, .tanh)
        case let s as Scale:
            return try graph.activation(x, .affine(scale: s.factor, shift: 0))
        default:
            throw unsupported(layer, path)
        }
    }

    /// Layers in order, with batch norms folded where a convolution precedes them.
    mutating func chain(_ steps: [(String, any Layer)], _ x: Value, _ path: String) throws -> Value {
        var v = x, i = 0
        func at(_ k: Int) -> (any Layer)? { k < steps.count ? steps[k].1 : nil }
        while i < steps.count {
            if fold, let conv = at(i) as? Conv2D, let norm = at(i + 1) as? BatchNorm2D {
                v = try convolution(conv, v, folding: norm)
                i += 2
            } else if fold, let conv = at(i) as? Conv2D, let pool = at(i + 1) as? MaxPool2D, let norm = at(i + 2) as? BatchNorm2D,
                      norm.inferenceAffine.scale.scalars.allSatisfy({ $0 > 0 }) {
                // BN(maxpool(y)) = maxpool(BN(y)) when every channel's scale is positive.
                v = try self.pool(pool, try convolution(conv, v, folding: norm), max: true)
                i += 3
            } else {
                let childPath = path.isEmpty ? steps[i].0 : "\(path).\(steps[i].0)"
                v = try emit(steps[i].1, v, path: childPath)
                i += 1
            }
        }
        return v
    }

    func convolution(_ c: Conv2D, _ x: Value, folding norm: BatchNorm2D?) throws -> Value {
        let s = graph.shape(of: x)
        guard s.count == 3 else { throw InferencePlan.Unsupported(description: "convolution on a \(s) value") }
        let (weight, bias) = c.folding(norm)
        let (kh, kw) = (weight.shape[2], weight.shape[3])
        let (top, bottom, oh) = c.padding.resolve(input: s[1], kernel: kh, stride: c.stride.0, axis: 0)
        let (left, right, ow) = c.padding.resolve(input: s[2], kernel: kw, stride: c.stride.1, axis: 1)
        return try graph.convolution(x, weight: weight, bias: bias, stride: c.stride, padding: (top, left, bottom, right),
                                     outputSize: (oh, ow), groups: c.groups)
    }

    func pool(_ p: Pool2DBase, _ x: Value, max: Bool) throws -> Value {
        let s = graph.shape(of: x)
        guard s.count == 3 else { throw InferencePlan.Unsupported(description: "pooling on a \(s) value") }
        let (top, bottom, oh) = p.padding.resolve(input: s[1], kernel: p.kernelSize.0, stride: p.stride.0, axis: 0)
        let (left, right, ow) = p.padding.resolve(input: s[2], kernel: p.kernelSize.1, stride: p.stride.1, axis: 1)
        return try graph.pool(x, max: max, kernel: p.kernelSize, stride: p.stride, padding: (top, left, bottom, right),
                              outputSize: (oh, ow))
    }
}
