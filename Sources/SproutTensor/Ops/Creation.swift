// Random values are drawn on the host, one seeded stream whatever the device, so a seed gives
// the same weights and masks on every backend.
extension Tensor {
    /// Values from `draw`, in order, as a tensor on the current device. Both devices of this
    /// build keep tensors in host memory, so the values are written in place (a device with
    /// memory of its own would take them through `Backend.tensor(shape:scalars:)`).
    @inline(__always)
    static func drawn(_ shape: [Int], _ draw: () -> Float) -> Tensor {
        var t = Tensor(uninitializedShape: shape, on: .current)
        t.withMutableData { p in for i in p.indices { p[i] = draw() } }
        return t
    }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 1) }
    public static func full(_ shape: [Int], value: Float) -> Tensor { Tensor(shape: shape, repeating: value) }

    /// start, start+step, … below `end`.
    public static func arange(from start: Float = 0, to end: Float, step: Float = 1) -> Tensor {
        precondition(step != 0, "arange: step must not be 0")
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        return Tensor((0..<n).map { start + Float($0) * step })
    }

    /// Uniform in [low, high).
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, generator: inout SeededGenerator) -> Tensor {
        drawn(shape) { low + (high - low) * generator.nextUniform() }
    }

    /// Normal with the given mean and standard deviation.
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, generator: inout SeededGenerator) -> Tensor {
        drawn(shape) { mean + std * generator.nextNormal() }
    }

    /// Normal truncated at two standard deviations (TensorFlow's `truncated_normal`:
    /// values beyond are drawn again).
    public static func truncatedNormal(_ shape: [Int], mean: Float = 0, std: Float = 1, generator: inout SeededGenerator) -> Tensor {
        drawn(shape) {
            var z = generator.nextNormal()
            while Swift.abs(z) > 2 { z = generator.nextNormal() }
            return mean + std * z
        }
    }

    /// 0/1 mask with P(1) = probability.
    public static func bernoulli(_ shape: [Int], probability: Float, generator: inout SeededGenerator) -> Tensor {
        drawn(shape) { generator.nextUniform() < probability ? 1 : 0 }
    }
}
