import CSproutImage
import Foundation
import SproutTensor

/// torchvision's RandomResizedCrop parameters: a crop covering `scale` of the image's area
/// with aspect ratio (width/height) drawn log-uniformly from `ratio`, resized to the output.
public struct ResizedCrop: Sendable, Equatable, Codable {
    public var scale: ClosedRange<Float>
    public var ratio: ClosedRange<Float>
    public init(scale: ClosedRange<Float> = 0.08...1, ratio: ClosedRange<Float> = (3.0 / 4)...(4.0 / 3)) {
        (self.scale, self.ratio) = (scale, ratio)
    }
    public static let torchvision = ResizedCrop()
}

/// Photos of any size as a fixed-size dataset: each sample is decoded when a batch needs
/// it (JPEGs at the smallest DCT scale that still covers the crop), turned upright, and
/// resampled once to `size`×`size` — a random resized crop with flip and rotation in
/// training; in evaluation the shorter side scaled to `resize` and the centre `size` square
/// (torchvision's Resize(256) + CenterCrop(224)). Memory holds the file list only.
public struct PhotoDataset: Dataset {
    public let source: any PhotoSource
    public let size: Int
    public let resize: Int

    /// The source's labels, read once (a pack computes them from its index).
    public let labels: [Int32]

    public init(source: any PhotoSource, size: Int, resize: Int? = nil) {
        precondition(size > 0, "PhotoDataset: size must be positive")
        self.source = source
        labels = source.labels
        self.size = size
        self.resize = resize ?? Int((Double(size) * 256 / 224).rounded())
        precondition(self.resize >= size, "PhotoDataset: resize \(self.resize) is smaller than the crop \(size)")
    }

    public var count: Int { source.count }
    public var channels: Int { 3 }
    public var height: Int { size }
    public var width: Int { size }
    public var classNames: [String] { source.classNames }

    public func targets(_ indices: [Int]) -> Targets { .classes(indices.map { Int(labels[$0]) }) }

    public func subset(indices: [Int]) -> PhotoDataset {
        PhotoDataset(source: source.subset(indices: indices), size: size, resize: resize)
    }

    /// This dataset's samples followed by `other`'s (same size and classes).
    public func merged(with other: PhotoDataset) -> PhotoDataset {
        precondition(other.size == size && other.classNames == classNames, "PhotoDataset.merged: different sizes or classes")
        return PhotoDataset(source: ConcatenatedPhotos(parts: [source, other.source]), size: size, resize: resize)
    }

    public func stratifiedSplit(validationCount: Int, seed: UInt64) -> (train: PhotoDataset, validation: PhotoDataset) {
        let (t, v) = stratifiedSplitIndices(labels: labels, classCount: source.classCount,
                                            validationCount: validationCount, seed: seed)
        return (subset(indices: t), subset(indices: v))
    }

    /// The evaluation view of sample `index` as bytes [3, size, size].
    public func evaluationPixels(_ index: Int) throws -> [UInt8] {
        var floats = [Float](repeating: 0.5, count: 3 * size * size)
        var g = SeededGenerator(seed: 0)
        try floats.withUnsafeMutableBufferPointer { try render(index, augmentation: .none, generator: &g, into: $0.baseAddress!) }
        return floats.map { UInt8(max(0, min(255, ($0 * 255).rounded()))) }
    }

    /// The evaluation view as bytes (a file that does not decode gives a grey image: this
    /// path cannot report it; the loader's and `evaluationPixels` do).
    public func withPixels<R>(ofSample index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        let bytes = (try? evaluationPixels(index)) ?? [UInt8](repeating: 128, count: 3 * size * size)
        return try bytes.withUnsafeBufferPointer(body)
    }

    public func renderSample(_ index: Int, augmentation: Augmentation, generator: inout SeededGenerator,
                             into out: UnsafeMutablePointer<Float>) throws -> Bool {
        try render(index, augmentation: augmentation, generator: &generator, into: out)
        return true
    }

    /// Sample `index` as floats in [0, 1], [3, size, size], at `out`.
    public func render(_ index: Int, augmentation aug: Augmentation, generator g: inout SeededGenerator,
                       into out: UnsafeMutablePointer<Float>) throws {
        let name = source.name(of: index)
        var bytes: [UInt8] = []
        var image = try source.decoded(index)
        let (W, H): (Int, Int)
        if let image {
            (W, H) = (image.width, image.height)
        } else {
            bytes = try source.encoded(index)
            guard let d = ImageDecoder.uprightDimensions(bytes) else {
                throw DatasetError.undecodableImage(name, reason: "not a readable image header")
            }
            (W, H) = d
        }
        // The crop, in the upright full-size image's pixels.
        var crop: (x: Double, y: Double, w: Double, h: Double)
        if let rrc = aug.resizedCrop {
            crop = Self.randomResizedCrop(width: W, height: H, rrc, &g)
        } else {
            let side = Double(min(W, H)) * Double(size) / Double(resize)
            crop = ((Double(W) - side) / 2, (Double(H) - side) / 2, side, side)
        }
        let flip = aug.horizontalFlip && g.nextUniform() < 0.5
        let angle = aug.rotation > 0 ? Double((g.nextUniform() * 2 - 1) * aug.rotation) * .pi / 180 : 0
        if image == nil {
            // Decode at the smallest scale that keeps the crop at least `size` pixels across.
            let need = Int((Double(min(W, H)) * Double(size) / min(crop.w, crop.h)).rounded(.up))
            image = try ImageDecoder.decode(bytes, channels: 3, atLeast: need, name: name)
        }
        guard var img = image else { return }
        var f = Double(img.width) / Double(W)
        // A bilinear sample skips pixels beyond a 2:1 reduction: average k×k blocks first.
        let k = Int(min(crop.w, crop.h) * f / Double(size))
        if k >= 2 {
            img = Self.boxReduced(img, by: k)
            f /= Double(k)
        }
        crop = (crop.x * f, crop.y * f, crop.w * f, crop.h * f)
        Self.resample(img, crop: crop, angle: angle, flip: flip, width: size, height: size, into: out)
    }

    /// torchvision's RandomResizedCrop.get_params: ten tries at an area and ratio that fit,
    /// else the whole image's centre with the ratio clamped into range.
    static func randomResizedCrop(width W: Int, height H: Int, _ p: ResizedCrop, _ g: inout SeededGenerator)
        -> (x: Double, y: Double, w: Double, h: Double) {
        let area = Double(W * H)
        let (lr0, lr1) = (log(Double(p.ratio.lowerBound)), log(Double(p.ratio.upperBound)))
        for _ in 0..<10 {
            let target = area * Double(p.scale.lowerBound + g.nextUniform() * (p.scale.upperBound - p.scale.lowerBound))
            let aspect = exp(lr0 + Double(g.nextUniform()) * (lr1 - lr0))
            let w = (target * aspect).squareRoot().rounded(), h = (target / aspect).squareRoot().rounded()
            if w > 0 && h > 0 && w <= Double(W) && h <= Double(H) {
                let y = Double(g.nextInt(below: H - Int(h) + 1)), x = Double(g.nextInt(below: W - Int(w) + 1))
                return (x, y, w, h)
            }
        }
        let inRatio = Double(W) / Double(H)
        var (w, h) = (Double(W), Double(H))
        if inRatio < Double(p.ratio.lowerBound) { h = (w / Double(p.ratio.lowerBound)).rounded() }
        else if inRatio > Double(p.ratio.upperBound) { w = (h * Double(p.ratio.upperBound)).rounded() }
        return ((Double(W) - w) / 2, (Double(H) - h) / 2, w, h)
    }

    static func rgb(fromGrey img: DecodedImage) -> DecodedImage {
        var px = [UInt8](repeating: 0, count: img.width * img.height * 3)
        for i in 0..<(img.width * img.height) { let v = img.pixels[i]; px[3 * i] = v; px[3 * i + 1] = v; px[3 * i + 2] = v }
        return DecodedImage(width: img.width, height: img.height, channels: 3, pixels: px)
    }

    /// The mean of each k×k block (the last partial row and column of blocks dropped).
    static func boxReduced(_ img: DecodedImage, by k: Int) -> DecodedImage {
        let (w, h, c) = (img.width / k, img.height / k, img.channels)
        guard w > 0 && h > 0 else { return img }
        var px = [UInt8](repeating: 0, count: w * h * c)
        img.pixels.withUnsafeBufferPointer { src in
            px.withUnsafeMutableBufferPointer { dst in
                sprout_box_reduce(src.baseAddress, Int32(img.width), Int32(img.height), Int32(c), Int32(k), dst.baseAddress)
            }
        }
        return DecodedImage(width: w, height: h, channels: c, pixels: px)
    }

    /// Bilinear resampling of the `crop` rectangle (rotated by `angle` about its centre,
    /// mirrored when `flip`) to width×height floats in [0, 1], planar RGB (`sprout_resample_bilinear`).
    static func resample(_ img: DecodedImage, crop: (x: Double, y: Double, w: Double, h: Double), angle: Double,
                         flip: Bool, width ow: Int, height oh: Int, into out: UnsafeMutablePointer<Float>) {
        img.pixels.withUnsafeBufferPointer { src in
            sprout_resample_bilinear(src.baseAddress, Int32(img.width), Int32(img.height), Int32(img.channels),
                                     crop.x + crop.w / 2, crop.y + crop.h / 2, crop.w / Double(ow), crop.h / Double(oh),
                                     angle, flip ? 1 : 0, out, Int32(ow), Int32(oh))
        }
    }
}

/// Several photo sources one after another.
struct ConcatenatedPhotos: PhotoSource {
    let parts: [any PhotoSource]
    var count: Int { parts.reduce(0) { $0 + $1.count } }
    var classNames: [String] { parts[0].classNames }
    var labels: [Int32] { parts.flatMap(\.labels) }
    private func locate(_ index: Int) -> (any PhotoSource, Int) {
        var i = index
        for p in parts {
            if i < p.count { return (p, i) }
            i -= p.count
        }
        preconditionFailure("ConcatenatedPhotos: index \(index) outside 0..<\(count)")
    }
    func name(of index: Int) -> String { let (p, i) = locate(index); return p.name(of: i) }
    func encoded(_ index: Int) throws -> [UInt8] { let (p, i) = locate(index); return try p.encoded(i) }
    func decoded(_ index: Int) throws -> DecodedImage? { let (p, i) = locate(index); return try p.decoded(i) }
    func subset(indices: [Int]) -> any PhotoSource { SubsetPhotos(base: self, indices: indices) }
}

struct SubsetPhotos: PhotoSource {
    let base: any PhotoSource
    let indices: [Int]
    var count: Int { indices.count }
    var classNames: [String] { base.classNames }
    var labels: [Int32] { let all = base.labels; return indices.map { all[$0] } }
    func name(of index: Int) -> String { base.name(of: indices[index]) }
    func encoded(_ index: Int) throws -> [UInt8] { try base.encoded(indices[index]) }
    func decoded(_ index: Int) throws -> DecodedImage? { try base.decoded(indices[index]) }
    func subset(indices: [Int]) -> any PhotoSource { SubsetPhotos(base: base, indices: indices.map { self.indices[$0] }) }
}

extension ImageDecoder {
    /// Width and height as displayed (EXIF orientations 5–8 swap them), from the header alone.
    public static func uprightDimensions(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        guard let d = dimensions(bytes) else { return nil }
        if ImageFormat(sniffing: bytes) == .jpeg && JPEGMarkers(bytes).orientation >= 5 { return (d.height, d.width) }
        return d
    }
}
