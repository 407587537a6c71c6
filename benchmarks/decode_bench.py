#!/usr/bin/env python3
"""Photo decoding + preprocessing speed: Sprout's streaming loader against Pillow and
torchvision.io.decode_jpeg, on the same JPEG files, one thread each, in one sitting.

Each pipeline turns every file into a normalised float32 [3, 224, 224] tensor and batches
them (32), as a training loader must:
  eval:  resize the shorter side to 256, centre crop 224 (torchvision's ImageNet evaluation)
  train: RandomResizedCrop(224) with torchvision's defaults, horizontal flip
Sprout: `sprout bench data --dataset folder --model resnet18 [--eval] --workers 1 --threads 1`.
Pillow: PIL.Image.open → convert("RGB") → torchvision.transforms.v2 on PIL images;
"Pillow + draft" also lets libjpeg downscale in the DCT domain (Image.draft), as Sprout does.
torchvision: torchvision.io.decode_jpeg on the file bytes → transforms.v2 on tensors.
Rounds alternate the pipelines; the median of the rounds is reported, with the machine.

    python3 benchmarks/decode_bench.py --python ~/.cache/sprout-venv-vision/bin/python \\
        --sprout .build/release/sprout --folder ../shared/data/flowers --rounds 3
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

WORKER = r'''
import json, os, sys, time
import torch
torch.set_num_threads(1)
from PIL import Image
from torchvision.io import decode_jpeg, read_file, ImageReadMode
from torchvision.transforms import v2

folder, mode, library, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
files = sorted(os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs if f.lower().endswith((".jpg", ".jpeg")))
norm = [v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]
if mode == "eval":
    geometry = [v2.Resize(256, antialias=True), v2.CenterCrop(224)]
else:
    geometry = [v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip()]
pil = v2.Compose([v2.ToImage()] + geometry + norm)
tensor = v2.Compose(geometry + norm)
torch.manual_seed(1)

def load(path):
    if library == "torchvision":
        return tensor(decode_jpeg(read_file(path), mode=ImageReadMode.RGB))
    image = Image.open(path)
    if library == "pillow-draft":
        # The largest DCT reduction that keeps the shorter side >= 256 (eval) or 224 (train).
        image.draft("RGB", (256, 256) if mode == "eval" else (224, 224))
    return pil(image.convert("RGB"))

def epoch():
    n = len(files) // batch * batch
    for start in range(0, n, batch):
        torch.stack([load(p) for p in files[start:start + batch]])
    return n

epoch()  # warms the file cache and the libraries
t = time.perf_counter()
n = epoch()
print(json.dumps({"images_per_second": n / (time.perf_counter() - t), "images": n}))
'''


def run_python(python, folder, mode, library, batch):
    out = subprocess.run([python, "-c", WORKER, folder, mode, library, str(batch)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["images_per_second"]


def run_sprout(sprout, folder, mode, batch):
    args = [sprout, "bench", "data", "--dataset", "folder", "--data-dir", folder, "--model", "resnet18", "--batch-size", str(batch),
            "--batches", "100000", "--workers", "1", "--threads", "1", "--repeats", "1", "--json"] + (["--eval"] if mode == "eval" else [])
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["images_per_second"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--sprout", default=".build/release/sprout")
    ap.add_argument("--folder", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--output")
    a = ap.parse_args()
    pipelines = ["sprout", "pillow", "pillow-draft", "torchvision"]
    results = {m: {p: [] for p in pipelines} for m in ("eval", "train")}
    for r in range(a.rounds):
        for mode in ("eval", "train"):
            for p in pipelines:
                rate = run_sprout(a.sprout, a.folder, mode, a.batch) if p == "sprout" else run_python(a.python, a.folder, mode, p, a.batch)
                results[mode][p].append(rate)
                print(f"round {r + 1} {mode:5s} {p:13s} {rate:8.1f} img/s", flush=True)
    versions = subprocess.run([a.python, "-c", "import torch, torchvision, PIL; print(torch.__version__, torchvision.__version__, PIL.__version__)"],
                              capture_output=True, text=True).stdout.split()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    summary = {"machine": {"cpu": cpu, "cores": os.cpu_count(), "threads_per_pipeline": 1},
               "versions": dict(zip(["torch", "torchvision", "pillow"], versions)), "folder": a.folder, "rounds": a.rounds,
               "median_images_per_second": {m: {p: statistics.median(v) for p, v in d.items()} for m, d in results.items()}}
    print("\n| pipeline | eval img/s | train img/s |\n|---|---|---|")
    med = summary["median_images_per_second"]
    for p in pipelines:
        ratio = "" if p == "sprout" else f" (Sprout {med['eval']['sprout'] / med['eval'][p]:.2f}× / {med['train']['sprout'] / med['train'][p]:.2f}×)"
        print(f"| {p} | {med['eval'][p]:.0f} | {med['train'][p]:.0f} |{ratio}")
    if a.output:
        with open(a.output, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
