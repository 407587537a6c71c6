/// Reverse-mode automatic differentiation on a tape built at run time.
///
/// Every op that runs while recording and has at least one input carrying a `GradNode`
/// gives its output a node holding the inputs' nodes and a closure that maps the output's
/// gradient to the inputs' gradients. `valueWithGradient` walks the nodes in reverse
/// topological order from the result, accumulating gradients where a tensor fed several
/// ops, and then drops every closure, so the tape's memory goes as soon as backward ends.
final class GradNode: @unchecked Sendable {
    var inputs: [GradNode?]
    var backward: ((Tensor) -> [Tensor?])?
    let shape: [Int]
    let op: String
    var gradient: Tensor?

    init(op: String, shape: [Int], inputs: [GradNode?], backward: ((Tensor) -> [Tensor?])?) {
        self.op = op
        self.shape = shape
        self.inputs = inputs
        self.backward = backward
    }
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
        var out = self
        out.node = GradNode(op: op, shape: shape, inputs: inputs.map(\.node), backward: backward)
        return out
    }

    /// Single-input convenience.
    @inline(__always)
    func recorded(_ op: String, _ input: Tensor, _ backward: @escaping (Tensor) -> Tensor) -> Tensor {
        recorded(op, [input]) { [backward($0)] }
    }
}

/// The value of `f` at `inputs` and the gradient of that (scalar) value with respect to
/// each input.
public func valueWithGradient(
    at inputs: [Tensor], of f: ([Tensor]) throws -> Tensor
) rethrows -> (value: Tensor, gradients: [Tensor]) {
    let leaves = inputs.map { input -> Tensor in
        var leaf = input.detached
        leaf.node = GradNode(op: "input", shape: input.shape, inputs: [], backward: nil)
        return leaf
    }
    let value = try GradientRecording.$isEnabled.withValue(true) { try f(leaves) }
    precondition(value.count == 1, "valueWithGradient: the function must return one value, got shape \(value.shape)")
    let grads = backpropagate(from: value, to: leaves.map { $0.node! })
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
    guard let root = value.node else { return leaves.map { _ in nil } }
    // Iterative DFS: deep nets would overflow the stack with recursion.
    var order: [GradNode] = []
    var visited = Set<ObjectIdentifier>()
    var stack: [(GradNode, Bool)] = [(root, false)]
    while let (node, expanded) = stack.popLast() {
        if expanded { order.append(node); continue }
        if !visited.insert(ObjectIdentifier(node)).inserted { continue }
        stack.append((node, true))
        for case let input? in node.inputs where !visited.contains(ObjectIdentifier(input)) {
            stack.append((input, false))
        }
    }
    withoutGradient {
        root.gradient = Tensor(shape: value.shape, repeating: 1)
        for node in order.reversed() {
            guard let backward = node.backward, let g = node.gradient else { continue }
            let inputGrads = backward(g)
            precondition(inputGrads.count == node.inputs.count, "autodiff: \(node.op) returned \(inputGrads.count) gradients for \(node.inputs.count) inputs")
            for (input, ig) in zip(node.inputs, inputGrads) {
                guard let input, let ig else { continue }
                precondition(ig.shape == input.shape, "autodiff: \(node.op) gave a gradient of shape \(ig.shape) for an input of shape \(input.shape)")
                input.gradient = input.gradient.map { $0 + ig } ?? ig
            }
            // Release the tape as we go: the closure holds the op's saved tensors.
            node.backward = nil
            node.gradient = nil
            node.inputs = []
        }
    }
    let result = leaves.map { $0.gradient }
    for leaf in leaves { leaf.gradient = nil }
    return result
}
