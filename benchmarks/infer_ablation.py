#!/usr/bin/env python3
"""What each of the inference graph's optimisations buys: `sprout bench infer --ablation --json`
for every model, --rounds times (models interleaved, so drifts in machine load hit every step
alike), medians per step. Writes benchmarks/results/ablation-<timestamp>.md.

    python3 benchmarks/infer_ablation.py --rounds 3 --threads 2
"""
import argparse
import datetime
import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPROUT = os.path.join(ROOT, ".build", "release", "sprout")
MODELS = ["tf-cifar10", "resnet9", "airbench", "resnet18", "resnet50", "mobilenet-v2", "efficientnet-lite0"]
STEPS = ["layers", "graph, blocked layouts", "+ folded batch norms", "+ fused post-ops", "+ Winograd"]


def median(values):
    s = sorted(values)
    return s[len(s) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    models = [m for m in MODELS if not args.only or m in args.only]
    runs = {m: [] for m in models}
    for r in range(args.rounds):
        for m in models:
            out = subprocess.run([SPROUT, "bench", "infer", "--model", m, "--ablation", "--json", "--threads", str(args.threads),
                                  "--calls", str(args.calls), "--batches", str(args.batches)],
                                 check=True, capture_output=True, text=True).stdout
            runs[m].append(json.loads(out.strip().splitlines()[-1]))
            print(f"round {r + 1}: {m}", flush=True)
    lines = [f"`sprout bench infer --ablation`, {args.threads} threads, median of {args.rounds} rounds "
             f"({datetime.datetime.now().isoformat(timespec='seconds')}): batch-1 median latency (ms) / batch-32 img/s", "",
             "| model | " + " | ".join(STEPS) + " |", "| --- |" + " ---: |" * len(STEPS)]
    for m in models:
        cells = []
        for step in STEPS:
            p50 = median([run[step]["latency_ms_p50"] for run in runs[m]])
            tput = median([run[step]["batch_img_s"] for run in runs[m]])
            cells.append(f"{p50:.3f} / {tput:.1f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print("\n" + text)
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    path = os.path.join(ROOT, "benchmarks", "results", f"ablation-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}.md")
    with open(path, "w") as f:
        f.write(text + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
