#!/usr/bin/env python3
"""A photo model's TFLite export against `sprout predict` on real photos: the run is exported with
`sprout export --format tflite`, `sprout predict --save-inputs` writes each photo's exact network input
(decoded, EXIF-rotated, resized, centre-cropped, normalised by Sprout), LiteRT's interpreter runs the
file on those inputs (channels last), and top-1 and every probability are compared.

    python3 scripts/check_tflite_photos.py runs/plants --split-json runs/plants/split.json --count 200
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("photos", nargs="*")
    ap.add_argument("--split-json", help="take the photos from this split.json's validation list")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--sprout", default=".build/release/sprout")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    a = ap.parse_args()
    photos = list(a.photos)
    if a.split_json:
        with open(a.split_json) as f:
            photos += json.load(f)["validation"]
    photos = photos[:a.count]
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model.tflite")
        subprocess.run([a.sprout, "export", a.run, "--format", "tflite", "-o", model], check=True, capture_output=True)
        inputs = os.path.join(tmp, "inputs")
        out = subprocess.run([a.sprout, "predict", a.run, *photos, "--json", "--logits", "--save-inputs", inputs, "--top-k", "1"],
                             check=True, capture_output=True, text=True).stdout
        interpreter = Interpreter(model_path=model)
        index = interpreter.get_input_details()[0]["index"]
        shape = interpreter.get_input_details()[0]["shape"]  # [1, H, W, C]
        outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
        interpreter.allocate_tensors()
        same, worst = 0, 0.0
        for line, photo in zip(out.strip().splitlines(), photos):
            r = json.loads(line)
            mine = softmax(np.array(r["logits"], np.float64))
            x = np.fromfile(os.path.join(inputs, os.path.basename(photo) + ".f32"), np.float32)
            x = x.reshape(1, shape[3], shape[1], shape[2]).transpose(0, 2, 3, 1).copy()
            interpreter.set_tensor(index, x)
            interpreter.invoke()
            theirs = interpreter.get_tensor(outputs["probabilities"])[0]
            same += int(mine.argmax() == theirs.argmax())
            worst = max(worst, float(np.abs(mine - theirs).max()))
        size = os.path.getsize(model)
    ok = same == len(photos) and worst <= a.tolerance
    print(json.dumps({"run": a.run, "photos": len(photos), "top1_identical": same, "max_abs_probability_difference": worst,
                      "tflite_bytes": size, "ok": ok}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
