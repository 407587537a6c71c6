#!/usr/bin/env python3
"""Crash anywhere: `sprout train` killed with SIGKILL at random instants — half of them while a
checkpoint file is being written — and resumed each time, until the run finishes. Checks:

- every resume succeeds, from the newest complete checkpoint;
- every checkpoint a manifest names is complete and readable (safetensors header and sizes),
  after every kill, and the newest one never goes back;
- work lost per kill is at most one checkpoint interval (the steps the killed process had
  logged beyond the newest checkpoint);
- no temporary or orphaned checkpoint files pile up;
- the final weights and optimizer state equal those of an uninterrupted run of the same
  command, bit for bit;
- on a disk that fills up during a checkpoint (a small tmpfs): an error naming the cause, the
  previous checkpoint intact, no temporary file left; on the same directory made read-only,
  `--resume` stops with a clear error and changes nothing (both need root to mount; skipped,
  saying so, otherwise);
- `eval --watch` following a run that `--keep-checkpoints 2` prunes under it (a checkpoint every
  half interval): it never fails nor reads a damaged checkpoint, skips only pruned ones (file
  not found), and evaluates the final one.

    python3 scripts/crash_test.py --sprout .build/release/sprout --kills 50
    python3 scripts/crash_test.py --kills 5 --steps 120        # the short version in make test

Data: Fashion-MNIST's IDX files (--data-dir, default Debian's dataset-fashion-mnist). Prints one
line per kill and a JSON summary; exits 1 on any failed check.
"""
import argparse
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time


def read_safetensors(path):
    """{name: raw bytes} of a safetensors file, checking its header against its size."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        if end > len(body):
            raise ValueError(f"{path}: {name} ends at {end}, file data is {len(body)} bytes")
        tensors[name] = body[start:end]
    return tensors


def checkpoints(run):
    directory = os.path.join(run, "checkpoints")
    if not os.path.isdir(directory):
        return directory, []
    names = sorted(f for f in os.listdir(directory) if f.startswith("ckpt-") and f.endswith(".json"))
    return directory, names


def verify_checkpoints(run):
    """Every manifest's files complete; returns the newest step (or -1) and stray files."""
    directory, manifests = checkpoints(run)
    newest = -1
    for name in manifests:
        with open(os.path.join(directory, name)) as f:
            m = json.load(f)
        read_safetensors(os.path.join(directory, m["weightsFile"]))
        read_safetensors(os.path.join(directory, m["stateFile"]))
        newest = max(newest, m["step"])
    listed = set(manifests)
    for name in manifests:
        listed |= {name[:-5] + ".safetensors", name[:-5] + ".state.safetensors"}
    strays = [f for f in (os.listdir(directory) if os.path.isdir(directory) else []) if f not in listed and f != "best"]
    return newest, strays


def metrics_size(run):
    path = os.path.join(run, "metrics.jsonl")
    return os.path.getsize(path) if os.path.exists(path) else 0


def last_logged_step(run, offset):
    """The newest step the process logged to metrics.jsonl (every step: --log-every 1), counting
    only what it appended after `offset`."""
    path = os.path.join(run, "metrics.jsonl")
    step = -1
    if os.path.exists(path):
        with open(path) as f:
            f.seek(min(offset, os.path.getsize(path)))
            for line in f:
                try:
                    step = max(step, json.loads(line).get("step", -1))
                except ValueError:
                    pass  # a line cut by the kill
    return step


def checkpoint_bytes(run):
    """Bytes of the newest complete checkpoint (weights, state, manifest)."""
    directory, names = checkpoints(run)
    base = os.path.join(directory, names[-1][:-5])
    return sum(os.path.getsize(base + suffix) for suffix in (".json", ".safetensors", ".state.safetensors"))


def disk_faults(sprout, common, every, work, one_checkpoint):
    """A disk that fills up during a checkpoint, then the same run directory read-only: both on a
    small tmpfs (needs root and mount; skipped, saying why, otherwise)."""
    mnt = os.path.join(work, "small-disk")
    os.makedirs(mnt, exist_ok=True)
    # Room for the first checkpoint and half of the second: the second save runs out of space.
    size_kb = (one_checkpoint * 3 // 2 + (1 << 20)) // 1024
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        return {"skipped": f"cannot mount a tmpfs ({r.stderr.strip() or r.returncode}): the disk-full and read-only checks need root"}
    result, failures = {"disk_kb": size_kb}, []
    try:
        run = os.path.join(mnt, "run")
        p = subprocess.run([sprout, *common, "--steps", str(3 * every), "--run-dir", run], capture_output=True, text=True)
        out = p.stdout + p.stderr
        result["disk_full_exit_status"] = p.returncode
        result["disk_full_message"] = next((l for l in out.splitlines() if "No space left" in l), None)
        if not result["disk_full_message"]:
            failures.append("disk full: no error saying 'No space left on device'")
        if p.returncode == 0:
            failures.append("disk full: the run exited 0 although its last checkpoint was not written")
        newest, strays = verify_checkpoints(run)
        result["disk_full_newest_intact_checkpoint"] = newest
        if newest < every:
            failures.append(f"disk full: the first checkpoint ({every}) is not intact (newest {newest})")
        if any(".tmp-" in f for f in strays):
            failures.append(f"disk full: temporary files left: {strays}")
        subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
        p = subprocess.run([sprout, "train", "--resume", "--run-dir", run], capture_output=True, text=True)
        out = (p.stdout + p.stderr).strip()
        result["read_only_exit_status"] = p.returncode
        result["read_only_message"] = out.splitlines()[-1] if out else ""
        if p.returncode == 0 or "Read-only file system" not in out:
            failures.append(f"read-only run directory: expected a clear error, got status {p.returncode}: {out[-300:]}")
        if verify_checkpoints(run)[0] != newest:
            failures.append("read-only run directory: the checkpoints changed")
    finally:
        subprocess.run(["umount", mnt], capture_output=True)
    result["failures"] = failures
    return result


def watch_while_pruning(sprout, common, work, every, steps):
    """`eval --watch` following a run whose `--keep-checkpoints 2` prunes under it: the watcher
    must never fail or read a damaged checkpoint; a checkpoint pruned before it was read is
    skipped with a file-not-found line; the final one is evaluated."""
    run = os.path.join(work, "watched")
    shutil.rmtree(run, ignore_errors=True)
    args = list(common)
    args[args.index("--keep-checkpoints") + 1] = "2"
    args[args.index("--steps") + 1] = str(steps)
    args[args.index("--checkpoint-every-steps") + 1] = str(every)
    train = subprocess.Popen([sprout, *args, "--run-dir", run], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not os.path.exists(os.path.join(run, "config.json")) and train.poll() is None:
        time.sleep(0.02)
    # Batches of 4 make each evaluation slower than a few checkpoints, so pruning races the reads.
    watch = subprocess.run([sprout, "eval", run, "--watch", "--interval", "0.05", "--until-step", str(steps), "--batch-size", "4",
                            "--split", "val", "--json"], capture_output=True, text=True, timeout=600)
    train_err = train.communicate()[1]
    evaluated = [json.loads(line)["step"] for line in watch.stdout.splitlines() if line.startswith("{")]
    skipped = [line for line in watch.stderr.splitlines() if line.startswith("skipping")]
    failures = []
    if train.returncode != 0:
        failures.append(f"train beside eval --watch exited {train.returncode}: {train_err[-300:]}")
    if watch.returncode != 0:
        failures.append(f"eval --watch exited {watch.returncode}: {watch.stderr[-300:]}")
    not_pruning = [line for line in skipped if "not found" not in line.lower() and "no such file" not in line.lower()]
    if not_pruning:
        failures.append(f"eval --watch skipped checkpoints for another reason than pruning: {not_pruning[:3]}")
    if steps not in evaluated:
        failures.append(f"the final checkpoint (step {steps}) was not evaluated; evaluated {evaluated}")
    for name in os.listdir(os.path.join(run, "eval")):
        if name.startswith("val-") and name.endswith(".json"):
            with open(os.path.join(run, "eval", name)) as f:
                json.load(f)  # complete, parseable
    kept = [n for n in os.listdir(os.path.join(run, "checkpoints")) if n.startswith("ckpt-") and n.endswith(".json")]
    if len(kept) != 2:
        failures.append(f"--keep-checkpoints 2 left {len(kept)} checkpoints")
    return {"checkpoints_written": steps // every, "evaluated": len(evaluated), "skipped_as_pruned": len(skipped),
            "final_evaluated": steps in evaluated, "failures": failures}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sprout", default=".build/release/sprout")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--min-delay", type=float, default=0.3, help="seconds before a random kill, at least")
    ap.add_argument("--max-delay", type=float, default=1.5, help="and at most")
    ap.add_argument("--every", type=int, default=10, help="checkpoint interval (steps)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill instants")
    ap.add_argument("--keep", type=int, default=3, help="--keep-checkpoints")
    ap.add_argument("--work", help="directory for the runs (default: a temporary one, removed)")
    ap.add_argument("--no-disk-faults", action="store_true", help="skip the disk-full and read-only checks")
    ap.add_argument("--watch-steps", type=int, default=400,
                    help="steps of the run that `eval --watch` follows while it prunes (0: skip)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = args.work or tempfile.mkdtemp(prefix="sprout-crash-")
    os.makedirs(work, exist_ok=True)
    common = ["train", "--dataset", "fashion-mnist", "--data-dir", args.data_dir, "--model", "mnist-cnn",
              "--steps", str(args.steps), "--batch-size", "32", "--val-split", "1000", "--seed", "3", "--threads", "2",
              "--checkpoint-every-steps", str(args.every), "--keep-checkpoints", str(args.keep), "--log-every", "1"]

    reference = os.path.join(work, "reference")
    shutil.rmtree(reference, ignore_errors=True)
    started = time.time()
    subprocess.run([args.sprout, *common, "--run-dir", reference], check=True, capture_output=True)
    uninterrupted = time.time() - started

    run = os.path.join(work, "crashed")
    shutil.rmtree(run, ignore_errors=True)
    failures, kills, in_write, lost, resumes = [], 0, 0, [], 0
    previous_newest = -1
    finished = False
    while not finished:
        newest, _ = verify_checkpoints(run)
        resume = newest >= 0
        resumed_args = ["train", "--resume", "--keep-checkpoints", str(args.keep), "--log-every", "1"]
        cmd = [args.sprout, *(resumed_args if resume else common), "--run-dir", run]
        offset = metrics_size(run)
        log = open(os.path.join(work, "log.txt"), "w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        if kills >= args.kills:
            finished = proc.wait() == 0
            log.close()
            if not finished:
                failures.append(f"the last, uninterrupted resume failed: {open(os.path.join(work, 'log.txt')).read()[-500:]}")
                break
            continue
        # Half the kills land inside a checkpoint write: wait for a temporary file to appear.
        during_write = rng.random() < 0.5
        deadline = time.time() + rng.uniform(args.min_delay, args.max_delay)
        hit = False
        directory = os.path.join(run, "checkpoints")
        while proc.poll() is None and time.time() < deadline + (3 if during_write else 0):
            if during_write and os.path.isdir(directory) and any(".tmp-" in f for f in os.listdir(directory)):
                hit = True
                break
            if not during_write and time.time() >= deadline:
                break
            time.sleep(0.0005)
        if proc.poll() is not None:
            log.close()
            if proc.returncode == 0:
                finished = True  # it completed before the kill came
                failures.append(f"the run finished after {kills} of {args.kills} kills: give more --steps or shorter delays")
                continue
            failures.append(f"kill {kills + 1}: the process exited {proc.returncode} by itself: "
                            + open(os.path.join(work, "log.txt")).read()[-500:])
            break
        logged = last_logged_step(run, offset)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.close()
        kills += 1
        in_write += hit
        resumes += resume
        # A process killed while still loading has not reached the resume yet; one that trained has.
        if resume and logged >= 0 and "resumed from" not in open(os.path.join(work, "log.txt")).read():
            failures.append(f"kill {kills}: the resume did not report where it resumed from")
        try:
            newest, strays = verify_checkpoints(run)
        except Exception as e:  # noqa: BLE001 - any damage is a failure
            failures.append(f"kill {kills}: a checkpoint is damaged: {e}")
            break
        if newest < previous_newest:
            failures.append(f"kill {kills}: the newest checkpoint went back from {previous_newest} to {newest}")
        previous_newest = max(previous_newest, newest)
        work_lost = max(0, logged - max(newest, 0)) if logged >= 0 else 0
        lost.append(work_lost)
        if work_lost > args.every:
            failures.append(f"kill {kills}: {work_lost} logged steps beyond the newest checkpoint ({newest}), interval {args.every}")
        stray_tmp = [f for f in strays if ".tmp-" in f]
        print(f"kill {kills:3d}: {'in a write' if hit else 'at random  '}  newest checkpoint {newest:5d}  logged {logged:5d}  "
              f"strays {len(strays)}", flush=True)
        if len(stray_tmp) > 1:
            failures.append(f"kill {kills}: temporary files pile up: {stray_tmp}")

    identical = None
    if finished and not failures:
        def final(r):
            d, names = checkpoints(r)
            with open(os.path.join(d, names[-1])) as f:
                m = json.load(f)
            return m["step"], read_safetensors(os.path.join(d, m["weightsFile"])), read_safetensors(os.path.join(d, m["stateFile"]))
        (s1, w1, o1), (s2, w2, o2) = final(reference), final(run)
        identical = s1 == s2 and w1 == w2 and o1 == o2
        if not identical:
            differing = [k for k in w1 if w1.get(k) != w2.get(k)] + [k for k in o1 if o1.get(k) != o2.get(k)]
            failures.append(f"final state differs from the uninterrupted run (steps {s1}/{s2}): {differing[:5]}")
        _, strays = verify_checkpoints(run)
        if strays:
            failures.append(f"stray files left in the finished run: {strays}")
    disk = {"skipped": "--no-disk-faults"} if args.no_disk_faults else \
        disk_faults(args.sprout, common, args.every, work, checkpoint_bytes(reference))
    failures += disk.get("failures", [])
    watched = watch_while_pruning(args.sprout, common, work, max(1, args.every // 2), args.watch_steps) \
        if args.watch_steps else {"skipped": "--watch-steps 0"}
    failures += watched.get("failures", [])
    summary = {"kills": kills, "kills_inside_a_checkpoint_write": in_write, "resumes": resumes,
               "max_steps_lost": max(lost) if lost else 0, "checkpoint_interval": args.every,
               "final_state_bit_identical": identical, "uninterrupted_seconds": round(uninterrupted, 1),
               "disk_faults": disk, "watch_while_pruning": watched, "failures": failures}
    print(json.dumps(summary))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
