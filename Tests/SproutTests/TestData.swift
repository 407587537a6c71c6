import Foundation
import Testing
@testable import SproutData

/// Where the real datasets are on the development machines and in CI; tests that need them
/// skip (saying so) when they are absent.
enum RealData {
    static let fashionMNIST = "/usr/share/datasets/fashion-mnist"
    static var shared: String {
        // ../shared beside the checkout (the package root is three levels above this file).
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.deletingLastPathComponent().appendingPathComponent("shared/data").path
    }
    static var mnist: String { shared + "/mnist" }
    static var cifar10: String { shared + "/cifar-10-batches-bin" }

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
    static let noFashionMNIST: Comment = "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"
}

extension Tag {
    /// Seconds rather than milliseconds: runs the sprout binary or mpirun, or learns on real data.
    @Tag static var slow: Self
}

/// A scratch directory removed at deinit.
final class TemporaryDirectory {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "sprout-test-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A small synthetic image dataset: class k has a bright k-th horizontal band.
func bandsDataset(count: Int, classes: Int = 4, size: Int = 8, seed: UInt64 = 1) -> ImageDataset {
    var g = SeededGeneratorShim(seed: seed)
    var pixels = [UInt8](repeating: 0, count: count * size * size), labels = [Int32](repeating: 0, count: count)
    for i in 0..<count {
        let k = i % classes
        labels[i] = Int32(k)
        for y in 0..<size {
            for x in 0..<size {
                let inBand = y * classes / size == k
                pixels[i * size * size + y * size + x] = UInt8(min(255, (inBand ? 180 : 40) + Int(g.next() % 60)))
            }
        }
    }
    return ImageDataset(pixels: pixels, labels: labels, channels: 1, height: size, width: size,
                        classNames: (0..<classes).map { "band\($0)" }, source: "synthetic")
}

struct SeededGeneratorShim {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state }
}
