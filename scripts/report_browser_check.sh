#!/usr/bin/env bash
# The error-analysis page (sprout eval RUN --report DIR) in a real headless browser: loads it
# from disk with the first off-diagonal confusion cell as the fragment (the cell a user clicks),
# checks the page carries every part and no external resource, and saves a screenshot.
#   scripts/report_browser_check.sh REPORT_DIR [SCREENSHOT.png]
set -euo pipefail
DIR=${1:?usage: report_browser_check.sh REPORT_DIR [SCREENSHOT.png]}
SHOT=${2:-$DIR/screenshot.png}
PAGE=$(cd "$DIR" && pwd)/index.html
BROWSER=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$BROWSER" ] || { echo "no Chromium: apt-get install chromium"; exit 1; }
cell=$(grep -o 'href="#cell-[0-9]*-[0-9]*"' "$PAGE" | sed 's/href="#//; s/"//' | awk -F- '$2 != $3' | head -1)
[ -n "$cell" ] || { echo "no off-diagonal cell: every image right?"; exit 1; }
flags="--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars"
dom=$("$BROWSER" $flags --virtual-time-budget=5000 --dump-dom "file://$PAGE#$cell" 2>/dev/null)
"$BROWSER" $flags --window-size=1200,1600 --screenshot="$SHOT" "file://$PAGE#$cell" >/dev/null 2>&1
figures=$( (grep -o '<figure>' <<<"$dom" || true) | wc -l)
external=$( (grep -Eo '(src|href)="https?://' <<<"$dom" || true) | wc -l)
echo "browser: $("$BROWSER" --version 2>/dev/null)"
echo "opened cell: $cell ($(grep -o "id=\"$cell\"><h3>[^<]*" <<<"$dom" | sed 's/.*<h3>//'))"
echo "images: $figures; confusion cells linked: $(grep -o 'href="#cell-' <<<"$dom" | wc -l); external resources: $external"
echo "screenshot: $SHOT ($(stat -c %s "$SHOT") bytes)"
grep -q 'Most confidently wrong' <<<"$dom" && grep -q 'Calibration' <<<"$dom" && grep -q "id=\"$cell\"" <<<"$dom" \
  && [ "$figures" -ge 1 ] && [ "$external" = 0 ] && [ -s "$SHOT" ] && echo "report check: OK"
