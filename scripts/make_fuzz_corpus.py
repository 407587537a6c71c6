#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora (Fuzz/corpus/TARGET/) from real files, cut small: libFuzzer
mutates faster and deeper from seeds of a few KB than from whole datasets.

    python3 scripts/make_fuzz_corpus.py --fashion-mnist /usr/share/datasets/fashion-mnist \
        --cifar ../shared/data/cifar-10-batches-bin --photos ../shared/data/flowers \
        --run runs/plants

Needs Pillow and torch (for the .pth seeds: torch.save in both of its formats). The seeds are
committed; rerun only to change them.
"""
import argparse
import base64
import gzip
import io
import json
import os
import struct
import sys

from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fuzz", "corpus")


def write(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def idx_seeds(folder):
    # Three real images and labels from the official files, headers rewritten to count 3.
    images = gzip.open(os.path.join(folder, "t10k-images-idx3-ubyte.gz")).read()
    labels = gzip.open(os.path.join(folder, "t10k-labels-idx1-ubyte.gz")).read()
    img = struct.pack(">IIII", 2051, 3, 28, 28) + images[16:16 + 3 * 784]
    lab = struct.pack(">II", 2049, 3) + labels[8:11]
    # First byte: even fuzzes the image file, odd the label file (Fuzz/Targets/SproutFuzz.swift).
    write("idx", "images", b"\x00" + img)
    write("idx", "images.gz", b"\x00" + gzip.compress(img, mtime=0))
    write("idx", "labels", b"\x01" + lab)
    write("idx", "labels.gz", b"\x01" + gzip.compress(lab, mtime=0))


def cifar_seeds(folder):
    batch = open(os.path.join(folder, "data_batch_1.bin"), "rb").read()
    write("cifar", "two-records.bin", batch[:2 * 3073])
    meta = os.path.join(folder, "batches.meta.txt")
    if os.path.exists(meta):
        write("cifar", "batches.meta.txt", open(meta, "rb").read())


def photo_seeds(folder):
    # A real flower photo, small, in every format and variant the decoders take.
    paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs if f.lower().endswith(".jpg"))
    photo = Image.open(paths[0]).convert("RGB").resize((24, 18))
    variants = {
        "rgb.png": (photo, "PNG", {}),
        "grey.png": (photo.convert("L"), "PNG", {}),
        "palette.png": (photo.convert("P"), "PNG", {}),
        "rgba.png": (photo.convert("RGBA"), "PNG", {}),
        "baseline.jpg": (photo, "JPEG", {"quality": 80}),
        "progressive.jpg": (photo, "JPEG", {"quality": 80, "progressive": True}),
        "grey.jpg": (photo.convert("L"), "JPEG", {"quality": 80}),
        "cmyk.jpg": (photo.convert("CMYK"), "JPEG", {"quality": 80}),
        "photo.gif": (photo.convert("P"), "GIF", {}),
        "photo.bmp": (photo, "BMP", {}),
    }
    encoded = {}
    for name, (image, fmt, options) in variants.items():
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        encoded[name] = buffer.getvalue()
        write("image", name, encoded[name])
    # EXIF orientation 6 (turned 90°), as phone photos carry it.
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=80, exif=exif.tobytes())
    write("image", "exif-rotated.jpg", buffer.getvalue())
    return encoded


def multipart_seeds(encoded):
    # As curl -F 'image=@photo.png' sends them; the first line is the Content-Type header.
    for name in ["rgb.png", "baseline.jpg"]:
        boundary = "------------------------d74496d66958873e"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + encoded[name] + f"\r\n--{boundary}--\r\n".encode()
        write("multipart", name, f"multipart/form-data; boundary={boundary}\n".encode() + body)
    boundary = "XyZ"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.gif\"\r\n\r\n").encode() \
        + encoded["photo.gif"] + f"\r\n--{boundary}--\r\n".encode()
    write("multipart", "two-parts", f"multipart/form-data; charset=utf-8; boundary=\"{boundary}\"\n".encode() + body)


def predict_seeds(encoded):
    grey = [[(x * 9 + y) % 256 for x in range(28)] for y in range(28)]
    write("predict", "grey-pixels.json", json.dumps({"instances": [grey]}).encode())
    colour = [[[x * 60, y * 60, 255] for x in range(4)] for y in range(4)]
    write("predict", "colour-pixels.json", json.dumps({"instances": [colour, colour]}).encode())
    for name in ["rgb.png", "baseline.jpg"]:
        write("predict", f"b64-{name}.json",
              json.dumps({"instances": [{"b64": base64.b64encode(encoded[name]).decode()}]}).encode())


def safetensors_seeds():
    # The format as Sprout and the safetensors library write it: an 8-byte little-endian header
    # length, a JSON header (dtype, shape, data_offsets; __metadata__), then the data.
    def file(tensors, metadata):
        header, data = {}, b""
        for name, (dtype, shape, raw) in tensors.items():
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
            data += raw
        if metadata:
            header["__metadata__"] = metadata
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        return struct.pack("<Q", len(text)) + text + data
    f32 = lambda values: struct.pack(f"<{len(values)}f", *values)
    write("safetensors", "weights.safetensors", file({
        "0.weight": ("F32", [2, 3], f32([0.5, -1, 2, 0, 1e-3, 3])),
        "0.bias": ("F32", [2], f32([0.1, -0.1])),
        "1.running_mean": ("F32", [2], f32([0, 1])),
    }, {"format": "pt"}))
    write("safetensors", "dtypes.safetensors", file({
        "half": ("F16", [2], struct.pack("<2e", 1.5, -2)),
        "bf16": ("BF16", [2], b"\x80\x3f\x00\x40"),
        "count": ("I64", [1], struct.pack("<q", 7)),
        "scalar": ("F32", [], f32([4])),
    }, None))


def pth_seeds():
    import torch
    state = {"conv.weight": torch.arange(8, dtype=torch.float32).reshape(2, 1, 2, 2),
             "conv.bias": torch.tensor([0.5, -0.5]),
             "bn.num_batches_tracked": torch.tensor(3),
             "fc.weight": torch.ones(2, 2, dtype=torch.float16).t()}  # a non-contiguous view
    for name, zip_format in [("state.zip.pth", True), ("state.legacy.pth", False)]:
        buffer = io.BytesIO()
        torch.save(state, buffer, _use_new_zipfile_serialization=zip_format)
        write("pth", name, buffer.getvalue())


def spec_seeds():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "model-spec.md")
    text = open(here).read()
    blocks = [b.split("```", 1)[0] for b in text.split("```json\n")[1:]]
    for i, block in enumerate(blocks):
        write("model-spec", f"docs-{i}.json", block.encode())
    write("model-spec", "every-layer.json", json.dumps({"layers": [
        {"type": "conv2d", "out": 4, "kernel": 3, "stride": 1, "padding": "same", "groups": 1, "bias": False},
        {"type": "batchnorm", "momentum": 0.1, "epsilon": 1e-5}, {"type": "prelu"}, {"type": "lrn", "radius": 2},
        {"type": "avgpool", "kernel": 2}, {"type": "leaky_relu", "slope": 0.1}, {"type": "elu"},
        {"type": "residual", "layers": [{"type": "conv2d", "out": 4, "kernel": 3, "padding": 1}, {"type": "gelu"}]},
        {"type": "global_maxpool"}, {"type": "flatten"}, {"type": "scale", "factor": 2}, {"type": "dropout", "p": 0.1},
        {"type": "sigmoid"}, {"type": "tanh"}, {"type": "linear"}]}).encode())


def manifest_seeds(run):
    folder = os.path.join(run, "checkpoints")
    manifests = sorted(f for f in os.listdir(folder) if f.endswith(".json"))
    write("manifest", "photo-run.json", open(os.path.join(folder, manifests[-1]), "rb").read())
    small = json.load(open(os.path.join(folder, manifests[-1])))
    small["model"] = {"classes": 10, "inputShape": [1, 28, 28], "name": "mnist-cnn", "width": 1}
    small["preprocessing"] = {"channels": 1, "normalization": "unit", "resize": 28}
    write("manifest", "mnist-run.json", json.dumps(small, indent=2).encode())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fashion-mnist", required=True)
    parser.add_argument("--cifar", required=True)
    parser.add_argument("--photos", required=True)
    parser.add_argument("--run", required=True, help="a run directory whose newest manifest seeds `manifest`")
    args = parser.parse_args()
    idx_seeds(args.fashion_mnist)
    cifar_seeds(args.cifar)
    encoded = photo_seeds(args.photos)
    multipart_seeds(encoded)
    predict_seeds(encoded)
    safetensors_seeds()
    pth_seeds()
    spec_seeds()
    manifest_seeds(args.run)
    for target in sorted(os.listdir(ROOT)):
        files = os.listdir(os.path.join(ROOT, target))
        size = sum(os.path.getsize(os.path.join(ROOT, target, f)) for f in files)
        print(f"{target}: {len(files)} seeds, {size} bytes")


if __name__ == "__main__":
    sys.exit(main())
