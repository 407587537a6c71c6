import SproutTensor

/// A classifier in two parts — a backbone that ends in pooled features and a classifier on
/// them — as transfer learning needs it: a frozen backbone's features are computed once and
/// only the classifier trains (Create ML's way), or only the last blocks are unfrozen.
public protocol TransferableClassifier: Layer {
    /// The backbone: [N, C, H, W] → pooled features [N, F].
    func forwardFeatures(_ x: Tensor) -> Tensor
    /// The classifier: [N, F] → logits [N, classes] (the part a new dataset replaces).
    func forwardHead(_ features: Tensor) -> Tensor
    /// F, the width of the pooled features.
    var featureCount: Int { get }
    /// The classifier's parameter-name prefix (`fc.`, `classifier.`, `_fc.`).
    var headPrefix: String { get }
    /// The backbone's blocks in forward order as parameter-name prefixes, stem first and the
    /// last convolution last: "unfreeze the last N blocks" counts from the end of this list.
    var blockPrefixes: [[String]] { get }
}

extension TransferableClassifier {
    /// The parameter-name prefixes of the last `count` backbone blocks.
    public func prefixes(ofLastBlocks count: Int) -> [String] {
        Array(blockPrefixes.suffix(max(0, count)).joined())
    }
}

extension ResNet: TransferableClassifier {
    //   x: [N, C, H, W] → [N, F]
    public func forwardFeatures(_ x: Tensor) -> Tensor { globalAvgPool2d(forwardFeatureMap(x)) }
    /// The last block's output, before pooling: [N, C, H, W] → [N, F, h, w].
    public func forwardFeatureMap(_ x: Tensor) -> Tensor {
        let y = maxpool(bn1.forward(conv1(x), fusedReLU: true))
        return layer4(layer3(layer2(layer1(y))))
    }
    public func forwardHead(_ features: Tensor) -> Tensor { fc(features) }
    public var featureCount: Int { fc.weight.shape[1] }
    public var headPrefix: String { "fc." }
    public var blockPrefixes: [[String]] {
        var blocks = [["conv1.", "bn1."]]
        for (name, stage) in [("layer1", layer1), ("layer2", layer2), ("layer3", layer3), ("layer4", layer4)] {
            blocks += stage.children.map { ["\(name).\($0.name)."] }
        }
        return blocks
    }
}

extension MobileNetV2: TransferableClassifier {
    public func forwardFeatures(_ x: Tensor) -> Tensor { globalAvgPool2d(forwardFeatureMap(x)) }
    /// The last block's output, before pooling: [N, C, H, W] → [N, F, h, w].
    public func forwardFeatureMap(_ x: Tensor) -> Tensor { features.forward(x) }
    public func forwardHead(_ features: Tensor) -> Tensor { classifier(features) }
    public var featureCount: Int { (classifier.children.last?.layer as? Linear)?.weight.shape[1] ?? 0 }
    public var headPrefix: String { "classifier." }
    public var blockPrefixes: [[String]] { features.children.map { ["features.\($0.name)."] } }
}

extension EfficientNetLite: TransferableClassifier {
    public func forwardFeatures(_ x: Tensor) -> Tensor { globalAvgPool2d(forwardFeatureMap(x)) }
    /// The head convolution's output, before pooling: [N, C, H, W] → [N, F, h, w].
    public func forwardFeatureMap(_ x: Tensor) -> Tensor {
        var y = clamp(_bn0(_conv_stem(x)), min: 0, max: 6)
        for block in _blocks { y = block(y) }
        return clamp(_bn1(_conv_head(y)), min: 0, max: 6)
    }
    public func forwardHead(_ features: Tensor) -> Tensor { _fc(_dropout(features)) }
    public var featureCount: Int { _fc.weight.shape[1] }
    public var headPrefix: String { "_fc." }
    public var blockPrefixes: [[String]] {
        [["_conv_stem.", "_bn0."]] + _blocks.indices.map { ["_blocks.\($0)."] } + [["_conv_head.", "_bn1."]]
    }
}

/// A transferable classifier's classifier as a layer over cached features ([N, F] or
/// [N, F, 1, 1]). It lists the whole model's parameters under the model's own names, so a
/// checkpoint of it is a checkpoint of the model: eval, predict, serve and export read it
/// as they read any run.
public final class ClassifierOnFeatures: Layer {
    public let model: any TransferableClassifier

    public init(_ model: any TransferableClassifier) { self.model = model }

    public var isTraining: Bool {
        get { model.isTraining }
        set { model.isTraining = newValue }
    }
    public var ownParameters: [(name: String, parameter: Parameter)] { model.ownParameters }
    public var children: [(name: String, layer: any Layer)] { model.children }

    //   features: [N, F] or [N, F, 1, 1] → logits [N, classes]
    public func forward(_ features: Tensor) -> Tensor {
        let n = features.shape[0]
        return model.forwardHead(features.rank == 2 ? features : features.reshaped(to: [n, features.count / max(n, 1)]))
    }
}
