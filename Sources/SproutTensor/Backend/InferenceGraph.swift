import CSproutKernels
import Foundation

/// A network's forward pass as one oneDNN graph for inference: activations stay in the
/// blocked layout the kernels chose from the first layer to the last (reordered only at the
/// input and output), activations, residual sums and scales run as post-ops of the
/// convolution or linear layer before them, and every primitive is made once per batch size.
/// The nn layer lowers a model into one (`InferencePlan`); this type knows no layers.
///
/// Built on one thread; `run` may then be called from any number of threads at once (each
/// call takes a compiled plan of its own from a pool).
public final class InferenceGraph: @unchecked Sendable {
    /// A value in the graph: the input, or the output of an operation.
    public struct Value: Hashable, Sendable {
        fileprivate let id: Int32
    }

    public enum Activation: Sendable, Equatable {
        case relu
        case leakyReLU(slope: Float)
        case clamp(min: Float, max: Float)
        case gelu(approximate: Bool)
        case elu(alpha: Float)
        case sigmoid, tanh
        /// a·x + b
        case affine(scale: Float, shift: Float)

        var code: (Int32, Float, Float) {
            switch self {
            case .relu: return (Int32(SPROUT_ACT_RELU), 0, 0)
            case let .leakyReLU(s): return (Int32(SPROUT_ACT_RELU), s, 0)
            case let .clamp(lo, hi): return (Int32(SPROUT_ACT_CLIP), lo, hi)
            case let .gelu(approximate): return (Int32(approximate ? SPROUT_ACT_GELU_TANH : SPROUT_ACT_GELU_ERF), 0, 0)
            case let .elu(a): return (Int32(SPROUT_ACT_ELU), a, 0)
            case .sigmoid: return (Int32(SPROUT_ACT_SIGMOID), 0, 0)
            case .tanh: return (Int32(SPROUT_ACT_TANH), 0, 0)
            case let .affine(a, b): return (Int32(SPROUT_ACT_LINEAR), a, b)
            }
        }
    }

    public struct GraphError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Images per compiled plan at most: larger batches run in chunks (a plan's activation
    /// memory grows with its batch).
    public static let largestPlan = 32

    private let graph: OpaquePointer
    public let inputShape: [Int]
    private let lock = NSLock()
    private var idle: [Int: [OpaquePointer]] = [:]
    private var planBytes: [Int: Int] = [:]

    /// nil when oneDNN is unavailable or disabled (SPROUT_DNNL=0). `fusePostOps` false makes
    /// every activation and add a primitive of its own; `winograd` false (or SPROUT_WINOGRAD=off)
    /// keeps every convolution direct — for measuring what each buys.
    public init?(inputShape: [Int], fusePostOps: Bool = true, winograd: Bool = true) {
        precondition(inputShape.count == 3, "InferenceGraph: input shape is [C, H, W], got \(inputShape)")
        RuntimeSettings.applied
        guard sprout_dnnl_enabled() != 0, let g = sprout_infer_graph_create(Int32(inputShape[0]), Int32(inputShape[1]), Int32(inputShape[2])) else {
            return nil
        }
        sprout_infer_graph_set_options(g, fusePostOps ? 1 : 0, winograd && RuntimeSettings.current.winograd != .off ? 1 : 0)
        graph = g
        self.inputShape = inputShape
    }

    deinit {
        for plans in idle.values { for p in plans { sprout_infer_plan_destroy(p) } }
        sprout_infer_graph_destroy(graph)
    }

    public var input: Value { Value(id: 0) }

    private func made(_ id: Int32, _ what: String) throws -> Value {
        guard id >= 0 else { throw GraphError(description: "\(what): \(String(cString: sprout_infer_graph_error(graph)))") }
        return Value(id: id)
    }

    /// [C, H, W] (or [F]) of a value.
    public func shape(of v: Value) -> [Int] {
        var dims = [Int](repeating: 0, count: 4)
        let n = dims.withUnsafeMutableBufferPointer { p in
            p.withMemoryRebound(to: CLong.self) { sprout_infer_value_dims(graph, v.id, $0.baseAddress) }
        }
        return n < 0 ? [] : Array(dims[1..<Int(n)])
    }

    //   x: [N, C, H, W] → [N, K, OH, OW];  weight [K, C/groups, R, S], bias [K]
    public func convolution(_ x: Value, weight: Tensor, bias: Tensor?, stride: (Int, Int),
                            padding: (top: Int, left: Int, bottom: Int, right: Int), outputSize: (Int, Int),
                            groups: Int) throws -> Value {
        let w = weight.scalars, b = bias?.scalars
        let id = w.withUnsafeBufferPointer { wp in
            withOptionalPointer(b) { bp in
                sprout_infer_conv(graph, x.id, Int32(weight.shape[0]), Int32(weight.shape[2]), Int32(weight.shape[3]),
                                  Int32(stride.0), Int32(stride.1), Int32(padding.top), Int32(padding.left),
                                  Int32(padding.bottom), Int32(padding.right), Int32(outputSize.0), Int32(outputSize.1),
                                  Int32(groups), wp.baseAddress, bp)
            }
        }
        return try made(id, "convolution")
    }

    //   x: [N, C, H, W] → [N, C, OH, OW]
    public func pool(_ x: Value, max: Bool, kernel: (Int, Int), stride: (Int, Int),
                     padding: (top: Int, left: Int, bottom: Int, right: Int), outputSize: (Int, Int)) throws -> Value {
        try made(sprout_infer_pool(graph, x.id, max ? 1 : 0, Int32(kernel.0), Int32(kernel.1), Int32(stride.0), Int32(stride.1),
                                   Int32(padding.top), Int32(padding.left), Int32(padding.bottom), Int32(padding.right),
                                   Int32(outputSize.0), Int32(outputSize.1)), "pooling")
    }

    /// Across channels: x / (k + alpha/size · Σ x² over `size` channels)^beta.
    public func localResponseNorm(_ x: Value, size: Int, alpha: Float, beta: Float, k: Float) throws -> Value {
        try made(sprout_infer_lrn(graph, x.id, Int32(size), alpha, beta, k), "LRN")
    }

    //   y[n, c, h, w] = x[n, c, h, w]·scale[c] + shift[c]
    public func affine(_ x: Value, scale: Tensor, shift: Tensor) throws -> Value {
        let s = scale.scalars, t = shift.scalars
        let id = s.withUnsafeBufferPointer { sp in t.withUnsafeBufferPointer { tp in
            sprout_infer_affine(graph, x.id, sp.baseAddress, tp.baseAddress)
        } }
        return try made(id, "batch norm")
    }

    //   x: [N, …] (flattened) → [N, K];  weight [K, features], bias [K]
    public func linear(_ x: Value, weight: Tensor, bias: Tensor?) throws -> Value {
        let w = weight.scalars, b = bias?.scalars
        let id = w.withUnsafeBufferPointer { wp in
            withOptionalPointer(b) { bp in sprout_infer_linear(graph, x.id, Int32(weight.shape[0]), wp.baseAddress, bp) }
        }
        return try made(id, "linear")
    }

    public func activation(_ x: Value, _ kind: Activation) throws -> Value {
        let (code, alpha, beta) = kind.code
        return try made(sprout_infer_activation(graph, x.id, code, alpha, beta), "activation")
    }

    public func add(_ a: Value, _ b: Value) throws -> Value {
        try made(sprout_infer_add(graph, a.id, b.id), "add")
    }

    /// The value `run` returns (default: the last one made).
    public func setOutput(_ v: Value) throws {
        guard sprout_infer_set_output(graph, v.id) == 0 else { throw GraphError(description: String(cString: sprout_infer_graph_error(graph))) }
    }

    /// The output's shape without the batch axis.
    public var outputShape: [Int] {
        var dims = [Int](repeating: 0, count: 4)
        let n = dims.withUnsafeMutableBufferPointer { p in
            p.withMemoryRebound(to: CLong.self) { sprout_infer_output_dims(graph, $0.baseAddress) }
        }
        return n < 0 ? [] : Array(dims[1..<Int(n)])
    }

    /// Compiles (or checks) the plan for `batch` images now: its error if it cannot be made.
    public func prepare(batch: Int) throws {
        let plan = try takePlan(batch)
        givePlan(plan, batch)
    }

    //   x: [N, C, H, W] → [N, outputShape…]
    public func run(_ x: Tensor) throws -> Tensor {
        precondition(Array(x.shape.dropFirst()) == inputShape, "InferenceGraph: input \(x.shape), expected [N] + \(inputShape)")
        let n = x.shape[0]
        let out = outputShape
        let per = out.reduce(1, *), inPer = inputShape.reduce(1, *)
        let y = Tensor(uninitializedShape: [n] + out, on: .cpu)
        let input = x  // every device keeps tensors in host memory today
        var start = 0
        // Powers of two up to largestPlan: a handful of plans serve every batch size.
        while start < n {
            var chunk = Self.largestPlan
            while chunk > n - start { chunk /= 2 }
            let plan = try takePlan(chunk)
            let status = sprout_infer_plan_run(plan, input.storage.pointer + start * inPer, y.storage.pointer + start * per)
            givePlan(plan, chunk)
            guard status == 0 else { throw GraphError(description: "oneDNN failed to run the inference graph") }
            start += chunk
        }
        return y
    }

    /// Activation memory of the compiled plans, by batch size (for `sprout bench`).
    public var compiledPlanBytes: [Int: Int] {
        lock.lock(); defer { lock.unlock() }
        return planBytes
    }

    private func takePlan(_ batch: Int) throws -> OpaquePointer {
        lock.lock()
        if let p = idle[batch]?.popLast() { lock.unlock(); return p }
        lock.unlock()
        var error = [CChar](repeating: 0, count: 256)
        guard let p = sprout_infer_plan_create(graph, Int32(batch), &error, Int32(error.count)) else {
            throw GraphError(description: "inference graph for batch \(batch): " + String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        lock.lock()
        planBytes[batch] = sprout_infer_plan_bytes(p)
        lock.unlock()
        return p
    }

    private func givePlan(_ p: OpaquePointer, _ batch: Int) {
        lock.lock()
        idle[batch, default: []].append(p)
        lock.unlock()
    }
}

private func withOptionalPointer<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let values else { return body(nil) }
    return values.withUnsafeBufferPointer { body($0.baseAddress) }
}
