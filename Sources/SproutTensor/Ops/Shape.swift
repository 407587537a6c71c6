// Shape ops. All outputs are contiguous; reshape alone shares storage.

extension Tensor {
    /// Same data, new shape. One axis may be -1 (inferred).
    public func reshaped(to newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let i = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "reshape: cannot infer -1 in \(newShape) for \(count) elements (shape \(shape))")
            resolved[i] = count / known
        }
        precondition(resolved.reduce(1, *) == count, "reshape: shape \(shape) (\(count) elements) cannot become \(newShape)")
        let out = Tensor(shape: resolved, storage: storage)
        let inShape = shape
        return out.recorded("reshape", self) { g in g.reshaped(to: inShape) }
    }

    /// [N, …] → [N, rest]
    public func flattened(startingAt axis: Int = 1) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "flatten")
        return reshaped(to: Array(shape[..<a]) + [shape[a...].reduce(1, *)])
    }

    /// Axes reordered: out.shape[i] = shape[axes[i]].
    public func permuted(_ axes: [Int]) -> Tensor {
        precondition(axes.sorted() == Array(0..<rank), "permute: \(axes) is not a permutation of the \(rank) axes of \(shape)")
        if axes == Array(0..<rank) { return self }
        let out = backend.permute(self, axes)
        var inverse = [Int](repeating: 0, count: axes.count)
        for (i, a) in axes.enumerated() { inverse[a] = i }
        return out.recorded("permute", self) { g in g.permuted(inverse) }
    }

    /// Swaps two axes (default: the last two).
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var axes = Array(0..<rank)
        axes.swapAt(normalizeAxis(a, rank: rank, op: "transpose"), normalizeAxis(b, rank: rank, op: "transpose"))
        return permuted(axes)
    }

    /// Elements `range` along `axis` (e.g. a slice of the batch).
    public func slice(_ range: Range<Int>, alongAxis axis: Int = 0) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "slice")
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[a],
                     "slice: range \(range) out of bounds for axis \(a) of size \(shape[a]) (shape \(shape))")
        let out = backend.slice(self, axis: a, range: range)
        // Backward adds g into [.., range, ..] of the input's one gradient buffer.
        return out.recordedSlab("slice", self, axis: a, range: range)
    }

    /// self[.., range, ..] += g along `axis` (autodiff's accumulation of slice gradients).
    ///   self: [.., n, ..], g: [.., range.count, ..] → in place
    mutating func addSlab(_ g: Tensor, alongAxis axis: Int, range: Range<Int>) {
        var expected = shape
        expected[axis] = range.count
        precondition(g.shape == expected, "autodiff: a slice gradient of shape \(g.shape) for \(range) of axis \(axis) of \(shape)")
        precondition(g.device == device, "autodiff: a slice gradient on \(g.device) for a tensor on \(device)")
        backend.addSlab(g, into: &self, axis: axis, range: range)
    }

    /// Inserts an axis of size 1 at `axis` (unsqueeze).
    public func expandingShape(at axis: Int) -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        precondition(a >= 0 && a <= rank, "expandingShape: axis \(axis) out of range for rank \(rank)")
        var s = shape
        s.insert(1, at: a)
        return reshaped(to: s)
    }

    /// Tensors of one shape joined along a new axis.   T × [..] → [.., T, ..]
    public static func stacked(_ tensors: [Tensor], alongAxis axis: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "stacked: no tensors")
        for t in tensors {
            precondition(t.shape == tensors[0].shape, "stacked: shape \(t.shape) differs from \(tensors[0].shape)")
        }
        return concatenate(tensors.map { $0.expandingShape(at: axis) }, alongAxis: axis)
    }

    /// The slices along `axis`, that axis dropped: [.., T, ..] → T × [..]. One op with T
    /// outputs: backward writes every slice's gradient into one buffer (O(T), as per-time-step
    /// recurrent layers need).
    public func unstacked(alongAxis axis: Int = 0) -> [Tensor] {
        let a = normalizeAxis(axis, rank: rank, op: "unstacked")
        let n = shape[a]
        var sliceShape = shape
        sliceShape.remove(at: a)
        let pieces = withoutGradient { (0..<n).map { slice($0..<($0 + 1), alongAxis: a).reshaped(to: sliceShape) } }
        let inShape = shape
        return Tensor.recordedOutputs("unstacked", [self], pieces) { grads in
            var total = Tensor(shape: inShape, repeating: 0)
            var keptShape = inShape
            keptShape[a] = 1
            for (i, g) in grads.enumerated() {
                guard let g else { continue }
                total.addSlab(g.reshaped(to: keptShape), alongAxis: a, range: i..<(i + 1))
            }
            return [.dense(total)]
        }
    }

    /// Joins tensors along `axis`; all other axes must match.
    public static func concatenate(_ tensors: [Tensor], alongAxis axis: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate: no tensors")
        let first = tensors[0]
        let a = normalizeAxis(axis, rank: first.rank, op: "concatenate")
        for t in tensors {
            precondition(t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == a || t.shape[$0] == first.shape[$0] },
                         "concatenate: shape \(t.shape) does not match \(first.shape) outside axis \(a)")
        }
        for t in tensors { precondition(t.device == first.device, "concatenate: tensors on \(first.device) and \(t.device)") }
        let out = first.backend.concatenate(tensors, axis: a)
        var start = 0
        var ranges: [Range<Int>] = []
        for t in tensors {
            ranges.append(start..<(start + t.shape[a]))
            start += t.shape[a]
        }
        return out.recorded("concatenate", tensors) { g in ranges.map { g.slice($0, alongAxis: a) } }
    }

    /// Reverses the order of elements along each of `axes`.
    public func flipped(alongAxes axes: [Int]) -> Tensor {
        let normalized = Set(axes.map { normalizeAxis($0, rank: rank, op: "flip") })
        let out = backend.flip(self, axes: normalized)
        let flippedAxes = Array(normalized)
        return out.recorded("flip", self) { g in g.flipped(alongAxes: flippedAxes) }
    }
}

/// How `padded` fills the border.
public enum PaddingMode: Sendable { case zero, reflect }

extension Tensor {
    /// Pads the last two axes (H and W of NCHW): `top`/`bottom` rows and `left`/`right`
    /// columns. `.reflect` mirrors without repeating the edge (PyTorch's `reflect`).
    public func padded(top: Int, bottom: Int, left: Int, right: Int, mode: PaddingMode = .zero) -> Tensor {
        precondition(rank >= 2, "pad: needs at least 2 axes, got shape \(shape)")
        precondition(Swift.min(top, bottom, left, right) >= 0, "pad: negative padding (\(top), \(bottom), \(left), \(right))")
        let h = shape[rank - 2], w = shape[rank - 1]
        if mode == .reflect {
            precondition(top < h && bottom < h && left < w && right < w,
                         "pad: reflect padding (\(top), \(bottom), \(left), \(right)) must be smaller than the input's \(h)×\(w)")
        }
        let oh = h + top + bottom, ow = w + left + right
        // Source index of every output position (-1 = zero), shared by forward and backward.
        func source(_ o: Int, _ before: Int, _ size: Int) -> Int {
            var i = o - before
            if mode == .zero { return (i < 0 || i >= size) ? -1 : i }
            if i < 0 { i = -i }
            if i >= size { i = 2 * (size - 1) - i }
            return i
        }
        let rows = (0..<oh).map { source($0, top, h) }
        let cols = (0..<ow).map { source($0, left, w) }
        let out = backend.pad(self, rows: rows, cols: cols)
        let inShape = shape
        return out.recorded("pad", self) { g in
            g.backend.padGradient(g, rows: rows, cols: cols, inputShape: inShape)
        }
    }
}
