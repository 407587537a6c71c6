#!/usr/bin/env python3
"""Checks `sprout export --format onnx` against a real runtime (ONNX Runtime), and
`sprout export --format tflite` against the LiteRT interpreter (`--format tflite`).

For each run directory: exports the newest checkpoint, writes N real images of the run's
dataset (its held-out or test images) as PNG files, classifies them with `sprout predict`,
runs the ONNX file in onnxruntime on the same pixels preprocessed from the file's own
metadata (as a user of the file would), and compares: top-1 must be identical and every
probability within --tolerance. Prints one line of figures per run; exits 1 on a mismatch.

    python3 scripts/check_onnx.py --sprout .build/release/sprout runs/a runs/b --count 300 [--fold-bn]
    python3 scripts/check_onnx.py --format tflite runs/a      # PyPI ai-edge-litert

The TFLite file is read as an app would: its metadata (class names, preprocessing) through
LiteRT's own generated schema reader, the images fed channels-last.
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(directory, names):
    for n in names:
        if os.path.exists(os.path.join(directory, n)):
            return os.path.join(directory, n)
    raise SystemExit(f"{directory}: none of {names}")


def dataset_images(config, count):
    """The last `count` images of the run's validation data ([n, C, H, W] uint8): the test
    split when the run validated on it, else the held-out end of the training split."""
    name, directory = config["dataset"], config.get("dataDir") or "/usr/share/datasets/fashion-mnist"
    held_out = config.get("validationSplit")
    if name in ("mnist", "fashion-mnist"):
        prefix = "train" if held_out else "t10k"
        x = read_idx(find(directory, [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte"]))
        return x[-count:, None, :, :]
    if name == "mnist-lines":
        # Lines of five held-out digits side by side on the run's canvas (32 × 24·max+16), so
        # that predict reads each PNG unresampled.
        digits = read_idx(find(directory, ["train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"]))[-5 * count:]
        longest = int(str(config.get("lineLength") or "8").split("-")[-1])
        lines = np.zeros((count, 1, 32, 24 * longest + 16), np.uint8)
        for i in range(count):
            for k in range(5):
                lines[i, 0, 2:30, 4 + 24 * k:32 + 24 * k] = np.maximum(lines[i, 0, 2:30, 4 + 24 * k:32 + 24 * k], digits[5 * i + k])
        return lines
    if name == "cifar10":
        files = [f"data_batch_{i}.bin" for i in range(1, 6)] if held_out else ["test_batch.bin"]
        raw = np.concatenate([np.fromfile(os.path.join(directory, f), dtype=np.uint8).reshape(-1, 3073) for f in files])
        return raw[-count:, 1:].reshape(-1, 3, 32, 32)
    if name == "folder":
        # A folder this script made (make_photo_folder): PNGs of the input's side plus the
        # crop margin, so the photo view (shorter side to `resize`, centre crop) is a plain
        # centre crop and the pixels can be compared exactly.
        paths = sorted(os.path.join(r, f) for r, _, fs in os.walk(directory) for f in fs if f.endswith(".png"))
        return np.stack([read_png(p) for p in paths[-count:]])
    raise SystemExit(f"check_onnx: dataset {name} is not supported here")


def read_png(path):
    """Reads what write_png writes (8-bit, no filtering) back to [C, H, W]."""
    with open(path, "rb") as f:
        data = f.read()
    pos, idat, w, h, c = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            w, h, _, colour = struct.unpack(">IIBB", body[:10])
            c = 1 if colour == 0 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * c)
    assert (rows[:, 0] == 0).all(), "only unfiltered PNGs"
    return rows[:, 1:].reshape(h, w, c).transpose(2, 0, 1).copy()


def make_photo_folder(root, side, per_class=24, seed=5):
    """ROOT/<class>/*.png: three classes of side×side noisy colour fields with a bright square."""
    rng = np.random.default_rng(seed)
    for k, name in enumerate(["amber", "moss", "sky"]):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(per_class):
            image = rng.integers(0, 90, size=(3, side, side), dtype=np.uint8)
            image[k] += 120
            y, x = rng.integers(0, side // 2, size=2)
            image[:, y:y + side // 3, x:x + side // 3] = 230
            write_png(os.path.join(root, name, f"{i:03d}.png"), image)


def write_png(path, image):
    """A minimal PNG writer (8-bit grey or RGB, no filtering), so no imaging library is needed."""
    c, h, w = image.shape
    rows = image.transpose(1, 2, 0).reshape(h, w * c)
    raw = b"".join(b"\x00" + rows[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 0 if c == 1 else 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def preprocess(images, meta):
    """What the ONNX file's metadata says: centre crop to the input size, then normalise."""
    p = json.loads(meta["sprout.preprocessing"])
    _, h, w = json.loads(meta["sprout.input_shape"])
    x = images.astype(np.float32)
    top, left = (x.shape[2] - h) // 2, (x.shape[3] - w) // 2
    x = x[:, :, top:top + h, left:left + w]
    if p["normalization"] == "per_image_standardization":
        flat = x.reshape(len(x), -1).astype(np.float64)
        mean = flat.mean(1)
        std = np.maximum(np.sqrt(np.maximum((flat ** 2).mean(1) - mean ** 2, 0)), 1 / np.sqrt(flat.shape[1]))
        x = ((x - mean.astype(np.float32)[:, None, None, None]) / std.astype(np.float32)[:, None, None, None])
    elif p["normalization"] == "mean_std":
        mean = np.array(p["mean"], np.float32)[None, :, None, None]
        std = np.array(p["std"], np.float32)[None, :, None, None]
        x = (x / 255 - mean) / std
    else:
        x = x / 255
    return x.astype(np.float32)


def greedy(probabilities, classes):
    """Best-path CTC decoding of [T, C] (blank = the last class)."""
    out, previous = [], -1
    for c in probabilities.argmax(1):
        if c != len(classes) and c != previous:
            out.append(classes[c])
        previous = c
    return "".join(out)


def check_lines(a, run, meta, session, images, paths, size):
    """A line reader: every frame's class probabilities within the tolerance, and the text
    ONNX Runtime's output decodes to identical to what `sprout predict` read."""
    out = subprocess.run([a.sprout, "predict", run, *paths, "--json", "--logits"], check=True, capture_output=True, text=True).stdout
    results = [json.loads(line) for line in out.strip().splitlines()]
    onnx_probs = session.run(["probabilities"], {"input": preprocess(images, meta)})[0]
    classes = json.loads(meta["sprout.classes"])
    worst, same = 0.0, 0
    for r, probs in zip(results, onnx_probs):
        logits = np.array(r["logits"], np.float64).reshape(r["logits_shape"])[0]
        mine = np.exp(logits - logits.max(1, keepdims=True))
        mine /= mine.sum(1, keepdims=True)
        worst = max(worst, float(np.abs(mine - probs).max()))
        same += int(greedy(probs, classes) == r["text"])
    ok = same == len(paths) and worst <= a.tolerance
    print(json.dumps({"run": run, "model": meta["sprout.model"], "step": int(meta["sprout.step"]), "lines": len(paths),
                      "text_identical": same, "max_abs_probability_difference": worst, "onnx_bytes": size,
                      "fold_bn": a.fold_bn, "ok": ok}), flush=True)
    return ok


class TFLiteSession:
    """The LiteRT interpreter behind the two calls this script makes of an ONNX session."""

    def __init__(self, path):
        from ai_edge_litert.interpreter import Interpreter
        from ai_edge_litert import schema_py_generated as schema
        with open(path, "rb") as f:
            data = f.read()
        model = schema.Model.GetRootAsModel(data, 0)
        self.meta = {}
        for i in range(model.MetadataLength()):
            m = model.Metadata(i)
            self.meta[m.Name().decode()] = model.Buffers(m.Buffer()).DataAsNumpy().tobytes().decode()
        self.interpreter = Interpreter(model_path=path)
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.outputs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}
        self.batch = None

    def custom_metadata_map(self):
        return self.meta

    def run(self, names, feeds):
        x = feeds["input"].transpose(0, 2, 3, 1).copy()  # NCHW → NHWC
        if self.batch != x.shape:
            self.interpreter.resize_tensor_input(self.input, list(x.shape))
            self.interpreter.allocate_tensors()
            self.batch = x.shape
        self.interpreter.set_tensor(self.input, x)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(self.outputs[n]).copy() for n in names]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--sprout", default=".build/release/sprout")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--fold-bn", action="store_true")
    ap.add_argument("--format", choices=["onnx", "tflite"], default="onnx")
    ap.add_argument("--make-photo-folder", metavar="SIDE", type=int, help="write a photo folder into the first argument and exit")
    a = ap.parse_args()
    if a.make_photo_folder:
        make_photo_folder(a.runs[0], a.make_photo_folder)
        return
    failed = False
    for run in a.runs:
        with open(os.path.join(run, "config.json")) as f:
            config = json.load(f)
        images = dataset_images(config, a.count)
        with tempfile.TemporaryDirectory() as tmp:
            model_path = os.path.join(tmp, "model." + a.format)
            subprocess.run([a.sprout, "export", run, "--format", a.format, "-o", model_path] + (["--fold-bn"] if a.fold_bn else []),
                           check=True, capture_output=True)
            if a.format == "tflite":
                session = TFLiteSession(model_path)
                meta = session.custom_metadata_map()
            else:
                import onnxruntime as ort
                session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
                meta = session.get_modelmeta().custom_metadata_map
            classes = json.loads(meta["sprout.classes"])
            paths = []
            for i, image in enumerate(images):
                paths.append(os.path.join(tmp, f"{i:04d}.png"))
                write_png(paths[-1], image)
            if config["dataset"] == "mnist-lines":
                failed |= not check_lines(a, run, meta, session, images, paths, os.path.getsize(model_path))
                continue
            out = subprocess.run([a.sprout, "predict", run, *paths, "--json", "--top-k", str(len(classes))],
                                 check=True, capture_output=True, text=True).stdout
            sprout_probs = np.zeros((len(paths), len(classes)))
            for i, line in enumerate(out.strip().splitlines()):
                for p in json.loads(line)["predictions"]:
                    sprout_probs[i, classes.index(p["label"])] = p["probability"]
            onnx_probs = session.run(["probabilities"], {"input": preprocess(images, meta)})[0]
            size = os.path.getsize(model_path)
        same_top1 = int((sprout_probs.argmax(1) == onnx_probs.argmax(1)).sum())
        worst = float(np.abs(sprout_probs - onnx_probs).max())
        ok = same_top1 == len(paths) and worst <= a.tolerance
        failed |= not ok
        print(json.dumps({"run": run, "format": a.format, "model": meta["sprout.model"], "step": int(meta["sprout.step"]),
                          "images": len(paths), "top1_identical": same_top1, "max_abs_probability_difference": worst,
                          "file_bytes": size, "fold_bn": a.fold_bn, "ok": ok}), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
