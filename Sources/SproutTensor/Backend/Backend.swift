/// Where tensors live and which kernels compute on them.
///
/// Today both devices keep tensors in host memory: `cpu` runs Sprout's fast kernels
/// (oneDNN, AVX2/FMA C loops, all cores); `reference` runs plain Swift loops, one element at a
/// time — the template a GPU backend follows and the yardstick that proves the seam: every
/// zoo model's training step gives the same numbers on both (BackendTests).
public struct Device: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable { case cpu, reference }
    public let kind: Kind

    public static let cpu = Device(kind: .cpu)
    public static let reference = Device(kind: .reference)

    /// "cpu" or "reference"; names of devices this build lacks ("cuda", "gpu", "mps") throw
    /// with the reason, other text throws naming the known devices.
    public init(parsing text: String) throws {
        switch text.lowercased() {
        case "cpu": self = .cpu
        case "reference": self = .reference
        case let t where ["gpu", "cuda", "mps", "metal", "rocm"].contains(where: { t.hasPrefix($0) }):
            throw DeviceError.unavailable(text)
        default: throw DeviceError.unknown(text)
        }
    }

    private init(kind: Kind) { self.kind = kind }

    /// The kernels of this device.
    public var backend: any Backend {
        switch kind {
        case .cpu: return CPUBackend.shared
        case .reference: return ReferenceBackend.shared
        }
    }

    public var description: String { kind.rawValue }

    /// The device new tensors are made on: `cpu` unless a caller chose another for a scope.
    @TaskLocal public static var current: Device = .cpu

    /// Runs `body` with new tensors made on `device`.
    public static func with<R>(_ device: Device, _ body: () throws -> R) rethrows -> R {
        try $current.withValue(device, operation: body)
    }
}

public enum DeviceError: Error, Equatable, CustomStringConvertible {
    case unavailable(String), unknown(String)
    public var description: String {
        switch self {
        case .unavailable(let d): return "\(d): this build has no GPU backend; use cpu (the default)"
        case .unknown(let d): return "unknown device '\(d)' (cpu, reference)"
        }
    }
}

// MARK: - What the primitives take

/// Element-wise functions of two operands (with broadcasting).
public enum BinaryOp: Sendable {
    case add, subtract, multiply, divide, maximum, minimum
    case equal, greater, greaterEqual, less, lessEqual
}

/// Element-wise functions of one operand, with the parameters some of them have.
public enum UnaryOp: Sendable, Equatable {
    case negate, exp, log, sqrt, abs, relu, sigmoid, tanh
    case gelu, geluTanh
    case elu(alpha: Float), leakyRelu(slope: Float), power(Float), clamp(min: Float, max: Float)
}

public enum ReductionOp: Sendable { case sum, max }

/// One 2-D convolution: NCHW input, [K, C/groups, R, S] weights.
public struct ConvolutionShape: Sendable, Equatable {
    public var n, c, h, w, k, r, s, oh, ow, strideH, strideW, padTop, padLeft, padBottom, padRight, groups: Int
    public var hasBias: Bool
}

/// One pooling window geometry over [N·C planes, H, W].
public struct PoolShape: Sendable, Equatable {
    public var planes, h, w, oh, ow, kh, kw, sh, sw, pt, pl: Int
}

/// Indices a backend keeps for a backward pass (max-pool winners), in its own memory.
public final class IndexStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Int32>
    public let count: Int
    public init(count: Int) { self.count = count; pointer = .allocate(capacity: max(count, 1)) }
    deinit { pointer.deallocate() }
}

/// The kernels behind every op, optimizer update and initializer. Ops validate shapes,
/// call one of these, and record their backward rule; a device implements these and
/// nothing else. Every method returns new tensors on its device (or updates in place where
/// it says so) and may assume shapes were checked.
public protocol Backend: AnyObject, Sendable {
    var device: Device { get }

    // MARK: Element-wise
    /// f(a, b) broadcast to `shape`.
    func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, shape: [Int]) -> Tensor
    func unary(_ op: UnaryOp, _ x: Tensor) -> Tensor
    /// dx = dy · f'(x) for a unary op, from its input and (where cheaper) its output.
    func unaryGradient(_ op: UnaryOp, gradient: Tensor, input: Tensor, output: Tensor) -> Tensor
    /// condition ≠ 0 ? a : b, all three of one shape.
    func select(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor

    // MARK: Reductions
    /// Reduces `axes` of x; the result has x's rank with those axes of size 1.
    func reduce(_ op: ReductionOp, _ x: Tensor, axes: Set<Int>) -> Tensor
    /// Softmax or log-softmax along `axis`.
    func softmax(_ x: Tensor, axis: Int, log: Bool) -> Tensor

    // MARK: Copies and layout
    func permute(_ x: Tensor, _ axes: [Int]) -> Tensor
    func slice(_ x: Tensor, axis: Int, range: Range<Int>) -> Tensor
    func concatenate(_ xs: [Tensor], axis: Int) -> Tensor
    /// t[.., range, ..] += g along `axis`, in place.
    func addSlab(_ g: Tensor, into t: inout Tensor, axis: Int, range: Range<Int>)
    func broadcast(_ x: Tensor, to shape: [Int]) -> Tensor
    func flip(_ x: Tensor, axes: Set<Int>) -> Tensor
    /// The last two axes padded: `rows`/`cols` give each output row's/column's source index
    /// (-1: zero).
    func pad(_ x: Tensor, rows: [Int], cols: [Int]) -> Tensor
    /// The adjoint of `pad`: each output position's gradient added to its source.
    func padGradient(_ g: Tensor, rows: [Int], cols: [Int], inputShape: [Int]) -> Tensor
    /// out[i] = x[i, indices[i]] for x [N, C].
    func gather(_ x: Tensor, indices: [Int]) -> Tensor
    /// The adjoint of `gather`: [N, C] zeros with g[i] at (i, indices[i]).
    func scatter(_ g: Tensor, indices: [Int], columns: Int) -> Tensor

    // MARK: Linear algebra
    /// op(a)·op(b) over the last two axes; a 3-D operand is a batch (a 2-D b is shared).
    func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) -> Tensor

    // MARK: Convolution
    func convolution(_ x: Tensor, weight: Tensor, bias: Tensor?, shape: ConvolutionShape) -> Tensor
    func convolutionGradientData(_ dy: Tensor, weight: Tensor, shape: ConvolutionShape) -> Tensor
    func convolutionGradientWeights(_ x: Tensor, _ dy: Tensor, shape: ConvolutionShape) -> (weight: Tensor, bias: Tensor?)

    // MARK: Pooling
    func maxPool(_ x: Tensor, shape: PoolShape) -> (output: Tensor, winners: IndexStorage)
    func maxPoolGradient(_ g: Tensor, winners: IndexStorage, shape: PoolShape, inputShape: [Int]) -> Tensor
    func avgPool(_ x: Tensor, shape: PoolShape, countIncludesPadding: Bool) -> Tensor
    func avgPoolGradient(_ g: Tensor, shape: PoolShape, countIncludesPadding: Bool, inputShape: [Int]) -> Tensor

    // MARK: Normalisation
    /// Batch statistics per channel (biased variance) and the normalised output.
    func batchNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float, relu: Bool)
        -> (output: Tensor, mean: Tensor, variance: Tensor)
    func batchNormGradient(_ g: Tensor, input x: Tensor, output y: Tensor, mean: Tensor, variance: Tensor,
                           weight: Tensor?, epsilon: Float, relu: Bool) -> (input: Tensor, weight: Tensor, bias: Tensor)
    /// y = x·scale[c] + shift[c] (then ReLU), per channel of axis 1.
    func channelAffine(_ x: Tensor, scale: Tensor, shift: Tensor, relu: Bool) -> Tensor
    /// Σ x (or Σ (x − center)² when `center` is given) per channel, in double.
    func channelSums(_ x: Tensor, center: Tensor?) -> [Double]
    /// Σ g and Σ g·(x − μ) per channel (g masked by the ReLU output when given).
    func batchNormGradientSums(_ g: Tensor, input x: Tensor, output y: Tensor?, mean: Tensor) -> (Tensor, Tensor)
    /// dx of synchronised batch norm from the global sums over `count` values.
    func batchNormGradientApply(_ g: Tensor, input x: Tensor, output y: Tensor?, mean: Tensor, variance: Tensor,
                                weight: Tensor?, sumG: Tensor, sumGX: Tensor, count: Float, epsilon: Float) -> Tensor
    /// TensorFlow's LRN: y and the per-element bases (bias + α Σ x²) kept for backward.
    func localResponseNorm(_ x: Tensor, radius: Int, bias: Float, alpha: Float, beta: Float) -> (output: Tensor, scale: Tensor)
    func localResponseNormGradient(_ g: Tensor, input x: Tensor, output y: Tensor, scale: Tensor,
                                   radius: Int, alpha: Float, beta: Float) -> Tensor

    // MARK: Sequences (point-wise halves of a recurrent time step; CTC)
    /// See `SequenceKernels.lstmCell`: one LSTM step after its two GEMMs.
    func lstmCell(xg: Tensor, hg: Tensor, cell: Tensor, hidden: Tensor, keep: [Float]?)
        -> (hidden: Tensor, cell: Tensor, output: Tensor, activations: Tensor, cellCandidate: Tensor)
    func lstmCellGradient(output dy: Tensor?, hidden dh: Tensor, cell dc: Tensor, activations: Tensor,
                          cellCandidate: Tensor, previousCell: Tensor, keep: [Float]?) -> (gates: Tensor, cell: Tensor, hidden: Tensor)
    /// See `SequenceKernels.gruCell`.
    func gruCell(xg: Tensor, hg: Tensor, hidden: Tensor, keep: [Float]?) -> (hidden: Tensor, output: Tensor, activations: Tensor)
    func gruCellGradient(output dy: Tensor?, hidden dh: Tensor, activations: Tensor, previousHidden: Tensor,
                         keep: [Float]?) -> (input: Tensor, recurrent: Tensor, hidden: Tensor)
    /// CTC negative log-likelihood per sample and its gradient d nll_n / d logProbabilities.
    ///   logProbabilities: [T, N, C] → losses [N] (+∞ where no alignment fits), gradient [T, N, C]
    func ctcLoss(_ logProbabilities: Tensor, targets: [[Int]], inputLengths: [Int], blank: Int) -> (losses: [Double], gradient: Tensor)

    // MARK: Optimizer updates (in place)
    /// SGD with momentum (PyTorch's rule), Nesterov, coupled or decoupled decay.
    func sgdStep(_ w: inout Tensor, gradient: Tensor, momentum buffer: inout Tensor?, learningRate: Float,
                 weightDecay: Float, momentum: Float, nesterov: Bool, decoupled: Bool)
    /// Adam/AdamW with bias corrections c1 = 1 − β₁ᵗ, c2 = 1 − β₂ᵗ.
    func adamStep(_ w: inout Tensor, gradient: Tensor, m: inout Tensor, v: inout Tensor, learningRate: Float,
                  beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float, decoupled: Bool,
                  correction1: Float, correction2: Float)
    /// s ← d·s + (1 − d)·x, in place (EMA of weights).
    func movingAverage(_ s: inout Tensor, toward x: Tensor, decay: Float)

    // MARK: Initialisation
    /// A tensor of this device holding `values` (made on the host: initializers, data).
    func tensor(shape: [Int], scalars: UnsafeBufferPointer<Float>) -> Tensor
    func filled(shape: [Int], value: Float) -> Tensor
}

extension Tensor {
    /// The device this tensor's storage lives on.
    public var device: Device { storage.device }
    /// The kernels of this tensor's device (ops call them; optimizers update through them).
    public var backend: any Backend { storage.device.backend }
    /// Zeros of this tensor's shape on its device.
    public func zerosLike() -> Tensor { backend.filled(shape: shape, value: 0) }
}

/// The one backend for the operands of an op; operands on different devices are an error
/// naming the op.
@inline(__always)
func backend(_ op: String, _ a: Tensor, _ b: Tensor) -> any Backend {
    precondition(a.storage.device == b.storage.device, "\(op): operands on \(a.device) and \(b.device)")
    return a.backend
}
