#!/usr/bin/env python3
"""Sprout vs PyTorch on the same machine, in one run: the same nets (parameter counts
checked), batch sizes, thread count and random data; the two run alternately (A, B, A, B …)
so that drifts in machine load hit both. Each measurement is its own process, so peak RSS
is per mode. Writes benchmarks/results/peer-<timestamp>.md and .json.

    make bench                      # builds Sprout (release), makes the torch venv, runs this
    python3 benchmarks/peer_bench.py --rounds 3 --threads 2

Training is also timed on 1 thread (both frameworks) for the parallel efficiency
img/s(N threads) / (N · img/s(1 thread)); --no-scaling skips that.

    python3 benchmarks/peer_bench.py --simd     # Sprout alone: vector units limited to SSE vs AVX2+FMA

A design change is checked for speed with --baseline OTHER/sprout (an earlier build): every round
runs it too, so the table has the ratio to PyTorch before and after, measured in one sitting.
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

# `--suite photo`: the 224-px zoo at batch 32 (training and batch-32 inference) and batch 1.
PHOTO_SUITE = [
    ("resnet18", "resnet18", 1.0, 32, 3),
    ("resnet50", "resnet50", 1.0, 32, 2),
    ("mobilenet-v2", "mobilenet-v2", 1.0, 32, 3),
    ("efficientnet-lite0", "efficientnet-lite0", 1.0, 32, 3),
]
PHOTO_MODES = [("train", None), ("infer", 1), ("infer", 32)]


# What "SIMD off" means for --simd: every layer limited to the SSE instructions a build for
# baseline x86-64 gets: Sprout's own loops (SPROUT_SIMD), oneDNN's JIT kernels (its lowest
# JIT level is SSE4.1) and OpenBLAS's kernels (the Core2 ones: SSE3).
SIMD_OFF = {"SPROUT_SIMD": "generic", "ONEDNN_MAX_CPU_ISA": "SSE41", "OPENBLAS_CORETYPE": "Core2"}


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed_steps(steps, infer_batch):
    # A batch-1 forward pass takes milliseconds: time enough of them to see past the noise.
    return max(steps, 40) if infer_batch == 1 else steps


def sprout(model, width, batch, mode, infer_batch, steps, threads, env=None, binary=SPROUT):
    steps = timed_steps(steps, infer_batch)
    cmd = [binary, "bench", "--model", model, "--width", str(width), "--batch-size", str(batch), "--mode", mode,
           "--steps", str(steps), "--threads", str(threads), "--json"]
    if infer_batch:
        cmd += ["--infer-batch-size", str(infer_batch)]
    return run(cmd, dict(os.environ, **env) if env else None)


def torch(python, model, width, batch, mode, infer_batch, steps, threads):
    steps = timed_steps(steps, infer_batch)
    cmd = [python, os.path.join(ROOT, "benchmarks", "torch_peer.py"), "--model", model, "--width", str(width),
           "--batch-size", str(batch), "--mode", mode, "--steps", str(steps), "--threads", str(threads)]
    if infer_batch:
        cmd += ["--infer-batch-size", str(infer_batch)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    return run(cmd, env)


def selected(a):
    """(name, model, width, batch, steps, mode, infer_batch, key, metric) for each measurement asked for."""
    suite, modes = (PHOTO_SUITE, PHOTO_MODES) if a.suite == "photo" else (SUITE, MODES)
    for name, model, width, batch, steps in suite:
        if a.only and name not in a.only and model not in a.only:
            continue
        for mode, infer_batch in modes:
            key = "train" if mode == "train" else f"infer_b{infer_batch}"
            if a.modes and key not in a.modes:
                continue
            yield name, model, width, batch, steps, mode, infer_batch, key, "train_img_s" if mode == "train" else "infer_img_s"


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--python", default=os.path.expanduser("~/.cache/sprout-venv/bin/python"))
    p.add_argument("--only", nargs="*", help="names from the suite")
    p.add_argument("--no-scaling", action="store_true", help="skip the 1-thread training runs")
    p.add_argument("--modes", nargs="*", help="train, infer_b1, infer_b128 (default: all)")
    p.add_argument("--suite", choices=["cifar", "photo"], default="cifar",
                   help="cifar: the 32-px zoo (default); photo: resnet18/50, mobilenet-v2, efficientnet-lite0 at 224 px")
    p.add_argument("--simd", action="store_true", help="Sprout alone, SIMD limited to SSE vs AVX2+FMA")
    p.add_argument("--baseline", help="an earlier sprout binary, run in every round beside this one (before/after)")
    a = p.parse_args()
    if a.simd:
        return simd_comparison(a)
    rows, records = [], []
    for name, model, width, batch, steps, mode, infer_batch, key, metric in selected(a):
        s_vals, t_vals, s_rss, t_rss, params, b_vals = [], [], [], [], set(), []
        for _ in range(a.rounds):
            s = sprout(model, width, batch, mode, infer_batch, steps, a.threads)
            if a.baseline:
                try:
                    b_vals.append(sprout(model, width, batch, mode, infer_batch, steps, a.threads, binary=a.baseline)[metric])
                except SystemExit as failure:   # an older build may fail where this one does not
                    print(f"baseline failed: {failure}".splitlines()[0], flush=True)
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
        if len(b_vals) == a.rounds:
            rec.update({"baseline": median(b_vals), "baseline_ratio": median(b_vals) / median(t_vals), "baseline_all": b_vals})
        if mode == "train" and not a.no_scaling and a.threads > 1:
            s1, t1 = [], []
            for _ in range(a.rounds):
                s1.append(sprout(model, width, batch, mode, None, steps, 1)[metric])
                t1.append(torch(a.python, model, width, batch, mode, None, steps, 1)[metric])
            rec.update({"sprout_1thread": median(s1), "torch_1thread": median(t1),
                        "sprout_efficiency": rec["sprout"] / (a.threads * median(s1)),
                        "torch_efficiency": rec["torch"] / (a.threads * median(t1))})
        records.append(rec)
        line = (f"{name:22s} {key:9s} sprout {rec['sprout']:9.1f} img/s  torch {rec['torch']:9.1f} img/s  "
                f"ratio {rec['ratio']:5.2f}  RSS {rec['sprout_peak_rss_mb']:6.0f} / {rec['torch_peak_rss_mb']:6.0f} MB")
        if "baseline" in rec:
            line += f"  baseline {rec['baseline']:9.1f} img/s, ratio {rec['baseline_ratio']:5.2f}"
        if "sprout_1thread" in rec:
            line += (f"  1 thread {rec['sprout_1thread']:.1f} / {rec['torch_1thread']:.1f}  efficiency "
                     f"{rec['sprout_efficiency']:.0%} / {rec['torch_efficiency']:.0%}")
        print(line, flush=True)
        rows.append(rec)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    machine = f"{cpu_name()}, {platform.machine()}, {os.cpu_count()} cores, {a.threads} threads"
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
        if a.baseline:
            f.write(f"\nBaseline `{a.baseline}` in the same rounds: img/s and ratio to PyTorch, before → after.\n\n"
                    "| model | mode | baseline img/s | this build img/s | after/before | ratio before | ratio after |\n"
                    "|---|---|---:|---:|---:|---:|---:|\n")
            for r in rows:
                if "baseline" not in r:
                    f.write(f"| {r['name']} | {r['mode']} | failed | {r['sprout']:.1f} | | | {r['ratio']:.2f} |\n")
                    continue
                f.write(f"| {r['name']} | {r['mode']} | {r['baseline']:.1f} | {r['sprout']:.1f} | {r['sprout'] / r['baseline']:.2f} | "
                        f"{r['baseline_ratio']:.2f} | {r['ratio']:.2f} |\n")
        scaling = [r for r in rows if "sprout_1thread" in r]
        if scaling:
            f.write(f"\nTraining on 1 and {a.threads} threads; parallel efficiency = img/s({a.threads}) / "
                    f"({a.threads} × img/s(1)).\n\n| model | Sprout 1 thread | Sprout {a.threads} | efficiency | "
                    f"PyTorch 1 thread | PyTorch {a.threads} | efficiency |\n|---|---:|---:|---:|---:|---:|---:|\n")
            for r in scaling:
                f.write(f"| {r['name']} | {r['sprout_1thread']:.1f} | {r['sprout']:.1f} | {r['sprout_efficiency']:.0%} | "
                        f"{r['torch_1thread']:.1f} | {r['torch']:.1f} | {r['torch_efficiency']:.0%} |\n")
    print(f"wrote {base}.md and {base}.json")


def simd_comparison(a):
    """The seed's claim, measured on Sprout: the same binary with every vector path limited
    to SSE (SIMD_OFF) vs the AVX2+FMA paths it picks by itself, alternating."""
    records = []
    print(f"SIMD off = {' '.join(f'{k}={v}' for k, v in SIMD_OFF.items())}", flush=True)
    for name, model, width, batch, steps, mode, infer_batch, key, metric in selected(a):
        on, off = [], []
        for _ in range(a.rounds):
            off.append(sprout(model, width, batch, mode, infer_batch, steps, a.threads, SIMD_OFF)[metric])
            on.append(sprout(model, width, batch, mode, infer_batch, steps, a.threads)[metric])
        rec = {"name": name, "mode": key, "batch": batch if mode == "train" else infer_batch,
               "simd_off": median(off), "simd_on": median(on), "ratio": median(on) / median(off)}
        records.append(rec)
        print(f"{name:22s} {key:9s} SSE {rec['simd_off']:9.1f} img/s  AVX2+FMA {rec['simd_on']:9.1f} img/s  "
              f"ratio {rec['ratio']:5.2f}", flush=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    machine = f"{cpu_name()}, {platform.machine()}, {os.cpu_count()} cores, {a.threads} threads"
    base = os.path.join(ROOT, "benchmarks", "results", f"simd-{stamp}")
    with open(base + ".json", "w") as f:
        json.dump({"machine": machine, "threads": a.threads, "rounds": a.rounds, "simd_off": SIMD_OFF,
                   "results": records}, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(f"# Sprout with SIMD limited to SSE vs AVX2+FMA — {stamp}\n\n{machine}; medians of {a.rounds} "
                f"alternating rounds; img/s. SIMD off: `{' '.join(f'{k}={v}' for k, v in SIMD_OFF.items())}`.\n\n"
                "| model | mode | batch | SSE img/s | AVX2+FMA img/s | speed-up |\n|---|---|---:|---:|---:|---:|\n")
        for r in records:
            f.write(f"| {r['name']} | {r['mode']} | {r['batch']} | {r['simd_off']:.1f} | {r['simd_on']:.1f} | "
                    f"{r['ratio']:.2f} |\n")
    print(f"wrote {base}.md and {base}.json")


if __name__ == "__main__":
    main()
