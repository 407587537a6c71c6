import SproutTensor

// The 224-pixel zoo. Each model's stored properties carry the reference implementation's
// names (torchvision for ResNet and MobileNetV2, lukemelas' EfficientNet-PyTorch for
// EfficientNet-Lite, hence the leading underscores), so a published state dict maps onto
// `namedParameters` by name.

/// min(max(x, 0), 6): MobileNet's and EfficientNet-Lite's activation.
public final class ReLU6: Layer {
    public var isTraining = true
    public init() {}
    public func forward(_ x: Tensor) -> Tensor { clamp(x, min: 0, max: 6) }
}

/// torchvision's BasicBlock (ResNet-18/34).
public final class ResNetBasicBlock: Layer {
    public let conv1: Conv2D, bn1: BatchNorm2D, conv2: Conv2D, bn2: BatchNorm2D
    public let downsample: Sequential?
    public var isTraining = true
    public static let expansion = 1

    public init(inChannels: Int, channels: Int, stride: Int = 1) {
        conv1 = Conv2D(inChannels: inChannels, outChannels: channels, kernelSize: 3, stride: stride, padding: .symmetric(1, 1),
                       bias: false, weightInitializer: .heNormalFanOut)
        bn1 = BatchNorm2D(features: channels)
        conv2 = Conv2D(inChannels: channels, outChannels: channels, kernelSize: 3, padding: .symmetric(1, 1), bias: false,
                       weightInitializer: .heNormalFanOut)
        bn2 = BatchNorm2D(features: channels)
        downsample = ResNet.shortcut(inChannels, channels, stride)
    }

    public func forward(_ x: Tensor) -> Tensor {
        let y = bn2(conv2(bn1.forward(conv1(x), fusedReLU: true)))
        return relu(y + (downsample?(x) ?? x))
    }

    public func summaryRows(input: Tensor, prefix: String) -> (output: Tensor, rows: [SummaryRow]) {
        summarizeBlock(self, input: input, prefix: prefix, paths: [
            [("conv1", conv1), ("bn1", bn1), ("relu", ReLU()), ("conv2", conv2), ("bn2", bn2)],
            downsample.map { [("downsample", $0)] } ?? []])
    }
}

/// torchvision's Bottleneck (ResNet-50; the stride on the 3×3 convolution, "v1.5").
public final class ResNetBottleneck: Layer {
    public let conv1: Conv2D, bn1: BatchNorm2D, conv2: Conv2D, bn2: BatchNorm2D, conv3: Conv2D, bn3: BatchNorm2D
    public let downsample: Sequential?
    public var isTraining = true
    public static let expansion = 4

    public init(inChannels: Int, channels: Int, stride: Int = 1) {
        let out = channels * Self.expansion
        conv1 = Conv2D(inChannels: inChannels, outChannels: channels, kernelSize: 1, bias: false, weightInitializer: .heNormalFanOut)
        bn1 = BatchNorm2D(features: channels)
        conv2 = Conv2D(inChannels: channels, outChannels: channels, kernelSize: 3, stride: stride, padding: .symmetric(1, 1),
                       bias: false, weightInitializer: .heNormalFanOut)
        bn2 = BatchNorm2D(features: channels)
        conv3 = Conv2D(inChannels: channels, outChannels: out, kernelSize: 1, bias: false, weightInitializer: .heNormalFanOut)
        bn3 = BatchNorm2D(features: out)
        downsample = ResNet.shortcut(inChannels, out, stride)
    }

    public func forward(_ x: Tensor) -> Tensor {
        var y = bn1.forward(conv1(x), fusedReLU: true)
        y = bn2.forward(conv2(y), fusedReLU: true)
        return relu(bn3(conv3(y)) + (downsample?(x) ?? x))
    }

    public func summaryRows(input: Tensor, prefix: String) -> (output: Tensor, rows: [SummaryRow]) {
        summarizeBlock(self, input: input, prefix: prefix, paths: [
            [("conv1", conv1), ("bn1", bn1), ("relu", ReLU()), ("conv2", conv2), ("bn2", bn2), ("relu", ReLU()),
             ("conv3", conv3), ("bn3", bn3)],
            downsample.map { [("downsample", $0)] } ?? []])
    }
}

/// torchvision's ResNet for ImageNet: 7×7/2 stem and 3×3/2 max pool, four stages, global
/// average pool, `fc`.
public final class ResNet: Layer {
    public let conv1: Conv2D, bn1: BatchNorm2D, maxpool: MaxPool2D
    public let layer1: Sequential, layer2: Sequential, layer3: Sequential, layer4: Sequential
    public let fc: Linear
    public var isTraining = true

    /// `blocks` per stage ([2, 2, 2, 2] is ResNet-18, [3, 4, 6, 3] with bottlenecks ResNet-50).
    public init(blocks: [Int], bottleneck: Bool, inChannels: Int = 3, classes: Int = 1000, width: Float = 1) {
        precondition(blocks.count == 4, "ResNet: four stages")
        func scaled(_ n: Int) -> Int { max(1, Int((Float(n) * width).rounded())) }
        let stem = scaled(64)
        conv1 = Conv2D(inChannels: inChannels, outChannels: stem, kernelSize: 7, stride: 2, padding: .symmetric(3, 3), bias: false,
                       weightInitializer: .heNormalFanOut)
        bn1 = BatchNorm2D(features: stem)
        maxpool = MaxPool2D(kernelSize: 3, stride: 2, padding: .symmetric(1, 1))
        var channels = stem
        var stages: [Sequential] = []
        for (stage, count) in blocks.enumerated() {
            let width = scaled(64 << stage)
            var layers: [any Layer] = []
            for b in 0..<count {
                let stride = b == 0 && stage > 0 ? 2 : 1
                if bottleneck {
                    layers.append(ResNetBottleneck(inChannels: channels, channels: width, stride: stride))
                    channels = width * ResNetBottleneck.expansion
                } else {
                    layers.append(ResNetBasicBlock(inChannels: channels, channels: width, stride: stride))
                    channels = width
                }
            }
            stages.append(Sequential(layers))
        }
        (layer1, layer2, layer3, layer4) = (stages[0], stages[1], stages[2], stages[3])
        fc = Linear(inFeatures: channels, outFeatures: classes)
    }

    /// The 1×1 projection (`downsample.0`, `downsample.1`) when the shape changes.
    static func shortcut(_ inChannels: Int, _ out: Int, _ stride: Int) -> Sequential? {
        guard stride != 1 || inChannels != out else { return nil }
        return Sequential {
            Conv2D(inChannels: inChannels, outChannels: out, kernelSize: 1, stride: stride, bias: false, weightInitializer: .heNormalFanOut)
            BatchNorm2D(features: out)
        }
    }

    public func forward(_ x: Tensor) -> Tensor { forwardHead(forwardFeatures(x)) }

    public func summaryRows(input: Tensor, prefix: String) -> (output: Tensor, rows: [SummaryRow]) {
        summarizeSequence(self, input: input, prefix: prefix,
                          steps: [("conv1", conv1), ("bn1", bn1), ("relu", ReLU()), ("maxpool", maxpool), ("layer1", layer1),
                                  ("layer2", layer2), ("layer3", layer3), ("layer4", layer4), ("avgpool", GlobalAvgPool()), ("fc", fc)])
    }
}

/// Channel counts rounded to a multiple of 8 (torchvision's and TensorFlow's _make_divisible).
func makeDivisible(_ value: Float, _ divisor: Int = 8) -> Int {
    let rounded = max(divisor, (Int(value + Float(divisor) / 2) / divisor) * divisor)
    return Float(rounded) < 0.9 * value ? rounded + divisor : rounded
}

/// Convolution, batch norm, ReLU6 as torchvision's Conv2dNormActivation (`0`, `1`, `2`).
func convBNReLU6(_ i: Int, _ o: Int, kernel: Int, stride: Int = 1, groups: Int = 1) -> Sequential {
    Sequential {
        Conv2D(inChannels: i, outChannels: o, kernelSize: kernel, stride: stride, padding: .symmetric(kernel / 2, kernel / 2),
               groups: groups, bias: false, weightInitializer: .heNormalFanOut)
        BatchNorm2D(features: o)
        ReLU6()
    }
}

/// MobileNetV2's inverted residual: 1×1 expansion (unless the ratio is 1), 3×3 depthwise,
/// linear 1×1 projection, identity shortcut when the shape allows.
public final class InvertedResidual: Layer {
    public let conv: Sequential
    public let useResidual: Bool
    public var isTraining = true

    public init(inChannels: Int, outChannels: Int, stride: Int, expandRatio: Int) {
        let hidden = inChannels * expandRatio
        var layers: [any Layer] = []
        if expandRatio != 1 { layers.append(convBNReLU6(inChannels, hidden, kernel: 1)) }
        layers.append(convBNReLU6(hidden, hidden, kernel: 3, stride: stride, groups: hidden))
        layers.append(Conv2D(inChannels: hidden, outChannels: outChannels, kernelSize: 1, bias: false, weightInitializer: .heNormalFanOut))
        layers.append(BatchNorm2D(features: outChannels))
        conv = Sequential(layers)
        useResidual = stride == 1 && inChannels == outChannels
    }

    public func forward(_ x: Tensor) -> Tensor { useResidual ? x + conv(x) : conv(x) }

    public func summaryRows(input: Tensor, prefix: String) -> (output: Tensor, rows: [SummaryRow]) {
        summarizeBlock(self, input: input, prefix: prefix, paths: [[("conv", conv)]])
    }
}

/// torchvision's MobileNetV2 (`features`, `classifier`), with a width multiplier.
public final class MobileNetV2: Layer {
    public let features: Sequential
    public let classifier: Sequential
    public var isTraining = true

    public init(inChannels: Int = 3, classes: Int = 1000, width: Float = 1, dropout: Float = 0.2) {
        // (expansion t, channels c, repeats n, first stride s), as in the paper's table 2.
        let settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        var channels = makeDivisible(32 * width)
        let last = makeDivisible(1280 * max(1, width))
        var layers: [any Layer] = [convBNReLU6(inChannels, channels, kernel: 3, stride: 2)]
        for (t, c, n, s) in settings {
            let out = makeDivisible(Float(c) * width)
            for i in 0..<n {
                layers.append(InvertedResidual(inChannels: channels, outChannels: out, stride: i == 0 ? s : 1, expandRatio: t))
                channels = out
            }
        }
        layers.append(convBNReLU6(channels, last, kernel: 1))
        features = Sequential(layers)
        classifier = Sequential {
            Dropout(probability: dropout)
            Linear(inFeatures: last, outFeatures: classes, weightInitializer: .normal(std: 0.01), biasInitializer: .zeros)
        }
    }

    public func forward(_ x: Tensor) -> Tensor { forwardHead(forwardFeatures(x)) }

    public func summaryRows(input: Tensor, prefix: String) -> (output: Tensor, rows: [SummaryRow]) {
        summarizeSequence(self, input: input, prefix: prefix,
                          steps: [("features", features), ("avgpool", GlobalAvgPool()), ("classifier", classifier)])
    }
}

/// EfficientNet's MBConv without squeeze-and-excitation (the Lite variants): optional 1×1
/// expansion, k×k depthwise, 1×1 projection; ReLU6; TensorFlow's SAME padding; batch norm
/// with TensorFlow's ε = 1e-3 and momentum 0.01. Names as lukemelas' EfficientNet-PyTorch.
public final class MBConvBlock: Layer {
    public let _expand_conv: Conv2D?, _bn0: BatchNorm2D?
    public let _depthwise_conv: Conv2D, _bn1: BatchNorm2D
    public let _project_conv: Conv2D, _bn2: BatchNorm2D
    public let useResidual: Bool
    public var isTraining = true

    public init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, expandRatio: Int) {
        let hidden = inChannels * expandRatio
        func bn(_ n: Int) -> BatchNorm2D { BatchNorm2D(features: n, momentum: 0.01, epsilon: 1e-3) }
        if expandRatio != 1 {
            _expand_conv = Conv2D(inChannels: inChannels, outChannels: hidden, kernelSize: 1, bias: false, weightInitializer: .heNormalFanOut)
            _bn0 = bn(hidden)
        } else {
            (_expand_conv, _bn0) = (nil, nil)
        }
        _depthwise_conv = Conv2D(inChannels: hidden, outChannels: hidden, kernelSize: kernel, stride: stride, padding: .same,
                                 groups: hidden, bias: false, weightInitializer: .heNormalFanOut)
        _bn1 = bn(hidden)
        _project_conv = Conv2D(inChannels: hidden, outChannels: outChannels, kernelSize: 1, bias: false, weightInitializer: .heNormalFanOut)
        _bn2 = bn(outChannels)
        useResidual = stride == 1 && inChannels == outChannels
    }

    public func forward(_ x: Tensor) -> Tensor {
        var y = x
        if let _expand_conv, let _bn0 { y = clamp(_bn0(_expand_conv(y)), min: 0, max: 6) }
        y = clamp(_bn1(_depthwise_conv(y)), min: 0, max: 6)
        y = _bn2(_project_conv(y))
        return useResidual ? y + x : y
    }

    public func summaryRows(input: Tensor, prefix: String) -> (output: Tensor, rows: [SummaryRow]) {
        var path: [(String, any Layer)] = []
        if let _expand_conv, let _bn0 { path += [("_expand_conv", _expand_conv), ("_bn0", _bn0), ("relu6", ReLU6())] }
        path += [("_depthwise_conv", _depthwise_conv), ("_bn1", _bn1), ("relu6", ReLU6()), ("_project_conv", _project_conv), ("_bn2", _bn2)]
        return summarizeBlock(self, input: input, prefix: prefix, paths: [path])
    }
}

/// EfficientNet-Lite0: EfficientNet-B0's blocks without squeeze-and-excitation, ReLU6
/// instead of swish, stem and head not scaled (the variant for mobile and CPU inference).
public final class EfficientNetLite: Layer {
    public let _conv_stem: Conv2D, _bn0: BatchNorm2D
    public let _blocks: [any Layer]
    public let _conv_head: Conv2D, _bn1: BatchNorm2D
    public let _dropout: Dropout
    public let _fc: Linear
    public var isTraining = true

    public init(inChannels: Int = 3, classes: Int = 1000, width: Float = 1, dropout: Float = 0.2) {
        // (kernel, stride, expansion, in, out, repeats): EfficientNet-B0's stages.
        let stages = [(3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2), (3, 2, 6, 40, 80, 3),
                      (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4), (3, 1, 6, 192, 320, 1)]
        func bn(_ n: Int) -> BatchNorm2D { BatchNorm2D(features: n, momentum: 0.01, epsilon: 1e-3) }
        func scaled(_ c: Int) -> Int { makeDivisible(Float(c) * width) }
        _conv_stem = Conv2D(inChannels: inChannels, outChannels: 32, kernelSize: 3, stride: 2, padding: .same, bias: false,
                            weightInitializer: .heNormalFanOut)
        _bn0 = bn(32)
        var blocks: [any Layer] = []
        for (index, (k, s, e, i, o, n)) in stages.enumerated() {
            // Lite keeps the first stage's input at the stem's 32 channels whatever the width.
            let input = index == 0 ? 32 : scaled(i)
            for r in 0..<n {
                blocks.append(MBConvBlock(inChannels: r == 0 ? input : scaled(o), outChannels: scaled(o), kernel: k,
                                          stride: r == 0 ? s : 1, expandRatio: e))
            }
        }
        _blocks = blocks
        let last = scaled(320)
        _conv_head = Conv2D(inChannels: last, outChannels: 1280, kernelSize: 1, bias: false, weightInitializer: .heNormalFanOut)
        _bn1 = bn(1280)
        _dropout = Dropout(probability: dropout)
        _fc = Linear(inFeatures: 1280, outFeatures: classes)
    }

    public func forward(_ x: Tensor) -> Tensor { forwardHead(forwardFeatures(x)) }

    public func summaryRows(input: Tensor, prefix: String) -> (output: Tensor, rows: [SummaryRow]) {
        var steps: [(String, any Layer)] = [("_conv_stem", _conv_stem), ("_bn0", _bn0), ("relu6", ReLU6())]
        steps += _blocks.enumerated().map { ("_blocks.\($0.offset)", $0.element) }
        steps += [("_conv_head", _conv_head), ("_bn1", _bn1), ("relu6", ReLU6()), ("avgpool", GlobalAvgPool()),
                  ("_dropout", _dropout), ("_fc", _fc)]
        return summarizeSequence(self, input: input, prefix: prefix, steps: steps)
    }
}

/// Summary rows of a model whose forward is the given steps in order (each a named layer).
func summarizeSequence(_ model: any Layer, input: Tensor, prefix: String, steps: [(String, any Layer)])
    -> (output: Tensor, rows: [SummaryRow]) {
    var x = input, rows: [SummaryRow] = []
    for (name, layer) in steps {
        let (y, r) = layer.summaryRows(input: x, prefix: prefix.isEmpty ? name : "\(prefix).\(name)")
        x = y
        rows += r
    }
    return (x, rows)
}

/// Summary rows of a block whose paths all start from the block's input (a main path and a
/// shortcut); the output is the block's own.
func summarizeBlock(_ block: any Layer, input: Tensor, prefix: String, paths: [[(String, any Layer)]])
    -> (output: Tensor, rows: [SummaryRow]) {
    let rows = paths.flatMap { summarizeSequence(block, input: input, prefix: prefix, steps: $0).rows }
    return (block.forward(input), rows)
}
