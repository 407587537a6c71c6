#!/usr/bin/env python3
"""Reads a Sprout run directory with the reference Python readers: TensorBoard's event loader
for the event files and `safetensors` for the checkpoints (pip install tensorboard safetensors).

    python3 scripts/check_run_dir.py runs/demo
"""
import glob
import json
import os
import sys

from safetensors.numpy import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main(run_dir):
    for path in sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))):
        ea = EventAccumulator(path)
        ea.Reload()
        tags = ea.Tags()["scalars"]
        print(f"{os.path.basename(path)}: {len(tags)} scalar tags")
        for tag in ("val/accuracy", "train/loss"):
            if tag in tags:
                points = [(e.step, round(e.value, 4)) for e in ea.Scalars(tag)]
                print(f"  {tag}: {points}")
    for manifest in sorted(glob.glob(os.path.join(run_dir, "checkpoints", "ckpt-*.json"))):
        meta = json.load(open(manifest))
        weights = load_file(os.path.join(os.path.dirname(manifest), meta["weightsFile"]))
        count = sum(v.size for v in weights.values())
        print(f"{os.path.basename(manifest)}: step {meta['step']}, {len(weights)} tensors, {count} values")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/demo")
