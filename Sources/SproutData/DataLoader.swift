import Dispatch
import Foundation
import SproutTensor
import Synchronization

/// Random transformations applied to each training image. All randomness derives from
/// (seed, epoch, sample index), so an image gets the same augmentation whatever the batch
/// size, thread count or number of processes.
public struct Augmentation: Sendable, Equatable {
    /// Crop at a random offset (of `cropSize` when the loader has one, else of the full
    /// size after padding by `randomCropPadding`, i.e. a random translation).
    public var randomCrop = false
    public var randomCropPadding = 0
    public var paddingMode: PaddingMode = .zero
    public var horizontalFlip = false
    /// With `horizontalFlip`: each image's flip is drawn once, and the whole set is mirrored
    /// on odd epochs (airbench's alternating flip: every image both ways in any two epochs).
    public var alternatingFlip = false
    /// Side of a square set to zero (after normalisation) at a random centre; 0 = off.
    public var cutout = 0
    /// Maximum brightness change on the [0, 1] scale; 0 = off.
    public var brightness: Float = 0
    /// Contrast factor range (e.g. 0.8...1.2); nil = off.
    public var contrast: ClosedRange<Float>? = nil
    /// Saturation factor range (0 = grey, 1 = unchanged); nil = off.
    public var saturation: ClosedRange<Float>? = nil
    /// Photos: a random resized crop of the full photo (torchvision's defaults: 8–100% of
    /// the area, ratio 3/4–4/3); nil = the evaluation view (resize + centre crop).
    public var resizedCrop: ResizedCrop? = nil
    /// Photos: a rotation drawn uniformly from ±`rotation` degrees; 0 = off.
    public var rotation: Float = 0
    /// Composed lines (`DigitLines`, `TextLines`): each line's layout — scale, spacing,
    /// vertical jitter, noise — drawn anew every epoch (the characters stay the sample's).
    public var freshLayout = false

    public init(randomCrop: Bool = false, randomCropPadding: Int = 0, paddingMode: PaddingMode = .zero,
                horizontalFlip: Bool = false, cutout: Int = 0, brightness: Float = 0, contrast: ClosedRange<Float>? = nil,
                saturation: ClosedRange<Float>? = nil, resizedCrop: ResizedCrop? = nil, rotation: Float = 0) {
        (self.randomCropPadding, self.paddingMode, self.horizontalFlip) = (randomCropPadding, paddingMode, horizontalFlip)
        self.randomCrop = randomCrop || randomCropPadding > 0
        (self.cutout, self.brightness, self.contrast) = (cutout, brightness, contrast)
        (self.saturation, self.resizedCrop, self.rotation) = (saturation, resizedCrop, rotation)
    }

    /// Training augmentation for photos: torchvision's ImageNet recipe, a random resized crop
    /// and a horizontal flip (colour jitter and rotation are options: `jittered`).
    public static let photo = Augmentation(horizontalFlip: true, resizedCrop: .torchvision)

    /// This augmentation with colour jitter of strength `s` (brightness ±s/4 on the [0, 1]
    /// scale, contrast and saturation factors in 1 ± s) and rotations of up to ±`degrees`.
    public func jittered(colour s: Float, rotation degrees: Float) -> Augmentation {
        var a = self
        if s > 0 { (a.brightness, a.contrast, a.saturation) = (s / 4, (1 - s)...(1 + s), (1 - s)...(1 + s)) }
        a.rotation = degrees
        return a
    }

    public static let none = Augmentation()
}


/// How pixels become the network's input.
public enum Normalization: Sendable, Equatable {
    /// x/255
    case unit
    /// (x/255 − mean[c]) / std[c]
    case meanStd(mean: [Float], std: [Float])
    /// TensorFlow's per_image_standardization: (x − mean) / max(std, 1/√n) over the whole image.
    case perImageStandardization
}

/// A batch: images [n, C, H, W], their targets, and the dataset indices they came from.
public struct Batch: @unchecked Sendable {
    public let images: Tensor
    public let targets: Targets
    public let indices: [Int]

    public init(images: Tensor, targets: Targets, indices: [Int]) {
        precondition(images.shape.first == targets.count, "Batch: \(targets.count) targets for images \(images.shape)")
        (self.images, self.targets, self.indices) = (images, targets, indices)
    }

    /// A classification batch.
    public init(images: Tensor, labels: [Int], indices: [Int]) {
        self.init(images: images, targets: .classes(labels), indices: indices)
    }

    public var count: Int { targets.count }

    /// The class labels of a classification batch.
    public var labels: [Int] {
        guard case .classes(let labels) = targets else {
            preconditionFailure("Batch.labels: this batch's targets are \(targets), not class labels")
        }
        return labels
    }

    /// The label sequences of a sequence batch (CTC).
    public var sequences: [[Int]] {
        guard case .sequences(let sequences) = targets else {
            preconditionFailure("Batch.sequences: this batch's targets are \(targets), not label sequences")
        }
        return sequences
    }
}

/// Seeded shuffling, batching, augmentation and normalisation, with batches prepared ahead
/// on a background thread while the model trains.
public final class DataLoader: @unchecked Sendable {
    public let dataset: any Dataset
    public let batchSize: Int
    public let shuffle: Bool
    public let dropLast: Bool
    public let seed: UInt64
    public var augmentation: Augmentation
    public let normalization: Normalization
    /// Output side when cropping (random crop with augmentation, centre crop without); nil = full size.
    public let cropSize: Int?
    /// Batches prepared ahead of the consumer.
    public let prefetch: Int
    /// Threads preparing batches (each builds whole batches; photos decode there).
    public let workers: Int
    /// Samples that failed to load while streaming, each message naming its file; each was
    /// replaced by the next sample that loads, so a batch keeps its size.
    public var failures: [String] { failureLog.withLock { $0.sorted() } }
    private let failureLog = Mutex<Set<String>>([])
    /// When false, the first sample that fails to load stops the run instead: the loader
    /// keeps the error (`stoppingFailure`) and the trainer throws it after the batch.
    public var skipFailures = true
    /// The failure that stops the run (with `skipFailures` off), naming the file.
    public var stoppingFailure: (any Error)? { stopping.withLock { $0 } }
    private let stopping = Mutex<(any Error)?>(nil)
    /// This process's part of every batch in data-parallel training: rank r of n takes rows
    /// [r·B/n, (r+1)·B/n) of each global batch of B. Order and augmentation are defined by the
    /// global sample index, so they do not depend on n.
    public var shard: (rank: Int, count: Int) = (0, 1) {
        didSet { precondition(shard.count >= 1 && (0..<shard.count).contains(shard.rank), "DataLoader: bad shard \(shard)") }
    }

    public init(dataset: some Dataset, batchSize: Int, shuffle: Bool = false, dropLast: Bool = false, seed: UInt64 = 0,
                augmentation: Augmentation = .none, normalization: Normalization = .unit, cropSize: Int? = nil,
                prefetch: Int = 4, workers: Int = 1) {
        precondition(batchSize > 0, "DataLoader: batch size must be positive, got \(batchSize)")
        if let cropSize {
            precondition(cropSize > 0 && cropSize <= min(dataset.height, dataset.width),
                         "DataLoader: crop \(cropSize) larger than the images (\(dataset.height)×\(dataset.width))")
        }
        if case let .meanStd(mean, std) = normalization {
            precondition(mean.count == dataset.channels && std.count == dataset.channels,
                         "DataLoader: mean/std need \(dataset.channels) values each")
        }
        (self.dataset, self.batchSize, self.shuffle, self.dropLast, self.seed) = (dataset, batchSize, shuffle, dropLast, seed)
        (self.augmentation, self.normalization, self.cropSize, self.prefetch) = (augmentation, normalization, cropSize, max(1, prefetch))
        self.workers = max(1, workers)
    }

    public var outputShape: [Int] { [dataset.channels, cropSize ?? dataset.height, cropSize ?? dataset.width] }

    public var batchesPerEpoch: Int {
        dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
    }

    /// With shuffling: each epoch draws `dataset.count` samples with replacement, sample i
    /// with probability proportional to sampleWeights[i] (balanced sampling), instead of
    /// a permutation.
    public var sampleWeights: [Double]? {
        didSet {
            precondition(sampleWeights.map { $0.count == dataset.count && $0.allSatisfy { $0 >= 0 } && $0.contains { $0 > 0 } } ?? true,
                         "DataLoader: one non-negative weight per sample, not all zero")
        }
    }

    /// The sample order of an epoch (a seeded Fisher-Yates shuffle, a seeded weighted draw
    /// with `sampleWeights`, or 0..<n).
    public func order(epoch: Int) -> [Int] {
        var order = Array(0..<dataset.count)
        guard shuffle else { return order }
        if let weights = sampleWeights {
            var cumulative = [Double](), total = 0.0
            cumulative.reserveCapacity(weights.count)
            for w in weights { total += w; cumulative.append(total) }
            var g = SeededGenerator(seed: mix(seed, UInt64(epoch), 0x5741_4954))
            for i in order.indices {
                let u = Double(g.next() >> 11) / Double(1 << 53) * total
                var lo = 0, hi = cumulative.count - 1
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if cumulative[mid] > u { hi = mid } else { lo = mid + 1 }
                }
                order[i] = lo
            }
            return order
        }
        var g = SeededGenerator(seed: mix(seed, UInt64(epoch), 0x5348_5546))
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, g.nextInt(below: i + 1)) }
        return order
    }

    /// Batch `index` of `epoch`, built on the calling thread.
    public func batch(epoch: Int, index: Int, order precomputed: [Int]? = nil) -> Batch {
        let order = precomputed ?? self.order(epoch: epoch)
        let lo = index * batchSize, hi = min(order.count, lo + batchSize)
        var indices = Array(order[lo..<hi])
        if shard.count > 1 {
            let m = indices.count
            indices = Array(indices[(shard.rank * m / shard.count)..<((shard.rank + 1) * m / shard.count)])
        }
        return makeBatch(indices, epoch: epoch)
    }

    /// The batches of one epoch, from `startBatch` on, prepared ahead in the background.
    public func epoch(_ epoch: Int, startingAt startBatch: Int = 0) -> BatchSequence {
        BatchSequence(loader: self, epoch: epoch, start: startBatch)
    }

    func makeBatch(_ indices: [Int], epoch: Int) -> Batch {
        let (c, oh, ow) = (outputShape[0], outputShape[1], outputShape[2])
        var images = Tensor.zeros([indices.count, c, oh, ow])
        images.withMutableData { out in
            for (k, i) in indices.enumerated() {
                transform(sample: i, epoch: epoch, into: out.baseAddress! + k * c * oh * ow)
            }
        }
        return Batch(images: images, targets: dataset.targets(indices), indices: indices)
    }

    /// Geometry (the dataset's own for photos, else crop/translate + flip in one gather),
    /// photometric changes, normalisation and cutout of sample `i`, writing the network's
    /// input at `out`.
    func transform(sample i: Int, epoch: Int, into out: UnsafeMutablePointer<Float>) {
        let (c, h, w) = (dataset.channels, dataset.height, dataset.width)
        let (oh, ow) = (cropSize ?? h, cropSize ?? w)
        var g = SeededGenerator(seed: mix(seed, UInt64(epoch), UInt64(i)))
        var rendered = false
        // A sample that fails to load is logged and replaced by the next one that does.
        for attempt in 0..<min(dataset.count, 16) {
            let j = (i + attempt) % dataset.count
            do {
                rendered = try dataset.renderSample(j, augmentation: augmentation, generator: &g, into: out)
                break
            } catch {
                failureLog.withLock { _ = $0.insert("\(error)") }
                if !skipFailures {
                    stopping.withLock { if $0 == nil { $0 = error } }
                    break
                }
                g = SeededGenerator(seed: mix(seed, UInt64(epoch), UInt64(i) &+ UInt64(attempt + 1) << 40))
            }
        }
        if !rendered {
            var alternating: Bool?
            if augmentation.horizontalFlip && augmentation.alternatingFlip {
                var once = SeededGenerator(seed: mix(seed, 0x464C_4950, UInt64(i)))
                alternating = (once.nextUniform() < 0.5) != (epoch % 2 == 1)
            }
            dataset.withPixels(ofSample: i) { px in crop(px, alternatingFlip: alternating, generator: &g, into: out) }
        }
        photometric(generator: &g, count: c * oh * ow, channels: c, into: out)
    }

    private func crop(_ pixels: UnsafeBufferPointer<UInt8>, alternatingFlip: Bool?, generator g: inout SeededGenerator,
                      into out: UnsafeMutablePointer<Float>) {
        let (c, h, w) = (dataset.channels, dataset.height, dataset.width)
        let (oh, ow) = (cropSize ?? h, cropSize ?? w)
        let aug = augmentation
        let pad = aug.randomCropPadding
        // Source offset of the output window: random in training, centred otherwise.
        var oy = (h - oh) / 2, ox = (w - ow) / 2
        if aug.randomCrop {
            oy = g.nextInt(below: h - oh + 2 * pad + 1) - pad
            ox = g.nextInt(below: w - ow + 2 * pad + 1) - pad
        }
        let flip = alternatingFlip ?? (aug.horizontalFlip && g.nextUniform() < 0.5)
        let reflect = aug.paddingMode == .reflect
        let src = pixels.baseAddress!
        for ch in 0..<c {
            let plane = src + ch * h * w, dst = out + ch * oh * ow
            for y in 0..<oh {
                var sy = y + oy
                if sy < 0 || sy >= h {
                    if !reflect { for x in 0..<ow { dst[y * ow + x] = 0 }; continue }
                    sy = sy < 0 ? -sy : 2 * (h - 1) - sy
                }
                for x in 0..<ow {
                    var sx = (flip ? ow - 1 - x : x) + ox
                    if sx < 0 || sx >= w {
                        if !reflect { dst[y * ow + x] = 0; continue }
                        sx = sx < 0 ? -sx : 2 * (w - 1) - sx
                    }
                    dst[y * ow + x] = Float(plane[sy * w + sx]) * (1 / 255)
                }
            }
        }
    }

    private func photometric(generator g: inout SeededGenerator, count n: Int, channels c: Int, into out: UnsafeMutablePointer<Float>) {
        let aug = augmentation
        let (oh, ow) = (cropSize ?? dataset.height, cropSize ?? dataset.width)
        if aug.brightness > 0 {
            let delta = (g.nextUniform() * 2 - 1) * aug.brightness
            for j in 0..<n { out[j] += delta }
        }
        if let range = aug.contrast {
            let factor = range.lowerBound + g.nextUniform() * (range.upperBound - range.lowerBound)
            for ch in 0..<c {
                let p = out + ch * oh * ow
                var mean: Float = 0
                for j in 0..<(oh * ow) { mean += p[j] }
                mean /= Float(oh * ow)
                for j in 0..<(oh * ow) { p[j] = (p[j] - mean) * factor + mean }
            }
        }
        if let range = aug.saturation, c == 3 {
            // A blend with the image's luma (ITU-R 601, as torchvision's adjust_saturation).
            let factor = range.lowerBound + g.nextUniform() * (range.upperBound - range.lowerBound)
            let plane = oh * ow
            for j in 0..<plane {
                let grey = 0.299 * out[j] + 0.587 * out[plane + j] + 0.114 * out[2 * plane + j]
                for ch in 0..<3 { out[ch * plane + j] = min(1, max(0, grey + (out[ch * plane + j] - grey) * factor)) }
            }
        }
        switch normalization {
        case .unit: break
        case let .meanStd(mean, std):
            for ch in 0..<c {
                let p = out + ch * oh * ow, m = mean[ch], s = 1 / std[ch]
                for j in 0..<(oh * ow) { p[j] = (p[j] - m) * s }
            }
        case .perImageStandardization:
            var sum: Double = 0, sq: Double = 0
            for j in 0..<n { sum += Double(out[j]); sq += Double(out[j]) * Double(out[j]) }
            let mean = sum / Double(n)
            let std = max((sq / Double(n) - mean * mean).squareRoot(), 1 / Double(n).squareRoot())
            let (m, s) = (Float(mean), Float(1 / std))
            for j in 0..<n { out[j] = (out[j] - m) * s }
        }
        if aug.cutout > 0 {
            let cy = g.nextInt(below: oh), cx = g.nextInt(below: ow), half = aug.cutout / 2
            for ch in 0..<c {
                for y in max(0, cy - half)..<min(oh, cy - half + aug.cutout) {
                    for x in max(0, cx - half)..<min(ow, cx - half + aug.cutout) { out[(ch * oh + y) * ow + x] = 0 }
                }
            }
        }
    }
}

/// SplitMix-style mixing of a few integers into one seed.
func mix(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
    var x = a &* 0x9E37_79B9_7F4A_7C15 ^ b &* 0xBF58_476D_1CE4_E5B9 ^ c &* 0x94D0_49BB_1331_11EB
    x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
    x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
    return x ^ (x >> 31)
}

/// One epoch's batches, produced ahead by a background thread into a bounded queue.
public struct BatchSequence: Sequence {
    let loader: DataLoader
    let epoch: Int
    let start: Int

    public func makeIterator() -> BatchIterator { BatchIterator(loader: loader, epoch: epoch, start: start) }
}

public final class BatchIterator: IteratorProtocol {
    /// Batches claimed by workers and not yet taken by the consumer number at most
    /// `prefetch`; workers may finish them out of order, the consumer takes them in order.
    private final class Queue: @unchecked Sendable {
        let condition = NSCondition()
        var items: [Int: Batch] = [:]
        var claimed: Int      // the next batch a worker will build
        var position: Int     // the next batch the consumer takes
        var cancelled = false
        init(start: Int) { (claimed, position) = (start, start) }
    }

    private let queue: Queue
    private let end: Int

    init(loader: DataLoader, epoch: Int, start: Int) {
        let order = loader.order(epoch: epoch)
        let total = loader.batchesPerEpoch
        let q = Queue(start: start)
        queue = q
        end = total
        let ahead = loader.prefetch
        for w in 0..<min(loader.workers, max(1, total - start)) {
            let producer = Thread {
                while true {
                    q.condition.lock()
                    while !q.cancelled && q.claimed < total && q.claimed - q.position >= ahead { q.condition.wait() }
                    guard !q.cancelled && q.claimed < total else { q.condition.unlock(); return }
                    let b = q.claimed
                    q.claimed += 1
                    q.condition.unlock()
                    let batch = loader.batch(epoch: epoch, index: b, order: order)
                    q.condition.lock()
                    q.items[b] = batch
                    q.condition.broadcast()
                    q.condition.unlock()
                }
            }
            producer.name = "sprout.dataloader.\(w)"
            producer.start()
        }
    }

    public func next() -> Batch? {
        let q = queue
        q.condition.lock()
        defer { q.condition.unlock() }
        guard q.position < end else { return nil }
        while q.items[q.position] == nil { q.condition.wait() }
        let batch = q.items.removeValue(forKey: q.position)
        q.position += 1
        q.condition.broadcast()
        return batch
    }

    deinit {
        queue.condition.lock()
        queue.cancelled = true
        queue.condition.broadcast()
        queue.condition.unlock()
    }
}
