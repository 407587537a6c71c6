#!/usr/bin/env python3
"""PyTorch reference steps of Muon (airbench94_muon's optimizer) for Sprout's optimizer test:
Nesterov momentum, the weight renormalised to Frobenius norm sqrt(out_channels), the update
orthogonalised by 3 Newton-Schulz steps (3.4445, -4.7750, 2.0315), in float64 here (airbench
runs the iteration in bfloat16 on a GPU; the test compares Sprout's float32 at 1e-4).
Two filter banks, one wide ([8, 3, 3, 3] as 8x27) and one tall ([32, 2, 2, 2] as 32x8, the
transposed branch), three steps each with fixed gradients.

    ~/.cache/sprout-venv/bin/python scripts/make_muon_fixture.py
"""
import json
import os

import torch

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "SproutTests", "Fixtures", "muon.json")


def newton_schulz(G, steps=3, eps=1e-7):
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G / (G.norm() + eps)
    if G.size(0) > G.size(1):
        X = X.T
    for _ in range(steps):
        A = X @ X.T
        B = b * A + c * A @ A
        X = a * X + B @ X
    if G.size(0) > G.size(1):
        X = X.T
    return X


def muon_steps(w, grads, lr, momentum, nesterov=True):
    w, buf, out = w.clone(), torch.zeros_like(w), []
    for g in grads:
        buf.mul_(momentum).add_(g)
        d = g.add(buf, alpha=momentum) if nesterov else buf
        w.mul_(len(w) ** 0.5 / w.norm())
        w.add_(newton_schulz(d.reshape(len(d), -1)).view(d.shape), alpha=-lr)
        out.append(w.clone())
    return out


def values(shape, k):
    n = 1
    for s in shape:
        n *= s
    return torch.sin(torch.arange(n, dtype=torch.float64) * k + k).reshape(shape)


def flat(x):
    return [round(float(v), 12) for v in x.reshape(-1).tolist()]


cases = []
for shape in ([8, 3, 3, 3], [32, 2, 2, 2]):
    w = 0.2 * values(shape, 0.37)
    grads = [0.05 * values(shape, 0.11 * (i + 2)) for i in range(3)]
    after = muon_steps(w, grads, lr=0.24, momentum=0.6)
    cases.append({"shape": shape, "lr": 0.24, "momentum": 0.6, "weight": flat(w), "gradients": [flat(g) for g in grads],
                  "after": [flat(x) for x in after]})
with open(OUT, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
print("wrote", OUT)
