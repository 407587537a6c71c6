/// Broadcasting (NumPy/PyTorch rules): shapes are aligned at their last axis and each
/// axis must match or be 1 in one of them.
func broadcastShape(_ a: [Int], _ b: [Int], op: String) -> [Int] {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        guard da == db || da == 1 || db == 1 else {
            preconditionFailure("\(op): shapes \(a) and \(b) do not broadcast (axis \(i): \(da) vs \(db))")
        }
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Iteration plan for a broadcast over `outShape`: adjacent axes are merged when every
/// operand treats them alike, so the common NCHW + [1,C,1,1] case becomes three loops
/// with a contiguous innermost run.
struct BroadcastPlan {
    var dims: [Int] = []
    var strides: [[Int]] = []   // per operand, per merged axis (0 = broadcast)

    init(outShape: [Int], operands: [[Int]]) {
        let rank = outShape.count
        var opStrides: [[Int]] = operands.map { shape in
            let padded = [Int](repeating: 1, count: rank - shape.count) + shape
            let cs = contiguousStrides(padded)
            return (0..<rank).map { padded[$0] == 1 ? 0 : cs[$0] }
        }
        var d: [Int] = []
        var s: [[Int]] = Array(repeating: [], count: operands.count)
        for axis in 0..<rank where outShape[axis] != 1 {
            if let last = d.last {
                // Mergeable when, for every operand, stride[prev] == stride[axis] * dim[axis].
                let mergeable = (0..<operands.count).allSatisfy { k in s[k].last! == opStrides[k][axis] * outShape[axis] }
                if mergeable {
                    d[d.count - 1] = last * outShape[axis]
                    for k in 0..<operands.count { s[k][s[k].count - 1] = opStrides[k][axis] }
                    continue
                }
            }
            d.append(outShape[axis])
            for k in 0..<operands.count { s[k].append(opStrides[k][axis]) }
        }
        if d.isEmpty { d = [1]; s = s.map { _ in [0] } }
        opStrides = []
        dims = d
        strides = s
    }

    /// Calls `body(outOffset, offsets, innerCount, innerStrides)` for every innermost run,
    /// in order. Offsets are into each operand.
    @inline(__always)
    func forEachRun(_ body: (Int, [Int], Int, [Int]) -> Void) {
        let n = dims.count
        let inner = dims[n - 1]
        let innerStrides = strides.map { $0[n - 1] }
        let outer = dims.dropLast().reduce(1, *)
        var index = [Int](repeating: 0, count: max(n - 1, 0))
        var offsets = [Int](repeating: 0, count: strides.count)
        for run in 0..<outer {
            body(run * inner, offsets, inner, innerStrides)
            // advance the odometer over the outer axes
            var axis = n - 2
            while axis >= 0 {
                index[axis] += 1
                for k in 0..<offsets.count { offsets[k] += strides[k][axis] }
                if index[axis] < dims[axis] { break }
                for k in 0..<offsets.count { offsets[k] -= strides[k][axis] * dims[axis] }
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

extension Tensor {
    /// Sums this gradient down to `shape` (the inverse of broadcasting `shape` up to self.shape).
    func reduced(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        let lead = shape.count - target.count
        var axes: [Int] = Array(0..<lead)
        for i in 0..<target.count where target[i] == 1 && shape[i + lead] != 1 { axes.append(i + lead) }
        return sum(alongAxes: axes, keepingDimensions: true).reshaped(to: target)
    }

    /// This tensor repeated along its size-1 (or missing leading) axes to `newShape`.
    public func broadcast(to newShape: [Int]) -> Tensor {
        if shape == newShape { return self }
        let check = broadcastShape(shape, newShape, op: "broadcast(to:)")
        precondition(check == newShape, "broadcast(to:): \(shape) cannot broadcast to \(newShape)")
        let out = backend.broadcast(self, to: newShape)
        let inShape = shape
        return out.recorded("broadcast", self) { g in g.reduced(toShape: inShape) }
    }
}
