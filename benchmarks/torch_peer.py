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


MODELS = {
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
