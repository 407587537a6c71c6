#!/usr/bin/env python3
"""Reference values from PyTorch for Sprout's op tests.

Writes Tests/SproutTensorTests/Fixtures/*.json: inputs, a fixed upstream gradient `dy`,
the forward output and every input's gradient of sum(output * dy).
TensorFlow semantics (SAME padding, tf.nn.lrn) are written out in torch ops, so the
autograd gradients are PyTorch's.

    python3 -m venv ~/.cache/sprout-venv && ~/.cache/sprout-venv/bin/pip install torch==2.13.0+cpu
    ~/.cache/sprout-venv/bin/python scripts/make_fixtures.py
"""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)  # references in double, compared at 1e-4 relative
OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "SproutTensorTests", "Fixtures")
# Whole-model fixtures need the zoo, so they belong to the SproutTests target.
MODEL_OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "SproutTests", "Fixtures")


def t(x):
    return {"shape": list(x.shape), "data": [round(float(v), 9) for v in x.detach().reshape(-1).tolist()]}


def case(name, fn, inputs, params=None, extra=None):
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items() if v.dtype.is_floating_point}
    y = fn(**{k: leaves.get(k, v) for k, v in inputs.items()})
    dy = torch.randn_like(y) if y.dim() > 0 else torch.tensor(1.0)
    (y * dy).sum().backward()
    c = {
        "name": name,
        "params": params or {},
        "inputs": {k: t(v) for k, v in inputs.items()},
        "dy": t(dy),
        "output": t(y),
        "grads": {k: t(v.grad) for k, v in leaves.items()},
    }
    if extra:
        c.update(extra)
    return c


def same_pads(size, k, s):
    out = math.ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def tf_same_pad(x, kh, kw, sh, sw, value=0.0):
    pt, pb = same_pads(x.shape[2], kh, sh)
    pl, pr = same_pads(x.shape[3], kw, sw)
    return F.pad(x, (pl, pr, pt, pb), value=value)


def conv_cases():
    cases = []
    specs = [
        # name, N, C, H, W, K, R, S, stride, padding, groups, bias
        ("conv_valid", 2, 3, 7, 6, 4, 3, 3, 1, "valid", 1, True),
        ("conv_same_stride2", 1, 5, 9, 8, 6, 3, 3, 2, "same", 1, True),
        ("conv_same_5x5", 2, 3, 6, 6, 7, 5, 5, 1, "same", 1, False),
        ("conv_explicit", 2, 4, 5, 7, 4, 3, 2, 1, [1, 0, 2, 1], 1, True),
        ("conv_groups", 2, 6, 5, 5, 9, 3, 3, 1, "same", 3, True),
        ("conv_depthwise_s2", 1, 8, 7, 7, 8, 3, 3, 2, "same", 8, True),
    ]
    # Stride-1 3x3 shapes for the Winograd kernels: partial tiles, a tile block that is not
    # full, channel counts off the SIMD width, and every supported top/left padding. Each is
    # drawn under its own seed inside fork_rng, so the other fixtures stay as they were.
    winograd = [
        ("conv_winograd_same", 2, 10, 9, 11, 7, 3, 3, 1, "same", 1, True),
        ("conv_winograd_valid", 2, 9, 9, 6, 13, 3, 3, 1, "valid", 1, False),
        ("conv_winograd_pad2", 3, 11, 7, 7, 10, 3, 3, 1, [2, 2, 0, 1], 1, True),
    ]
    for name, n, c, h, w, k, r, s, st, pad, g, bias in specs:
        cases.append(conv_case(name, n, c, h, w, k, r, s, st, pad, g, bias))
    for i, spec in enumerate(winograd):
        with torch.random.fork_rng():
            torch.manual_seed(17 + i)
            cases.append(conv_case(*spec))
    return cases


def conv_case(name, n, c, h, w, k, r, s, st, pad, g, bias):
    x = torch.randn(n, c, h, w)
    wt = torch.randn(k, c // g, r, s) * 0.3
    b = torch.randn(k) if bias else None

    def fn(x, weight, bias=None, r=r, s=s, st=st, pad=pad, g=g):
        if pad == "same":
            x = tf_same_pad(x, r, s, st, st)
        elif isinstance(pad, list):
            top, left, bottom, right = pad
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, weight, bias, stride=st, groups=g)

    inputs = {"x": x, "weight": wt}
    if bias:
        inputs["bias"] = b
    return case(name, fn, inputs, {"stride": st, "padding": pad, "groups": g})


def pool_cases():
    cases = []
    for name, (n, c, h, w), k, s, pad in [
        ("maxpool_same_3s2", (2, 3, 7, 6), 3, 2, "same"),
        ("maxpool_valid_2", (1, 2, 6, 6), 2, 2, "valid"),
        ("maxpool_same_3s2_even", (1, 2, 8, 8), 3, 2, "same"),
    ]:
        x = torch.randn(n, c, h, w)

        def fn(x, k=k, s=s, pad=pad):
            if pad == "same":
                x = tf_same_pad(x, k, k, s, s, value=-math.inf)
            return F.max_pool2d(x, k, s)

        cases.append(case(name, fn, {"x": x}, {"kernel": k, "stride": s, "padding": pad, "kind": "max"}))
    for name, (n, c, h, w), k, s, pad in [
        ("avgpool_same_3s2", (2, 3, 7, 6), 3, 2, "same"),
        ("avgpool_valid_2", (1, 2, 6, 6), 2, 2, "valid"),
    ]:
        x = torch.randn(n, c, h, w)

        def fn(x, k=k, s=s, pad=pad):
            if pad == "same":
                ones = torch.ones_like(x)
                total = F.avg_pool2d(tf_same_pad(x, k, k, s, s), k, s, divisor_override=1)
                count = F.avg_pool2d(tf_same_pad(ones, k, k, s, s), k, s, divisor_override=1)
                return total / count  # TF SAME: padding is not counted
            return F.avg_pool2d(x, k, s)

        cases.append(case(name, fn, {"x": x}, {"kernel": k, "stride": s, "padding": pad, "kind": "avg"}))
    return cases


def batchnorm_cases():
    cases = []
    x = torch.randn(3, 5, 4, 3) * 2 + 0.5
    gamma, beta = torch.randn(5), torch.randn(5)

    def train(x, weight, bias):
        return F.batch_norm(x, None, None, weight, bias, training=True, eps=1e-5)

    rm, rv = torch.zeros(5), torch.ones(5)
    F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5)
    cases.append(case("batchnorm_train", train, {"x": x, "weight": gamma, "bias": beta},
                      {"epsilon": 1e-5, "momentum": 0.1},
                      {"running_mean": t(rm), "running_var": t(rv)}))
    mean, var = torch.randn(5), torch.rand(5) + 0.5

    def evaluate(x, weight, bias, mean=mean, var=var):
        return F.batch_norm(x, mean, var, weight, bias, training=False, eps=1e-5)

    cases.append(case("batchnorm_eval", evaluate, {"x": x, "weight": gamma, "bias": beta},
                      {"epsilon": 1e-5}, {"mean": t(mean), "var": t(var)}))
    return cases


def lrn_cases():
    cases = []
    for name, shape, r, bias, alpha, beta in [
        ("lrn_tf_tutorial", (2, 7, 3, 4), 4, 1.0, 0.001 / 9.0, 0.75),
        ("lrn_r2_beta05", (1, 5, 2, 3), 2, 2.0, 0.1, 0.5),
        ("lrn_r1_generic", (2, 4, 3, 3), 1, 1.5, 0.3, 0.6),
    ]:
        x = torch.randn(*shape) * 2

        def fn(x, r=r, bias=bias, alpha=alpha, beta=beta):
            # tf.nn.lrn: sqr_sum[c] = sum_{c-r..c+r} x^2 ; y = x / (bias + alpha*sqr_sum)^beta
            sq = F.pad(x * x, (0, 0, 0, 0, r, r))
            window = sum(sq[:, i:i + x.shape[1]] for i in range(2 * r + 1))
            return x / (bias + alpha * window) ** beta

        cases.append(case(name, fn, {"x": x}, {"depth_radius": r, "bias": bias, "alpha": alpha, "beta": beta}))
    return cases


def loss_cases():
    cases = []
    logits = torch.randn(6, 5) * 2
    labels = torch.tensor([0, 3, 4, 1, 1, 2])
    weights = torch.rand(5) + 0.5
    for name, ls, w in [("ce_plain", 0.0, None), ("ce_smooth", 0.1, None),
                        ("ce_smooth_weighted", 0.2, weights), ("ce_weighted", 0.0, weights)]:
        def fn(logits, labels, ls=ls, w=w):
            return F.cross_entropy(logits, labels, weight=w, label_smoothing=ls)

        extra = {"labels": labels.tolist()}
        if w is not None:
            extra["class_weights"] = t(w)
        cases.append(case(name, fn, {"logits": logits, "labels": labels}, {"label_smoothing": ls}, extra))
    return cases


def gelu_cases():
    x = torch.linspace(-4, 4, 41).reshape(1, 41) + torch.randn(1, 41) * 0.01
    return [case("gelu_exact", lambda x: F.gelu(x), {"x": x}, {"approximate": False}),
            case("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), {"x": x}, {"approximate": True})]


def linalg_cases():
    cases = []
    for name, (ash, bsh), ta, tb in [
        ("matmul_2d", ((3, 5), (5, 4)), False, False),
        ("matmul_2d_ta", ((5, 3), (5, 4)), True, False),
        ("matmul_2d_tb", ((3, 5), (4, 5)), False, True),
        ("matmul_batched_tatb", ((2, 5, 3), (2, 4, 5)), True, True),
        ("matmul_3d_by_2d", ((2, 3, 5), (5, 4)), False, False),
    ]:
        def fn(a, b, ta=ta, tb=tb):
            return torch.matmul(a.transpose(-1, -2) if ta else a, b.transpose(-1, -2) if tb else b)

        cases.append(case(name, fn, {"a": torch.randn(*ash), "b": torch.randn(*bsh)},
                          {"transpose_a": ta, "transpose_b": tb}))
    for name, xsh in [("linear_2d", (4, 6)), ("linear_3d", (2, 3, 6))]:
        cases.append(case(name, lambda x, weight, bias: F.linear(x, weight, bias),
                          {"x": torch.randn(*xsh), "weight": torch.randn(5, 6) * 0.4, "bias": torch.randn(5)}))
    return cases


def softmax_cases():
    x = torch.randn(3, 4, 5) * 3
    return [case("softmax_axis1", lambda x: F.softmax(x, dim=1), {"x": x}, {"axis": 1, "log": False}),
            case("softmax_last", lambda x: F.softmax(x, dim=-1), {"x": x}, {"axis": -1, "log": False}),
            case("log_softmax_axis0", lambda x: F.log_softmax(x, dim=0), {"x": x}, {"axis": 0, "log": True}),
            case("log_softmax_last", lambda x: F.log_softmax(x, dim=-1), {"x": x}, {"axis": -1, "log": True})]


def pad_cases():
    x = torch.randn(2, 3, 4, 5)
    cases = []
    for name, (top, bottom, left, right), mode in [
        ("pad_reflect", (1, 2, 3, 1), "reflect"), ("pad_reflect_1", (1, 1, 1, 1), "reflect"),
        ("pad_zero", (2, 0, 1, 3), "constant"),
    ]:
        def fn(x, top=top, bottom=bottom, left=left, right=right, mode=mode):
            return F.pad(x, (left, right, top, bottom), mode=mode)

        cases.append(case(name, fn, {"x": x}, {"top": top, "bottom": bottom, "left": left, "right": right,
                                               "mode": "reflect" if mode == "reflect" else "zero"}))
    return cases


def model_cases():
    """One training step of whole zoo nets (the PyTorch mirrors of benchmarks/torch_peer.py):
    every trainable parameter set by a formula both sides compute (value[i] = offset +
    scale·sin(0.731·i + 0.4·k) for the k-th parameter), a formula input, fixed labels,
    batch-norm in training mode; the loss and, per parameter, the gradient's sum, its sum of
    squares and 24 sampled entries (the whole tensors would be megabytes), in double.
    Deep nets with batch norm amplify float32 round-off (resnet9's early gradients move by
    ~0.5% between float32 and float64 in PyTorch itself), so each parameter also records how
    far PyTorch's own float32 run is from the double one: the test's yardstick."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    import torch_peer

    def step(build, shape, labels, dtype):
        model = build().to(dtype).train()
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        settings = []
        with torch.no_grad():
            for k, (n, p) in enumerate(params):
                if p.dim() > 1:
                    offset, scale = 0.0, 1.7 / math.sqrt(p[0].numel())
                elif n.endswith("weight"):
                    offset, scale = 1.0, 0.1
                else:
                    offset, scale = 0.0, 0.1
                i = torch.arange(p.numel(), dtype=torch.float64)
                p.copy_((offset + scale * torch.sin(0.731 * i + 0.4 * k)).reshape(p.shape).to(dtype))
                settings.append((offset, scale))
        x = (1.5 * torch.sin(0.37 * torch.arange(math.prod(shape), dtype=torch.float64))).reshape(shape).to(dtype)
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        return float(loss.detach()), [(n, p.shape, p.grad.double().reshape(-1)) for n, p in params], settings

    cases = []
    for name, build, shape in [("tf-cifar10", lambda: torch_peer.tf_cifar10(True), (4, 3, 24, 24)),
                               ("resnet9", lambda: torch_peer.resnet9(1.0), (4, 3, 32, 32))]:
        labels = torch.tensor([3, 1, 4, 1][:shape[0]])
        loss, grads, settings = step(build, shape, labels, torch.float64)
        _, grads32, _ = step(build, shape, labels, torch.float32)
        entries = []
        for k, ((n, pshape, g), (_, _, g32)) in enumerate(zip(grads, grads32)):
            picks = sorted({(j * 7919 + 13) % g.numel() for j in range(24)})
            sampled, sampled32 = g[picks], g32[picks]
            entries.append({"name": n, "shape": list(pshape), "offset": settings[k][0], "scale": settings[k][1],
                            "sum": float(g.sum()), "sum_squares": float((g * g).sum()),
                            "indices": picks, "values": [float(v) for v in sampled],
                            "float32_error": float((sampled32 - sampled).norm() / sampled.norm()),
                            "float32_sum_squares_error": float(abs((g32 * g32).sum() - (g * g).sum()) / (g * g).sum())})
        cases.append({"name": name, "input_shape": list(shape), "labels": labels.tolist(), "loss": loss,
                      "parameters": entries})
    return cases


def main():
    os.makedirs(OUT, exist_ok=True)
    groups = {"conv2d": conv_cases(), "pool": pool_cases(), "batchnorm": batchnorm_cases(),
              "lrn": lrn_cases(), "loss": loss_cases(), "gelu": gelu_cases(), "linalg": linalg_cases(),
              "softmax": softmax_cases(), "pad": pad_cases()}
    for name, cases in groups.items():
        path = os.path.join(OUT, f"{name}.json")
        with open(path, "w") as f:
            json.dump({"generator": f"scripts/make_fixtures.py, torch {torch.__version__}", "cases": cases}, f)
        print(f"{path}: {len(cases)} cases, {os.path.getsize(path)} bytes")
    os.makedirs(MODEL_OUT, exist_ok=True)
    path = os.path.join(MODEL_OUT, "models.json")
    with open(path, "w") as f:
        json.dump({"generator": f"scripts/make_fixtures.py, torch {torch.__version__}", "cases": model_cases()}, f)
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
