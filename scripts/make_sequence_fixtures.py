#!/usr/bin/env python3
"""PyTorch reference values for Sprout's recurrent layers and CTC loss.

Writes
  Tests/SproutTests/Fixtures/recurrent.json   nn.LSTM / nn.GRU: uni- and bidirectional, 1-2 layers,
      time-major and batch-first, with and without per-sample lengths (packed sequences padded
      back) and initial states; the state dict, the outputs, and the gradient of
      sum(y*dy) + sum(h_n*dh) (+ sum(c_n*dc)) for the input, the initial state and every parameter.
  Tests/SproutTensorTests/Fixtures/ctc.json   F.ctc_loss on log_softmax(logits): blank 0 and not 0,
      repeated labels, an empty target, targets too long for their input (zero_infinity on and
      off), mean/sum/none; the loss and the gradient for the logits.

Computed in float64. Sprout's float32 is compared at 1e-4 (relative to each tensor's scale).

    ~/.cache/sprout-venv/bin/python scripts/make_sequence_fixtures.py
"""
import json
import os

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def number(v):
    # JSON has no infinity or NaN: written as the strings Swift's decoder is told to accept.
    v = float(v)
    if v != v:
        return "NaN"
    if abs(v) == float("inf"):
        return "Infinity" if v > 0 else "-Infinity"
    return round(v, 10)


def t(x):
    return {"shape": list(x.shape), "data": [number(v) for v in x.detach().reshape(-1).tolist()]}


def recurrent_case(name, kind, inp, hidden, layers, bidirectional, batch_first, T, N, lengths=None, initial=False):
    module = getattr(torch.nn, kind)(inp, hidden, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    D = 2 if bidirectional else 1
    x = torch.randn(N, T, inp) if batch_first else torch.randn(T, N, inp)
    x.requires_grad_(True)
    h0 = torch.randn(layers * D, N, hidden, requires_grad=True) if initial else None
    c0 = torch.randn(layers * D, N, hidden, requires_grad=True) if initial and kind == "LSTM" else None
    state = None
    if initial:
        state = (h0, c0) if kind == "LSTM" else h0
    if lengths is not None:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
        out, hn = module(packed, state)
        y, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    else:
        y, hn = module(x, state)
    h_n, c_n = (hn if kind == "LSTM" else (hn, None))
    dy, dh = torch.randn_like(y), torch.randn_like(h_n)
    total = (y * dy).sum() + (h_n * dh).sum()
    dc = None
    if c_n is not None:
        dc = torch.randn_like(c_n)
        total = total + (c_n * dc).sum()
    params = dict(module.named_parameters())
    total.backward()
    c = {"name": name, "kind": kind, "input_size": inp, "hidden_size": hidden, "layers": layers,
         "bidirectional": bidirectional, "batch_first": batch_first, "lengths": lengths,
         "x": t(x), "dy": t(dy), "dh": t(dh), "y": t(y), "h_n": t(h_n),
         "parameters": {k: t(v) for k, v in params.items()},
         "grads": {k: t(v.grad) for k, v in params.items()}}
    c["grads"]["x"] = t(x.grad)
    if c_n is not None:
        c["c_n"], c["dc"] = t(c_n), t(dc)
    if h0 is not None:
        c["h0"], c["grads"]["h0"] = t(h0), t(h0.grad)
    if c0 is not None:
        c["c0"], c["grads"]["c0"] = t(c0), t(c0.grad)
    return c


def recurrent_cases():
    cases = []
    for kind in ("LSTM", "GRU"):
        cases.append(recurrent_case(f"{kind}_one_layer", kind, 5, 4, 1, False, False, T=6, N=3))
        cases.append(recurrent_case(f"{kind}_bidirectional_two_layers", kind, 3, 5, 2, True, False, T=5, N=2))
        cases.append(recurrent_case(f"{kind}_batch_first_lengths", kind, 4, 3, 1, True, True, T=7, N=4,
                                    lengths=[7, 3, 5, 1]))
        cases.append(recurrent_case(f"{kind}_lengths_initial_state", kind, 3, 4, 2, False, False, T=6, N=3,
                                    lengths=[2, 6, 4], initial=True))
    return cases


def ctc_case(name, T, N, C, targets, input_lengths, blank=0, reduction="mean", zero_infinity=False):
    logits = (torch.randn(T, N, C) * 1.5).requires_grad_(True)
    lp = F.log_softmax(logits, dim=2)
    flat = torch.tensor([l for tg in targets for l in tg], dtype=torch.long)
    loss = F.ctc_loss(lp, flat, torch.tensor(input_lengths), torch.tensor([len(tg) for tg in targets]),
                      blank=blank, reduction=reduction, zero_infinity=zero_infinity)
    dy = torch.randn_like(loss) if loss.dim() > 0 else torch.tensor(1.0)
    (loss * dy).sum().backward()
    return {"name": name, "params": {"blank": blank, "reduction": reduction, "zero_infinity": zero_infinity},
            "targets": targets, "input_lengths": input_lengths,
            "inputs": {"logits": t(logits)}, "dy": t(dy), "output": t(loss), "grads": {"logits": t(logits.grad)}}


def ctc_cases():
    return [
        ctc_case("ctc_mean", 12, 3, 6, [[1, 2, 3], [4, 4, 2, 5], [3]], [12, 10, 8]),
        ctc_case("ctc_repeats_sum", 10, 2, 4, [[1, 1, 1], [2, 2, 3, 3]], [10, 9], reduction="sum"),
        ctc_case("ctc_blank_last_none", 9, 3, 5, [[0, 1, 2], [3, 3], [2, 0, 1, 0]], [9, 7, 9], blank=4, reduction="none"),
        ctc_case("ctc_empty_target", 6, 2, 4, [[], [1, 2]], [6, 4]),
        # Three repeats need 5 steps (blanks between); 4 steps cannot fit: +inf unless zero_infinity.
        ctc_case("ctc_too_long_zero_infinity", 8, 3, 5, [[2, 2, 2], [1, 2, 3, 4], [1]], [4, 8, 3], zero_infinity=True),
        ctc_case("ctc_too_long_sum_zero_infinity", 8, 2, 5, [[2, 2, 2], [1, 3]], [4, 8], reduction="sum", zero_infinity=True),
        ctc_case("ctc_too_long_none", 6, 2, 4, [[1, 2, 3, 1], [1, 2]], [3, 6], reduction="none"),
    ]


def write(path, cases):
    with open(path, "w") as f:
        json.dump({"generator": f"scripts/make_sequence_fixtures.py, torch {torch.__version__}", "cases": cases}, f)
    print(f"{path}: {len(cases)} cases, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    write(os.path.join(ROOT, "Tests", "SproutTests", "Fixtures", "recurrent.json"), recurrent_cases())
    write(os.path.join(ROOT, "Tests", "SproutTensorTests", "Fixtures", "ctc.json"), ctc_cases())
