#!/usr/bin/env bash
# Sign latency over a network (docs/PERFORMANCE.md, issue 19): notarium reaches a fresh CNCF distribution
# registry through examples/delay_proxy, which adds DELAY_MS each way (20 ms round-trip time by default);
# signs IMAGES distinct images (both layouts: `.sig` and the bundle referrer through the fallback index) from
# 1 client and reports p50; then lists the requests of one more sign with their times, and the sequential
# round trips among them, from the registry's access log.
# Usage: [NOTARIUM_BIN=path/to/notarium] [DELAY_MS=10] scripts/bench-rtt.sh [IMAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-50}
DELAY_MS=${DELAY_MS:-10}
source scripts/bench-lib.sh
LOAD=$TARGET/release/examples/sign_load
echo "## load average: $(cut -d' ' -f1-3 /proc/loadavg), notarium $NOTARIUM, ${DELAY_MS} ms each way"

start_registry access-log
DIRECT=$REG
REG=127.0.0.1:$(free_port)
"$TARGET/release/examples/delay_proxy" --listen "$REG" --upstream "$DIRECT" --delay-ms "$DELAY_MS" & pids+=($!)
start_notarium
# Images are named by the proxy's address, the only one notarium knows: the load tool pushes through it too.
"$LOAD" --server "$SERVER" --registry "$REG" --images "$IMAGES" --concurrency 1 --key dev-ecdsa \
  --formats cosign,bundle --repository load/rtt

"$LOAD" --server "$SERVER" --registry "$REG" --images 1 --repository load/rtt --push-only > "$work/image"
pushed=$(wc -l < "$work/registry.log")
curl -sf -o /dev/null -w 'one more sign: %{time_total} s\n' "$SERVER/v1/sign" -H 'content-type: application/json' \
  -d "{\"image\":\"$(cat "$work/image")\",\"key\":\"dev-ecdsa\",\"formats\":[\"cosign\",\"bundle\"]}"
sleep 0.5
python3 scripts/registry-requests.py "$work/registry.log" "$pushed" $((DELAY_MS * 3 / 2))
