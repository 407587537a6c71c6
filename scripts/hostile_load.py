#!/usr/bin/env python3
"""`sprout serve` under hostile load, on loopback, bounded in time and count (issue 21).

    python3 scripts/hostile_load.py RUN_DIR IMAGE [--slow 500] [--connections 1000]
        [--soak-minutes 30] [--reload-every 10] [--rate 50]

Phases, each against one server started here on a copy of RUN_DIR:
  quiet      wrk, 2 well-behaved keep-alive clients posting IMAGE to :classify (--measure s):
             requests/s and latency percentiles
  slow       the same wrk run while --slow clients hold connections open and trickle a byte a
             second: half never finish their headers, half declare a body and send it a byte at
             a time. The well-behaved clients' p99 is compared with the quiet one.
  many       --connections connections opened at once, then one request on each, all in flight
             together: every one must get its 200.
  malformed  hostile requests one by one (garbage, oversized headers and URLs, lying or
             contradictory lengths, broken chunking, a 50,000 x 50,000 PNG bomb, path tricks),
             each followed by a normal request that must still get its 200.
  soak       --soak-minutes at a steady --rate (classify, predict, model info, healthz, metrics),
             while a new checkpoint appears every --reload-every seconds (written as the trainer
             writes them: data files, then the manifest by rename; old ones pruned) and the
             server hot-reloads it. Errors, latency by minute, the served version and the
             server's RSS every 10 s.

Writes benchmarks/results/hostile-DATE.{json,md}. Needs wrk and a release build (SPROUT=...).
Exits 1 if any check fails.
"""
import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- a minimal HTTP/1.1 client over asyncio streams ---------------------------------------

async def read_response(reader, timeout=30):
    """Status code, headers and body of one response; None if the server closed first."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = b""
    if "content-length" in headers:
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await asyncio.wait_for(reader.readline(), timeout)).strip().split(b";")[0], 16)
            chunk = await asyncio.wait_for(reader.readexactly(size + 2), timeout)
            if size == 0:
                break
            body += chunk[:-2]
    return status, headers, body


def request_bytes(method, path, body=b"", content_type=None, extra=""):
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    if method == "POST":
        head += f"Content-Length: {len(body)}\r\n"
    return (head + extra + "\r\n").encode() + body


class Connection:
    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def send(self, data, timeout=30):
        if self.writer is None:
            await self.open()
        self.writer.write(data)
        await self.writer.drain()
        return await read_response(self.reader, timeout)

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def one_request(port, data, timeout=30):
    c = Connection(port)
    try:
        return await c.send(data, timeout)
    finally:
        c.close()


# --- the server ---------------------------------------------------------------------------

class Server:
    def __init__(self, sprout, run, port, log):
        self.run, self.port = run, port
        self.log = open(log, "w")
        self.process = subprocess.Popen([sprout, "serve", run, "--port", str(port), "--reload-interval", "1"],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.name = os.path.basename(os.path.normpath(run))
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    if b"200" in s.recv(100):
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise SystemExit(f"sprout serve exited with {self.process.returncode}; see {log}")
            time.sleep(0.1)
        raise SystemExit("sprout serve did not come up")

    def rss_mb(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- phases -------------------------------------------------------------------------------

def wrk(port, name, image, seconds, connections=2):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "image/png"\n'
                 f'local f = assert(io.open("{image}", "rb")); wrk.body = f:read("*all"); f:close()\n'
                 'done = function(s, l, r) io.write(string.format("ERRORS %d %d %d %d %d\\n", s.errors.connect, '
                 's.errors.read, s.errors.write, s.errors.status, s.errors.timeout)) '
                 'for _, p in pairs({50, 90, 99, 99.9}) do io.write(string.format("P %g %d\\n", p, l:percentile(p))) end end\n')
    script.close()
    out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "-s", script.name,
                          f"http://127.0.0.1:{port}/v1/models/{name}:classify"], capture_output=True, text=True).stdout
    os.unlink(script.name)
    percentiles = {float(p): int(us) / 1000 for p, us in re.findall(r"^P ([\d.]+) (\d+)$", out, re.M)}
    errors = [int(x) for x in re.search(r"^ERRORS (.*)$", out, re.M).group(1).split()]
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50_ms": percentiles[50], "p90_ms": percentiles[90], "p99_ms": percentiles[99], "p999_ms": percentiles[99.9],
            "errors": dict(zip(["connect", "read", "write", "status", "timeout"], errors))}


async def slow_clients(port, name, count, seconds):
    """Holds `count` connections open for `seconds`, trickling one byte per second each."""
    header_part = request_bytes("POST", f"/v1/models/{name}:classify", b"x" * 100000, "image/png")
    header_only = header_part[:header_part.index(b"\r\n\r\n") + 4]
    state = {"opened": 0, "refused": 0, "closed_by_server": 0, "bytes_sent": 0}

    async def one(i):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            state["refused"] += 1
            return
        state["opened"] += 1
        # Even: never-ending headers (a request line, then a header a byte at a time).
        # Odd: complete headers announcing 100,000 bytes of body, sent a byte at a time.
        if i % 2 == 0:
            writer.write(f"POST /v1/models/{name}:classify HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
            byte = b"X"
        else:
            writer.write(header_only)
            byte = b"\x89"
        deadline = time.monotonic() + seconds
        await asyncio.sleep(i / count)  # spread the trickles over the second
        try:
            while time.monotonic() < deadline:
                writer.write(byte)
                await writer.drain()
                state["bytes_sent"] += 1
                try:
                    # Anything read (an answer, or b"" at close) means the server ended this client.
                    await asyncio.wait_for(reader.read(1024), 1.0)
                    state["closed_by_server"] += 1
                    break
                except asyncio.TimeoutError:
                    pass
        except (ConnectionError, OSError):
            state["closed_by_server"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(count)))
    return state


def phase_slow(server, image, count, seconds):
    holder = subprocess.Popen([sys.executable, __file__, "--slow-helper", str(server.port), server.name, str(count),
                               str(seconds + 10)], stdout=subprocess.PIPE, text=True)
    time.sleep(5)  # let every slow connection open and start trickling
    rss_before = server.rss_mb()
    result = wrk(server.port, server.name, image, seconds)
    result["rss_mb_during"] = server.rss_mb()
    result["rss_mb_before"] = rss_before
    result["slow_clients"] = json.loads(holder.communicate()[0])
    return result


async def phase_many(port, name, png, count):
    connections = [Connection(port) for _ in range(count)]
    start = time.monotonic()
    opened = await asyncio.gather(*(c.open() for c in connections), return_exceptions=True)
    open_failures = sum(isinstance(r, Exception) for r in opened)
    opened_s = time.monotonic() - start
    data = request_bytes("POST", f"/v1/models/{name}:classify", png, "image/png")

    async def ask(c):
        t = time.monotonic()
        try:
            status, _, _ = await c.send(data, timeout=120)
            return status, time.monotonic() - t
        except Exception as e:  # noqa: BLE001 - every failure is counted
            return type(e).__name__, time.monotonic() - t
        finally:
            c.close()

    results = await asyncio.gather(*(ask(c) for c in connections if c.writer is not None))
    statuses = {}
    for s, _ in results:
        statuses[str(s)] = statuses.get(str(s), 0) + 1
    latencies = sorted(t for _, t in results)
    return {"connections": count, "open_failures": open_failures, "opened_in_s": round(opened_s, 3),
            "statuses": statuses, "all_in_s": round(time.monotonic() - start, 3),
            "slowest_ms": round(latencies[-1] * 1000, 1), "median_ms": round(statistics.median(latencies) * 1000, 1)}


def png_bomb(width, height):
    """A valid PNG header declaring width x height RGB pixels, with one tiny IDAT: 80-odd bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


async def raw_exchange(port, payload, close_after_send=False, timeout=10):
    """Sends raw bytes; returns the first status code, 'closed' or 'timeout'."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as e:
        return f"connect failed: {e}"
    try:
        if isinstance(payload, list):  # pieces sent apart (a stalled body, then hang up)
            for piece in payload:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.2)
        else:
            writer.write(payload)
            await writer.drain()
        if close_after_send:
            writer.write_eof()
        status, _, _ = await read_response(reader, timeout)
        return status
    except asyncio.IncompleteReadError:
        return "closed"
    except asyncio.TimeoutError:
        return "timeout"
    except (ConnectionError, OSError):
        return "reset"
    finally:
        writer.close()


async def phase_malformed(server, png):
    port, name = server.port, server.name
    classify = f"/v1/models/{name}:classify"
    good = request_bytes("POST", classify, png, "image/png")
    big = 1 << 20
    cases = [
        ("random bytes", os.urandom(4096)),
        ("NUL bytes and garbage line", b"\x00\xff\xfe\x00 garbage \x00\r\n\r\n"),
        ("unknown method", b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("HTTP/9.9", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"),
        ("header without a colon", b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n"),
        ("NUL inside a header value", b"GET /healthz HTTP/1.1\r\nHost: a\x00b\r\n\r\n"),
        ("bare LF line endings", b"GET /healthz HTTP/1.1\nHost: x\n\n"),
        ("1 MB header value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * big + b"\r\n\r\n"),
        ("100,000 headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 100000 + b"\r\n"),
        ("1 MB URL", b"GET /" + b"a" * big + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("negative Content-Length", request_bytes("POST", classify, b"", "image/png").replace(b"Content-Length: 0", b"Content-Length: -5")),
        ("non-numeric Content-Length", request_bytes("POST", classify, b"", "image/png").replace(b"Content-Length: 0", b"Content-Length: 12abc")),
        ("two different Content-Lengths", request_bytes("POST", classify, png, "image/png", extra="Content-Length: 3\r\n")),
        ("Content-Length 2^63", request_bytes("POST", classify, b"", "image/png").replace(b"Content-Length: 0", b"Content-Length: 9223372036854775808")),
        ("Content-Length and chunked together", request_bytes("POST", classify, b"5\r\nhello\r\n0\r\n\r\n", "image/png", extra="Transfer-Encoding: chunked\r\n")),
        ("chunk size not hex", (f"POST {classify} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n").encode()),
        ("chunk size 2^64", (f"POST {classify} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n").encode()),
        ("chunked body over the body limit (12 MB)", (f"POST {classify} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
         + (b"100000\r\n" + b"\x00" * 0x100000 + b"\r\n") * 12 + b"0\r\n\r\n"),
        ("Content-Length over the body limit (1 GB declared, 1 MB sent)", request_bytes("POST", classify, b"", "image/png").replace(
            b"Content-Length: 0", b"Content-Length: 1073741824") + b"\x00" * big),
        ("body shorter than its Content-Length, then hang up", [request_bytes("POST", classify, b"x" * 1000, "image/png")[:-990], b""]),
        ("body longer than its Content-Length", request_bytes("POST", classify, png, "image/png") + b"EXTRA GARBAGE\r\n\r\n"),
        ("PNG declaring 50,000 x 50,000 pixels", request_bytes("POST", classify, png_bomb(50000, 50000), "image/png")),
        ("base64 PNG bomb in :predict", request_bytes("POST", f"/v1/models/{name}:predict",
            json.dumps({"instances": [{"b64": base64.b64encode(png_bomb(50000, 50000)).decode()}]}).encode(), "application/json")),
        ("deeply nested JSON in :predict", request_bytes("POST", f"/v1/models/{name}:predict", b"[" * 100000 + b"]" * 100000, "application/json")),
        ("path trick ../../etc/passwd", request_bytes("POST", "/v1/models/../../etc/passwd:classify", png, "image/png")),
        ("path trick %2e%2e%2f", request_bytes("POST", "/v1/models/%2e%2e%2f%2e%2e%2fetc%2fpasswd:classify", png, "image/png")),
        ("path trick %00", request_bytes("POST", f"/v1/models/{name}%00:classify", png, "image/png")),
        ("multipart without a boundary", request_bytes("POST", classify, b"--x\r\n\r\n", "multipart/form-data")),
        ("100 pipelined requests", request_bytes("GET", "/healthz") * 100),
    ]
    results = []
    for label, payload in cases:
        t = time.monotonic()
        got = await raw_exchange(port, payload, close_after_send=isinstance(payload, list))
        took = time.monotonic() - t
        after, _, _ = await one_request(port, good)
        results.append({"case": label, "response": got, "seconds": round(took, 3), "next_request": after,
                        "server_alive": server.alive()})
    return results


async def phase_soak(server, png, minutes, rate, reload_every, keep):
    port, name = server.port, server.name
    predict = json.dumps({"instances": [{"b64": base64.b64encode(png).decode()}]}).encode()
    mix = [request_bytes("POST", f"/v1/models/{name}:classify", png, "image/png")] * 6 + [
        request_bytes("POST", f"/v1/models/{name}:predict", predict, "application/json"),
        request_bytes("GET", f"/v1/models/{name}"), request_bytes("GET", "/healthz"), request_bytes("GET", "/metrics")]
    checkpoints = os.path.join(server.run, "checkpoints")
    source = sorted(f for f in os.listdir(checkpoints) if f.endswith(".json"))[-1]
    manifest = json.load(open(os.path.join(checkpoints, source)))
    base_step = manifest["step"]
    stats = {"requests": 0, "errors": [], "by_minute": [], "rss": [], "reloads_written": 0, "versions_seen": set()}
    end = time.monotonic() + minutes * 60
    latencies = []
    lock = asyncio.Lock()

    async def client(k, workers):
        c = Connection(port)
        i = k
        next_at = time.monotonic() + k / rate
        while time.monotonic() < end:
            await asyncio.sleep(max(0, next_at - time.monotonic()))
            next_at += workers / rate
            t = time.monotonic()
            try:
                status, headers, body = await c.send(mix[i % len(mix)], timeout=30)
                if status != 200:
                    stats["errors"].append(f"{status} {body[:200]!r}")
                elif "json" in headers.get("content-type", "") and b"model_version" in body:
                    stats["versions_seen"].add(json.loads(body)["model_version"])
            except Exception as e:  # noqa: BLE001
                stats["errors"].append(type(e).__name__)
                c.close()
            latencies.append(time.monotonic() - t)
            stats["requests"] += 1
            i += workers

    async def reloader():
        step = base_step
        while time.monotonic() < end:
            await asyncio.sleep(reload_every)
            step += 1
            # As the trainer writes a checkpoint: data files first, the manifest last, by rename.
            stem = f"ckpt-{step:08d}"
            for suffix in ["safetensors", "state.safetensors"]:
                src = os.path.join(checkpoints, manifest[{"safetensors": "weightsFile", "state.safetensors": "stateFile"}[suffix]])
                if os.path.exists(src):
                    shutil.copyfile(src, os.path.join(checkpoints, f".{stem}.{suffix}.tmp"))
                    os.replace(os.path.join(checkpoints, f".{stem}.{suffix}.tmp"), os.path.join(checkpoints, f"{stem}.{suffix}"))
            m = dict(manifest, step=step, weightsFile=f"{stem}.safetensors", stateFile=f"{stem}.state.safetensors")
            with open(os.path.join(checkpoints, f".{stem}.json.tmp"), "w") as f:
                json.dump(m, f)
            os.replace(os.path.join(checkpoints, f".{stem}.json.tmp"), os.path.join(checkpoints, f"{stem}.json"))
            stats["reloads_written"] += 1
            # Prune as --keep-checkpoints does, the manifest first.
            for old in sorted(f for f in os.listdir(checkpoints) if f.endswith(".json") and f.startswith("ckpt-"))[:-keep]:
                if old == source:
                    continue
                os.remove(os.path.join(checkpoints, old))
                for suffix in [".safetensors", ".state.safetensors"]:
                    p = os.path.join(checkpoints, old[:-5] + suffix)
                    if os.path.exists(p):
                        os.remove(p)

    async def sampler():
        start = time.monotonic()
        minute_start, count_at_minute = start, 0
        while time.monotonic() < end:
            await asyncio.sleep(10)
            stats["rss"].append((round(time.monotonic() - start), round(server.rss_mb(), 1)))
            if time.monotonic() - minute_start >= 60:
                window = sorted(latencies[count_at_minute:])
                if window:
                    stats["by_minute"].append({"minute": len(stats["by_minute"]) + 1, "requests": len(window),
                                               "p50_ms": round(window[len(window) // 2] * 1000, 2),
                                               "p99_ms": round(window[int(len(window) * 0.99)] * 1000, 2),
                                               "errors_so_far": len(stats["errors"])})
                minute_start, count_at_minute = time.monotonic(), len(latencies)

    workers = 8
    await asyncio.gather(*(client(k, workers) for k in range(workers)), reloader(), sampler())
    stats["versions_seen"] = sorted(stats["versions_seen"])
    stats["final_step"] = base_step + stats["reloads_written"]
    window = sorted(latencies)
    stats["p50_ms"] = round(window[len(window) // 2] * 1000, 2)
    stats["p99_ms"] = round(window[int(len(window) * 0.99)] * 1000, 2)
    return stats


# --- report ---------------------------------------------------------------------------------

def rss_slope(samples, skip_s=120):
    """MB per 10 minutes, least squares over the samples after the first `skip_s` seconds."""
    pts = [(t, r) for t, r in samples if t >= skip_s]
    if len(pts) < 3:
        return None
    mt = statistics.mean(t for t, _ in pts)
    mr = statistics.mean(r for _, r in pts)
    slope = sum((t - mt) * (r - mr) for t, r in pts) / sum((t - mt) ** 2 for t, _ in pts)
    return round(slope * 600, 2)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--slow-helper":
        port, name, count, seconds = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
        print(json.dumps(asyncio.run(slow_clients(port, name, count, seconds))))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("image", help="a PNG the model takes (posted to :classify)")
    p.add_argument("--slow", type=int, default=500)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--measure", type=int, default=20, help="seconds of each wrk measurement")
    p.add_argument("--soak-minutes", type=float, default=30)
    p.add_argument("--rate", type=float, default=50, help="soak requests per second")
    p.add_argument("--reload-every", type=float, default=10)
    p.add_argument("--port", type=int, default=8097)
    p.add_argument("--phases", default="quiet,slow,many,malformed,soak")
    args = p.parse_args()
    sprout = os.environ.get("SPROUT", os.path.join(ROOT, ".build/release/sprout"))
    png = open(args.image, "rb").read()
    phases = args.phases.split(",")
    work = tempfile.mkdtemp(prefix="sprout-hostile-")
    run = os.path.join(work, os.path.basename(os.path.normpath(args.run)))
    shutil.copytree(args.run, run, ignore=shutil.ignore_patterns("events.out.*"))
    # The copy serves its newest checkpoint only: older ones would be pruned by the soak anyway.
    server = Server(sprout, run, args.port, os.path.join(work, "serve.log"))
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "run": args.run, "image": args.image,
              "image_bytes": len(png), "cores": os.cpu_count()}
    failures = []
    try:
        asyncio.run(one_request(args.port, request_bytes("POST", f"/v1/models/{server.name}:classify", png, "image/png")))
        report["rss_mb_start"] = round(server.rss_mb(), 1)
        if "quiet" in phases:
            report["quiet"] = wrk(args.port, server.name, args.image, args.measure)
            print("quiet:", json.dumps(report["quiet"]), flush=True)
        if "slow" in phases:
            report["slow"] = phase_slow(server, args.image, args.slow, args.measure)
            print("slow:", json.dumps(report["slow"]), flush=True)
            if "quiet" in report and report["slow"]["p99_ms"] > 2 * report["quiet"]["p99_ms"]:
                failures.append(f"p99 with slow clients {report['slow']['p99_ms']} ms > 2 x quiet {report['quiet']['p99_ms']} ms")
            if sum(report["slow"]["errors"].values()):
                failures.append(f"well-behaved clients saw errors beside slow ones: {report['slow']['errors']}")
        if "many" in phases:
            report["many"] = asyncio.run(phase_many(args.port, server.name, png, args.connections))
            print("many:", json.dumps(report["many"]), flush=True)
            if report["many"]["statuses"] != {"200": args.connections}:
                failures.append(f"{args.connections} connections: {report['many']['statuses']}")
        if "malformed" in phases:
            report["malformed"] = asyncio.run(phase_malformed(server, png))
            for r in report["malformed"]:
                print("malformed:", json.dumps(r), flush=True)
                if r["next_request"] != 200 or not r["server_alive"]:
                    failures.append(f"after {r['case']}: next request {r['next_request']}")
                if r["response"] == 200 and r["case"] not in ("100 pipelined requests", "body longer than its Content-Length",
                                                              "unknown method", "bare LF line endings"):
                    failures.append(f"{r['case']} was answered 200")
            report["rss_mb_after_malformed"] = round(server.rss_mb(), 1)
        if "soak" in phases:
            soak = asyncio.run(phase_soak(server, png, args.soak_minutes, args.rate, args.reload_every, keep=3))
            soak["rss_slope_mb_per_10min"] = rss_slope(soak["rss"])
            soak["error_count"] = len(soak["errors"])
            soak["errors"] = soak["errors"][:20]
            report["soak"] = soak
            print("soak:", json.dumps({k: v for k, v in soak.items() if k not in ("rss", "by_minute")}), flush=True)
            if soak["error_count"]:
                failures.append(f"soak: {soak['error_count']} errors, e.g. {soak['errors'][:3]}")
        report["server_alive_at_end"] = server.alive()
        report["rss_mb_end"] = round(server.rss_mb(), 1)
    finally:
        server.stop()
        with open(os.path.join(work, "serve.log")) as f:
            log = f.read()
        report["server_log_reload_lines"] = sum("now serving step" in line for line in log.splitlines())
        report["server_log_errors"] = [line for line in log.splitlines() if "error" in line.lower()][:20]
        shutil.rmtree(work, ignore_errors=True)
    report["failures"] = failures
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = os.path.join(ROOT, "benchmarks", "results", f"hostile-{stamp}.json")
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {out}")
    print("FAILED:\n  " + "\n  ".join(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
