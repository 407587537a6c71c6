#!/usr/bin/env python3
"""Sprout's EfficientNet-Lite0 against the reference PyTorch code, on real photos: the published
ImageNet weights in both, the same input tensors (Sprout writes the exact network input of each
photo with `predict --save-inputs`), logits compared per photo.

    ~/.cache/sprout-venv/bin/pip install --no-deps efficientnet-lite-pytorch
    ~/.cache/sprout-venv/bin/python scripts/check_lite0_photos.py --data-dir ../shared/data/flowers --per-class 20

Passes when every logit is within 1e-4 of PyTorch's, relative to max(1, |logit|), and the top-1
agrees on every photo.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

ap = argparse.ArgumentParser()
ap.add_argument("--sprout", default=".build/release/sprout")
ap.add_argument("--data-dir", required=True)
ap.add_argument("--per-class", type=int, default=20)
ap.add_argument("--weights", default=os.path.expanduser("~/.cache/sprout/weights/efficientnet-lite0-57934424.pth"))
a = ap.parse_args()

from efficientnet_lite_pytorch import EfficientNet  # noqa: E402

photos = []
for cls in sorted(os.listdir(a.data_dir)):
    folder = os.path.join(a.data_dir, cls)
    if os.path.isdir(folder):
        photos += [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if f.lower().endswith((".jpg", ".jpeg"))][:a.per_class]
inputs = tempfile.mkdtemp(prefix="sprout-lite0-")
out = subprocess.run([a.sprout, "predict", "--pretrained", a.weights, "--model", "efficientnet-lite0", "--json", "--logits",
                      "--top-k", "1", "--save-inputs", inputs] + photos, capture_output=True, text=True, check=True)
sprout = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
assert len(sprout) == len(photos), "sprout answered %d of %d photos" % (len(sprout), len(photos))

torch.set_num_threads(2)
model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=a.weights).eval()
worst, worst_photo, agree = 0.0, "", 0
for path, s in zip(photos, sprout):
    x = np.fromfile(os.path.join(inputs, os.path.basename(path) + ".f32"), dtype="<f4").reshape(1, 3, 224, 224)
    with torch.no_grad():
        ref = model(torch.from_numpy(x))[0].numpy().astype(np.float64)
    mine = np.array(s["logits"], dtype=np.float64)
    diff = float(np.max(np.abs(mine - ref) / np.maximum(1.0, np.abs(ref))))
    if diff > worst:
        worst, worst_photo = diff, path
    agree += int(np.argmax(mine) == np.argmax(ref))
print("photos: %d (%d per class from %s)" % (len(photos), a.per_class, a.data_dir))
print("largest logit difference: %.2e relative to max(1, |logit|) (%s)" % (worst, worst_photo))
print("top-1 agrees: %d of %d" % (agree, len(photos)))
print("torch %s; weights %s" % (torch.__version__, os.path.basename(a.weights)))
ok = worst < 1e-4 and agree == len(photos)
print("check: %s" % ("OK" if ok else "FAILED"))
sys.exit(0 if ok else 1)
