#!/usr/bin/env python3
"""The `cifar10-airbench` recipe (named `cifar10-fast` until issue 17) in PyTorch, for the time-to-accuracy comparison of issue 6.

Same data (the CIFAR-10 binary training batches, last 5,000 images held out), same split,
same thread count and the same settings: they are read from
`sprout train --recipe cifar10-airbench --print-config`, so the two cannot drift apart. The net
is torch_peer.airbench (parameter count equal to Sprout's; identity-initialised convolutions,
frozen batch-norm scales, biases at 64x the learning rate); the whitening filters come from
the first 5,000 training images as in Sprout; EMA weights with TensorFlow's num_updates rule;
flip + translate test-time augmentation. Prints one line per epoch (elapsed seconds, val
accuracy) and the time to the target accuracy.

    ~/.cache/sprout-venv/bin/python benchmarks/cifar10_fast_torch.py --data-dir DIR --threads 2
    ... --recipe cifar10-fast-short --target 0.86
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_peer import airbench  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_cifar10(directory):
    images, labels = [], []
    for i in range(1, 6):
        raw = np.fromfile(os.path.join(directory, f"data_batch_{i}.bin"), dtype=np.uint8).reshape(-1, 3073)
        labels.append(raw[:, 0].astype(np.int64))
        images.append(raw[:, 1:].reshape(-1, 3, 32, 32))
    return np.concatenate(images), np.concatenate(labels)


def held_out_split(directory, n_val):
    """The training batches with the last n_val images held out, normalised by the training part's channel statistics."""
    images, labels = load_cifar10(directory)
    xtr, ytr = torch.tensor(images[:-n_val]).float() / 255, torch.tensor(labels[:-n_val])
    xva, yva = torch.tensor(images[-n_val:]).float() / 255, torch.tensor(labels[-n_val:])
    mean, std = xtr.mean((0, 2, 3), keepdim=True), xtr.std((0, 2, 3), keepdim=True, unbiased=False)
    return (xtr - mean) / std, ytr, (xva - mean) / std, yva


def whitening_filters(x, eps=5e-4, k=2):
    # Patch covariance of all k×k patches; filters ±v/√(λ+ε), as Airbench.initializeWhitening.
    patches = x.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 3 * k * k).double()
    cov = torch.cov(patches.T, correction=0)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    w = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).reshape(-1, 3, k, k).float()
    return torch.cat([w, -w])


def tta_logits(model, x):
    def mirrored(v):
        return 0.5 * (model(v) + model(v.flip(3)))
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    h, w = x.shape[2], x.shape[3]
    return 0.5 * mirrored(x) + 0.25 * (mirrored(padded[:, :, :h, :w]) + mirrored(padded[:, :, 2:, 2:]))


def evaluate(model, x, y, tta):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            xb = x[i:i + 500]
            logits = tta_logits(model, xb) if tta == "flip-translate" else model(xb)
            correct += (logits.argmax(1) == y[i:i + 500]).sum().item()
    model.train()
    return correct / len(x)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--recipe", default="cifar10-airbench")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", type=float, default=0.94)
    p.add_argument("--sprout", default=os.path.join(ROOT, ".build", "release", "sprout"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    cfg = json.loads(subprocess.run([a.sprout, "train", "--recipe", a.recipe, "--data-dir", a.data_dir, "--print-config"],
                                    check=True, capture_output=True, text=True).stdout)
    print("config:", json.dumps(cfg, sort_keys=True), flush=True)
    xtr, ytr, xva, yva = held_out_split(a.data_dir, cfg["validationSplit"])

    width = cfg.get("width", 1.0)
    model = airbench(widths=tuple(max(1, int(round(c * width))) for c in (64, 256, 256)))
    model[0].weight.data = whitening_filters(xtr[:5000])
    model[0].bias.data.zero_()
    params = [q for q in model.parameters() if q.requires_grad]
    print(f"parameters: {sum(q.numel() for q in params)}", flush=True)
    batch, epochs, lr = cfg["batchSize"], cfg["epochs"], cfg["learningRate"]
    steps_per_epoch = len(xtr) // batch
    total = epochs * steps_per_epoch
    warm = max(1, int(total * cfg["warmupFraction"]))
    wd = cfg["weightDecay"]
    # Batch-norm biases: 64x the learning rate, 1/64 the decay (Sprout's learningRateScale/weightDecayScale).
    biases = [q for q in params if getattr(q, "airbench_bias", False)]
    others = [q for q in params if not getattr(q, "airbench_bias", False)]
    opt = torch.optim.SGD([dict(params=others, scale=1.0, weight_decay=wd),
                           dict(params=biases, scale=64.0, weight_decay=wd / 64)],
                          lr=lr, momentum=cfg["momentum"], nesterov=True)
    start, end = cfg.get("scheduleStart", 0.1), cfg.get("scheduleEnd", 0.0)

    def rate(step):  # Sprout's one-cycle: start·lr → lr over the warm-up, then → end·lr
        if step <= warm:
            return lr * (start + (1 - start) * step / warm)
        t = min(1.0, (step - warm) / max(1, total - warm))
        return lr * (1 + (end - 1) * t)

    ema = copy.deepcopy(model)
    decay, updates = cfg.get("emaDecay"), 0
    pad = cfg.get("translate") or 4
    gen = torch.Generator().manual_seed(a.seed)
    started, reached, step = time.time(), None, 0
    for epoch in range(epochs):
        order = torch.randperm(len(xtr), generator=gen)
        for b in range(steps_per_epoch):
            idx = order[b * batch:(b + 1) * batch]
            # Per image, as Sprout's loader: a random translation (reflect padding) and a coin-flip mirror.
            padded = F.pad(xtr[idx], (pad, pad, pad, pad), mode="reflect")
            offsets = torch.randint(0, 2 * pad + 1, (len(idx), 2), generator=gen).tolist()
            xb = torch.stack([padded[i, :, oy:oy + 32, ox:ox + 32] for i, (oy, ox) in enumerate(offsets)])
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb[flip] = xb[flip].flip(3)
            for g in opt.param_groups:
                g["lr"] = rate(step) * g["scale"]
            loss = F.cross_entropy(model(xb), ytr[idx], label_smoothing=cfg["labelSmoothing"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if decay:
                d = min(decay, (1 + updates) / (10 + updates))
                with torch.no_grad():
                    for (_, s), (_, q) in zip(ema.named_parameters(), model.named_parameters()):
                        s.mul_(d).add_(q, alpha=1 - d) if q.requires_grad else s.copy_(q)
                    for s, q in zip(ema.buffers(), model.buffers()):
                        s.copy_(q)
                updates += 1
        # As Sprout: plain validation every epoch, test-time augmentation at the last one.
        last = epoch + 1 == epochs
        acc = evaluate(ema if decay else model, xva, yva, cfg.get("testTimeAugmentation") if last else None)
        elapsed = time.time() - started
        print(f"epoch {epoch + 1}: {elapsed:.0f} s, loss {loss.item():.4f}, val accuracy {acc:.4f}{' (TTA)' if last else ''}", flush=True)
        if reached is None and acc >= a.target:
            reached = elapsed
    print(json.dumps({"recipe": a.recipe, "final_accuracy": acc, "seconds": time.time() - started,
                      "seconds_to_target": reached, "target": a.target, "threads": a.threads}))


if __name__ == "__main__":
    main()
