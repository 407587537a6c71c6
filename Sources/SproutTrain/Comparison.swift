import Foundation

/// Two or more runs evaluated on the same images, side by side: what differs in their
/// configurations, accuracy with a 95% interval, per-class precision/recall/F1 with the
/// change from the first run (the baseline), and McNemar's test on the paired predictions —
/// whether the runs' accuracies differ by more than the luck of which images each got right.
public struct RunComparison: Sendable {
    public struct Run: Sendable {
        public var name: String
        public var configuration: RunConfiguration
        public var evaluation: Evaluation
        /// Which checkpoint was evaluated (e.g. "step 880 (EMA weights)").
        public var checkpoint: String

        public init(name: String, configuration: RunConfiguration, evaluation: Evaluation, checkpoint: String) {
            (self.name, self.configuration, self.evaluation, self.checkpoint) = (name, configuration, evaluation, checkpoint)
        }
    }

    /// A setting whose value is not the same in every run (values in run order; "—" when unset).
    public struct Difference: Sendable, Equatable {
        public var key: String
        public var values: [String]
    }

    /// McNemar's test of a run against the baseline on the same images.
    public struct PairedTest: Sendable, Equatable {
        /// Images the baseline got right and this run wrong, and the other way round.
        public var baselineOnly: Int, runOnly: Int
        /// Two-sided exact binomial p-value of the discordant pairs (McNemar's exact test).
        public var pValue: Double
        public var significant: Bool { pValue < 0.05 }
    }

    public let runs: [Run]
    public let differences: [Difference]
    /// tests[i] compares runs[i + 1] with runs[0].
    public let tests: [PairedTest]

    /// Fails when the runs were not evaluated on the same images in the same order (their
    /// labels differ) or an evaluation has no per-image outcomes.
    public init(_ runs: [Run]) throws {
        guard runs.count >= 2 else { throw RunError.invalid("compare needs at least two runs, got \(runs.count)") }
        let outcomes = try runs.map { run -> SampleOutcomes in
            guard let s = run.evaluation.samples, s.count == run.evaluation.count else {
                throw RunError.invalid("\(run.name): its evaluation has no per-image outcomes to pair")
            }
            return s
        }
        for (run, o) in zip(runs.dropFirst(), outcomes.dropFirst()) where o.labels != outcomes[0].labels {
            throw RunError.invalid("\(run.name) was evaluated on other images than \(runs[0].name) (\(o.count) vs \(outcomes[0].count) images, "
                                   + "labels differ): compare needs the same evaluation split (same dataset, hold-out and order)")
        }
        self.runs = runs
        differences = Self.differences(runs.map(\.configuration))
        tests = outcomes.dropFirst().map { Self.mcNemar(baseline: outcomes[0].correct, other: $0.correct) }
    }

    // MARK: - Statistics

    /// Wilson's 95% score interval for `hits` out of `n` (well behaved near 0 and 1, unlike
    /// the normal approximation).
    public static func wilsonInterval(hits: Int, of n: Int, z: Double = 1.959964) -> (low: Double, high: Double) {
        guard n > 0 else { return (0, 1) }
        let p = Double(hits) / Double(n), nn = Double(n), z2 = z * z
        let center = (p + z2 / (2 * nn)) / (1 + z2 / nn)
        let half = z / (1 + z2 / nn) * (p * (1 - p) / nn + z2 / (4 * nn * nn)).squareRoot()
        return (max(0, center - half), min(1, center + half))
    }

    /// McNemar's exact test: under "the two are equally accurate" each discordant image is a
    /// fair coin; p = P(a split at least this uneven), two-sided.
    public static func mcNemar(baseline: [Bool], other: [Bool]) -> PairedTest {
        var b = 0, c = 0
        for (x, y) in zip(baseline, other) {
            if x && !y { b += 1 }
            if !x && y { c += 1 }
        }
        return PairedTest(baselineOnly: b, runOnly: c, pValue: exactBinomialTwoSided(min(b, c), of: b + c))
    }

    /// 2·P(X ≤ k) for X ~ Binomial(n, ½), capped at 1; summed in log space (n can be thousands).
    static func exactBinomialTwoSided(_ k: Int, of n: Int) -> Double {
        guard n > 0 else { return 1 }
        let logHalfPower = Double(n) * log(0.5)
        var total = 0.0
        for i in 0...k {
            total += exp(lgamma(Double(n + 1)) - lgamma(Double(i + 1)) - lgamma(Double(n - i + 1)) + logHalfPower)
        }
        return min(1, 2 * total)
    }

    // MARK: - Configuration differences

    /// The settings (flattened JSON keys, e.g. "muon.learningRate") whose values differ.
    static func differences(_ configurations: [RunConfiguration]) -> [Difference] {
        let flat = configurations.map(flatten)
        let keys = Set(flat.flatMap(\.keys)).subtracting(["runDir"]).sorted()
        return keys.compactMap { key in
            let values = flat.map { $0[key] ?? "—" }
            return Set(values).count > 1 ? Difference(key: key, values: values) : nil
        }
    }

    static func flatten(_ configuration: RunConfiguration) -> [String: String] {
        guard let data = try? JSONEncoder().encode(configuration),
              let object = try? JSONSerialization.jsonObject(with: data) else { return [:] }
        var out: [String: String] = [:]
        func walk(_ value: Any, _ prefix: String) {
            if let dict = value as? [String: Any] {
                for (k, v) in dict { walk(v, prefix.isEmpty ? k : prefix + "." + k) }
            } else if let text = value as? String {
                out[prefix] = text
            } else if let data = try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys]) {
                // The value's own JSON text (numbers, booleans, arrays), without the wrapping [ ].
                out[prefix] = String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
            }
        }
        walk(object, "")
        return out
    }
}

// MARK: - Reports

extension RunComparison {
    func accuracyText(_ e: Evaluation) -> String {
        let hits = Int((e.top1 * Double(e.count)).rounded())
        let (lo, hi) = Self.wilsonInterval(hits: hits, of: e.count)
        return String(format: "%.2f%% (95%% CI %.2f–%.2f)", 100 * e.top1, 100 * lo, 100 * hi)
    }

    func verdict(_ t: PairedTest, _ run: Run) -> String {
        let direction = t.runOnly > t.baselineOnly ? "better" : t.runOnly < t.baselineOnly ? "worse" : "no different"
        let p = t.pValue < 1e-4 ? String(format: "%.1e", t.pValue) : String(format: "%.4f", t.pValue)
        let meaning = t.significant ? "significant at 5%: \(run.name) is \(direction)"
                                    : "not significant at 5%: this difference could be chance"
        return "\(t.baselineOnly) images only \(runs[0].name) got right, \(t.runOnly) only \(run.name) did; McNemar p = \(p) (\(meaning))"
    }

    /// The comparison as text for a terminal.
    public var textReport: String {
        var lines: [String] = []
        let width = max(12, runs.map(\.name.count).max() ?? 0) + 2
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
        func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }
        lines.append("runs (the first is the baseline):")
        for r in runs { lines.append("  \(pad(r.name, width))\(r.checkpoint), \(r.evaluation.count) images") }
        lines.append("")
        if differences.isEmpty {
            lines.append("configurations: identical")
        } else {
            let keyWidth = max(10, differences.map(\.key.count).max() ?? 0) + 2
            lines.append("configuration differences:")
            for d in differences { lines.append("  " + pad(d.key, keyWidth) + d.values.map { pad($0, 14) }.joined()) }
        }
        lines.append("")
        lines.append("accuracy (top-1):")
        for r in runs { lines.append("  \(pad(r.name, width))\(accuracyText(r.evaluation))") }
        lines.append("")
        for (t, r) in zip(tests, runs.dropFirst()) { lines.append(verdict(t, r)) }
        lines.append("")
        // Per class: each run's P/R/F1, and the last column the change of F1 from the baseline.
        let names = runs[0].evaluation.perClass.map(\.name)
        let nameWidth = max(8, names.map(\.count).max() ?? 0) + 2
        var header = pad("class", nameWidth)
        for (i, _) in runs.enumerated() { header += lpad("P\(i)", 7) + lpad("R\(i)", 7) + lpad("F1\(i)", 7) }
        for i in 1..<runs.count { header += lpad("ΔF1\(i)", 8) }
        lines.append("per class (P precision, R recall; run 0 is the baseline):")
        lines.append(header)
        let tables = runs.map(\.evaluation.perClass)
        for (c, name) in names.enumerated() {
            var line = pad(name, nameWidth)
            for t in tables where c < t.count {
                line += lpad(String(format: "%.3f", t[c].precision), 7) + lpad(String(format: "%.3f", t[c].recall), 7)
                    + lpad(String(format: "%.3f", t[c].f1), 7)
            }
            for t in tables.dropFirst() where c < t.count { line += lpad(String(format: "%+.3f", t[c].f1 - tables[0][c].f1), 8) }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// The comparison as one JSON object (`sprout compare --json`).
    public var jsonObject: [String: Any] {
        let names = runs[0].evaluation.perClass.map(\.name)
        return [
            "runs": runs.map { r -> [String: Any] in
                let hits = Int((r.evaluation.top1 * Double(r.evaluation.count)).rounded())
                let (lo, hi) = Self.wilsonInterval(hits: hits, of: r.evaluation.count)
                return ["name": r.name, "checkpoint": r.checkpoint, "images": r.evaluation.count, "top1": r.evaluation.top1,
                        "top1_ci95": [lo, hi], "loss": r.evaluation.loss,
                        "per_class": r.evaluation.perClass.map { ["name": $0.name, "precision": $0.precision, "recall": $0.recall,
                                                                  "f1": $0.f1, "support": $0.support] }]
            },
            "differences": differences.map { ["key": $0.key, "values": $0.values] },
            "tests": zip(tests, runs.dropFirst()).map { t, r -> [String: Any] in
                ["run": r.name, "baseline": runs[0].name, "baseline_only_correct": t.baselineOnly, "run_only_correct": t.runOnly,
                 "p_value": t.pValue, "significant_at_5_percent": t.significant]
            },
            "classes": names,
        ]
    }

    /// A self-contained HTML page: the differences, accuracy with intervals as an SVG
    /// chart, the tests, and the per-class table with the F1 changes coloured.
    public func html(title: String) -> String {
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        var out = ["<!doctype html><html><head><meta charset=\"utf-8\"><title>\(esc(title))</title><style>",
                   "body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}",
                   "td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}",
                   ".up{background:#dff3df}.down{background:#f8dcdc}.note{color:#555}</style></head><body>",
                   "<h1>\(esc(title))</h1>", "<p class=\"note\">The first run is the baseline. All runs were evaluated on the same \(runs[0].evaluation.count) images.</p>"]
        out.append("<h2>What differs</h2>")
        if differences.isEmpty {
            out.append("<p>The configurations are identical.</p>")
        } else {
            out.append("<table><tr><th class=\"l\">setting</th>" + runs.map { "<th>\(esc($0.name))</th>" }.joined() + "</tr>")
            for d in differences { out.append("<tr><td class=\"l\">\(esc(d.key))</td>" + d.values.map { "<td>\(esc($0))</td>" }.joined() + "</tr>") }
            out.append("</table>")
        }
        // Accuracy with its interval: one bar per run on a shared axis.
        out.append("<h2>Accuracy</h2>")
        let intervals = runs.map { r -> (Double, Double, Double) in
            let hits = Int((r.evaluation.top1 * Double(r.evaluation.count)).rounded())
            let (lo, hi) = Self.wilsonInterval(hits: hits, of: r.evaluation.count)
            return (r.evaluation.top1, lo, hi)
        }
        let lowest = max(0, (intervals.map(\.1).min() ?? 0) - 0.02), highest = min(1, (intervals.map(\.2).max() ?? 1) + 0.02)
        let w = 560.0, left = 170.0, rowH = 30.0
        func x(_ v: Double) -> Double { left + (v - lowest) / max(highest - lowest, 1e-9) * (w - left - 20) }
        out.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(Double(runs.count) * rowH + 40))\" font-size=\"12\">")
        for (i, (r, iv)) in zip(runs, intervals).enumerated() {
            let y = 20 + Double(i) * rowH
            out.append("<text x=\"\(left - 8)\" y=\"\(y + 4)\" text-anchor=\"end\">\(esc(r.name))</text>")
            out.append(String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#4a7\" stroke-width=\"6\"/>", x(iv.1), x(iv.2), y, y))
            out.append(String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"#164\"/>", x(iv.0), y))
            out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\">%.2f%%</text>", x(iv.2) + 6, y + 4, 100 * iv.0))
        }
        let axisY = 20 + Double(runs.count) * rowH
        out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\">%.1f%%</text><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.1f%%</text>",
                          left, axisY, 100 * lowest, w - 20, axisY, 100 * highest))
        out.append("</svg><p class=\"note\">Dots: top-1 accuracy; bars: Wilson 95% intervals.</p>")
        out.append("<h2>Is the difference real?</h2><ul>")
        for (t, r) in zip(tests, runs.dropFirst()) { out.append("<li>\(esc(verdict(t, r)))</li>") }
        out.append("</ul>")
        out.append("<h2>Per class</h2><table><tr><th class=\"l\">class</th>")
        for r in runs { out.append("<th>\(esc(r.name)) precision</th><th>recall</th><th>F1</th>") }
        for r in runs.dropFirst() { out.append("<th>ΔF1 \(esc(r.name))</th>") }
        out.append("</tr>")
        let tables = runs.map(\.evaluation.perClass)
        for (c, m) in tables[0].enumerated() {
            var row = "<tr><td class=\"l\">\(esc(m.name))</td>"
            for t in tables where c < t.count {
                row += String(format: "<td>%.3f</td><td>%.3f</td><td>%.3f</td>", t[c].precision, t[c].recall, t[c].f1)
            }
            for t in tables.dropFirst() where c < t.count {
                let d = t[c].f1 - m.f1
                row += "<td class=\"\(d > 0.005 ? "up" : d < -0.005 ? "down" : "")\">" + String(format: "%+.3f", d) + "</td>"
            }
            out.append(row + "</tr>")
        }
        out.append("</table></body></html>")
        return out.joined(separator: "\n")
    }
}
