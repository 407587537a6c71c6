#!/usr/bin/env python3
"""The PyTorch side of Sprout's peer benchmark: the zoo's nets mirrored layer for layer
(same parameter counts, checked), timed the way `sprout bench --json` times Sprout:
training steps (forward + backward + Nesterov SGD, momentum 0.9, weight decay 5e-4) and
inference, on random data, median of N steps after warm-up. Prints one JSON object.

    python3 benchmarks/torch_peer.py --model tf-cifar10 --batch-size 128 --threads 2
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SamePool(nn.Module):
    """TensorFlow SAME max pooling: pad (with -inf) so that out = ceil(in / stride)."""

    def __init__(self, k, s):
        super().__init__()
        self.k, self.s = k, s

    def forward(self, x):
        def pads(n):
            out = math.ceil(n / self.s)
            total = max((out - 1) * self.s + self.k - n, 0)
            return total // 2, total - total // 2
        top, bottom = pads(x.shape[2])
        left, right = pads(x.shape[3])
        return F.max_pool2d(F.pad(x, (left, right, top, bottom), value=-math.inf), self.k, self.s)


def tf_lrn():
    # tf.nn.lrn(depth_radius=4, bias=1, alpha=0.001/9, beta=0.75); torch divides alpha by size.
    return nn.LocalResponseNorm(size=9, alpha=0.001 / 9 * 9, beta=0.75, k=1.0)


def tf_cifar10(lrn=True, classes=10):
    layers = [nn.Conv2d(3, 64, 5, padding=2), nn.ReLU(), SamePool(3, 2)]
    if lrn:
        layers.append(tf_lrn())
    layers += [nn.Conv2d(64, 64, 5, padding=2), nn.ReLU()]
    if lrn:
        layers.append(tf_lrn())
    layers += [SamePool(3, 2), nn.Flatten(), nn.Linear(2304, 384), nn.ReLU(), nn.Linear(384, 192), nn.ReLU(),
               nn.Linear(192, classes)]
    return nn.Sequential(*layers)


class Residual(nn.Module):
    def __init__(self, *layers):
        super().__init__()
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.body(x)


class Mul(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return x * self.f


def resnet9(width=1.0, classes=10):
    def ch(n):
        return max(1, int(round(n * width)))

    def cbr(i, o):
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

    return nn.Sequential(
        *cbr(3, ch(64)), *cbr(ch(64), ch(128)), nn.MaxPool2d(2),
        Residual(*cbr(ch(128), ch(128)), *cbr(ch(128), ch(128))),
        *cbr(ch(128), ch(256)), nn.MaxPool2d(2), *cbr(ch(256), ch(512)), nn.MaxPool2d(2),
        Residual(*cbr(ch(512), ch(512)), *cbr(ch(512), ch(512))),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(ch(512), classes, bias=False), Mul(0.125))


def airbench(classes=10, widths=(64, 256, 256)):
    # As Sprout's Airbench (and airbench94): identity-initialised convolutions, frozen
    # batch-norm scales; biases marked for 64x the learning rate (cifar10_fast_torch.py).
    def conv(i, o):
        c = nn.Conv2d(i, o, 3, padding=1, bias=False)
        nn.init.dirac_(c.weight.data[:min(i, o)])
        return c

    def norm(o):
        bn = nn.BatchNorm2d(o, eps=1e-12, momentum=0.4)
        bn.weight.requires_grad_(False)
        bn.bias.airbench_bias = True
        return bn

    def group(i, o):
        return [conv(i, o), nn.MaxPool2d(2), norm(o), nn.GELU(), conv(o, o), norm(o), nn.GELU()]

    whiten = nn.Conv2d(3, 24, 2)
    whiten.weight.requires_grad_(False)
    whiten.bias.requires_grad_(False)
    return nn.Sequential(whiten, nn.GELU(), *group(24, widths[0]), *group(widths[0], widths[1]), *group(widths[1], widths[2]),
                         nn.MaxPool2d(3), nn.Flatten(), nn.Linear(widths[2], classes, bias=False), Mul(1 / 9))


def mnist_cnn(classes=10):
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(128, classes))


# The 224-px zoo, written out here (torchvision is not in the CPU-only venv): the same
# layers, parameter counts and padding as Sprout's resnet18/50, mobilenet-v2 and
# efficientnet-lite0.
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, i, c, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(i, c, 3, stride, 1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c)
        self.downsample = (nn.Sequential(nn.Conv2d(i, c, 1, stride, bias=False), nn.BatchNorm2d(c))
                           if stride != 1 or i != c else None)

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, i, c, stride):
        super().__init__()
        o = c * 4
        self.conv1, self.bn1 = nn.Conv2d(i, c, 1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, stride, 1, bias=False), nn.BatchNorm2d(c)
        self.conv3, self.bn3 = nn.Conv2d(c, o, 1, bias=False), nn.BatchNorm2d(o)
        self.downsample = (nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o))
                           if stride != 1 or i != o else None)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


def resnet(blocks, block, classes=10):
    layers, i = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)], 64
    for stage, n in enumerate(blocks):
        c = 64 << stage
        for b in range(n):
            layers.append(block(i, c, 2 if b == 0 and stage > 0 else 1))
            i = c * block.expansion
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(i, classes))


def conv_bn_relu6(i, o, k, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(i, o, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(o), nn.ReLU6())


class InvertedResidual(nn.Module):
    def __init__(self, i, o, stride, t):
        super().__init__()
        h = i * t
        layers = [conv_bn_relu6(i, h, 1)] if t != 1 else []
        layers += [conv_bn_relu6(h, h, 3, stride, h), nn.Conv2d(h, o, 1, bias=False), nn.BatchNorm2d(o)]
        self.conv, self.residual = nn.Sequential(*layers), stride == 1 and i == o

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


def mobilenet_v2(classes=10):
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    layers, i = [conv_bn_relu6(3, 32, 3, 2)], 32
    for t, c, n, s in settings:
        for b in range(n):
            layers.append(InvertedResidual(i, c, s if b == 0 else 1, t))
            i = c
    layers.append(conv_bn_relu6(i, 1280, 1))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, classes))


class SameConv(nn.Conv2d):
    """TensorFlow SAME padding (the extra row/column at the bottom/right), as lukemelas' EfficientNet."""

    def forward(self, x):
        def pads(n, k, s):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            return total // 2, total - total // 2
        top, bottom = pads(x.shape[2], self.kernel_size[0], self.stride[0])
        left, right = pads(x.shape[3], self.kernel_size[1], self.stride[1])
        return F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight, self.bias, self.stride, 0, 1, self.groups)


class MBConv(nn.Module):
    def __init__(self, i, o, k, stride, e):
        super().__init__()
        h = i * e
        bn = lambda n: nn.BatchNorm2d(n, momentum=0.01, eps=1e-3)
        self.expand = nn.Sequential(nn.Conv2d(i, h, 1, bias=False), bn(h), nn.ReLU6()) if e != 1 else nn.Identity()
        self.body = nn.Sequential(SameConv(h, h, k, stride, groups=h, bias=False), bn(h), nn.ReLU6(),
                                  nn.Conv2d(h, o, 1, bias=False), bn(o))
        self.residual = stride == 1 and i == o

    def forward(self, x):
        y = self.body(self.expand(x))
        return x + y if self.residual else y


def efficientnet_lite0(classes=10):
    stages = [(3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2), (3, 2, 6, 40, 80, 3),
              (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4), (3, 1, 6, 192, 320, 1)]
    bn = lambda n: nn.BatchNorm2d(n, momentum=0.01, eps=1e-3)
    layers = [SameConv(3, 32, 3, 2, bias=False), bn(32), nn.ReLU6()]
    for k, s, e, i, o, n in stages:
        for r in range(n):
            layers.append(MBConv(i if r == 0 else o, o, k, s if r == 0 else 1, e))
    layers += [nn.Conv2d(320, 1280, 1, bias=False), bn(1280), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Dropout(0.2), nn.Linear(1280, classes)]
    return nn.Sequential(*layers)


MODELS = {
    "resnet18": (lambda w: resnet([2, 2, 2, 2], BasicBlock), (3, 224, 224)),
    "resnet50": (lambda w: resnet([3, 4, 6, 3], Bottleneck), (3, 224, 224)),
    "mobilenet-v2": (lambda w: mobilenet_v2(), (3, 224, 224)),
    "efficientnet-lite0": (lambda w: efficientnet_lite0(), (3, 224, 224)),
    "tf-cifar10": (lambda w: tf_cifar10(True), (3, 24, 24)),
    "tf-cifar10-nolrn": (lambda w: tf_cifar10(False), (3, 24, 24)),
    "resnet9": (lambda w: resnet9(w), (3, 32, 32)),
    "airbench": (lambda w: airbench(), (3, 32, 32)),
    "mnist-cnn": (lambda w: mnist_cnn(), (1, 28, 28)),
}


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="tf-cifar10", choices=sorted(MODELS))
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--infer-batch-size", type=int)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--mode", choices=["train", "infer"], default="train")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    build, shape = MODELS[a.model]
    net = build(a.width)
    params = sum(t.numel() for t in net.parameters() if t.requires_grad)
    result = {"model": a.model, "width": a.width, "threads": a.threads, "parameters": params, "torch": torch.__version__}
    if a.mode == "train":
        x = torch.randn(a.batch_size, *shape)
        y = torch.arange(a.batch_size) % 10
        opt = torch.optim.SGD([t for t in net.parameters() if t.requires_grad], lr=0.01, momentum=0.9, nesterov=True,
                              weight_decay=5e-4)
        net.train()

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()
            opt.step()

        for _ in range(a.warmup):
            step()
        times = []
        for _ in range(a.steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        result.update(batch=a.batch_size, train_img_s=a.batch_size / median(times), train_step_ms=1e3 * median(times))
    else:
        b = a.infer_batch_size or a.batch_size
        x = torch.randn(b, *shape)
        net.eval()
        with torch.inference_mode():
            for _ in range(a.warmup):
                net(x)
            times = []
            for _ in range(a.steps):
                t0 = time.perf_counter()
                net(x)
                times.append(time.perf_counter() - t0)
        result.update(infer_batch=b, infer_img_s=b / median(times), infer_ms=1e3 * median(times))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
