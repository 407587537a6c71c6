import SproutTensor

public struct SummaryRow: Sendable, Equatable {
    public var name: String
    /// Without the batch axis.
    public var outputShape: [Int]
    public var parameters: Int
    public var frozenParameters: Int
    public var flops: Int
}

public struct ModelSummary: Sendable, CustomStringConvertible {
    public var inputShape: [Int]
    public var rows: [SummaryRow]
    public var totalParameters: Int { rows.map(\.parameters).reduce(0, +) }
    public var totalFrozenParameters: Int { rows.map(\.frozenParameters).reduce(0, +) }
    public var totalFlops: Int { rows.map(\.flops).reduce(0, +) }

    public var description: String {
        let nameWidth = max(24, (rows.map(\.name.count).max() ?? 0) + 2)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
        func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }
        var lines = [pad("layer", nameWidth) + pad("output", 18) + lpad("params", 12) + lpad("FLOPs", 14)]
        lines.append(String(repeating: "─", count: nameWidth + 44))
        for r in rows {
            lines.append(pad(r.name, nameWidth) + pad("\(r.outputShape)", 18) + lpad(grouped(r.parameters), 12) + lpad(grouped(r.flops), 14))
        }
        lines.append(String(repeating: "─", count: nameWidth + 44))
        lines.append("input \(inputShape) · trainable parameters \(grouped(totalParameters))"
                     + (totalFrozenParameters > 0 ? " · frozen/state \(grouped(totalFrozenParameters))" : "")
                     + " · forward FLOPs per sample \(grouped(totalFlops))")
        return lines.joined(separator: "\n")
    }
}

/// 1234567 → "1,234,567"
public func grouped(_ n: Int) -> String {
    let s = String(abs(n))
    var out = ""
    for (i, ch) in s.enumerated() {
        if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return n < 0 ? "-" + out : out
}

/// Per layer: output shape, trainable parameter count and forward FLOPs (for one sample),
/// found by running one zero sample through the model in evaluation mode.
@discardableResult
public func summary(_ model: any Layer, inputShape: [Int], print shouldPrint: Bool = false) -> ModelSummary {
    let wasTraining = model.isTraining
    model.eval()
    defer { model.setTraining(wasTraining) }
    let rows = withoutGradient { model.summaryRows(input: Tensor.zeros([1] + inputShape), prefix: "").rows }
    let s = ModelSummary(inputShape: inputShape, rows: rows)
    if shouldPrint { print(s) }
    return s
}
