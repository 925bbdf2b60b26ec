#!/bin/bash
# Checks that every built page's formulas render with no network.
#
#   mkdocs build -d /tmp/site && bash docs/check_math_offline.sh /tmp/site
#
# Needs root (for a network namespace) and Chromium (apt-get install
# chromium). In a namespace with only the loopback interface, it serves the
# site on 127.0.0.1 and has headless Chromium load each page with maths;
# per page it prints the formulas in the HTML (class="arithmatex"), the
# MathJax containers in the rendered DOM, and MathJax's TeX errors. Exits 1
# when a formula did not render or has an error.
set -euo pipefail
SITE=$(realpath "${1:?usage: check_math_offline.sh SITE_DIR}")
PORT=${PORT:-8767}
exec unshare -n bash -s "$SITE" "$PORT" <<'INNER'
set -uo pipefail
SITE=$1; PORT=$2
ip link set lo up
(cd "$SITE" && exec python3 -m http.server "$PORT" --bind 127.0.0.1) \
  >/dev/null 2>&1 &
server=$!
sleep 1
bad=0
while read -r page; do
  url=${page#"$SITE"/}; url=${url%index.html}
  n=$(grep -o 'class="arithmatex"' "$page" | wc -l)
  dom=$(timeout 120 chromium --headless --no-sandbox --disable-gpu \
    --disable-background-networking --disable-component-update \
    --no-first-run --virtual-time-budget=30000 \
    --dump-dom "http://127.0.0.1:$PORT/$url" 2>/dev/null)
  c=$(grep -o '<mjx-container' <<< "$dom" | wc -l)
  e=$(grep -o 'data-mjx-error="[^"]*"' <<< "$dom" | sort -u | tr '\n' ' ')
  echo "/$url formulas=$n rendered=$c ${e:+errors: $e}"
  if [ "$c" -lt "$n" ] || [ -n "$e" ]; then bad=1; fi
done < <(grep -l 'class="arithmatex"' -r --include=index.html "$SITE" | sort)
kill "$server"
exit $bad
INNER
