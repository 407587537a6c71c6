extension Tensor {
    private func reducedShape(_ axes: Set<Int>, keep: Bool) -> [Int] {
        keep ? shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
             : shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
    }

    private func axisSet(_ axes: [Int]?, op: String) -> Set<Int> {
        Set((axes ?? Array(0..<rank)).map { normalizeAxis($0, rank: rank, op: op) })
    }

    //   x: [..] → sum over `axes` (all when nil); gradient: broadcast back.
    public func sum(alongAxes axes: [Int]? = nil, keepingDimensions keep: Bool = false) -> Tensor {
        let set = axisSet(axes, op: "sum")
        let out = backend.reduce(.sum, self, axes: set).reshaped(to: reducedShape(set, keep: keep))
        let inShape = shape, keptShape = reducedShape(set, keep: true)
        return out.recorded("sum", self) { g in g.reshaped(to: keptShape).broadcast(to: inShape) }
    }

    public func mean(alongAxes axes: [Int]? = nil, keepingDimensions keep: Bool = false) -> Tensor {
        let set = axisSet(axes, op: "mean")
        let n = set.map { shape[$0] }.reduce(1, *)
        return sum(alongAxes: axes, keepingDimensions: keep) * (1 / Float(Swift.max(n, 1)))
    }

    /// Maximum over `axes`; the gradient is shared equally among tied maxima (as `torch.amax`).
    public func max(alongAxes axes: [Int]? = nil, keepingDimensions keep: Bool = false) -> Tensor {
        let set = axisSet(axes, op: "max")
        precondition(count > 0, "max: empty tensor of shape \(shape)")
        let out = backend.reduce(.max, self, axes: set).reshaped(to: reducedShape(set, keep: keep))
        let keptShape = reducedShape(set, keep: true), input = detached, list = Array(set)
        return out.recorded("max", self) { g in
            let mask = equal(input, out.detached.reshaped(to: keptShape))
            let ties = mask.sum(alongAxes: list, keepingDimensions: true)
            return mask * (g.reshaped(to: keptShape) / ties)
        }
    }

    public func min(alongAxes axes: [Int]? = nil, keepingDimensions keep: Bool = false) -> Tensor {
        -((-self).max(alongAxes: axes, keepingDimensions: keep))
    }

    /// Variance over `axes` (biased, dividing by n, unless `unbiased`).
    public func variance(alongAxes axes: [Int]? = nil, keepingDimensions keep: Bool = false, unbiased: Bool = false) -> Tensor {
        let set = axisSet(axes, op: "variance")
        let n = set.map { shape[$0] }.reduce(1, *)
        let centered = self - mean(alongAxes: axes, keepingDimensions: true)
        let ss = (centered * centered).sum(alongAxes: axes, keepingDimensions: keep)
        return ss * (1 / Float(Swift.max(unbiased ? n - 1 : n, 1)))
    }

    /// Index of the largest element along `axis` (first one on ties), as Ints on the host.
    public func argmax(alongAxis axis: Int = -1) -> [Int] {
        let a = normalizeAxis(axis, rank: rank, op: "argmax")
        let outer = shape[..<a].reduce(1, *), n = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        precondition(n > 0, "argmax: axis \(a) of shape \(shape) is empty")
        var result = [Int](repeating: 0, count: outer * inner)
        withData { p in
        for o in 0..<outer {
            for i in 0..<inner {
                var best = 0
                var bestValue = p[o * n * inner + i]
                for k in 1..<n where p[(o * n + k) * inner + i] > bestValue {
                    best = k
                    bestValue = p[(o * n + k) * inner + i]
                }
                result[o * inner + i] = best
            }
        }
        }
        return result
    }

    /// The `k` largest values along the last axis, in descending order, with their indices.
    public func topK(_ k: Int) -> (values: Tensor, indices: [[Int]]) {
        precondition(rank >= 1, "topK: needs at least one axis")
        let n = shape[rank - 1]
        precondition(k >= 1 && k <= n, "topK: k = \(k) outside 1...\(n) for shape \(shape)")
        let rows = count / n
        var values = [Float](), indices = [[Int]]()
        values.reserveCapacity(rows * k)
        withData { p in
        for r in 0..<rows {
            let row = p.baseAddress! + r * n
            // Stable: larger value first, lower index first among equal values.
            let order = (0..<n).sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(k)
            indices.append(Array(order))
            values.append(contentsOf: order.map { row[$0] })
        }
        }
        return (Tensor(shape: Array(shape.dropLast()) + [k], scalars: values), indices)
    }
}
