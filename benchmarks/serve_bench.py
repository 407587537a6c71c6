#!/usr/bin/env python3
"""The server under the existing load test (scripts/serve_load_test.sh: wrk, 16 connections,
posting one image to :classify), before and after the inference graph: each configuration of
engine (SPROUT_INFERENCE=layers | graph), batching (--max-batch 1 | 16) and inference threads
(1 | 2) in turn, on the same run and image. Prints and writes a table of requests/s, p50, p99,
errors and the mean batch (benchmarks/results/serve-<timestamp>.md).

    python3 benchmarks/serve_bench.py runs/plants photo.jpg --duration 20s
"""
import argparse
import datetime
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def millis(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1, "s": 1e3}[unit]


def run(run_dir, image, engine, max_batch, threads, duration, port):
    env = dict(os.environ, SPROUT_INFERENCE=engine, DURATION=duration, PORT=str(port))
    out = subprocess.run(["bash", os.path.join(ROOT, "scripts", "serve_load_test.sh"), run_dir, image,
                          "--max-batch", str(max_batch), "--inference-threads", str(threads)],
                         env=env, capture_output=True, text=True, cwd=ROOT).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = millis(re.search(r"\n\s+50%\s+(\S+)", out).group(1))
    p99 = millis(re.search(r"\n\s+99%\s+(\S+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = sum(int(x) for x in re.search(r"errors: connect (\d+), read (\d+), write (\d+), status (\d+), timeout (\d+)", out).groups())
    batch_sum = float(re.search(r"sprout_batch_size_sum\S* ([\d.e+]+)", out).group(1))
    batch_count = float(re.search(r"sprout_batch_size_count\S* ([\d.e+]+)", out).group(1))
    return {"rps": rps, "p50": p50, "p99": p99, "requests": total, "errors": errors,
            "mean_batch": batch_sum / max(batch_count, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("image")
    ap.add_argument("--duration", default="20s")
    ap.add_argument("--port", type=int, default=8094)
    ap.add_argument("--max-batch", type=int, default=16)
    args = ap.parse_args()
    rows = []
    for threads in (1, 2):
        for max_batch in (1, args.max_batch):
            for engine in ("layers", "graph"):
                r = run(args.run, args.image, engine, max_batch, threads, args.duration, args.port)
                rows.append((engine, max_batch, threads, r))
                print(f"{engine:6s} --max-batch {max_batch:2d} --inference-threads {threads}: {r['rps']:8.1f} req/s, "
                      f"p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, errors {r['errors']} of {r['requests']}, "
                      f"mean batch {r['mean_batch']:.1f}", flush=True)
    lines = [f"`sprout serve {args.run}` under `scripts/serve_load_test.sh` (wrk, 16 connections, {args.duration} each), "
             f"{datetime.datetime.now().isoformat(timespec='seconds')}", "",
             "| engine | --max-batch | --inference-threads | requests/s | p50 ms | p99 ms | errors | mean batch |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for engine, max_batch, threads, r in rows:
        lines.append(f"| {engine} | {max_batch} | {threads} | {r['rps']:.1f} | {r['p50']:.1f} | {r['p99']:.1f} | "
                     f"{r['errors']} of {r['requests']} | {r['mean_batch']:.1f} |")
    text = "\n".join(lines)
    print("\n" + text)
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    path = os.path.join(ROOT, "benchmarks", "results", f"serve-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}.md")
    with open(path, "w") as f:
        f.write(text + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    sys.exit(main())
