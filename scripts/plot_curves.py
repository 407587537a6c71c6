#!/usr/bin/env python3
"""Validation accuracy against wall-clock time for one or more run directories.

Reads each run's metrics.jsonl (the epoch records) and takes the run's start from its
TensorBoard event file name (written when training begins, after the data is loaded).
Prints a table per run and writes an SVG with one line per run; standard library only.

    python3 scripts/plot_curves.py runs/cifar10-tutorial-s0 runs/cifar10-tutorial-modern-s0 \
        -o docs/img/cifar10-tutorial.svg --title "CIFAR-10, the TF tutorial net"
"""
import argparse
import glob
import json
import os
import sys


def curve(run_dir):
    events = glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))
    if not events:
        sys.exit(f"{run_dir}: no events.out.tfevents.* file (not a sprout run directory?)")
    start = min(int(os.path.basename(e).split(".")[3]) for e in events)
    points = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if "epoch" in r and "val/accuracy" in r:
                acc = r.get("val_tta/accuracy", r["val/accuracy"])
                points.append((r["epoch"], (r["time"] - start) / 60, r["val/accuracy"], acc))
    if not points:
        sys.exit(f"{run_dir}: metrics.jsonl has no epoch records with val/accuracy")
    return points


def svg(series, title, width=640, height=400):
    left, right, top, bottom = 56, 170, 36, 44
    t_max = max(p[1] for _, pts in series for p in pts)
    accs = [p[3] for _, pts in series for p in pts]
    a_min = max(0.0, min(accs) - 0.02)
    a_max = min(1.0, max(accs) + 0.01)
    pw, ph = width - left - right, height - top - bottom

    def x(t):
        return left + pw * t / t_max

    def y(a):
        return top + ph * (1 - (a - a_min) / (a_max - a_min))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left}" y="20" font-size="14">{title}</text>']
    step = 10 if t_max > 30 else 5 if t_max > 10 else 1
    for m in range(0, int(t_max) + 1, step):
        out.append(f'<line x1="{x(m):.1f}" y1="{top}" x2="{x(m):.1f}" y2="{top + ph}" stroke="#eee"/>')
        out.append(f'<text x="{x(m):.1f}" y="{top + ph + 16}" text-anchor="middle">{m}</text>')
    a = round(a_min * 100) / 100
    while a <= a_max:
        if a >= a_min:
            out.append(f'<line x1="{left}" y1="{y(a):.1f}" x2="{left + pw}" y2="{y(a):.1f}" stroke="#eee"/>')
            out.append(f'<text x="{left - 6}" y="{y(a) + 4:.1f}" text-anchor="end">{a * 100:.0f}%</text>')
        a = round(a + (0.02 if a_max - a_min > 0.1 else 0.01), 4)
    out.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">minutes since training began</text>')
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    for i, (label, pts) in enumerate(series):
        c = colours[i % len(colours)]
        path = " ".join(f"{x(p[1]):.1f},{y(p[3]):.1f}" for p in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{left + pw + 8}" y="{top + 16 + 18 * i}" fill="{c}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+", help="run directories (label=DIR to name a line)")
    p.add_argument("-o", "--output", help="SVG file to write")
    p.add_argument("--title", default="validation accuracy")
    a = p.parse_args()
    series = []
    for spec in a.runs:
        label, _, d = spec.rpartition("=")
        d = d or spec
        pts = curve(d)
        series.append((label or os.path.basename(d.rstrip("/")), pts))
        print(f"{d}:")
        print("  epoch  minutes  val accuracy")
        for e, t, plain, acc in pts:
            extra = f"  (with TTA {acc * 100:.2f}%)" if acc != plain else ""
            print(f"  {e:5d}  {t:7.1f}  {plain * 100:.2f}%{extra}")
    if a.output:
        os.makedirs(os.path.dirname(a.output) or ".", exist_ok=True)
        with open(a.output, "w") as f:
            f.write(svg(series, a.title))
        print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
