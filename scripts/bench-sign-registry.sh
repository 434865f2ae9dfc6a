#!/usr/bin/env bash
# Registry work per sign (docs/PERFORMANCE.md, issue 19): against a fresh CNCF distribution registry, the
# registry's CPU time per sign (both layouts: `.sig` and the bundle referrer through the fallback index)
# next to its CPU time per image pushed, in the same run, at 1 and 8 clients; then every request one sign
# makes, from the registry's access log (a second registry, so that logging costs nothing above).
# Usage: [NOTARIUM_BIN=path/to/notarium] scripts/bench-sign-registry.sh [IMAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-200}
source scripts/bench-lib.sh
LOAD=$TARGET/release/examples/sign_load
echo "## load average: $(cut -d' ' -f1-3 /proc/loadavg), notarium $NOTARIUM"

# utime + stime of process $1 so far, in ms (fields 14 and 15 of /proc/PID/stat, 100 ticks a second).
cpu_ms() { sed 's/.*) //' "/proc/$1/stat" | awk '{print ($12 + $13) * 10}'; }

start_registry
start_notarium
for c in 1 8; do
  before=$(cpu_ms "${pids[1]}")
  "$LOAD" --server "$SERVER" --registry "$REG" --images "$IMAGES" --concurrency "$c" --key dev-ecdsa \
    --formats cosign,bundle --repository "load/c$c" --registry-pid "${pids[0]}"
  # The pushes before the signs go to the registry only: all of notarium's CPU over the run is the signs'.
  echo "notarium_cpu signs: $(( $(cpu_ms "${pids[1]}") - before )) ms total over $IMAGES" | \
    awk -v n="$IMAGES" '{printf "%s, %.2f ms per item\n", $0, $3 / n}'
done
kill "${pids[@]}"; wait 2>/dev/null || true; pids=()

echo "## the requests of one sign (after 3 signs in the same repository)"
start_registry access-log
start_notarium
"$LOAD" --server "$SERVER" --registry "$REG" --images 3 --key dev-ecdsa --formats cosign,bundle --repository load/one >/dev/null
"$LOAD" --server "$SERVER" --registry "$REG" --images 1 --key dev-ecdsa --formats cosign,bundle --repository load/one \
  --push-only > "$work/image"
pushed=$(wc -l < "$work/registry.log")
curl -sf "$SERVER/v1/sign" -H 'content-type: application/json' \
  -d "{\"image\":\"$(cat "$work/image")\",\"key\":\"dev-ecdsa\",\"formats\":[\"cosign\",\"bundle\"]}" >/dev/null
sleep 0.5
python3 scripts/registry-requests.py "$work/registry.log" "$pushed"
