#!/usr/bin/env python3
"""The CRNN line reader side by side: Sprout's `crnn` (zoo) and the same network in PyTorch,
trained on the same batch shape ([64, 1, 32, 136], 5-label CTC targets, 11 classes with the
blank), the same number of threads, on the same machine in one run. Each framework is timed
in its own process, alternately (Sprout, PyTorch, Sprout, …), median step time of each.
The PyTorch model's parameter count is checked against Sprout's.

    ~/.cache/sprout-venv/bin/python benchmarks/crnn_torch.py --threads 2 --rounds 3
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def torch_run(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    class CRNN(nn.Module):
        # Sprout's zoo `crnn`: conv+BN 32, pool 2, 64, pool 2, 96, 96, pool (2,1), 96, pool (2,1);
        # columns [W/4, N, 96·2] into a BiLSTM of 128, a linear layer per column.
        def __init__(self, classes):
            super().__init__()
            self.features = nn.Sequential(*block(1, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2),
                                          *block(64, 96), *block(96, 96), nn.MaxPool2d((2, 1)),
                                          *block(96, 96), nn.MaxPool2d((2, 1)))
            self.rnn = nn.LSTM(192, 128, bidirectional=True)
            self.classifier = nn.Linear(256, classes)

        def forward(self, x):
            f = self.features(x)
            n, c, h, w = f.shape
            seq, _ = self.rnn(f.permute(3, 0, 1, 2).reshape(w, n, c * h))
            return self.classifier(seq)  # [T, N, classes]

    model = CRNN(10)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = torch.randn(args.batch, 1, 32, 136)
    targets = torch.tensor([[(i + k) % 9 for k in range(5)] for i in range(args.batch)])
    # Blank is class 9 as in Sprout's bench (labels 0-8).
    in_len = torch.full((args.batch,), 34, dtype=torch.long)
    tg_len = torch.full((args.batch,), 5, dtype=torch.long)

    def step():
        opt.zero_grad(set_to_none=True)
        lp = F.log_softmax(model(x), dim=2)
        loss = F.ctc_loss(lp, targets, in_len, tg_len, blank=9, zero_infinity=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(json.dumps({"train_img_s": args.batch / med, "train_step_ms": med * 1e3, "parameters": params,
                      "torch": torch.__version__}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sprout", default=os.path.join(ROOT, ".build", "release", "sprout"))
    p.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_only:
        return torch_run(args)
    sprout, torch = [], []
    for r in range(args.rounds):
        out = subprocess.run([args.sprout, "bench", "model", "--model", "crnn", "--batch-size", str(args.batch), "--mode", "train",
                              "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads), "--json"],
                             check=True, capture_output=True, text=True).stdout
        sprout.append(json.loads(out.strip().splitlines()[-1]))
        out = subprocess.run([sys.executable, __file__, "--torch-only", "--threads", str(args.threads), "--batch", str(args.batch),
                              "--steps", str(args.steps), "--warmup", str(args.warmup)], check=True, capture_output=True, text=True).stdout
        torch.append(json.loads(out.strip().splitlines()[-1]))
        print(f"round {r + 1}: sprout {sprout[-1]['train_img_s']:.1f} img/s, torch {torch[-1]['train_img_s']:.1f} img/s", flush=True)
    if sprout[0]["parameters"] != torch[0]["parameters"]:
        sys.exit(f"parameter counts differ: sprout {sprout[0]['parameters']}, torch {torch[0]['parameters']}")
    s = statistics.median(x["train_img_s"] for x in sprout)
    t = statistics.median(x["train_img_s"] for x in torch)
    print(f"crnn training, batch {args.batch} of [1, 32, 136], {args.threads} threads, {platform.processor() or platform.machine()}, "
          f"torch {torch[0]['torch']}: Sprout {s:.1f} img/s, PyTorch {t:.1f} img/s, ratio {s / t:.2f}x "
          f"(medians of {args.rounds} rounds of {args.steps} steps; {sprout[0]['parameters']} parameters each)")


if __name__ == "__main__":
    main()
