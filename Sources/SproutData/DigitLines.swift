import CSproutImage
import Foundation
import SproutTensor

/// Lines of handwritten digits for sequence recognition: 1–8 real MNIST digits composed
/// left to right into one grey line image with random scale, spacing and vertical jitter,
/// the target being the digit string. Built from one set of source digits only (a split),
/// so digits held out for validation never appear in a training line.
///
/// Sample `index` is a fixed string of fixed source digits, drawn from (seed, index); its
/// layout is the canonical one drawn from the same seed, or, with `freshLayout`
/// augmentation, a new one each epoch from the loader's generator (with `rotation`, each
/// digit also turned by up to ±rotation degrees). Class k is the digit k;
/// a CTC model adds the blank as class 10 (`classNames.count`).
public struct DigitLines: Dataset {
    public static let lineHeight = 32
    /// Each digit's side before composing, as a share of MNIST's 28 px.
    static let scales: ClosedRange<Float> = 0.7...1.0
    /// Gap between neighbouring 28-px boxes, in pixels (MNIST digits have ~4 px of margin,
    /// so negative gaps bring the strokes close or make them touch).
    static let gaps = -6...3

    public let digits: ImageDataset
    public let count: Int
    public let lengths: ClosedRange<Int>
    public let width: Int
    public let seed: UInt64
    /// Each line's source digit indices (into `digits`), and so its labels.
    public let sources: [[Int]]
    public var channels: Int { 1 }
    public var height: Int { Self.lineHeight }
    public var classNames: [String] { (0...9).map(String.init) }

    /// The canvas width for lines of up to `maxLength` digits.
    public static func width(forLength maxLength: Int) -> Int { 24 * maxLength + 16 }

    public init(digits: ImageDataset, count: Int, lengths: ClosedRange<Int>, width: Int? = nil, seed: UInt64) throws {
        guard digits.channels == 1 && digits.height == 28 && digits.width == 28 && digits.count > 0 else {
            throw DatasetError.invalid("digit lines need 28×28 grey digits (MNIST), got \(digits.count) of \(digits.shape)")
        }
        guard lengths.lowerBound >= 1 && lengths.upperBound <= 32 else {
            throw DatasetError.invalid("digit lines: line lengths \(lengths) must lie within 1...32")
        }
        let width = width ?? Self.width(forLength: lengths.upperBound)
        guard width >= Self.width(forLength: lengths.upperBound) else {
            throw DatasetError.invalid("digit lines: a \(width)-px line cannot hold \(lengths.upperBound) digits (needs \(Self.width(forLength: lengths.upperBound)))")
        }
        (self.digits, self.count, self.lengths, self.width, self.seed) = (digits, count, lengths, width, seed)
        var sources: [[Int]] = []
        sources.reserveCapacity(count)
        for i in 0..<count {
            var g = SeededGenerator(seed: mix(seed, 0x4C49_4E45, UInt64(i)))
            let n = lengths.lowerBound + g.nextInt(below: lengths.count)
            sources.append((0..<n).map { _ in g.nextInt(below: digits.count) })
        }
        self.sources = sources
    }

    public func labels(of index: Int) -> [Int] { sources[index].map { Int(digits.labels[$0]) } }
    public func text(of index: Int) -> String { labels(of: index).map(String.init).joined() }

    public func targets(_ indices: [Int]) -> Targets { .sequences(indices.map(labels(of:))) }

    /// Where each digit goes: its side and top-left corner.
    struct Placement { var side: Int, x: Int, y: Int, angle: Double = 0 }

    /// A layout of `n` digits; with `rotation` (degrees, training only) each digit is also
    /// turned by up to ±rotation, drawn after everything else so that layouts without it are
    /// the same draws.
    func layout(_ n: Int, generator g: inout SeededGenerator, rotation: Float = 0) -> [Placement] {
        var sides = (0..<n).map { _ in Int((28 * (Self.scales.lowerBound + g.nextUniform() * (Self.scales.upperBound - Self.scales.lowerBound))).rounded()) }
        var gaps = (0..<max(n - 1, 0)).map { _ in Self.gaps.lowerBound + g.nextInt(below: Self.gaps.count) }
        // Too wide (only with many large digits): close the gaps, then shrink the digits.
        while sides.reduce(0, +) + gaps.reduce(0, +) > width {
            if let k = gaps.indices.first(where: { gaps[$0] > Self.gaps.lowerBound }) { gaps[k] -= 1 }
            else if let k = sides.indices.max(by: { sides[$0] < sides[$1] }) { sides[k] -= 1 }
        }
        let total = sides.reduce(0, +) + gaps.reduce(0, +)
        var x = g.nextInt(below: width - total + 1)
        var out: [Placement] = []
        for k in 0..<n {
            out.append(Placement(side: sides[k], x: x, y: g.nextInt(below: Self.lineHeight - sides[k] + 1)))
            if k < n - 1 { x += sides[k] + gaps[k] }
        }
        if rotation > 0 {
            for k in out.indices { out[k].angle = Double((g.nextUniform() * 2 - 1) * rotation) * .pi / 180 }
        }
        return out
    }

    /// Composes line `index` with `placements` into `out` (height × width, values 0...1):
    /// each digit resampled bilinearly to its side and combined by maximum (overlapping
    /// strokes stay strokes).
    func compose(_ index: Int, _ placements: [Placement], into out: UnsafeMutablePointer<Float>) {
        out.initialize(repeating: 0, count: height * width)
        digits.pixels.withUnsafeBufferPointer { all in
            for (k, p) in zip(sources[index], placements) {
                sprout_paste_max_bilinear(all.baseAddress! + k * 784, 28, 28, Int32(p.side), Int32(p.side), p.angle,
                                          out, Int32(width), Int32(height), Int32(p.x), Int32(p.y))
            }
        }
    }

    /// The canonical layout of line `index` (evaluation, `withPixels`).
    func canonicalLayout(_ index: Int) -> [Placement] {
        var g = SeededGenerator(seed: mix(seed, 0x504C_4143, UInt64(index)))
        return layout(sources[index].count, generator: &g)
    }

    public func withPixels<R>(ofSample index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        var floats = [Float](repeating: 0, count: height * width)
        floats.withUnsafeMutableBufferPointer { compose(index, canonicalLayout(index), into: $0.baseAddress!) }
        let bytes = floats.map { UInt8(max(0, min(255, ($0 * 255).rounded()))) }
        return try bytes.withUnsafeBufferPointer(body)
    }

    public func renderSample(_ index: Int, augmentation: Augmentation, generator: inout SeededGenerator,
                             into out: UnsafeMutablePointer<Float>) throws -> Bool {
        let placements = augmentation.freshLayout
            ? layout(sources[index].count, generator: &generator, rotation: augmentation.rotation) : canonicalLayout(index)
        compose(index, placements, into: out)
        return true
    }
}
