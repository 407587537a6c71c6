/// Reverse-mode automatic differentiation on a tape built at run time.
///
/// Every op that runs while recording and has at least one input carrying a node gives its
/// outputs one `GradNode`: the inputs' edges and a closure that maps the outputs' gradients
/// to the inputs' gradients. An op has one output or several (an LSTM cell returns h and c;
/// `unstacked` returns T slices): each output tensor holds the node and its index.
/// `valueWithGradient` walks the nodes in reverse topological order from the result,
/// accumulating gradients where a tensor fed several ops, and drops every closure as it
/// goes, so the tape's memory goes as soon as backward ends.
final class GradNode: @unchecked Sendable {
    var inputs: [GradEdge?]
    var backward: (([Tensor?]) -> [InputGradient?])?
    let shapes: [[Int]]
    let op: String
    /// Gradients received so far, one per output.
    var gradients: [Tensor?]

    init(op: String, shapes: [[Int]], inputs: [GradEdge?], backward: (([Tensor?]) -> [InputGradient?])?) {
        self.op = op
        self.shapes = shapes
        self.inputs = inputs
        self.backward = backward
        gradients = Array(repeating: nil, count: shapes.count)
    }
}

/// An output of a recorded op: its node and which of the node's outputs it is.
struct GradEdge {
    let node: GradNode
    let output: Int
}

/// What a backward rule hands one input.
enum InputGradient {
    /// A gradient of the input's whole shape.
    case dense(Tensor)
    /// The gradient of `range` along `axis` only (zero elsewhere): added into the input's one
    /// gradient buffer, so T slices of a sequence cost O(T), not T full-size zero tensors.
    case slab(Tensor, axis: Int, range: Range<Int>)
}

public enum GradientRecording {
    @TaskLocal static var isEnabled = true
}

/// Runs `body` without recording anything for gradients (inference, metrics, updates).
public func withoutGradient<R>(_ body: () throws -> R) rethrows -> R {
    try GradientRecording.$isEnabled.withValue(false, operation: body)
}

extension Tensor {
    /// Attaches a backward rule to an op's output when any input is being differentiated.
    /// `backward` receives the output's gradient and returns one gradient per input
    /// (nil where an input needs none), each of that input's shape.
    @inline(__always)
    func recorded(_ op: String, _ inputs: [Tensor], _ backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        guard inputs.contains(where: { $0.node != nil }), GradientRecording.isEnabled else { return self }
        let outShape = shape
        return Tensor.recordedOutputs(op, inputs, [self]) { grads in
            backward(grads[0] ?? Tensor(shape: outShape, repeating: 0)).map { $0.map(InputGradient.dense) }
        }[0]
    }

    /// Single-input convenience.
    @inline(__always)
    func recorded(_ op: String, _ input: Tensor, _ backward: @escaping (Tensor) -> Tensor) -> Tensor {
        recorded(op, [input]) { [backward($0)] }
    }

    /// A single-input op whose backward covers a slab of its input (`slice`).
    func recordedSlab(_ op: String, _ input: Tensor, axis: Int, range: Range<Int>) -> Tensor {
        guard input.node != nil, GradientRecording.isEnabled else { return self }
        let outShape = shape
        return Tensor.recordedOutputs(op, [input], [self]) { grads in
            [.slab(grads[0] ?? Tensor(shape: outShape, repeating: 0), axis: axis, range: range)]
        }[0]
    }

    /// Attaches one backward rule to several outputs of an op. `backward` receives one
    /// gradient per output (nil for outputs that did not reach the result) and returns one
    /// per input.
    static func recordedOutputs(_ op: String, _ inputs: [Tensor], _ outputs: [Tensor],
                                _ backward: @escaping ([Tensor?]) -> [InputGradient?]) -> [Tensor] {
        guard inputs.contains(where: { $0.node != nil }), GradientRecording.isEnabled else { return outputs }
        let node = GradNode(op: op, shapes: outputs.map(\.shape), inputs: inputs.map(\.node), backward: backward)
        return outputs.enumerated().map { i, t in
            var out = t
            out.node = GradEdge(node: node, output: i)
            return out
        }
    }
}

/// The value of `f` at `inputs` and the gradient of that (scalar) value with respect to
/// each input.
public func valueWithGradient(
    at inputs: [Tensor], of f: ([Tensor]) throws -> Tensor
) rethrows -> (value: Tensor, gradients: [Tensor]) {
    let leaves = inputs.map { input -> Tensor in
        var leaf = input.detached
        leaf.node = GradEdge(node: GradNode(op: "input", shapes: [input.shape], inputs: [], backward: nil), output: 0)
        return leaf
    }
    let value = try GradientRecording.$isEnabled.withValue(true) { try f(leaves) }
    precondition(value.count == 1, "valueWithGradient: the function must return one value, got shape \(value.shape)")
    let grads = backpropagate(from: value, to: leaves.map { $0.node!.node })
    return (value.detached, zip(grads, inputs).map { g, x in g ?? Tensor(shape: x.shape, repeating: 0) })
}

/// Single-input form.
public func valueWithGradient(at x: Tensor, of f: (Tensor) throws -> Tensor) rethrows -> (value: Tensor, gradient: Tensor) {
    let (v, g) = try valueWithGradient(at: [x]) { try f($0[0]) }
    return (v, g[0])
}

public func gradient(at x: Tensor, of f: (Tensor) throws -> Tensor) rethrows -> Tensor {
    try valueWithGradient(at: x, of: f).gradient
}

/// Seeds d(value)/d(value) = 1 and runs every recorded backward rule once, in reverse
/// topological order. Returns the gradients that reached `leaves`.
func backpropagate(from value: Tensor, to leaves: [GradNode]) -> [Tensor?] {
    guard let rootEdge = value.node else { return leaves.map { _ in nil } }
    let root = rootEdge.node
    // Iterative DFS: deep nets would overflow the stack with recursion.
    var order: [GradNode] = []
    var visited = Set<ObjectIdentifier>()
    var stack: [(GradNode, Bool)] = [(root, false)]
    while let (node, expanded) = stack.popLast() {
        if expanded { order.append(node); continue }
        if !visited.insert(ObjectIdentifier(node)).inserted { continue }
        stack.append((node, true))
        for case let input? in node.inputs where !visited.contains(ObjectIdentifier(input.node)) {
            stack.append((input.node, false))
        }
    }
    withoutGradient {
        root.gradients[rootEdge.output] = Tensor(shape: value.shape, repeating: 1)
        for node in order.reversed() {
            guard let backward = node.backward, node.gradients.contains(where: { $0 != nil }) else { continue }
            let inputGrads = backward(node.gradients)
            precondition(inputGrads.count == node.inputs.count, "autodiff: \(node.op) returned \(inputGrads.count) gradients for \(node.inputs.count) inputs")
            for (input, ig) in zip(node.inputs, inputGrads) {
                guard let input, let ig else { continue }
                accumulate(ig, into: input, op: node.op)
            }
            // Release the tape as we go: the closure holds the op's saved tensors.
            node.backward = nil
            node.gradients = []
            node.inputs = []
        }
    }
    let result = leaves.map { $0.gradients.first ?? nil }
    for leaf in leaves { leaf.gradients = [nil] }
    return result
}

/// Adds one backward rule's gradient into what an input has received so far.
private func accumulate(_ gradient: InputGradient, into edge: GradEdge, op: String) {
    let shape = edge.node.shapes[edge.output]
    switch gradient {
    case .dense(let g):
        precondition(g.shape == shape, "autodiff: \(op) gave a gradient of shape \(g.shape) for an input of shape \(shape)")
        edge.node.gradients[edge.output] = edge.node.gradients[edge.output].map { $0 + g } ?? g
    case let .slab(g, axis, range):
        var total = edge.node.gradients[edge.output] ?? Tensor(shape: shape, repeating: 0)
        edge.node.gradients[edge.output] = nil  // unique, so the addition below is in place
        total.addSlab(g, alongAxis: axis, range: range)
        edge.node.gradients[edge.output] = total
    }
}
