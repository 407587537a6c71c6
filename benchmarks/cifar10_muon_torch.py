#!/usr/bin/env python3
"""The `cifar10-fast` recipe (airbench94_muon) in PyTorch on the same CPU, for issue 17's side by side.

Same data (the CIFAR-10 binary training batches, the last 5,000 images held out), same threads,
and the settings read from `sprout train --recipe cifar10-fast --print-config`. The net, the
optimizers and the schedule follow airbench94_muon.py (Keller Jordan) in float32: whitening conv
3->24 (k=2) from the first 5,000 training images with a bias trained for the first epochs, GELU,
groups 64/256/256, maxpool 3, head without bias rescaled to std 1 and divided by 256; batch norm
with frozen scales, eps 1e-12, momentum 0.4; Muon (Newton-Schulz, 3 steps) on the filters and
Nesterov SGD for the rest; summed loss with label smoothing; alternating flips and 2-pixel reflect
translations; every rate linear to 0; six-view TTA at the end.

    ~/.cache/sprout-venv/bin/python benchmarks/cifar10_muon_torch.py --data-dir DIR --threads 2
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cifar10_fast_torch import ROOT, held_out_split, tta_logits, whitening_filters  # noqa: E402


def newton_schulz(G, steps=3, eps=1e-7):
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G / (G.norm() + eps)
    if G.size(0) > G.size(1):
        X = X.T
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if G.size(0) > G.size(1) else X


class Muon(torch.optim.Optimizer):
    def __init__(self, params, lr, momentum, nesterov=True):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p.grad))
                buf.mul_(group["momentum"]).add_(p.grad)
                g = p.grad.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf
                p.mul_(len(p) ** 0.5 / p.norm())
                p.add_(newton_schulz(g.reshape(len(g), -1)).view(g.shape), alpha=-group["lr"])


class Conv(nn.Conv2d):
    def __init__(self, cin, cout):
        super().__init__(cin, cout, 3, padding="same", bias=False)
        with torch.no_grad():
            nn.init.dirac_(self.weight[:cin])


class Norm(nn.BatchNorm2d):
    def __init__(self, n):
        super().__init__(n, eps=1e-12, momentum=0.4)
        self.weight.requires_grad = False


class Group(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(Conv(cin, cout), nn.MaxPool2d(2), Norm(cout), nn.GELU(), Conv(cout, cout), Norm(cout), nn.GELU())


class Net(nn.Module):
    def __init__(self, widths):
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, 2, bias=True)
        self.whiten.weight.requires_grad = False
        self.layers = nn.Sequential(nn.GELU(), Group(24, widths[0]), Group(widths[0], widths[1]), Group(widths[1], widths[2]),
                                    nn.MaxPool2d(3))
        self.head = nn.Linear(widths[2], 10, bias=False)
        with torch.no_grad():
            self.head.weight.mul_(1 / self.head.weight.std())

    def forward(self, x, whiten_bias=True):
        x = F.conv2d(x, self.whiten.weight, self.whiten.bias if whiten_bias else self.whiten.bias.detach())
        x = self.layers(x).flatten(1)
        return self.head(x) / x.size(-1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sprout", default=os.path.join(ROOT, ".build", "release", "sprout"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    cfg = json.loads(subprocess.run([a.sprout, "train", "--recipe", "cifar10-fast", "--data-dir", a.data_dir, "--print-config"],
                                    check=True, capture_output=True, text=True).stdout)
    m = cfg["muon"]
    print("config:", json.dumps(cfg, sort_keys=True), flush=True)
    started = time.time()
    xtr, ytr, xva, yva = held_out_split(a.data_dir, cfg["validationSplit"])
    width = cfg.get("width", 1.0)
    model = Net([max(1, int(round(c * width))) for c in (64, 256, 256)])
    model.whiten.weight.data = whitening_filters(xtr[:5000])
    batch, epochs, wd = cfg["batchSize"], cfg["epochs"], cfg["weightDecay"]
    steps_per_epoch = len(xtr) // batch
    total, whiten_steps = epochs * steps_per_epoch, math.ceil(m["whiteningBiasEpochs"] * steps_per_epoch)
    filters = [q for q in model.parameters() if q.requires_grad and q.dim() == 4]
    biases = [q for n, q in model.named_parameters() if q.requires_grad and q.dim() == 1 and not n.startswith("whiten")]
    sgd = torch.optim.SGD([dict(params=[model.whiten.bias], lr=m["biasLearningRate"], weight_decay=wd / m["biasLearningRate"]),
                           dict(params=biases, lr=m["biasLearningRate"], weight_decay=wd / m["biasLearningRate"]),
                           dict(params=[model.head.weight], lr=m["headLearningRate"], weight_decay=wd / m["headLearningRate"])],
                          momentum=m["otherMomentum"], nesterov=True)
    muon = Muon(filters, lr=m["learningRate"], momentum=m["momentum"])
    for opt in (sgd, muon):
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"]
    gen = torch.Generator().manual_seed(a.seed)
    flips = torch.rand(len(xtr), generator=gen) < 0.5   # alternating flip: drawn once, inverted on odd epochs
    pad, step = cfg.get("translate") or 2, 0
    padded_all = F.pad(xtr, (pad, pad, pad, pad), mode="reflect")
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(xtr), generator=gen)
        for b in range(steps_per_epoch):
            idx = order[b * batch:(b + 1) * batch]
            offsets = torch.randint(0, 2 * pad + 1, (len(idx), 2), generator=gen).tolist()
            xb = torch.stack([padded_all[i, :, oy:oy + 32, ox:ox + 32] for i, (oy, ox) in zip(idx.tolist(), offsets)])
            flip = flips[idx] != (epoch % 2 == 1)
            xb[flip] = xb[flip].flip(3)
            loss = F.cross_entropy(model(xb, whiten_bias=step < whiten_steps), ytr[idx], label_smoothing=cfg["labelSmoothing"],
                                   reduction="sum")
            loss.backward()
            sgd.param_groups[0]["lr"] = sgd.param_groups[0]["initial_lr"] * (1 - step / whiten_steps)
            for g in sgd.param_groups[1:] + muon.param_groups:
                g["lr"] = g["initial_lr"] * (1 - step / total)
            sgd.step()
            muon.step()
            model.zero_grad(set_to_none=True)
            step += 1
        print(f"epoch {epoch + 1}: {time.time() - started:.0f} s, loss {loss.item() / batch:.4f}", flush=True)
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(xva), 500):
            correct += (tta_logits(model, xva[i:i + 500]).argmax(1) == yva[i:i + 500]).sum().item()
    acc = correct / len(xva)
    print(json.dumps({"recipe": "cifar10-fast", "final_accuracy_tta": acc, "seconds": time.time() - started, "threads": a.threads,
                      "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
