import Foundation
import SproutData

/// The learning-rate range test (Smith 2017; fastai's `lr_find`, Lightning's `lr_find`):
/// train for a few dozen batches while the rate grows exponentially from tiny to huge, record
/// the smoothed loss, and read a good rate off the curve — where the loss falls fastest.
public struct LearningRateFinder {
    public struct Result: Sendable, Codable {
        public var rates: [Float]
        /// The loss per step, raw and smoothed (exponential average, bias-corrected).
        public var losses: [Float]
        public var smoothed: [Float]
        /// Where the smoothed loss falls fastest against log(rate), before its minimum.
        public var steepest: Float
        /// The rate at the smoothed loss's minimum (fastai's older rule suggests a tenth of it).
        public var minimum: Float
        public var suggestion: Float { steepest }
        /// Why the sweep ended: "diverged" (loss past 4× its best), "non-finite loss" or "end of range".
        public var stopReason: String
    }

    public var start: Float = 1e-6
    public var end: Float = 10
    public var steps = 100
    public var smoothing: Float = 0.98

    public init(start: Float = 1e-6, end: Float = 10, steps: Int = 100) {
        (self.start, self.end, self.steps) = (start, end, max(5, steps))
    }

    /// Runs the sweep with `trainer` (its weights change: train afresh afterwards) on
    /// batches of `loader`, epoch after epoch if the sweep is longer than one.
    public func run(trainer: Trainer, loader: DataLoader) throws -> Result {
        trainer.schedule = nil
        var rates: [Float] = [], losses: [Float] = [], smoothed: [Float] = []
        var average: Float = 0, best = Float.infinity, reason = "end of range"
        var epoch = 0, iterator = loader.epoch(epoch).makeIterator()
        sweep: for i in 0..<steps {
            let rate = start * powf(end / start, Float(i) / Float(steps - 1))
            var batch = iterator.next()
            if batch == nil {
                epoch += 1
                iterator = loader.epoch(epoch).makeIterator()
                batch = iterator.next()
            }
            guard let batch else { break }
            trainer.optimizer.learningRate = rate
            let loss: Float
            do { loss = try trainer.trainStep(batch).loss } catch TrainingError.nonFiniteLoss {
                reason = "non-finite loss"
                break sweep
            }
            average = smoothing * average + (1 - smoothing) * loss
            let value = average / (1 - powf(smoothing, Float(i + 1)))
            rates.append(rate)
            losses.append(loss)
            smoothed.append(value)
            best = min(best, value)
            if i > 10 && value > 4 * best {
                reason = "diverged"
                break
            }
        }
        guard rates.count >= 3 else {
            throw RunError.invalid("the learning-rate sweep stopped after \(rates.count) steps (\(reason)); try a smaller --lr-start")
        }
        let lowest = smoothed.indices.min { smoothed[$0] < smoothed[$1] }!
        // Slope of the smoothed loss against log(rate), central differences, before the minimum
        // (past it the loss is already climbing).
        var steepestIndex = 0, steepestSlope = Float.infinity
        for i in 1..<max(2, lowest) where i + 1 < smoothed.count {
            let slope = (smoothed[i + 1] - smoothed[i - 1]) / (logf(rates[i + 1]) - logf(rates[i - 1]))
            if slope < steepestSlope { (steepestSlope, steepestIndex) = (slope, i) }
        }
        return Result(rates: rates, losses: losses, smoothed: smoothed, steepest: rates[steepestIndex], minimum: rates[lowest],
                      stopReason: reason)
    }
}

extension LearningRateFinder.Result {
    /// Loss against rate (log scale) as an SVG picture, the suggestion marked.
    public func svg(title: String) -> String {
        let w = 640.0, h = 400.0, left = 60.0, right = 20.0, top = 40.0, bottom = 50.0
        let lo = log10(Double(rates.first ?? 1e-6)), hi = log10(Double(rates.last ?? 10))
        let shown = smoothed.map(Double.init)
        let ymin = shown.min() ?? 0, ymax = min(shown.max() ?? 1, 4 * max(ymin, 1e-9) + 0.5)
        func x(_ r: Float) -> Double { left + (log10(Double(r)) - lo) / max(hi - lo, 1e-9) * (w - left - right) }
        func y(_ v: Double) -> Double { top + (1 - (min(v, ymax) - ymin) / max(ymax - ymin, 1e-9)) * (h - top - bottom) }
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                   "<text x=\"10\" y=\"22\" font-size=\"14\">\(title.replacingOccurrences(of: "<", with: "&lt;"))</text>"]
        for decade in Int(lo.rounded(.up))...Int(hi.rounded(.down)) {
            let px = x(Float(pow(10, Double(decade))))
            out.append(String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#eee\"/>", px, px, top, h - bottom))
            out.append(String(format: "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">1e%d</text>", px, h - bottom + 16, decade))
        }
        let points = zip(rates, shown).map { String(format: "%.1f,%.1f", x($0), y($1)) }.joined(separator: " ")
        out.append("<polyline fill=\"none\" stroke=\"#2266bb\" stroke-width=\"2\" points=\"\(points)\"/>")
        let sx = x(steepest)
        out.append(String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#c33\" stroke-dasharray=\"5 3\"/>", sx, sx, top, h - bottom))
        out.append(String(format: "<text x=\"%.1f\" y=\"%.0f\" fill=\"#c33\">suggested %.2g</text>", sx + 4, top + 14, Double(steepest)))
        out.append(String(format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">learning rate (log scale)</text>", (left + w - right) / 2, h - 12))
        out.append(String(format: "<text transform=\"translate(16,%.0f) rotate(-90)\" text-anchor=\"middle\">smoothed training loss</text>", (top + h - bottom) / 2))
        out.append(String(format: "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.3g</text><text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>",
                          left - 4, y(ymax) + 4, ymax, left - 4, y(ymin) + 4, ymin))
        out.append("</svg>")
        return out.joined(separator: "\n")
    }
}
