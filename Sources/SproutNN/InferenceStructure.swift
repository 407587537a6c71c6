import SproutTensor

/// How a composite layer computes in evaluation mode, in the layers that the ONNX and TFLite
/// exporters and the inference graph (`InferencePlan`) know. Those walkers handle the two
/// shapes below once, instead of each knowing every model's insides.
public enum InferenceStructure {
    public typealias Step = (name: String, layer: any Layer)
    /// The layers in order.
    case chain([Step])
    /// main(x) + shortcut(x) (the identity when nil), then ReLU when `relu`.
    case residual(main: [Step], shortcut: Step?, relu: Bool)
}

public protocol InferenceDecomposable: Layer {
    var inferenceStructure: InferenceStructure { get }
}

extension Sequential: InferenceDecomposable {
    public var inferenceStructure: InferenceStructure { .chain(children) }
}

extension Residual: InferenceDecomposable {
    public var inferenceStructure: InferenceStructure {
        .residual(main: [("body", body)], shortcut: shortcut.map { ("shortcut", $0) }, relu: false)
    }
}

extension BasicBlock: InferenceDecomposable {
    public var inferenceStructure: InferenceStructure {
        .residual(main: [("residual.body", residual.body)], shortcut: residual.shortcut.map { ("residual.shortcut", $0) }, relu: true)
    }
}

extension Airbench: InferenceDecomposable {
    public var inferenceStructure: InferenceStructure { .chain([("whiten", whiten), ("body", body)]) }
}

extension ResNet: InferenceDecomposable {
    public var inferenceStructure: InferenceStructure {
        .chain([("conv1", conv1), ("bn1", bn1), ("relu", ReLU()), ("maxpool", maxpool), ("layer1", layer1), ("layer2", layer2),
                ("layer3", layer3), ("layer4", layer4), ("avgpool", GlobalAvgPool()), ("fc", fc)])
    }
}

extension ResNetBasicBlock: InferenceDecomposable {
    public var inferenceStructure: InferenceStructure {
        .residual(main: [("conv1", conv1), ("bn1", bn1), ("relu", ReLU()), ("conv2", conv2), ("bn2", bn2)],
                  shortcut: downsample.map { ("downsample", $0) }, relu: true)
    }
}

extension ResNetBottleneck: InferenceDecomposable {
    public var inferenceStructure: InferenceStructure {
        .residual(main: [("conv1", conv1), ("bn1", bn1), ("relu", ReLU()), ("conv2", conv2), ("bn2", bn2), ("relu", ReLU()),
                         ("conv3", conv3), ("bn3", bn3)],
                  shortcut: downsample.map { ("downsample", $0) }, relu: true)
    }
}

extension MobileNetV2: InferenceDecomposable {
    public var inferenceStructure: InferenceStructure {
        .chain([("features", features), ("avgpool", GlobalAvgPool()), ("classifier", classifier)])
    }
}

extension InvertedResidual: InferenceDecomposable {
    public var inferenceStructure: InferenceStructure {
        useResidual ? .residual(main: [("conv", conv)], shortcut: nil, relu: false) : .chain([("conv", conv)])
    }
}

extension MBConvBlock: InferenceDecomposable {
    public var inferenceStructure: InferenceStructure {
        var steps: [InferenceStructure.Step] = []
        if let e = _expand_conv, let n = _bn0 { steps += [("_expand_conv", e), ("_bn0", n), ("relu6", ReLU6())] }
        steps += [("_depthwise_conv", _depthwise_conv), ("_bn1", _bn1), ("relu6", ReLU6()), ("_project_conv", _project_conv), ("_bn2", _bn2)]
        return useResidual ? .residual(main: steps, shortcut: nil, relu: false) : .chain(steps)
    }
}

extension EfficientNetLite: InferenceDecomposable {
    public var inferenceStructure: InferenceStructure {
        var steps: [InferenceStructure.Step] = [("_conv_stem", _conv_stem), ("_bn0", _bn0), ("relu6", ReLU6())]
        steps += _blocks.enumerated().map { ("_blocks.\($0.offset)", $0.element) }
        steps += [("_conv_head", _conv_head), ("_bn1", _bn1), ("relu6", ReLU6()), ("avgpool", GlobalAvgPool()), ("_fc", _fc)]
        return .chain(steps)
    }
}

extension BatchNorm2D {
    /// The evaluation-mode map as y = x·scale + shift per channel: scale = γ/√(σ²+ε),
    /// shift = β − μ·scale (what folding into a convolution multiplies and adds).
    public var inferenceAffine: (scale: Tensor, shift: Tensor) {
        let gamma = weight?.value ?? Tensor.ones([features]), beta = bias?.value ?? Tensor.zeros([features])
        let scale = gamma / sqrt(runningVariance.value + epsilon)
        return (scale, beta - runningMean.value * scale)
    }
}

extension Conv2D {
    /// The weight and bias with a following batch norm folded in: W' = W·scale per output
    /// channel, b' = b·scale + shift (b' = b without one).
    public func folding(_ norm: BatchNorm2D?) -> (weight: Tensor, bias: Tensor?) {
        guard let norm else { return (weight.value, bias?.value) }
        let (scale, shift) = norm.inferenceAffine
        let k = outChannels
        return (weight.value * scale.reshaped(to: [k, 1, 1, 1]), (bias?.value ?? Tensor.zeros([k])) * scale + shift)
    }
}
