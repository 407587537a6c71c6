import SproutTensor

@resultBuilder
public enum LayerBuilder {
    public static func buildExpression(_ layer: any Layer) -> [any Layer] { [layer] }
    public static func buildExpression(_ layers: [any Layer]) -> [any Layer] { layers }
    public static func buildBlock(_ parts: [any Layer]...) -> [any Layer] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [any Layer]?) -> [any Layer] { part ?? [] }
    public static func buildEither(first: [any Layer]) -> [any Layer] { first }
    public static func buildEither(second: [any Layer]) -> [any Layer] { second }
    public static func buildArray(_ parts: [[any Layer]]) -> [any Layer] { parts.flatMap { $0 } }
}

/// Layers applied in order. Children are named "0", "1", … as in PyTorch.
public final class Sequential: Layer {
    public let layers: [any Layer]
    public var isTraining = true

    public init(_ layers: [any Layer]) { self.layers = layers }
    public convenience init(@LayerBuilder _ build: () -> [any Layer]) { self.init(build()) }

    public func forward(_ x: Tensor) -> Tensor {
        var y = x, i = 0
        while i < layers.count {
            // BatchNorm2D then ReLU runs as one pass (one read and one write fewer, forward
            // and backward); names, parameters and results are those of the two layers.
            if let norm = layers[i] as? BatchNorm2D, i + 1 < layers.count, layers[i + 1] is ReLU {
                y = norm.forward(y, fusedReLU: true)
                i += 2
            } else {
                y = layers[i].forward(y)
                i += 1
            }
        }
        return y
    }

    public var children: [(name: String, layer: any Layer)] { layers.enumerated().map { ("\($0.offset)", $0.element) } }

    public func summaryRows(input: Tensor, prefix: String) -> (output: Tensor, rows: [SummaryRow]) {
        var x = input
        var rows: [SummaryRow] = []
        for (name, layer) in children {
            let (y, r) = layer.summaryRows(input: x, prefix: prefix.isEmpty ? name : "\(prefix).\(name)")
            x = y
            rows += r
        }
        return (x, rows)
    }
}

/// y = body(x) + shortcut(x), the shortcut being the identity unless given.
public final class Residual: Layer {
    public let body: any Layer
    public let shortcut: (any Layer)?
    public var isTraining = true

    public init(shortcut: (any Layer)? = nil, @LayerBuilder _ body: () -> [any Layer]) {
        self.body = Sequential(body())
        self.shortcut = shortcut
    }

    public func forward(_ x: Tensor) -> Tensor { body.forward(x) + (shortcut?.forward(x) ?? x) }

    public var children: [(name: String, layer: any Layer)] {
        [("body", body)] + (shortcut.map { [("shortcut", $0)] } ?? [])
    }

    public func summaryRows(input: Tensor, prefix: String) -> (output: Tensor, rows: [SummaryRow]) {
        var (y, rows) = body.summaryRows(input: input, prefix: "\(prefix).body")
        if let shortcut {
            let (s, r) = shortcut.summaryRows(input: input, prefix: "\(prefix).shortcut")
            rows += r
            y = y + s
        } else {
            y = y + input
        }
        rows.append(SummaryRow(name: "\(prefix): residual add", outputShape: Array(y.shape.dropFirst()),
                               parameters: 0, frozenParameters: 0, flops: 0))
        return (y, rows)
    }
}

/// ResNet's basic block: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)), with a 1×1
/// convolution + batch norm on the shortcut when the shape changes.
public final class BasicBlock: Layer {
    public let residual: Residual
    public var isTraining = true

    public init(inChannels: Int, outChannels: Int, stride: Int = 1) {
        let shortcut: (any Layer)? = (stride != 1 || inChannels != outChannels)
            ? Sequential {
                Conv2D(inChannels: inChannels, outChannels: outChannels, kernelSize: 1, stride: stride, bias: false)
                BatchNorm2D(features: outChannels)
            }
            : nil
        residual = Residual(shortcut: shortcut) {
            Conv2D(inChannels: inChannels, outChannels: outChannels, kernelSize: 3, stride: stride,
                   padding: .symmetric(1, 1), bias: false)
            BatchNorm2D(features: outChannels)
            ReLU()
            Conv2D(inChannels: outChannels, outChannels: outChannels, kernelSize: 3, padding: .symmetric(1, 1), bias: false)
            BatchNorm2D(features: outChannels)
        }
    }

    public func forward(_ x: Tensor) -> Tensor { relu(residual.forward(x)) }
    public var children: [(name: String, layer: any Layer)] { [("residual", residual)] }

    public func summaryRows(input: Tensor, prefix: String) -> (output: Tensor, rows: [SummaryRow]) {
        let (y, rows) = residual.summaryRows(input: input, prefix: prefix)
        return (relu(y), rows)
    }
}
