import CSproutKernels

// The recurrent cells in C (recurrent.c); the reference backend runs SequenceKernels' Swift,
// and BackendTests compares the two on the CRNN's training step.
extension CPUBackend {

    public func lstmCell(xg: Tensor, hg: Tensor, cell: Tensor, hidden: Tensor, keep: [Float]?)
        -> (hidden: Tensor, cell: Tensor, output: Tensor, activations: Tensor, cellCandidate: Tensor) {
        let (n, h) = (cell.shape[0], cell.shape[1])
        let (hOut, cOut, yOut, act, cand) = (output([n, h]), output([n, h]), output([n, h]), output([n, 4 * h]), output([n, h]))
        withKeep(keep) {
            sprout_lstm_cell_forward(xg.storage.pointer, hg.storage.pointer, cell.storage.pointer, hidden.storage.pointer, $0,
                                     Int32(n), Int32(h), hOut.storage.pointer, cOut.storage.pointer, yOut.storage.pointer,
                                     act.storage.pointer, cand.storage.pointer)
        }
        return (hOut, cOut, yOut, act, cand)
    }

    public func lstmCellGradient(output dy: Tensor?, hidden dh: Tensor, cell dc: Tensor, activations: Tensor,
                                 cellCandidate: Tensor, previousCell: Tensor, keep: [Float]?) -> (gates: Tensor, cell: Tensor, hidden: Tensor) {
        let (n, h) = (previousCell.shape[0], previousCell.shape[1])
        let (dGates, dcPrev, dhPrev) = (output([n, 4 * h]), output([n, h]), output([n, h]))
        withKeep(keep) {
            sprout_lstm_cell_backward(dy?.storage.pointer, dh.storage.pointer, dc.storage.pointer, activations.storage.pointer,
                                      cellCandidate.storage.pointer, previousCell.storage.pointer, $0, Int32(n), Int32(h),
                                      dGates.storage.pointer, dcPrev.storage.pointer, dhPrev.storage.pointer)
        }
        return (dGates, dcPrev, dhPrev)
    }

    public func gruCell(xg: Tensor, hg: Tensor, hidden: Tensor, keep: [Float]?) -> (hidden: Tensor, output: Tensor, activations: Tensor) {
        let (n, h) = (hidden.shape[0], hidden.shape[1])
        let (hOut, yOut, act) = (output([n, h]), output([n, h]), output([n, 4 * h]))
        withKeep(keep) {
            sprout_gru_cell_forward(xg.storage.pointer, hg.storage.pointer, hidden.storage.pointer, $0, Int32(n), Int32(h),
                                    hOut.storage.pointer, yOut.storage.pointer, act.storage.pointer)
        }
        return (hOut, yOut, act)
    }

    public func gruCellGradient(output dy: Tensor?, hidden dh: Tensor, activations: Tensor, previousHidden: Tensor,
                                keep: [Float]?) -> (input: Tensor, recurrent: Tensor, hidden: Tensor) {
        let (n, h) = (previousHidden.shape[0], previousHidden.shape[1])
        let (dx, dhg, dhPrev) = (output([n, 3 * h]), output([n, 3 * h]), output([n, h]))
        withKeep(keep) {
            sprout_gru_cell_backward(dy?.storage.pointer, dh.storage.pointer, activations.storage.pointer, previousHidden.storage.pointer,
                                     $0, Int32(n), Int32(h), dx.storage.pointer, dhg.storage.pointer, dhPrev.storage.pointer)
        }
        return (dx, dhg, dhPrev)
    }

    private func withKeep(_ keep: [Float]?, _ body: (UnsafePointer<Float>?) -> Void) {
        guard let keep else { return body(nil) }
        keep.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
