import Foundation

extension Evaluation {
    /// Loss, top-1/top-5, the per-class table and the confusion matrix as text.
    public func textReport(title: String) -> String {
        if let sequence { return sequenceReport(title: title, sequence) }
        var lines = [title, String(format: "images %d   loss %.4f   top-1 %.2f%%   top-5 %.2f%%", count, loss, 100 * top1, 100 * top5), ""]
        let nameWidth = max(8, classNames.map(\.count).max() ?? 0) + 2
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
        func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }
        lines.append(pad("class", nameWidth) + lpad("precision", 10) + lpad("recall", 8) + lpad("F1", 8) + lpad("support", 9))
        for m in perClass {
            lines.append(pad(m.name, nameWidth) + lpad(String(format: "%.3f", m.precision), 10) + lpad(String(format: "%.3f", m.recall), 8)
                         + lpad(String(format: "%.3f", m.f1), 8) + lpad("\(m.support)", 9))
        }
        lines.append("")
        lines.append("confusion matrix (rows: true class, columns: predicted)")
        let cell = max(5, String(confusion.flatMap { $0 }.max() ?? 0).count + 1)
        lines.append(pad("", nameWidth) + confusion.indices.map { lpad("\($0)", cell) }.joined())
        for (i, row) in confusion.enumerated() {
            let label = "\(i) " + (i < classNames.count ? classNames[i] : "")
            lines.append(pad(String(label.prefix(nameWidth)), nameWidth) + row.map { lpad("\($0)", cell) }.joined())
        }
        return lines.joined(separator: "\n")
    }

    /// A line recogniser's evaluation: sequence accuracy, character error rate with its
    /// edits, the most frequent confusions and some lines read wrong.
    func sequenceReport(title: String, _ s: SequenceMetrics) -> String {
        var lines = [title,
                     String(format: "lines %d   loss %.4f   sequence accuracy %.2f%%   character error rate %.3f%%", count, loss,
                            100 * top1, 100 * s.characterErrorRate),
                     "characters \(s.characters): \(s.substitutions) substituted, \(s.deletions) missed, \(s.insertions) inserted", ""]
        if !s.confusions.isEmpty {
            lines.append("most frequent confusions (truth → read, ∅ = no character)")
            for c in s.confusions { lines.append("  \(c.truth) → \(c.predicted)   \(c.count)") }
            lines.append("")
        }
        if !s.errors.isEmpty {
            lines.append("lines read wrong (truth → read)")
            for e in s.errors.prefix(10) { lines.append("  \(e[0]) → \(e[1].isEmpty ? "∅" : e[1])") }
        }
        return lines.joined(separator: "\n")
    }

    /// The JSON object `sprout eval --json` prints and saves.
    public func jsonObject(extra: [String: Any] = [:]) -> [String: Any] {
        var object: [String: Any] = [
            "count": count, "loss": loss, "top1": top1, "top5": top5, "confusion": confusion, "class_names": classNames,
            "per_class": perClass.map { ["name": $0.name, "precision": $0.precision, "recall": $0.recall, "f1": $0.f1, "support": $0.support] },
        ]
        if let s = sequence {
            object["top5"] = nil
            object["sequence_accuracy"] = s.sequenceAccuracy
            object["cer"] = s.characterErrorRate
            object["characters"] = s.characters
            object["substitutions"] = s.substitutions
            object["deletions"] = s.deletions
            object["insertions"] = s.insertions
            object["confusions"] = s.confusions.map { ["truth": $0.truth, "predicted": $0.predicted, "count": $0.count] }
            object["errors"] = s.errors.map { ["truth": $0[0], "read": $0[1]] }
        }
        for (k, v) in extra { object[k] = v }
        return object
    }

    /// The confusion matrix as an SVG picture: cells shaded by the fraction of each true
    /// class, with counts and class names.
    public func confusionSVG(title: String) -> String {
        let n = confusion.count, cell = 44, left = 150, top = 60
        let size = (left + n * cell + 20, top + n * cell + 130)
        func esc(_ s: String) -> String { s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;") }
        var svg = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(size.0)\" height=\"\(size.1)\" font-family=\"sans-serif\" font-size=\"12\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                   "<text x=\"10\" y=\"22\" font-size=\"15\">\(esc(title))</text>",
                   "<text x=\"10\" y=\"42\">top-1 \(String(format: "%.2f%%", 100 * top1)) · top-5 \(String(format: "%.2f%%", 100 * top5)) · \(count) images · rows: true class, columns: predicted</text>"]
        for (i, row) in confusion.enumerated() {
            let total = max(1, row.reduce(0, +))
            let name = i < classNames.count ? classNames[i] : "\(i)"
            svg.append("<text x=\"\(left - 6)\" y=\"\(top + i * cell + cell / 2 + 4)\" text-anchor=\"end\">\(esc(name))</text>")
            for (j, v) in row.enumerated() {
                let f = Double(v) / Double(total)
                let shade = Int(255 - 200 * f)
                let fill = i == j ? "rgb(\(shade),\(255 - Int(80 * f)),\(shade))" : "rgb(255,\(shade),\(shade))"
                svg.append("<rect x=\"\(left + j * cell)\" y=\"\(top + i * cell)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"\(fill)\" stroke=\"#ccc\"/>")
                svg.append("<text x=\"\(left + j * cell + cell / 2)\" y=\"\(top + i * cell + cell / 2 + 4)\" text-anchor=\"middle\">\(v)</text>")
            }
        }
        for j in 0..<n {
            let name = j < classNames.count ? classNames[j] : "\(j)"
            let x = left + j * cell + cell / 2, y = top + n * cell + 10
            svg.append("<text transform=\"translate(\(x),\(y)) rotate(60)\">\(esc(name))</text>")
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n")
    }
}
