#!/usr/bin/env bash
# Load test of `sprout serve` with wrk (Debian package): 16 connections for 30 s posting a
# PNG to :classify. Prints wrk's summary with latency percentiles, the server's RSS before
# and after, and the batch sizes it ran; run once with dynamic batching and once without
# (--max-batch 1) to measure what batching gains.
#   scripts/serve_load_test.sh RUN_DIR [IMAGE.png] [--max-batch N ...]
set -euo pipefail
RUN=${1:?usage: serve_load_test.sh RUN_DIR [IMAGE] [serve options]}
IMAGE=${2:-}
shift $(( $# >= 2 ? 2 : 1 ))
PORT=${PORT:-8094}
DURATION=${DURATION:-30s}
SPROUT=${SPROUT:-.build/release/sprout}
if [ -z "$IMAGE" ]; then
  IMAGE=$(mktemp --suffix=.png)
  "$SPROUT" data sample /usr/share/datasets/fashion-mnist --split test --index 0 --output "$IMAGE" >/dev/null
fi
"$SPROUT" serve "$RUN" --port "$PORT" "$@" > /tmp/sprout-serve-load.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
name=$(basename "$(cd "$RUN" && pwd)")
script=$(mktemp --suffix=.lua)
cat > "$script" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
local f = assert(io.open("$IMAGE", "rb")); wrk.body = f:read("*all"); f:close()
done = function(summary, latency, requests)
  io.write(string.format("errors: connect %d, read %d, write %d, status %d, timeout %d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
LUA
rss() { awk '/VmRSS/ {print $2 / 1024 " MB"}' /proc/$server/status; }
curl -sf -X POST --data-binary @"$IMAGE" "http://127.0.0.1:$PORT/v1/models/$name:classify" >/dev/null   # warm up
echo "RSS before: $(rss)"
# RSS every 5 s while under load: flat once the buffers for the batch sizes in use exist.
( while sleep 5; do echo "RSS under load: $(rss)"; done ) &
sampler=$!
wrk -t 2 -c 16 -d "$DURATION" --latency -s "$script" "http://127.0.0.1:$PORT/v1/models/$name:classify"
kill $sampler
echo "RSS after: $(rss)"
curl -sf "http://127.0.0.1:$PORT/metrics" | grep -E '^sprout_batch_size_(sum|count)|requests_total.*classify'
kill -TERM $server
wait $server && echo "server exit status after SIGTERM: 0" || echo "server exit status after SIGTERM: $?"
