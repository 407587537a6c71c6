#!/usr/bin/env bash
# The plant app end to end in a real headless browser (Chromium from Debian): `sprout serve RUN_DIR`,
# the web page opened with ?selftest=URL, which fetches a phone-style photo (served from a second
# loopback server) and submits it through the page's own upload code, exactly as a chosen file.
# Checks the top-1 label, that the page saw the photo upright (EXIF orientation), the latency line,
# and writes a screenshot.
#   scripts/app_check.sh RUN_DIR PHOTO.jpg EXPECTED_LABEL [SCREENSHOT.png] [PORT]
set -euo pipefail
RUN=${1:?usage: app_check.sh RUN_DIR PHOTO.jpg EXPECTED_LABEL [SCREENSHOT.png] [PORT]}
PHOTO=${2:?photo}
EXPECTED=${3:?expected label}
SHOT=${4:-app-check.png}
PORT=${5:-8094}
FILES=$((PORT + 1))
SPROUT=${SPROUT:-.build/release/sprout}
BROWSER=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$BROWSER" ] || { echo "no Chromium: apt-get install chromium"; exit 1; }
dir=$(mktemp -d)
cp "$PHOTO" "$dir/photo.jpg"
log="$dir/serve.log"
"$SPROUT" serve "$RUN" --port "$PORT" >"$log" 2>&1 &
server=$!
# The photo from another origin, with the header that lets the page fetch it.
python3 - "$dir" "$FILES" <<'PY' &
import functools, http.server, sys
class CORS(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), functools.partial(CORS, directory=sys.argv[1])).serve_forever()
PY
files=$!
trap 'kill $server $files 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && curl -sf -o /dev/null "http://127.0.0.1:$FILES/photo.jpg" && break; sleep 0.2; done
url="http://127.0.0.1:$PORT/?selftest=http://127.0.0.1:$FILES/photo.jpg"
flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars --virtual-time-budget=30000)
dom=$("$BROWSER" "${flags[@]}" --dump-dom "$url" 2>/dev/null)
"$BROWSER" "${flags[@]}" --window-size=900,1000 --screenshot="$SHOT" "$url" >/dev/null 2>&1
labels=$(grep -o '<span class="label">[^<]*</span>' <<<"$dom" | sed 's/<[^>]*>//g' | paste -sd, -)
top=${labels%%,*}
dims=$(grep -o '<span id="dims">[^<]*</span>' <<<"$dom" | sed 's/<[^>]*>//g' || true)
meta=$(grep -o '<p id="meta">[^<]*</p>' <<<"$dom" | sed 's/<[^>]*>//g' || true)
pcts=$(grep -o '<span class="pct">[^<]*</span>' <<<"$dom" | sed 's/<[^>]*>//g' | paste -sd, -)
echo "browser: $("$BROWSER" --version 2>/dev/null)"
echo "photo: $(stat -c %s "$PHOTO") bytes; page shows: $dims"
echo "top-5: $labels ($pcts)"
echo "meta: $meta"
echo "screenshot: $SHOT"
kill -TERM $server
wait $server && status=0 || status=$?
echo "server exit status after SIGTERM: $status"
ok=1
[ "$top" = "$EXPECTED" ] || { echo "top-1 is '$top', expected '$EXPECTED'"; ok=0; }
grep -q "^3000×4000" <<<"$dims" || { echo "the page did not show the photo upright at 3000×4000"; ok=0; }
grep -q "ms$" <<<"$meta" || { echo "no latency line"; ok=0; }
[ "$status" = 0 ] || ok=0
[ $ok = 1 ] && echo "app check: OK"
