#!/usr/bin/env python3
"""Writes a large photo folder for the indexing measurement: ROOT/<class>/<n>.jpg with
--classes × --per-class small JPEGs (32×24, a few distinct noise images per class, written
once and copied), so a 200,000-file tree takes a minute and ~200 MB.

    python3 scripts/make_photo_tree.py /tmp/photos200k --classes 1000 --per-class 200
Needs Pillow (pip install pillow).
"""
import argparse
import os
import random

from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("root")
ap.add_argument("--classes", type=int, default=1000)
ap.add_argument("--per-class", type=int, default=200)
a = ap.parse_args()
rng = random.Random(1)
for c in range(a.classes):
    d = os.path.join(a.root, f"n{c:08d}")
    os.makedirs(d, exist_ok=True)
    variants = []
    for v in range(4):
        img = Image.frombytes("RGB", (32, 24), bytes(rng.randrange(256) for _ in range(32 * 24 * 3)))
        path = os.path.join(d, f"variant{v}.jpg")
        img.save(path, quality=80)
        with open(path, "rb") as f:
            variants.append(f.read())
        os.remove(path)
    for i in range(a.per_class):
        with open(os.path.join(d, f"{c:04d}_{i:05d}.JPEG"), "wb") as f:
            f.write(variants[i % 4])
print(f"{a.classes * a.per_class} files in {a.root}")
