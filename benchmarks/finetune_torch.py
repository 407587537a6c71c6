#!/usr/bin/env python3
"""Fine-tuning the pretrained EfficientNet-Lite0 on a photo folder, Sprout and PyTorch side by
side on the same machine, split, weights, epochs, batch, optimizer, schedule and threads.

Sprout runs first (its run directory records the split in split.json); PyTorch then trains on
exactly those files, with the reference model code (PyPI efficientnet-lite-pytorch) and the
same weights file. Wall time is the whole command in both cases: start, model load, feature
computation or training, and the final validation.

    ~/.cache/sprout-venv/bin/pip install pillow efficientnet-lite-pytorch --no-deps
    ~/.cache/sprout-venv/bin/python benchmarks/finetune_torch.py --sprout .build/release/sprout \\
        --data-dir ../shared/data/flowers --mode frozen --mode full

Modes (each the README's recipe):
  frozen  the backbone frozen in inference mode, features of the centre crop and its mirror image
          computed once, the classifier (dropout 0.2 + linear) trained on them: Adam 3e-3, one-cycle
          (warm-up 20%), 30 epochs, batch 32
  full    every layer trained: random resized crops + flips, Nesterov SGD 0.05 (backbone ×0.1),
          momentum 0.9, decay 1e-4, label smoothing 0.1, one-cycle (warm-up 10%), 5 epochs, batch 32
"""
import argparse
import json
import math
import os
import random
import re
import subprocess
import sys
import time

MODES = {
    "frozen": dict(epochs=30, batch=32, optimizer="adam", lr=3e-3, backbone_scale=0.0, weight_decay=0.0, warmup=0.2,
                   smoothing=0.0, sprout=["--freeze-backbone", "--optimizer", "adam", "--lr", "0.003", "--weight-decay", "0",
                                          "--epochs", "30"]),
    "full": dict(epochs=5, batch=32, optimizer="nesterov", lr=0.05, backbone_scale=0.1, weight_decay=1e-4, warmup=0.1,
                 smoothing=0.1, sprout=["--optimizer", "nesterov", "--lr", "0.05", "--backbone-lr-scale", "0.1", "--weight-decay", "1e-4",
                                        "--warmup", "0.1", "--label-smoothing", "0.1", "--epochs", "5"]),
}
MEAN, STD = [127 / 255] * 3, [128 / 255] * 3   # EfficientNet-Lite's (x - 127) / 128


def run_sprout(a, mode, run_dir):
    cmd = [a.sprout, "train", "--dataset", "folder", "--data-dir", a.data_dir, "--model", "efficientnet-lite0",
           "--pretrained", a.weights, "--val-split", "20%", "--batch-size", "32", "--seed", str(a.seed), "--threads", str(a.threads),
           "--run-dir", run_dir] + MODES[mode]["sprout"]
    subprocess.run(["rm", "-rf", run_dir], check=True)
    start = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - start
    if out.returncode != 0:
        sys.exit("sprout failed:\n" + out.stdout[-2000:] + out.stderr[-2000:])
    done = [l for l in out.stdout.replace("\r", "\n").splitlines() if l.startswith("done:")][-1]
    accuracy = float(re.search(r"accuracy ([0-9.]+)", done).group(1))
    return dict(wall_s=wall, accuracy=accuracy, command=" ".join(cmd), line=done)


def one_cycle(step, total, peak, warmup):
    up = max(1, int(total * warmup))
    if step <= up:
        return peak * (0.1 + 0.9 * step / up)
    return peak * max(0.0, 1 - (step - up) / max(1, total - up))


def run_torch(a, mode, split):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from PIL import Image, ImageOps
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    start = time.time()
    from efficientnet_lite_pytorch import EfficientNet
    classes = split["classes"]

    def label(path):
        return classes.index(os.path.basename(os.path.dirname(path)))

    def load(path):
        return ImageOps.exif_transpose(Image.open(path)).convert("RGB")

    def to_tensor(img):
        t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).reshape(img.size[1], img.size[0], 3)
        t = t.permute(2, 0, 1).float() / 255
        return (t - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)

    def eval_view(path):
        img = load(path)
        w, h = img.size
        side = min(w, h) * 224 / 256
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
        return to_tensor(img.resize((224, 224), Image.BILINEAR, box=box))

    def train_view(path, rng):
        # torchvision's RandomResizedCrop parameters (scale 0.08-1, ratio 3/4-4/3, ten tries) and a flip.
        img = load(path)
        w, h = img.size
        area = w * h
        for _ in range(10):
            target = area * rng.uniform(0.08, 1.0)
            ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            cw, ch = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
            if 0 < cw <= w and 0 < ch <= h:
                x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
                break
        else:
            cw = ch = min(w, h)
            x, y = (w - cw) // 2, (h - ch) // 2
        crop = img.resize((224, 224), Image.BILINEAR, box=(x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        return to_tensor(crop)

    class Photos(torch.utils.data.Dataset):
        def __init__(self, paths, train):
            self.paths, self.train = paths, train

        def __len__(self):
            return len(self.paths)

        def __getitem__(self, i):
            rng = random.Random(torch.initial_seed() * 7919 + i)   # the worker's seed changes every epoch
            x = train_view(self.paths[i], rng) if self.train else eval_view(self.paths[i])
            return x, label(self.paths[i])

    def loader(paths, train, batch):
        return torch.utils.data.DataLoader(Photos(paths, train), batch_size=batch, shuffle=train, drop_last=train,
                                           num_workers=1, persistent_workers=False)

    cfg = MODES[mode]
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=a.weights)
    # The reference code drops residual branches at random while training (drop connect 0.2);
    # Sprout's EfficientNet-Lite has no stochastic depth, so both train the same network.
    model._global_params = model._global_params._replace(drop_connect_rate=None)
    model._fc = nn.Linear(model._fc.in_features, len(classes))
    train_paths, val_paths = split["train"], split["validation"]

    def evaluate(forward, batches):
        correct = total = 0
        with torch.no_grad():
            for x, y in batches:
                correct += (forward(x).argmax(1) == y).sum().item()
                total += len(y)
        return correct / total

    if mode == "frozen":
        model.eval()

        def features(paths, mirrored):
            out, labels = [], []
            with torch.no_grad():
                for x, y in loader(paths, False, 32):
                    views = [x, x.flip(3)] if mirrored else [x]
                    out.append(torch.stack([model.extract_features(v).mean((2, 3)) for v in views]))
                    labels.append(y)
            f = torch.cat(out, 1)          # [views, n, 1280]
            y = torch.cat(labels)
            return f.reshape(-1, f.shape[-1]), y.repeat(f.shape[0])
        train_f, train_y = features(train_paths, True)
        val_f, val_y = features(val_paths, False)
        feature_s = time.time() - start
        head = nn.Sequential(nn.Dropout(0.2), model._fc)
        opt = torch.optim.Adam(head.parameters(), lr=cfg["lr"], weight_decay=0)
        steps_per_epoch = len(train_f) // cfg["batch"]
        total, step = cfg["epochs"] * steps_per_epoch, 0
        g = torch.Generator().manual_seed(a.seed)
        for _ in range(cfg["epochs"]):
            head.train()
            order = torch.randperm(len(train_f), generator=g)
            for b in range(steps_per_epoch):
                for group in opt.param_groups:
                    group["lr"] = one_cycle(step, total, cfg["lr"], cfg["warmup"])
                idx = order[b * cfg["batch"]:(b + 1) * cfg["batch"]]
                loss = F.cross_entropy(head(train_f[idx]), train_y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
            head.eval()
            accuracy = (head(val_f).argmax(1) == val_y).float().mean().item()
        return dict(wall_s=time.time() - start, accuracy=accuracy, feature_s=feature_s, torch=torch.__version__)

    head_params = list(model._fc.parameters())
    head_ids = {id(p) for p in head_params}
    backbone = [p for p in model.parameters() if id(p) not in head_ids]
    opt = torch.optim.SGD([{"params": backbone, "scale": cfg["backbone_scale"]}, {"params": head_params, "scale": 1.0}],
                          lr=cfg["lr"], momentum=0.9, nesterov=True, weight_decay=cfg["weight_decay"])
    train_batches = loader(train_paths, True, cfg["batch"])
    val_batches = loader(val_paths, False, 64)
    total, step = cfg["epochs"] * (len(train_paths) // cfg["batch"]), 0
    for _ in range(cfg["epochs"]):
        model.train()
        for x, y in train_batches:
            for group in opt.param_groups:
                group["lr"] = one_cycle(step, total, cfg["lr"], cfg["warmup"]) * group["scale"]
            loss = F.cross_entropy(model(x), y, label_smoothing=cfg["smoothing"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        model.eval()
        accuracy = evaluate(model, val_batches)
    return dict(wall_s=time.time() - start, accuracy=accuracy, torch=torch.__version__)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sprout", default=".build/release/sprout")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--weights", default=os.path.expanduser("~/.cache/sprout/weights/efficientnet-lite0-57934424.pth"))
    ap.add_argument("--mode", action="append", choices=list(MODES))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--torch-only", metavar="SPROUT_RUN_DIR",
                    help="run only PyTorch, on the split of this Sprout run (e.g. other --seed values for its variance)")
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args()
    results = []
    for mode in a.mode or ["frozen", "full"]:
        if a.torch_only:
            with open(os.path.join(a.torch_only, "split.json")) as f:
                t = run_torch(a, mode, json.load(f))
            print("%-6s  PyTorch (seed %d) %.1f%% in %.1f s" % (mode, a.seed, 100 * t["accuracy"], t["wall_s"]), flush=True)
            continue
        run_dir = "/tmp/sprout-finetune-%s" % mode
        s = run_sprout(a, mode, run_dir)
        with open(run_dir + "/split.json") as f:
            split = json.load(f)
        t = run_torch(a, mode, split)
        row = dict(mode=mode, sprout=s, torch=t, time_ratio=t["wall_s"] / s["wall_s"],
                   accuracy_difference=s["accuracy"] - t["accuracy"], train=len(split["train"]), validation=len(split["validation"]))
        results.append(row)
        print("%-6s  Sprout %.1f%% in %.1f s   PyTorch %.1f%% in %.1f s   time ratio %.2fx, accuracy %+.1f points"
              % (mode, 100 * s["accuracy"], s["wall_s"], 100 * t["accuracy"], t["wall_s"], row["time_ratio"],
                 100 * row["accuracy_difference"]), flush=True)
    if a.torch_only:
        return
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "finetune-%s.json" % time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    with open(path, "w") as f:
        json.dump(dict(machine=os.uname().machine, cpu=open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": "),
                       threads=a.threads, seed=a.seed, data=a.data_dir, results=results), f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
