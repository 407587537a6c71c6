import SproutTensor

/// A learnable tensor (or, with `isTrainable == false`, state saved with the model such as
/// batch-norm running statistics or a frozen whitening filter). A class, so that layers and
/// optimizers share it and updates happen in place.
public final class Parameter: @unchecked Sendable {
    public var value: Tensor
    public var isTrainable: Bool
    /// Per-parameter L2 weight decay that overrides the optimizer's (TensorFlow tutorial:
    /// decay on two fully connected layers only). nil = use the optimizer's setting.
    public var weightDecay: Float?
    /// Learning-rate multiplier (e.g. batch-norm biases trained faster). nil = 1.
    public var learningRateScale: Float?
    /// Weight-decay multiplier, applied to whichever decay is in effect. airbench gives
    /// batch-norm biases 64× the learning rate and 1/64 the decay, so that the shrink per
    /// step (lr·wd) matches the other parameters'. nil = 1.
    public var weightDecayScale: Float?

    public init(_ value: Tensor, trainable: Bool = true, weightDecay: Float? = nil) {
        self.value = value
        self.isTrainable = trainable
        self.weightDecay = weightDecay
    }

    public var shape: [Int] { value.shape }
}

/// A building block of a network: PyTorch's `nn.Module`, Keras's `Layer`.
///
/// Conforming classes implement `forward`, list their own parameters and sub-layers by
/// name (names compose with dots into checkpoint keys such as `"3.weight"`), and keep an
/// `isTraining` flag that `train()`/`eval()` set through the whole tree.
public protocol Layer: AnyObject {
    func forward(_ input: Tensor) -> Tensor
    /// This layer's own parameters and state by local name (not its children's). Default:
    /// every `Parameter` property, found by reflection (`LayerReflection`).
    var ownParameters: [(name: String, parameter: Parameter)] { get }
    /// Sub-layers by local name. Default: every layer property, found by reflection.
    var children: [(name: String, layer: any Layer)] { get }
    var isTraining: Bool { get set }
    /// One line for `summary`, e.g. "Conv2D(3→64, 5×5, same)".
    var summaryName: String { get }
    /// Forward FLOPs for one sample (2 per multiply-add; counted for convolutions and
    /// linear layers, 0 for cheap element-wise layers).
    func flops(inputShape: [Int], outputShape: [Int]) -> Int
    /// Rows of `summary`: containers return one per child, leaves one for themselves.
    func summaryRows(input: Tensor, prefix: String) -> (output: Tensor, rows: [SummaryRow])
}

extension Layer {
    public var ownParameters: [(name: String, parameter: Parameter)] { LayerReflection.parameters(of: self) }
    public var children: [(name: String, layer: any Layer)] { LayerReflection.children(of: self) }
    public var summaryName: String { String(describing: type(of: self)) }
    public func flops(inputShape: [Int], outputShape: [Int]) -> Int { 0 }

    public func callAsFunction(_ input: Tensor) -> Tensor { forward(input) }

    public func summaryRows(input: Tensor, prefix: String) -> (output: Tensor, rows: [SummaryRow]) {
        let output = forward(input)
        let count = namedParameters.filter { $0.parameter.isTrainable }.map { $0.parameter.value.count }.reduce(0, +)
        let frozen = namedParameters.filter { !$0.parameter.isTrainable }.map { $0.parameter.value.count }.reduce(0, +)
        let row = SummaryRow(name: prefix.isEmpty ? summaryName : "\(prefix): \(summaryName)",
                             outputShape: Array(output.shape.dropFirst()),
                             parameters: count, frozenParameters: frozen,
                             flops: flops(inputShape: Array(input.shape.dropFirst()), outputShape: Array(output.shape.dropFirst())))
        return (output, [row])
    }

    /// Every parameter and state tensor of the tree, with dotted names, in a stable order.
    public var namedParameters: [(name: String, parameter: Parameter)] {
        var result = ownParameters
        for (childName, child) in children {
            result += child.namedParameters.map { ("\(childName).\($0.name)", $0.parameter) }
        }
        return result
    }

    /// The parameters an optimizer updates.
    public var trainableParameters: [Parameter] { namedParameters.map(\.parameter).filter(\.isTrainable) }

    public var parameterCount: Int { trainableParameters.map { $0.value.count }.reduce(0, +) }

    /// Training mode (batch statistics, dropout on) for the whole tree.
    public func train() { setTraining(true) }
    /// Evaluation mode (running statistics, dropout off) for the whole tree.
    public func eval() { setTraining(false) }

    /// Every layer of the tree with its dotted path ("" for this one), parents first.
    public var namedLayers: [(name: String, layer: any Layer)] {
        var result: [(name: String, layer: any Layer)] = [("", self)]
        for (childName, child) in children {
            result += child.namedLayers.map { ($0.name.isEmpty ? childName : "\(childName).\($0.name)", $0.layer) }
        }
        return result
    }

    /// Calls `body` with this layer and every layer below it, parents first.
    public func forEachLayer(_ body: (any Layer) -> Void) {
        body(self)
        for (_, child) in children { child.forEachLayer(body) }
    }

    public func setTraining(_ on: Bool) {
        isTraining = on
        for (_, child) in children { child.setTraining(on) }
    }
}

/// Gradients of a loss with respect to a model's trainable parameters.
public struct Gradients: @unchecked Sendable {
    public let parameters: [Parameter]
    public var tensors: [Tensor]

    public init(parameters: [Parameter], tensors: [Tensor]) {
        precondition(parameters.count == tensors.count, "Gradients: \(tensors.count) tensors for \(parameters.count) parameters")
        self.parameters = parameters
        self.tensors = tensors
    }

    public subscript(_ p: Parameter) -> Tensor? {
        parameters.firstIndex { $0 === p }.map { tensors[$0] }
    }

    /// √(Σ‖g‖²) over all gradients.
    public var globalNorm: Float {
        var total: Double = 0
        for g in tensors { g.withData { for v in $0 { total += Double(v) * Double(v) } } }
        return Float(total.squareRoot())
    }
}

/// The value of `f(model)` and its gradient with respect to every trainable parameter.
/// The parameters are swapped for recorded leaves for the duration of `f`.
public func valueWithGradient<L: Layer>(of model: L, _ f: (L) throws -> Tensor) rethrows -> (value: Tensor, gradients: Gradients) {
    let params = model.trainableParameters
    let originals = params.map(\.value)
    defer { for (p, v) in zip(params, originals) { p.value = v } }
    let (value, grads) = try valueWithGradient(at: originals) { leaves in
        for (p, leaf) in zip(params, leaves) { p.value = leaf }
        return try f(model)
    }
    return (value, Gradients(parameters: params, tensors: grads))
}

/// A layer that draws random numbers while training (dropout): its generator state is
/// saved in checkpoints so that a resumed run draws what the uninterrupted run would.
public protocol RandomStateLayer: Layer {
    var generatorState: [UInt64] { get set }
}

extension Layer {
    /// Generator states of every `RandomStateLayer` in the tree, by dotted layer name.
    public var randomStates: [String: [UInt64]] {
        get {
            var out: [String: [UInt64]] = [:]
            collectRandom(prefix: "") { name, layer in out[name] = layer.generatorState }
            return out
        }
    }

    public func setRandomStates(_ states: [String: [UInt64]]) {
        collectRandom(prefix: "") { name, layer in if let s = states[name] { layer.generatorState = s } }
    }

    func collectRandom(prefix: String, _ visit: (String, any RandomStateLayer) -> Void) {
        if let r = self as? any RandomStateLayer { visit(prefix.isEmpty ? "." : prefix, r) }
        for (name, child) in children { child.collectRandom(prefix: prefix.isEmpty ? name : "\(prefix).\(name)", visit) }
    }
}
