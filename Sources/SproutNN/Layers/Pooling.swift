import SproutTensor

/// Window settings shared by the pooling layers.
public class Pool2DBase {
    public let kernelSize: (Int, Int), stride: (Int, Int), padding: Padding
    public var isTraining = true

    /// `stride` defaults to the kernel size (non-overlapping windows).
    public init(kernelSize: Int, stride: Int? = nil, padding: Padding = .valid) {
        self.kernelSize = (kernelSize, kernelSize)
        self.stride = (stride ?? kernelSize, stride ?? kernelSize)
        self.padding = padding
    }

    /// A rectangular window, (height, width): CRNN's (2, 1) pools halve the height and keep
    /// every column.
    public init(kernelSize: (Int, Int), stride: (Int, Int)? = nil, padding: Padding = .valid) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
    }

    func describe(_ kind: String) -> String {
        let step = stride.0 == stride.1 ? "\(stride.0)" : "(\(stride.0), \(stride.1))"
        return "\(kind)(\(kernelSize.0)×\(kernelSize.1), stride \(step), \(padding.summary))"
    }
}

public final class MaxPool2D: Pool2DBase, Layer {
    public func forward(_ x: Tensor) -> Tensor { maxPool2d(x, kernelSize: kernelSize, stride: stride, padding: padding) }
    public var summaryName: String { describe("MaxPool2D") }
}

/// Average pooling; padded positions are not counted (TensorFlow's SAME semantics).
public final class AvgPool2D: Pool2DBase, Layer {
    public func forward(_ x: Tensor) -> Tensor { avgPool2d(x, kernelSize: kernelSize, stride: stride, padding: padding) }
    public var summaryName: String { describe("AvgPool2D") }
}

/// [N, C, H, W] → [N, C]
public final class GlobalAvgPool: Layer {
    public var isTraining = true
    public init() {}
    public func forward(_ x: Tensor) -> Tensor { globalAvgPool2d(x) }
}

/// [N, C, H, W] → [N, C]
public final class GlobalMaxPool: Layer {
    public var isTraining = true
    public init() {}
    public func forward(_ x: Tensor) -> Tensor { globalMaxPool2d(x) }
}

/// [N, …] → [N, rest]
public final class Flatten: Layer {
    public var isTraining = true
    public init() {}
    public func forward(_ x: Tensor) -> Tensor { x.flattened(startingAt: 1) }
}
