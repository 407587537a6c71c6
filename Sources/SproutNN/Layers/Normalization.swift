import SproutTensor

/// Batch normalization over [N, C, H, W] (or [N, C]): batch statistics in training,
/// running statistics (PyTorch's momentum convention) in evaluation.
public final class BatchNorm2D: Layer {
    public let weight: Parameter?
    public let bias: Parameter?
    public let runningMean: Parameter
    public let runningVariance: Parameter
    public var momentum: Float
    public var epsilon: Float
    public var isTraining = true
    /// Set for data-parallel training with statistics over the global batch (`--sync-bn`).
    public var statisticsReducer: (any StatisticsReducer)?

    public init(features: Int, momentum: Float = 0.1, epsilon: Float = 1e-5, affine: Bool = true) {
        weight = affine ? Parameter(Tensor.ones([features])) : nil
        bias = affine ? Parameter(Tensor.zeros([features])) : nil
        runningMean = Parameter(Tensor.zeros([features]), trainable: false)
        runningVariance = Parameter(Tensor.ones([features]), trainable: false)
        self.momentum = momentum
        self.epsilon = epsilon
    }

    public var features: Int { runningMean.shape[0] }

    public func forward(_ x: Tensor) -> Tensor { forward(x, fusedReLU: false) }

    /// The normalised output, through ReLU in the same pass when `fusedReLU`.
    public func forward(_ x: Tensor, fusedReLU: Bool) -> Tensor {
        precondition(x.rank >= 2 && x.shape[1] == features,
                     "BatchNorm2D(\(features)): input must have \(features) channels on axis 1, got \(x.shape)")
        if !isTraining {
            return batchNormInference(x, mean: runningMean.value, variance: runningVariance.value,
                                      weight: weight?.value, bias: bias?.value, epsilon: epsilon, fusedReLU: fusedReLU)
        }
        let (y, mean, variance) = batchNorm(x, weight: weight?.value, bias: bias?.value, epsilon: epsilon,
                                            fusedReLU: fusedReLU, statisticsReducer: statisticsReducer)
        updateRunningStatistics(runningMean: &runningMean.value, runningVariance: &runningVariance.value,
                                batchMean: mean, batchVariance: variance, count: x.count / features, momentum: momentum)
        return y
    }

    public var ownParameters: [(name: String, parameter: Parameter)] {
        var p: [(name: String, parameter: Parameter)] = []
        if let weight { p.append(("weight", weight)) }
        if let bias { p.append(("bias", bias)) }
        return p + [("running_mean", runningMean), ("running_var", runningVariance)]
    }
    public var summaryName: String { "BatchNorm2D(\(features))" }
}

/// Local response normalization across channels, TensorFlow's `tf.nn.lrn`.
public final class LocalResponseNorm: Layer {
    public let depthRadius: Int, bias: Float, alpha: Float, beta: Float
    public var isTraining = true

    public init(depthRadius: Int = 5, bias: Float = 1, alpha: Float = 1, beta: Float = 0.5) {
        (self.depthRadius, self.bias, self.alpha, self.beta) = (depthRadius, bias, alpha, beta)
    }

    public func forward(_ x: Tensor) -> Tensor {
        localResponseNorm(x, depthRadius: depthRadius, bias: bias, alpha: alpha, beta: beta)
    }
    public var summaryName: String { "LocalResponseNorm(radius \(depthRadius))" }
}

/// Inverted dropout, active in training mode only. Each layer has its own seeded stream.
public final class Dropout: RandomStateLayer {
    public let probability: Float
    public var generator: SeededGenerator
    public var isTraining = true

    public init(probability: Float, seed: UInt64? = nil) {
        precondition((0..<1).contains(probability), "Dropout: probability \(probability) outside [0, 1)")
        self.probability = probability
        generator = SeededGenerator(seed: seed ?? GlobalRandom.nextSeed())
    }

    public func forward(_ x: Tensor) -> Tensor {
        guard isTraining, probability > 0 else { return x }
        return dropout(x, probability: probability, generator: &generator)
    }
    public var summaryName: String { "Dropout(\(probability))" }
    public var generatorState: [UInt64] {
        get { generator.state }
        set { generator.state = newValue }
    }
}
