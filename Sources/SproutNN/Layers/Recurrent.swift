import SproutTensor

/// The state a recurrent layer carries between calls: hidden (and, for an LSTM, cell)
/// [layers · directions, N, H], PyTorch's h_n / c_n layout.
public struct RecurrentState {
    public var hidden: Tensor
    public var cell: Tensor?

    public init(hidden: Tensor, cell: Tensor? = nil) {
        self.hidden = hidden
        self.cell = cell
    }
}

/// A layer that runs over time and carries state: `forward(x)` of `Layer` starts from zeros
/// and drops the final state; this form takes an initial state and per-sample lengths and
/// returns the final state.
public protocol RecurrentLayer: Layer {
    /// x: [T, N, C] ([N, T, C] when batch-first) → output [T, N, D·H] (or [N, T, D·H]) and the
    /// state after each sample's last valid step. `lengths[n]` ≤ T: sample n's valid steps
    /// (outputs past them are 0, as PyTorch's packed sequences padded back).
    func forward(_ x: Tensor, state: RecurrentState?, lengths: [Int]?) -> (output: Tensor, state: RecurrentState)
}

/// What LSTM and GRU share: PyTorch's parameters per layer and direction — weight_ih_l{k}
/// [G·H, in], weight_hh_l{k} [G·H, H], bias_ih_l{k}, bias_hh_l{k} [G·H], `_reverse` for the
/// backward direction — initialised U(±1/√H) as PyTorch does, so state dicts interchange.
public class RecurrentBase {
    public let inputSize: Int
    public let hiddenSize: Int
    public let layerCount: Int
    public let bidirectional: Bool
    public let batchFirst: Bool
    /// (weight_ih, weight_hh, bias_ih, bias_hh) for each layer and direction, in PyTorch's order.
    public let weights: [Parameter]
    public var isTraining = true
    let gates: Int

    init(gates: Int, inputSize: Int, hiddenSize: Int, layers: Int, bidirectional: Bool, batchFirst: Bool, kind: String) {
        precondition(inputSize > 0 && hiddenSize > 0 && layers > 0,
                     "\(kind): sizes must be positive, got input \(inputSize), hidden \(hiddenSize), layers \(layers)")
        self.gates = gates
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.layerCount = layers
        self.bidirectional = bidirectional
        self.batchFirst = batchFirst
        let bound = 1 / Float(hiddenSize).squareRoot()
        var weights: [Parameter] = []
        for layer in 0..<layers {
            let input = layer == 0 ? inputSize : hiddenSize * (bidirectional ? 2 : 1)
            for _ in 0..<(bidirectional ? 2 : 1) {
                for shape in [[gates * hiddenSize, input], [gates * hiddenSize, hiddenSize], [gates * hiddenSize], [gates * hiddenSize]] {
                    weights.append(Parameter(GlobalRandom.using { Tensor.uniform(shape, low: -bound, high: bound, generator: &$0) }))
                }
            }
        }
        self.weights = weights
    }

    var directions: Int { bidirectional ? 2 : 1 }

    /// PyTorch's names, in the order of `weights`.
    public var parameterNames: [String] {
        var names: [String] = []
        for layer in 0..<layerCount {
            for direction in 0..<directions {
                let suffix = "_l\(layer)" + (direction == 1 ? "_reverse" : "")
                names += ["weight_ih", "weight_hh", "bias_ih", "bias_hh"].map { $0 + suffix }
            }
        }
        return names
    }

    public var ownParameters: [(name: String, parameter: Parameter)] { Array(zip(parameterNames, weights)) }

    func parameters(layer: Int, direction: Int) -> (ih: Tensor, hh: Tensor, biasIH: Tensor, biasHH: Tensor) {
        let k = (layer * directions + direction) * 4
        return (weights[k].value, weights[k + 1].value, weights[k + 2].value, weights[k + 3].value)
    }

    /// x: [T, N, C] (time-major) after the batch-first transpose.
    func checkInput(_ x: Tensor, lengths: [Int]?, kind: String) -> Tensor {
        precondition(x.rank == 3 && x.shape[2] == inputSize,
                     "\(kind): input must be \(batchFirst ? "[N, T, \(inputSize)]" : "[T, N, \(inputSize)]"), got \(x.shape)")
        return batchFirst ? x.permuted([1, 0, 2]) : x
    }

    func initial(_ state: Tensor?, batch: Int, kind: String) -> [Tensor] {
        let count = layerCount * directions
        guard let state else { return Array(repeating: Tensor.zeros([batch, hiddenSize]), count: count) }
        precondition(state.shape == [count, batch, hiddenSize],
                     "\(kind): initial state must be [\(count), \(batch), \(hiddenSize)], got \(state.shape)")
        return state.unstacked(alongAxis: 0)
    }

    /// x·W_ihᵀ (+ biases) for every time step at once: [T, N, in] → [T, N, G·H].
    func projections(_ x: Tensor, _ w: Tensor, bias: Tensor) -> Tensor {
        let (t, n) = (x.shape[0], x.shape[1])
        let rows = matmul(x.reshaped(to: [t * n, x.shape[2]]), w, transposeB: true) + bias
        return rows.reshaped(to: [t, n, gates * hiddenSize])
    }

    func output(_ y: Tensor) -> Tensor { batchFirst ? y.permuted([1, 0, 2]) : y }

    /// Every layer and direction in order: `run(input, parameters, k, reverse)` gives direction
    /// k's output [T, N, H]; a layer's directions, concatenated, feed the next layer.
    func layers(_ x: Tensor, _ run: (Tensor, (ih: Tensor, hh: Tensor, biasIH: Tensor, biasHH: Tensor), Int, Bool) -> Tensor) -> Tensor {
        var input = x
        for layer in 0..<layerCount {
            let outputs = (0..<directions).map { direction in
                run(input, parameters(layer: layer, direction: direction), layer * directions + direction, direction == 1)
            }
            input = outputs.count == 1 ? outputs[0] : Tensor.concatenate(outputs, alongAxis: 2)
        }
        return output(input)
    }

    func describe(_ kind: String) -> String {
        "\(kind)(\(inputSize)→\(hiddenSize)\(layerCount > 1 ? ", \(layerCount) layers" : "")\(bidirectional ? ", bidirectional" : ""))"
    }

    /// Forward FLOPs for one sample over `steps` time steps: per step and direction, the
    /// input projection and the recurrent product (2 per multiply-add).
    public func flops(steps: Int) -> Int {
        var total = 0
        for layer in 0..<layerCount {
            let input = layer == 0 ? inputSize : hiddenSize * directions
            total += directions * steps * 2 * gates * hiddenSize * (input + hiddenSize)
        }
        return total
    }
}

/// Long short-term memory (PyTorch's `nn.LSTM`, gate order i, f, g, o).
///   x: [T, N, C] (or [N, T, C] batch-first) → [T, N, D·H]
public final class LSTM: RecurrentBase, RecurrentLayer {
    public init(inputSize: Int, hiddenSize: Int, layers: Int = 1, bidirectional: Bool = false, batchFirst: Bool = false) {
        super.init(gates: 4, inputSize: inputSize, hiddenSize: hiddenSize, layers: layers, bidirectional: bidirectional,
                   batchFirst: batchFirst, kind: "LSTM")
    }

    public func forward(_ x: Tensor) -> Tensor { forward(x, state: nil, lengths: nil).output }

    public func forward(_ x: Tensor, state: RecurrentState?, lengths: [Int]?) -> (output: Tensor, state: RecurrentState) {
        let input = checkInput(x, lengths: lengths, kind: "LSTM")
        let n = input.shape[1]
        let h0 = initial(state?.hidden, batch: n, kind: "LSTM"), c0 = initial(state?.cell, batch: n, kind: "LSTM")
        var hidden: [Tensor] = [], cells: [Tensor] = []
        let y = layers(input) { input, p, k, reverse in
            let r = lstmRecurrence(projections: projections(input, p.ih, bias: p.biasIH + p.biasHH), weightHH: p.hh,
                                   initialHidden: h0[k], initialCell: c0[k], lengths: lengths, reverse: reverse)
            hidden.append(r.hidden); cells.append(r.cell)
            return r.output
        }
        return (y, RecurrentState(hidden: Tensor.stacked(hidden), cell: Tensor.stacked(cells)))
    }

    public var summaryName: String { describe("LSTM") }
    /// Per time step: a summary's shapes carry no time axis (`CRNN` multiplies by its columns).
    public func flops(inputShape: [Int], outputShape: [Int]) -> Int { flops(steps: 1) }
}

/// Gated recurrent unit (PyTorch's `nn.GRU`, gate order r, z, n).
///   x: [T, N, C] (or [N, T, C] batch-first) → [T, N, D·H]
public final class GRU: RecurrentBase, RecurrentLayer {
    public init(inputSize: Int, hiddenSize: Int, layers: Int = 1, bidirectional: Bool = false, batchFirst: Bool = false) {
        super.init(gates: 3, inputSize: inputSize, hiddenSize: hiddenSize, layers: layers, bidirectional: bidirectional,
                   batchFirst: batchFirst, kind: "GRU")
    }

    public func forward(_ x: Tensor) -> Tensor { forward(x, state: nil, lengths: nil).output }

    public func forward(_ x: Tensor, state: RecurrentState?, lengths: [Int]?) -> (output: Tensor, state: RecurrentState) {
        let input = checkInput(x, lengths: lengths, kind: "GRU")
        let h0 = initial(state?.hidden, batch: input.shape[1], kind: "GRU")
        var hidden: [Tensor] = []
        let y = layers(input) { input, p, k, reverse in
            let r = gruRecurrence(projections: projections(input, p.ih, bias: p.biasIH), weightHH: p.hh, biasHH: p.biasHH,
                                  initialHidden: h0[k], lengths: lengths, reverse: reverse)
            hidden.append(r.hidden)
            return r.output
        }
        return (y, RecurrentState(hidden: Tensor.stacked(hidden)))
    }

    public var summaryName: String { describe("GRU") }
    /// Per time step: a summary's shapes carry no time axis (`CRNN` multiplies by its columns).
    public func flops(inputShape: [Int], outputShape: [Int]) -> Int { flops(steps: 1) }
}
