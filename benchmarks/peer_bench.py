#!/usr/bin/env python3
"""Sprout vs PyTorch on the same machine, in one run: the same nets (parameter counts
checked), batch sizes, thread count and random data; the two run alternately (A, B, A, B …)
so that drifts in machine load hit both. Each measurement is its own process, so peak RSS
is per mode. Writes benchmarks/results/peer-<timestamp>.md and .json.

    make bench                      # builds Sprout (release), makes the torch venv, runs this
    python3 benchmarks/peer_bench.py --rounds 3 --threads 2
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPROUT = os.path.join(ROOT, ".build", "release", "sprout")

# name, zoo model, width, training batch, steps per timing (big nets get fewer)
SUITE = [
    ("tf-cifar10", "tf-cifar10", 1.0, 128, 10),
    ("tf-cifar10 (no LRN)", "tf-cifar10-nolrn", 1.0, 128, 10),
    ("resnet9 ×0.5", "resnet9", 0.5, 128, 5),
    ("resnet9", "resnet9", 1.0, 128, 3),
    ("airbench", "airbench", 1.0, 512, 3),
    ("mnist-cnn", "mnist-cnn", 1.0, 128, 10),
]
MODES = [("train", None), ("infer", 1), ("infer", 128)]


def run(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def sprout(model, width, batch, mode, infer_batch, steps, threads):
    cmd = [SPROUT, "bench", "--model", model, "--width", str(width), "--batch-size", str(batch), "--mode", mode,
           "--steps", str(steps), "--threads", str(threads), "--json"]
    if infer_batch:
        cmd += ["--infer-batch-size", str(infer_batch)]
    return run(cmd)


def torch(python, model, width, batch, mode, infer_batch, steps, threads):
    cmd = [python, os.path.join(ROOT, "benchmarks", "torch_peer.py"), "--model", model, "--width", str(width),
           "--batch-size", str(batch), "--mode", mode, "--steps", str(steps), "--threads", str(threads)]
    if infer_batch:
        cmd += ["--infer-batch-size", str(infer_batch)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    return run(cmd, env)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--python", default=os.path.expanduser("~/.cache/sprout-venv/bin/python"))
    p.add_argument("--only", nargs="*", help="names from the suite")
    a = p.parse_args()
    rows, records = [], []
    for name, model, width, batch, steps in SUITE:
        if a.only and name not in a.only and model not in a.only:
            continue
        for mode, infer_batch in MODES:
            key = "train" if mode == "train" else f"infer_b{infer_batch}"
            metric = "train_img_s" if mode == "train" else "infer_img_s"
            s_vals, t_vals, s_rss, t_rss, params = [], [], [], [], set()
            for _ in range(a.rounds):
                s = sprout(model, width, batch, mode, infer_batch, steps, a.threads)
                t = torch(a.python, model, width, batch, mode, infer_batch, steps, a.threads)
                s_vals.append(s[metric]); t_vals.append(t[metric])
                s_rss.append(s["peak_rss_mb"]); t_rss.append(t["peak_rss_mb"])
                params.update([s["parameters"], t["parameters"]])
            if len(params) != 1:
                sys.exit(f"{name}: parameter counts differ between Sprout and PyTorch: {sorted(params)}")
            rec = {"name": name, "model": model, "width": width, "batch": batch if mode == "train" else infer_batch,
                   "mode": key, "sprout": median(s_vals), "torch": median(t_vals), "ratio": median(s_vals) / median(t_vals),
                   "sprout_peak_rss_mb": max(s_rss), "torch_peak_rss_mb": max(t_rss), "parameters": params.pop(),
                   "rounds": a.rounds, "sprout_all": s_vals, "torch_all": t_vals}
            records.append(rec)
            line = (f"{name:22s} {key:9s} sprout {rec['sprout']:9.1f} img/s  torch {rec['torch']:9.1f} img/s  "
                    f"ratio {rec['ratio']:5.2f}  RSS {rec['sprout_peak_rss_mb']:6.0f} / {rec['torch_peak_rss_mb']:6.0f} MB")
            print(line, flush=True)
            rows.append(rec)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {a.threads} threads"
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    base = os.path.join(ROOT, "benchmarks", "results", f"peer-{stamp}")
    with open(base + ".json", "w") as f:
        json.dump({"machine": machine, "threads": a.threads, "rounds": a.rounds, "results": records}, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(f"# Sprout vs PyTorch — {stamp}\n\n{machine}; medians of {a.rounds} alternating rounds; img/s (higher is better); "
                "ratio = Sprout / PyTorch; peak RSS in MB per process.\n\n")
        f.write("| model | mode | batch | Sprout img/s | PyTorch img/s | ratio | Sprout RSS | PyTorch RSS |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
        for r in rows:
            f.write(f"| {r['name']} | {r['mode']} | {r['batch']} | {r['sprout']:.1f} | {r['torch']:.1f} | {r['ratio']:.2f} | "
                    f"{r['sprout_peak_rss_mb']:.0f} | {r['torch_peak_rss_mb']:.0f} |\n")
    print(f"wrote {base}.md and {base}.json")


if __name__ == "__main__":
    main()
