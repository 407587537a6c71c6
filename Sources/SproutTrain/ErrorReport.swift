import Foundation
import SproutData

/// `sprout eval --report DIR`: one self-contained HTML page (images inlined as PNG data,
/// no scripts, no external resources) for looking at what a classifier gets wrong — the
/// per-class table, the confusion matrix whose cells link to the images in them, the most
/// confidently wrong images with their top three classes, and a reliability diagram.
public enum ErrorReport {
    /// Bins of the reliability diagram and the expected calibration error.
    public struct CalibrationBin: Sendable, Equatable {
        public var low: Double, high: Double
        public var count: Int
        public var accuracy: Double, meanConfidence: Double
    }

    /// Confidence (the top class's probability) in `bins` equal bins, each with its accuracy.
    public static func calibration(_ samples: SampleOutcomes, bins: Int = 10) -> (bins: [CalibrationBin], expectedError: Double) {
        var count = [Int](repeating: 0, count: bins), hits = [Int](repeating: 0, count: bins)
        var confidence = [Double](repeating: 0, count: bins)
        for (p, ok) in zip(samples.confidence, samples.correct) {
            let b = min(bins - 1, max(0, Int(Double(p) * Double(bins))))
            count[b] += 1
            if ok { hits[b] += 1 }
            confidence[b] += Double(p)
        }
        let total = max(1, samples.count)
        var ece = 0.0
        let result = (0..<bins).map { b -> CalibrationBin in
            let n = count[b]
            let acc = n > 0 ? Double(hits[b]) / Double(n) : 0, conf = n > 0 ? confidence[b] / Double(n) : 0
            ece += Double(n) / Double(total) * abs(acc - conf)
            return CalibrationBin(low: Double(b) / Double(bins), high: Double(b + 1) / Double(bins), count: n, accuracy: acc, meanConfidence: conf)
        }
        return (result, ece)
    }

    /// The page. `evaluation.samples` must be in `dataset`'s order (as `evaluateModel` leaves it).
    public static func html(evaluation e: Evaluation, dataset: any Dataset, title: String, imagesPerCell: Int = 16,
                            confidentlyWrong: Int = 40) throws -> String {
        guard let samples = e.samples, samples.count == dataset.count else {
            throw RunError.invalid("the evaluation has no per-image outcomes for the \(dataset.count) images of this split")
        }
        let names = e.classNames.isEmpty ? dataset.classNames : e.classNames
        let confidence = samples.confidence, correct = samples.correct, predictions = samples.predictions
        func name(_ c: Int) -> String { c >= 0 && c < names.count ? names[c] : "\(c)" }
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
                .replacingOccurrences(of: "\"", with: "&quot;")
        }
        var thumbnails: [Int: String] = [:]
        func image(_ index: Int) -> String {
            if let cached = thumbnails[index] { return cached }
            let bytes = dataset.withPixels(ofSample: index) { Array($0) }
            let png = ImageWriter.encode(planar: bytes, channels: dataset.channels, height: dataset.height, width: dataset.width, format: .png)
            let tag = "<img src=\"data:image/png;base64,\(Data(png).base64EncodedString())\" width=\"\(max(64, dataset.width))\" alt=\"image \(index)\">"
            thumbnails[index] = tag
            return tag
        }
        func figure(_ i: Int) -> String {
            let top = zip(samples.top3[i], samples.top3Probabilities[i]).map { "\(esc(name($0))) \(String(format: "%.0f%%", 100 * $1))" }
            return "<figure>\(image(i))<figcaption>#\(i) true: <b>\(esc(name(samples.labels[i])))</b><br>\(top.joined(separator: "<br>"))</figcaption></figure>"
        }

        var out = ["<!doctype html><html><head><meta charset=\"utf-8\"><title>\(esc(title))</title><style>",
                   "body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}",
                   "td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}th{background:#f4f4f4}.l{text-align:left}",
                   "td.cell a{display:block;color:inherit;text-decoration:none}section{display:none;border:1px solid #ccc;padding:8px;margin:10px 0}",
                   "section:target{display:block}figure{display:inline-block;margin:4px;font-size:11px;vertical-align:top;width:110px}",
                   "img{image-rendering:pixelated;display:block}figure img{width:100%;height:auto}.note{color:#555}</style></head><body>",
                   "<h1>\(esc(title))</h1>",
                   "<p>\(e.count) images · top-1 \(String(format: "%.2f%%", 100 * e.top1)) · top-5 \(String(format: "%.2f%%", 100 * e.top5)) · loss \(String(format: "%.4f", e.loss))</p>"]

        out.append("<h2>Per class</h2><table><tr><th class=\"l\">class</th><th>precision</th><th>recall</th><th>F1</th><th>images</th></tr>")
        for m in e.perClass {
            out.append("<tr><td class=\"l\">\(esc(m.name))</td>" + String(format: "<td>%.3f</td><td>%.3f</td><td>%.3f</td>", m.precision, m.recall, m.f1)
                       + "<td>\(m.support)</td></tr>")
        }
        out.append("</table>")

        // The confusion matrix: each non-empty cell links to the images in it.
        var members: [[Int]] = Array(repeating: [], count: names.count * names.count)
        for i in 0..<samples.count {
            let t = samples.labels[i], p = predictions[i]
            if t >= 0, t < names.count, p >= 0, p < names.count { members[t * names.count + p].append(i) }
        }
        out.append("<h2>Confusion matrix</h2><p class=\"note\">Rows: true class; columns: predicted. Click a cell to see its images.</p>")
        out.append("<table><tr><th></th>" + names.indices.map { "<th>\(esc(name($0)))</th>" }.joined() + "</tr>")
        for t in names.indices {
            let rowTotal = max(1, e.confusion[t].reduce(0, +))
            var row = "<tr><th class=\"l\">\(esc(name(t)))</th>"
            for p in names.indices {
                let v = t < e.confusion.count && p < e.confusion[t].count ? e.confusion[t][p] : 0
                let f = Double(v) / Double(rowTotal), shade = Int(255 - 180 * f)
                let color = t == p ? "rgb(\(shade),\(255 - Int(60 * f)),\(shade))" : "rgb(255,\(shade),\(shade))"
                row += v > 0 ? "<td class=\"cell\" style=\"background:\(color)\"><a href=\"#cell-\(t)-\(p)\">\(v)</a></td>" : "<td>0</td>"
            }
            out.append(row + "</tr>")
        }
        out.append("</table>")
        for t in names.indices {
            for p in names.indices where !members[t * names.count + p].isEmpty {
                let list = members[t * names.count + p]
                // The most confident first: for a wrong cell, the worst mistakes.
                let shown = list.sorted { confidence[$0] > confidence[$1] }.prefix(imagesPerCell)
                out.append("<section id=\"cell-\(t)-\(p)\"><h3>true \(esc(name(t))), predicted \(esc(name(p))): \(list.count) images"
                           + (list.count > shown.count ? " (the \(shown.count) most confident)" : "") + "</h3>")
                out.append(shown.map(figure).joined())
                out.append("</section>")
            }
        }

        out.append("<h2>Most confidently wrong</h2><div>")
        let wrong = (0..<samples.count).filter { !correct[$0] }.sorted { confidence[$0] > confidence[$1] }
        out.append(wrong.prefix(confidentlyWrong).map(figure).joined())
        out.append("</div>")

        // Reliability diagram: per confidence bin, the share right; the diagonal is perfect calibration.
        let (bins, ece) = calibration(samples)
        let size = 320.0, pad = 40.0
        out.append("<h2>Calibration</h2><p class=\"note\">Expected calibration error \(String(format: "%.2f%%", 100 * ece)): bars show the accuracy of the images whose top probability fell in each bin; on the diagonal, a model's confidence would match how often it is right.</p>")
        out.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(size + 2 * pad))\" height=\"\(Int(size + 2 * pad))\" font-size=\"11\">")
        out.append(String(format: "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#999\"/>", pad, pad, size, size))
        for b in bins where b.count > 0 {
            let x = pad + b.low * size, w = (b.high - b.low) * size, h = b.accuracy * size
            out.append(String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#5a8ed0\" stroke=\"white\"><title>%d images, accuracy %.1f%%, mean confidence %.1f%%</title></rect>",
                              x, pad + size - h, w, h, b.count, 100 * b.accuracy, 100 * b.meanConfidence))
        }
        out.append(String(format: "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#c33\" stroke-dasharray=\"4 3\"/>", pad, pad + size, pad + size, pad))
        out.append(String(format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">confidence</text>", pad + size / 2, pad + size + 28))
        out.append(String(format: "<text transform=\"translate(14,%.0f) rotate(-90)\" text-anchor=\"middle\">accuracy</text>", pad + size / 2))
        out.append(String(format: "<text x=\"%.0f\" y=\"%.0f\">0</text><text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">1</text>", pad, pad + size + 14, pad + size, pad + size + 14))
        out.append("</svg></body></html>")
        return out.joined(separator: "\n")
    }
}
