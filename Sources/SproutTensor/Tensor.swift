/// An n-dimensional array of `Float32`, row-major, NCHW for images.
///
/// A value type: copies share storage until one of them is written
/// (`withMutableData` copies first when the storage is shared). When it was produced
/// inside `valueWithGradient`, it carries the node that lets gradients flow back.
public struct Tensor: @unchecked Sendable {
    public let shape: [Int]
    @usableFromInline var storage: TensorStorage
    /// The recorded op (and which of its outputs) this tensor came from, inside `valueWithGradient`.
    var node: GradEdge?

    /// Wraps storage without copying. `shape`'s product must equal `storage.count`.
    init(shape: [Int], storage: TensorStorage) {
        precondition(shape.reduce(1, *) == storage.count,
                     "Tensor: shape \(shape) needs \(shape.reduce(1, *)) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    /// A tensor with undefined contents on `device`, for kernels that write every element.
    init(uninitializedShape shape: [Int], on device: Device = .current) {
        self.init(shape: shape, storage: TensorStorage(count: Tensor.checkedCount(shape), device: device))
    }

    /// `value` everywhere, on the current device (`Device.current`).
    public init(shape: [Int], repeating value: Float) {
        self = Device.current.backend.filled(shape: shape, value: value)
    }

    /// `scalars` in row-major order, on the current device (`Device.current`).
    public init(shape: [Int], scalars: [Float]) {
        let n = Tensor.checkedCount(shape)
        precondition(n == scalars.count, "Tensor(shape:scalars:): shape \(shape) needs \(n) values, got \(scalars.count)")
        self = scalars.withUnsafeBufferPointer { Device.current.backend.tensor(shape: shape, scalars: $0) }
    }

    public init(_ scalar: Float) { self.init(shape: [], scalars: [scalar]) }

    /// 1-D tensor of `values`.
    public init(_ values: [Float]) { self.init(shape: [values.count], scalars: values) }

    static func checkedCount(_ shape: [Int]) -> Int {
        for d in shape where d < 0 { preconditionFailure("Tensor: negative dimension in shape \(shape)") }
        return shape.reduce(1, *)
    }

    public var count: Int { storage.count }
    public var rank: Int { shape.count }
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    /// The single value of a one-element tensor.
    public var scalar: Float {
        precondition(count == 1, "Tensor.scalar: tensor of shape \(shape) has \(count) elements, not 1")
        return storage.pointer[0]
    }

    /// Whether gradients flow back through this tensor (it was made inside `valueWithGradient`).
    public var requiresGradient: Bool { node != nil }

    /// Read access to the contiguous data.
    @inlinable
    public func withData<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// Write access to the contiguous data; copies the storage first if it is shared.
    /// Writing to a tensor that takes part in a recorded computation would corrupt its
    /// gradient, so that is refused.
    public mutating func withMutableData<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        precondition(node == nil, "Tensor.withMutableData: cannot write a tensor recorded for gradients")
        if !isKnownUniquelyReferenced(&storage) {
            let copy = TensorStorage(count: storage.count, device: storage.device)
            copy.pointer.update(from: storage.pointer, count: storage.count)
            storage = copy
        }
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// This tensor cut off from gradient recording (same storage).
    public var detached: Tensor { Tensor(shape: shape, storage: storage) }

    /// Element at a multi-index (slow; for tests and printing).
    public subscript(_ index: Int...) -> Float {
        precondition(index.count == rank, "Tensor subscript: \(index.count) indices for rank \(rank)")
        var offset = 0
        for (axis, i) in index.enumerated() {
            precondition(i >= 0 && i < shape[axis], "Tensor subscript: index \(i) out of range for axis \(axis) of \(shape)")
            offset = offset * shape[axis] + i
        }
        return storage.pointer[offset]
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(16).map { String(format: $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 16 ? ", …" : "")])"
    }
}

private func String(format value: Float) -> String {
    let r = (value * 10000).rounded() / 10000
    return "\(r)"
}

/// Strides (in elements) of a contiguous row-major shape.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i] = s
        s *= shape[i]
    }
    return strides
}

/// Resolves a possibly negative axis against a rank.
func normalizeAxis(_ axis: Int, rank: Int, op: String) -> Int {
    let a = axis < 0 ? axis + rank : axis
    precondition(a >= 0 && a < max(rank, 1), "\(op): axis \(axis) out of range for rank \(rank)")
    return a
}
