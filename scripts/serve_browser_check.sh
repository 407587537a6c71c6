#!/usr/bin/env bash
# The web page in a real headless browser (Chromium from Debian): loads /?selftest=1, which
# draws an image, uploads it through the page's own form code and renders the top-5; then
# reads the rendered DOM; then again with the "Why?" (Grad-CAM) box ticked. A line reader's run
# (sprout train --dataset mnist-lines) draws a line of digits instead and checks the text shown.
# Also checks that SIGTERM stops the server with exit status 0.
#   scripts/serve_browser_check.sh RUN_DIR [PORT]
set -euo pipefail
RUN=${1:?usage: serve_browser_check.sh RUN_DIR [PORT]}
PORT=${2:-8093}
SPROUT=${SPROUT:-.build/release/sprout}
BROWSER=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$BROWSER" ] || { echo "no Chromium: apt-get install chromium"; exit 1; }
log=$(mktemp)
"$SPROUT" serve "$RUN" --port "$PORT" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
dom=$("$BROWSER" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --virtual-time-budget=15000 \
      --dump-dom "http://127.0.0.1:$PORT/?selftest=1" 2>/dev/null)
rows=$(grep -o 'class="row prediction"' <<<"$dom" | wc -l || true)
# A line reader renders the text it read instead of prediction rows.
read_text=$(grep -o 'data-recognized="[^"]*"' <<<"$dom" | head -1 | sed 's/data-recognized=//; s/"//g' || true)
if grep -q 'data-recognized=' <<<"$dom"; then
  echo "browser: $("$BROWSER" --version 2>/dev/null)"
  echo "line reader read: '$read_text' (the self-test drew 27913 in a sans-serif font)"
  echo "reading: $(grep -o '<p id="text"[^>]*>.*</p>' <<<"$dom" | sed 's/<[^>]*>//g' | head -1)"
  echo "meta: $(grep -o '<p id="meta">[^<]*</p>' <<<"$dom" | sed 's/<[^>]*>//g')"
  kill -TERM $server
  wait $server && status=0 || status=$?
  echo "server exit status after SIGTERM: $status"
  grep -q 'id="text"' <<<"$dom" && [ "$status" = 0 ] && echo "browser check: OK"
  exit
fi
meta=$(grep -o '<p id="meta">[^<]*</p>' <<<"$dom" || true)
echo "browser: $("$BROWSER" --version 2>/dev/null)"
echo "rendered prediction rows: $rows"
echo "labels: $(grep -o '<span class="label">[^<]*</span>' <<<"$dom" | sed 's/<[^>]*>//g' | paste -sd, -)"
echo "meta: $(sed 's/<[^>]*>//g' <<<"$meta")"
# The "Why?" box: the same self-test with Grad-CAM ticked draws the heat map under the photo.
why=$("$BROWSER" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --virtual-time-budget=20000 \
      --dump-dom "http://127.0.0.1:$PORT/?selftest=1&why=1" 2>/dev/null)
explained=$(grep -c 'data-explained="true"' <<<"$why" || true)
echo "Grad-CAM: $(grep -o '<p id="heatnote"[^>]*>[^<]*' <<<"$why" | sed 's/<[^>]*>//g')"
kill -TERM $server
wait $server && status=0 || status=$?
echo "server exit status after SIGTERM: $status"
[ "$rows" -ge 1 ] && grep -q "version" <<<"$meta" && [ "$status" = 0 ] && [ "$explained" -ge 1 ] && echo "browser check: OK"
