import SproutTensor

/// CRNN (Shi, Bai and Yao 2015) sized for 32-px text lines on a CPU: a convolution stack
/// that halves the height four times (32 → 2) and the width twice, so that each of the W/4
/// columns summarises a 4-px strip with a receptive field of ~40 px; the columns as a
/// sequence into a bidirectional LSTM; per column a linear layer over the classes (the
/// last one CTC's blank).
///   x: [N, C, 32, W] → logits [N, W/4, classes]
public final class CRNN: Layer {
    public let features: Sequential
    public let rnn: LSTM
    public let classifier: Linear
    public var isTraining = true

    public init(inputShape: [Int], classes: Int, width: Float = 1, hidden: Int = 128) throws {
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        guard h == 32, w >= 16 else {
            throw ModelError.unsupportedInput(model: "crnn", shape: inputShape, expected: "lines 32 px high and at least 16 px wide")
        }
        func scaled(_ n: Int) -> Int { max(4, Int((Float(n) * width).rounded())) }
        let (c1, c2, c3) = (scaled(32), scaled(64), scaled(96))
        features = Sequential {
            Conv2D(inChannels: c, outChannels: c1, kernelSize: 3, padding: .same, bias: false); BatchNorm2D(features: c1); ReLU()
            MaxPool2D(kernelSize: 2)                                     // 16 × W/2
            Conv2D(inChannels: c1, outChannels: c2, kernelSize: 3, padding: .same, bias: false); BatchNorm2D(features: c2); ReLU()
            MaxPool2D(kernelSize: 2)                                     // 8 × W/4
            Conv2D(inChannels: c2, outChannels: c3, kernelSize: 3, padding: .same, bias: false); BatchNorm2D(features: c3); ReLU()
            Conv2D(inChannels: c3, outChannels: c3, kernelSize: 3, padding: .same, bias: false); BatchNorm2D(features: c3); ReLU()
            MaxPool2D(kernelSize: (2, 1))                                // 4 × W/4
            Conv2D(inChannels: c3, outChannels: c3, kernelSize: 3, padding: .same, bias: false); BatchNorm2D(features: c3); ReLU()
            MaxPool2D(kernelSize: (2, 1))                                // 2 × W/4
        }
        rnn = LSTM(inputSize: c3 * 2, hiddenSize: hidden, bidirectional: true)
        classifier = Linear(inFeatures: 2 * hidden, outFeatures: classes)
    }

    /// Columns of the feature map as a time-major sequence: [N, C, H, W] → [W, N, C·H].
    public static func columns(_ f: Tensor) -> Tensor {
        f.permuted([3, 0, 1, 2]).reshaped(to: [f.shape[3], f.shape[0], f.shape[1] * f.shape[2]])
    }

    public func forward(_ x: Tensor) -> Tensor {
        let sequence = rnn(Self.columns(features(x)))          // [T, N, 2H]
        return classifier(sequence).permuted([1, 0, 2])        // [N, T, classes]
    }

    public var summaryName: String { "CRNN" }

    public func summaryRows(input: Tensor, prefix: String) -> (output: Tensor, rows: [SummaryRow]) {
        func name(_ child: String) -> String { prefix.isEmpty ? child : "\(prefix).\(child)" }
        let (f, convRows) = features.summaryRows(input: input, prefix: name("features"))
        let (s, recurrent) = rnn.summaryRows(input: Self.columns(f), prefix: name("rnn"))
        let (y, head) = classifier.summaryRows(input: s, prefix: name("classifier"))
        var (rnnRows, headRows) = (recurrent, head)
        // Per sample: T columns (the generic rows drop the time axis as if it were the batch).
        let steps = f.shape[3]
        rnnRows[0].outputShape = [steps, s.shape[2]]
        rnnRows[0].flops = rnn.flops(steps: steps)
        headRows[0].outputShape = [steps, y.shape[2]]
        headRows[0].flops *= steps
        return (y.permuted([1, 0, 2]), convRows + rnnRows + headRows)
    }
}
