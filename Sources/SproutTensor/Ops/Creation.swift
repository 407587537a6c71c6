extension Tensor {
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
        var t = Tensor(uninitializedShape: shape)
        t.withMutableData { p in for i in p.indices { p[i] = low + (high - low) * generator.nextUniform() } }
        return t
    }

    /// Normal with the given mean and standard deviation.
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, generator: inout SeededGenerator) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        t.withMutableData { p in for i in p.indices { p[i] = mean + std * generator.nextNormal() } }
        return t
    }

    /// Normal truncated at two standard deviations (TensorFlow's `truncated_normal`:
    /// values beyond are drawn again).
    public static func truncatedNormal(_ shape: [Int], mean: Float = 0, std: Float = 1, generator: inout SeededGenerator) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        t.withMutableData { p in
            for i in p.indices {
                var z = generator.nextNormal()
                while Swift.abs(z) > 2 { z = generator.nextNormal() }
                p[i] = mean + std * z
            }
        }
        return t
    }

    /// 0/1 mask with P(1) = probability.
    public static func bernoulli(_ shape: [Int], probability: Float, generator: inout SeededGenerator) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        t.withMutableData { p in for i in p.indices { p[i] = generator.nextUniform() < probability ? 1 : 0 } }
        return t
    }
}
