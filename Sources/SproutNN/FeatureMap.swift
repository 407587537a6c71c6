import SproutTensor

/// A classifier cut at its last feature map that still has a spatial extent (h·w > 1): what
/// Grad-CAM weighs by the class score's gradient, and what `sprout show activations` walks.
public struct FeatureMapCut {
    /// The input's feature map there: [N, K, h, w].
    public let map: Tensor
    /// The rest of the network: a map of that shape → logits [N, classes].
    public let rest: (Tensor) -> Tensor
    /// Where the cut is, in the model's parameter names (e.g. "layer4", "body.13").
    public let location: String
}

extension FeatureMapCut {
    /// The cut for `input` [N, C, H, W]: the photo models at their last block (before global
    /// pooling), Sequential nets (and airbench's body) after their last layer whose output is
    /// still a map. Nil for models with no such map (an MLP).
    public static func find(in model: any Layer, input: Tensor) -> FeatureMapCut? {
        switch model {
        case let m as ResNet:
            return FeatureMapCut(map: m.forwardFeatureMap(input), rest: { m.forwardHead(globalAvgPool2d($0)) }, location: "layer4")
        case let m as MobileNetV2:
            return FeatureMapCut(map: m.forwardFeatureMap(input), rest: { m.forwardHead(globalAvgPool2d($0)) }, location: "features")
        case let m as EfficientNetLite:
            return FeatureMapCut(map: m.forwardFeatureMap(input), rest: { m.forwardHead(globalAvgPool2d($0)) }, location: "_conv_head")
        case let m as Airbench:
            guard let cut = sequentialCut(m.body, input: m.whiten(input)) else { return nil }
            return FeatureMapCut(map: cut.map, rest: cut.rest, location: "body." + cut.location)
        case let m as Sequential:
            return sequentialCut(m, input: input)
        default:
            return nil
        }
    }

    /// After the last layer whose output is [N, K, h, w] with h·w > 1.
    static func sequentialCut(_ s: Sequential, input: Tensor) -> FeatureMapCut? {
        var y = input, outputs: [Tensor] = []
        for layer in s.layers {
            y = layer(y)
            outputs.append(y)
        }
        guard let index = outputs.lastIndex(where: { $0.rank == 4 && $0.shape[2] * $0.shape[3] > 1 }) else { return nil }
        let rest = Array(s.layers[(index + 1)...])
        return FeatureMapCut(map: outputs[index], rest: { m in rest.reduce(m) { $1($0) } }, location: "\(index)")
    }
}

/// Every intermediate feature map of a forward pass, named by where it comes from, for
/// `sprout show activations`: each layer of a Sequential net (airbench: the whitening, then
/// its body), each stage or block of the photo models.
public func featureMaps(of model: any Layer, input: Tensor) -> [(name: String, map: Tensor)] {
    func walk(_ s: Sequential, _ x: Tensor, prefix: String) -> (Tensor, [(String, Tensor)]) {
        var y = x, out: [(String, Tensor)] = []
        for (i, layer) in s.layers.enumerated() {
            y = layer(y)
            out.append((prefix + "\(i) " + String(describing: type(of: layer)), y))
        }
        return (y, out)
    }
    var maps: [(String, Tensor)]
    switch model {
    case let m as Sequential:
        maps = walk(m, input, prefix: "").1
    case let m as Airbench:
        let w = m.whiten(input)
        maps = [("whiten", w)] + walk(m.body, w, prefix: "body.").1
    case let m as ResNet:
        var y = m.maxpool(m.bn1.forward(m.conv1(input), fusedReLU: true))
        maps = [("stem", y)]
        for (name, stage) in [("layer1", m.layer1), ("layer2", m.layer2), ("layer3", m.layer3), ("layer4", m.layer4)] {
            y = stage(y)
            maps.append((name, y))
        }
    case let m as MobileNetV2:
        maps = walk(m.features, input, prefix: "features.").1
    case let m as EfficientNetLite:
        var y = clamp(m._bn0(m._conv_stem(input)), min: 0, max: 6)
        maps = [("stem", y)]
        for (i, block) in m._blocks.enumerated() {
            y = block(y)
            maps.append(("_blocks.\(i)", y))
        }
        maps.append(("_conv_head", clamp(m._bn1(m._conv_head(y)), min: 0, max: 6)))
    default:
        maps = [("output", model(input))]
    }
    return maps.filter { $0.1.rank == 4 }.map { (name: $0.0, map: $0.1) }
}
