#!/usr/bin/env python3
"""Sprout vs ONNX Runtime vs OpenVINO: inference of the same models, same weights, same
machine, same threads, in one run. For each model, `sprout bench infer --onnx FILE` times
Sprout and writes the exact model it timed as ONNX; then ONNX Runtime and OpenVINO run that
file, each in its own process, with their documented best settings for the measurement:

- ONNX Runtime: intra-op threads = --threads, one inter-op thread, sequential execution,
  all graph optimisations (ORT_ENABLE_ALL: it folds batch norms and fuses activations).
- OpenVINO: the model reshaped to a static batch, INFERENCE_NUM_THREADS = --threads,
  INFERENCE_PRECISION_HINT = f32 (engine `openvino-bf16` keeps its default, which is
  bfloat16 on CPUs with AVX512_BF16 or AMX: not the same arithmetic, reported apart);
  batch 1 with PERFORMANCE_HINT=LATENCY and synchronous calls; batch N with both LATENCY
  (one synchronous request) and THROUGHPUT (an AsyncInferQueue of the plugin's optimal
  number of requests, each a batch of N), the better reported.

Batch 1: median and p99 latency over --calls calls after warm-up. Batch N: the median time
of --batches batches. Rounds alternate engines (A, B, C, A, B, C …) and the median over
rounds is reported. Writes benchmarks/results/infer-<timestamp>.md and .json.

    make bench-infer
    python3 benchmarks/infer_bench.py --python ~/.cache/sprout-onnx-venv/bin/python --threads 2
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile

from peer_bench import cpu_name  # same directory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPROUT = os.path.join(ROOT, ".build", "release", "sprout")

# label, zoo model, calls at batch 1, batches of N
MODELS = [
    ("tf-cifar10", "tf-cifar10", 500, 40),
    ("resnet9", "resnet9", 300, 20),
    ("airbench", "airbench", 300, 20),
    ("resnet18", "resnet18", 200, 6),
    ("resnet50", "resnet50", 200, 4),
    ("mobilenet-v2", "mobilenet-v2", 200, 8),
    ("efficientnet-lite0", "efficientnet-lite0", 200, 8),
]

PEER = r'''
import json, sys, time
import numpy as np
engine, path, threads, batch, calls, batches, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])

def stats(run_one, run_many, many_images):
    for _ in range(warmup): run_one()
    lat = []
    for _ in range(calls):
        t = time.perf_counter(); run_one(); lat.append((time.perf_counter() - t) * 1e3)
    lat.sort()
    p50 = lat[len(lat) // 2]; p99 = lat[min(len(lat) - 1, int(-(-len(lat) * 0.99 // 1)) - 1)]
    for _ in range(max(1, warmup // 5)): run_many()
    times = []
    for _ in range(batches):
        t = time.perf_counter(); n = run_many(); times.append((time.perf_counter() - t) * 1e3 / (n if isinstance(n, int) else 1))
    times.sort()
    batch_ms = times[len(times) // 2]
    return {"latency_ms_p50": p50, "latency_ms_p99": p99, "batch1_img_s": 1e3 / p50, "batch_ms": batch_ms, "batch_img_s": many_images * 1e3 / batch_ms}

if engine == "ort":
    import onnxruntime as ort
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    shape = [d if isinstance(d, int) else 1 for d in s.get_inputs()[0].shape]
    rng = np.random.default_rng(2)
    one = rng.standard_normal([1] + shape[1:], dtype=np.float32); many = rng.standard_normal([batch] + shape[1:], dtype=np.float32)
    r = stats(lambda: s.run(["logits"], {"input": one}), lambda: s.run(["logits"], {"input": many}), batch)
    r["version"] = ort.__version__
else:
    import openvino as ov
    core = ov.Core()
    def compiled(n, hint):
        m = core.read_model(path)
        shape = list(m.input("input").get_partial_shape().get_min_shape())
        m.reshape({"input": [n] + [int(d) for d in shape[1:]]})
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": hint}
        # Like for like: float32 arithmetic. On CPUs with AVX512_BF16 or AMX OpenVINO otherwise
        # computes in bfloat16 by default (engine "openvino-bf16" measures that).
        if engine == "openvino":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        return core.compile_model(m, "CPU", config), [int(d) for d in shape[1:]]
    c1, rest = compiled(1, "LATENCY")
    rng = np.random.default_rng(2)
    one = rng.standard_normal([1] + rest, dtype=np.float32); many = rng.standard_normal([batch] + rest, dtype=np.float32)
    req1 = c1.create_infer_request()
    cl, _ = compiled(batch, "LATENCY"); reql = cl.create_infer_request()
    r = stats(lambda: req1.infer({0: one}), lambda: reql.infer({0: many}), batch)
    # THROUGHPUT: several requests in flight, each a batch.
    ct, _ = compiled(batch, "THROUGHPUT")
    nreq = ct.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
    queue = ov.AsyncInferQueue(ct, nreq)
    def run_queue():
        for _ in range(nreq): queue.start_async({0: many})
        queue.wait_all()
        return nreq
    for _ in range(2): run_queue()
    times = []
    for _ in range(max(3, batches // nreq)):
        t = time.perf_counter(); n = run_queue(); times.append((time.perf_counter() - t) * 1e3 / n)
    times.sort()
    tput = batch * 1e3 / times[len(times) // 2]
    r["batch_img_s_latency_hint"] = r["batch_img_s"]
    r["batch_img_s_throughput_hint"] = tput
    r["throughput_requests"] = nreq
    if tput > r["batch_img_s"]:
        r["batch_img_s"] = tput; r["batch_ms"] = batch * 1e3 / tput
    r["version"] = ov.__version__
    r["precision"] = str(c1.get_property("INFERENCE_PRECISION_HINT"))
print(json.dumps(r))
'''


def run_json(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(values):
    s = sorted(values)
    return s[len(s) // 2] if s else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default=sys.executable, help="Python with onnxruntime and openvino")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--only", nargs="*", help="models to run (labels)")
    ap.add_argument("--engines", nargs="*", default=["sprout", "ort", "openvino"])
    ap.add_argument("--layers", action="store_true", help="also time Sprout layer by layer (SPROUT_INFERENCE=layers)")
    ap.add_argument("--calls-scale", type=float, default=1.0, help="scale the number of timed calls")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="sprout-infer-")
    env = dict(os.environ)
    rows = []
    for label, model, calls, batches in MODELS:
        if args.only and label not in args.only:
            continue
        calls = max(20, int(calls * args.calls_scale))
        onnx = os.path.join(tmp, f"{model}.onnx")
        results = {}
        for r in range(args.rounds):
            for engine in args.engines + (["layers"] if args.layers else []):
                if engine in ("sprout", "layers"):
                    cmd = [SPROUT, "bench", "infer", "--model", model, "--threads", str(args.threads), "--batch-size", str(args.batch),
                           "--calls", str(calls), "--batches", str(batches), "--json",
                           "--engine", "graph" if engine == "sprout" else "layers"]
                    if r == 0 and engine == "sprout" or not os.path.exists(onnx):
                        cmd += ["--onnx", onnx]
                    out = run_json(cmd, env)
                    res = out["graph" if engine == "sprout" else "layers"]
                else:
                    if not os.path.exists(onnx):
                        run_json([SPROUT, "bench", "infer", "--model", model, "--threads", str(args.threads), "--calls", "1",
                                  "--batches", "1", "--json", "--onnx", onnx], env)
                    res = run_json([args.python, "-c", PEER, engine, onnx, str(args.threads), str(args.batch), str(calls),
                                    str(batches), "10"], env)
                results.setdefault(engine, []).append(res)
                print(f"{label:20s} {engine:9s} round {r + 1}: batch 1 {res['latency_ms_p50']:.3f} ms (p99 {res['latency_ms_p99']:.3f}), "
                      f"batch {args.batch} {res['batch_img_s']:.1f} img/s", flush=True)
        summary = {}
        for engine, runs in results.items():
            summary[engine] = {k: median([x[k] for x in runs]) for k in ("latency_ms_p50", "latency_ms_p99", "batch1_img_s", "batch_img_s")}
            summary[engine]["rounds"] = runs
        rows.append((label, summary))

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    head = (f"Inference, {cpu_name()}, {args.threads} threads, batch 1 ({'median'} and p99 latency) and batch {args.batch} "
            f"(img/s), median of {args.rounds} round(s); {datetime.datetime.now().isoformat(timespec='seconds')}")
    lines = [head, "", "| model | engine | batch 1 p50 ms | batch 1 p99 ms | batch 1 img/s | batch %d img/s | Sprout ÷ best peer (b1 / b%d) |" % (args.batch, args.batch),
             "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for label, summary in rows:
        peers = [e for e in summary if e in ("ort", "openvino")]  # float32 engines
        best1 = max((summary[e]["batch1_img_s"] for e in peers), default=float("nan"))
        bestn = max((summary[e]["batch_img_s"] for e in peers), default=float("nan"))
        for engine, s in summary.items():
            ratio = ""
            if engine == "sprout" and peers:
                ratio = f"{s['batch1_img_s'] / best1:.2f}× / {s['batch_img_s'] / bestn:.2f}×"
            name = {"sprout": "Sprout (graph)", "layers": "Sprout (layers)", "ort": "ONNX Runtime", "openvino": "OpenVINO (f32)",
                    "openvino-bf16": "OpenVINO (its default precision)"}[engine]
            lines.append(f"| {label} | {name} | {s['latency_ms_p50']:.3f} | {s['latency_ms_p99']:.3f} | {s['batch1_img_s']:.1f} | "
                         f"{s['batch_img_s']:.1f} | {ratio} |")
    text = "\n".join(lines)
    print("\n" + text)
    base = os.path.join(ROOT, "benchmarks", "results", f"infer-{stamp}")
    with open(base + ".md", "w") as f:
        f.write(text + "\n")
    with open(base + ".json", "w") as f:
        json.dump({"machine": cpu_name(), "threads": args.threads, "batch": args.batch,
                   "models": {label: summary for label, summary in rows}}, f, indent=1)
    print(f"\nwrote {base}.md and .json")


if __name__ == "__main__":
    main()
