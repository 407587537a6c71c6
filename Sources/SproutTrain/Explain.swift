import Foundation
import SproutData
import SproutNN
import SproutTensor

/// Why a classifier said what it said, as a heat map over the input: Grad-CAM (Selvaraju et
/// al. 2017: the last feature map's channels weighted by the class score's mean gradient,
/// positive part) or plain input-gradient saliency (|∂score/∂pixel|, largest over colours).
public enum Explanation {
    public enum Method: String, CaseIterable, Sendable, Codable { case gradcam, saliency }

    public struct HeatMap: Sendable {
        /// height × width values in [0, 1], row-major, at the input's resolution.
        public var values: [Float]
        public var height: Int, width: Int
        /// The class explained and every class's probability.
        public var classIndex: Int
        public var probabilities: [Float]
        /// Where Grad-CAM looked (the feature map's layer), or "input".
        public var location: String
    }

    /// input: one preprocessed image [1, C, H, W]; the model in evaluation mode.
    /// `classIndex` nil explains the top class.
    public static func heatMap(_ method: Method, model: any Layer, input: Tensor, classIndex: Int? = nil) throws -> HeatMap {
        guard input.rank == 4, input.shape[0] == 1 else {
            throw RunError.invalid("explain: one image [1, C, H, W] at a time, got \(input.shape)")
        }
        let (h, w) = (input.shape[2], input.shape[3])
        // Grad-CAM's cut runs the network once up to the map; the logits come from the rest of it.
        var cut: FeatureMapCut?
        if method == .gradcam {
            cut = withoutGradient { FeatureMapCut.find(in: model, input: input) }
            guard cut != nil else {
                throw RunError.invalid("explain: Grad-CAM needs a convolutional network (a feature map with a spatial extent); use --method saliency")
            }
        }
        let logits = withoutGradient { cut.map { $0.rest($0.map) } ?? model(input) }
        let probabilities = softmax(logits, alongAxis: 1).scalars
        let target = classIndex ?? probabilities.indices.max { probabilities[$0] < probabilities[$1] }!
        guard target >= 0, target < probabilities.count else {
            throw RunError.invalid("explain: class \(target) is not one of the model's \(probabilities.count)")
        }
        var oneHot = [Float](repeating: 0, count: probabilities.count)
        oneHot[target] = 1
        let pick = Tensor(shape: [1, probabilities.count], scalars: oneHot)
        switch method {
        case .gradcam:
            let cut = cut!
            //   map A: [1, K, fh, fw];  weights α_k = mean over (fh, fw) of ∂score/∂A_k;  cam = ReLU(Σ_k α_k A_k)
            let (_, grad) = valueWithGradient(at: cut.map) { a in (cut.rest(a) * pick).sum() }
            let (k, fh, fw) = (cut.map.shape[1], cut.map.shape[2], cut.map.shape[3])
            let a = cut.map.scalars, g = grad.scalars
            var cam = [Float](repeating: 0, count: fh * fw)
            for c in 0..<k {
                var alpha: Float = 0
                for i in 0..<(fh * fw) { alpha += g[c * fh * fw + i] }
                alpha /= Float(fh * fw)
                for i in 0..<(fh * fw) { cam[i] += alpha * a[c * fh * fw + i] }
            }
            let positive = cam.map { max(0, $0) }
            return HeatMap(values: normalized(resize(positive, from: (fh, fw), to: (h, w))), height: h, width: w, classIndex: target,
                           probabilities: probabilities, location: cut.location)
        case .saliency:
            let (_, grad) = valueWithGradient(at: input) { x in (model(x) * pick).sum() }
            let g = grad.scalars, channels = input.shape[1]
            var map = [Float](repeating: 0, count: h * w)
            for c in 0..<channels { for i in 0..<(h * w) { map[i] = max(map[i], abs(g[c * h * w + i])) } }
            return HeatMap(values: normalized(map, percentile: 0.99), height: h, width: w, classIndex: target,
                           probabilities: probabilities, location: "input")
        }
    }

    /// Scaled to [0, 1] by the maximum (or a high percentile, so a few extreme pixels do
    /// not leave the rest black).
    static func normalized(_ v: [Float], percentile: Float = 1) -> [Float] {
        let sorted = v.sorted()
        let top = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Float(sorted.count - 1) * percentile))]
        guard top > 0 else { return v.map { _ in 0 } }
        return v.map { min(1, max(0, $0 / top)) }
    }

    /// Bilinear resampling of a row-major map (pixel centres aligned, as PyTorch's
    /// align_corners=False).
    static func resize(_ v: [Float], from: (Int, Int), to: (Int, Int)) -> [Float] {
        let (sh, sw) = from, (dh, dw) = to
        var out = [Float](repeating: 0, count: dh * dw)
        for y in 0..<dh {
            let fy = max(0, (Float(y) + 0.5) * Float(sh) / Float(dh) - 0.5)
            let y0 = min(sh - 1, Int(fy)), y1 = min(sh - 1, y0 + 1), ty = fy - Float(y0)
            for x in 0..<dw {
                let fx = max(0, (Float(x) + 0.5) * Float(sw) / Float(dw) - 0.5)
                let x0 = min(sw - 1, Int(fx)), x1 = min(sw - 1, x0 + 1), tx = fx - Float(x0)
                let top = v[y0 * sw + x0] * (1 - tx) + v[y0 * sw + x1] * tx
                let bottom = v[y1 * sw + x0] * (1 - tx) + v[y1 * sw + x1] * tx
                out[y * dw + x] = top * (1 - ty) + bottom * ty
            }
        }
        return out
    }

    /// A blue → green → yellow → red colour for t in [0, 1] (a "jet"-like ramp).
    static func color(_ t: Float) -> (Float, Float, Float) {
        let r = min(1, max(0, 1.5 - abs(4 * t - 3))), g = min(1, max(0, 1.5 - abs(4 * t - 2))), b = min(1, max(0, 1.5 - abs(4 * t - 1)))
        return (r, g, b)
    }

    /// The heat map over the image: planar RGB bytes [3, H, W]. `image` is planar
    /// [channels, H, W] (grey images are repeated into the three colours); the colour covers
    /// hot regions and fades out where the heat is low, so the photo stays readable.
    public static func overlay(_ heat: HeatMap, on image: [UInt8], channels: Int) -> [UInt8] {
        let n = heat.height * heat.width
        var out = [UInt8](repeating: 0, count: 3 * n)
        for i in 0..<n {
            let t = heat.values[i]
            let (r, g, b) = color(t)
            let alpha = 0.15 + 0.55 * t
            for (c, v) in [r, g, b].enumerated() {
                let base = Float(image[(channels == 3 ? c : 0) * n + i])
                out[c * n + i] = UInt8(max(0, min(255, (1 - alpha) * base + alpha * 255 * v)))
            }
        }
        return out
    }

    /// Share of the heat inside a box (fractions of the image: x0, y0, x1, y1).
    public static func heatShare(_ heat: HeatMap, inside box: (Float, Float, Float, Float)) -> Float {
        var inside: Float = 0, total: Float = 0
        for y in 0..<heat.height {
            for x in 0..<heat.width {
                let v = heat.values[y * heat.width + x]
                total += v
                let fx = (Float(x) + 0.5) / Float(heat.width), fy = (Float(y) + 0.5) / Float(heat.height)
                if fx >= box.0 && fx < box.2 && fy >= box.1 && fy < box.3 { inside += v }
            }
        }
        return total > 0 ? inside / total : 0
    }
}

/// Pictures of what a network learned, as planar RGB bytes.
public enum NetworkPictures {
    /// Tiles of cellH × cellW in a near-square grid with `gap` white pixels around each: the
    /// picture's size and each tile's top-left corner.
    static func grid(tiles: Int, cellH: Int, cellW: Int, gap: Int) -> (height: Int, width: Int, origin: (Int) -> (y: Int, x: Int)) {
        let columns = max(1, Int(Double(tiles).squareRoot().rounded(.up))), rows = (tiles + columns - 1) / columns
        return (rows * (cellH + gap) + gap, columns * (cellW + gap) + gap,
                { (gap + ($0 / columns) * (cellH + gap), gap + ($0 % columns) * (cellW + gap)) })
    }

    /// The first convolution's filters as a grid: each filter scaled to its own range,
    /// `scale`× enlarged (nearest), RGB when it reads 3 channels, else the mean over channels.
    public static func filterGrid(_ weight: Tensor, scale: Int = 8, gap: Int = 2) -> (bytes: [UInt8], height: Int, width: Int) {
        let (k, c, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let cellH = kh * scale, cellW = kw * scale
        let (height, width, origin) = grid(tiles: k, cellH: cellH, cellW: cellW, gap: gap)
        var out = [UInt8](repeating: 255, count: 3 * height * width)
        let w = weight.scalars
        for f in 0..<k {
            let filter = Array(w[(f * c * kh * kw)..<((f + 1) * c * kh * kw)])
            let lo = filter.min() ?? 0, hi = filter.max() ?? 1, span = max(hi - lo, 1e-12)
            let (oy, ox) = origin(f)
            for y in 0..<cellH {
                for x in 0..<cellW {
                    let (sy, sx) = (y / scale, x / scale)
                    for ch in 0..<3 {
                        let v: Float
                        if c == 3 {
                            v = filter[(ch * kh + sy) * kw + sx]
                        } else {
                            var sum: Float = 0
                            for cc in 0..<c { sum += filter[(cc * kh + sy) * kw + sx] }
                            v = sum / Float(c)
                        }
                        out[(ch * height + oy + y) * width + ox + x] = UInt8(max(0, min(255, 255 * (v - lo) / span)))
                    }
                }
            }
        }
        return (out, height, width)
    }

    /// One layer's feature maps [1, K, h, w] as a grid of grey tiles (each map scaled to its own
    /// range), at most `limit` channels, each tile enlarged to about `tile` pixels.
    public static func activationGrid(_ map: Tensor, limit: Int = 64, tile: Int = 64, gap: Int = 2) -> (bytes: [UInt8], height: Int, width: Int) {
        let (k, h, w) = (min(limit, map.shape[1]), map.shape[2], map.shape[3])
        let scale = max(1, tile / max(h, w))
        let cellH = h * scale, cellW = w * scale
        let (height, width, origin) = grid(tiles: k, cellH: cellH, cellW: cellW, gap: gap)
        var out = [UInt8](repeating: 255, count: 3 * height * width)
        let v = map.scalars
        for f in 0..<k {
            let plane = v[(f * h * w)..<((f + 1) * h * w)]
            let lo = plane.min() ?? 0, hi = plane.max() ?? 1, span = max(hi - lo, 1e-12)
            let (oy, ox) = origin(f)
            for y in 0..<cellH {
                for x in 0..<cellW {
                    let value = UInt8(max(0, min(255, 255 * (plane[plane.startIndex + (y / scale) * w + x / scale] - lo) / span)))
                    for ch in 0..<3 { out[(ch * height + oy + y) * width + ox + x] = value }
                }
            }
        }
        return (out, height, width)
    }
}
