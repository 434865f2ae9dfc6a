#!/usr/bin/env bash
# Memory figure for docs/PERFORMANCE.md (issue 19): the peak RSS of a release `notarium serve` on its embedded
# defaults (only a policy folder given) while 1,000 `POST /v1/verify` requests are in flight at once against a
# local CNCF distribution registry. The images are pushed and signed first (8 clients, untimed); the peak is
# then reset (`5` into /proc/PID/clear_refs) and examples/sign_load.rs sends one verify per image from as many
# concurrent clients as there are images (one connection each, all opened at once), a cold pass (each digest's
# signatures read from the registry and checked) then a warm one (decision cache). Printed: VmHWM from
# /proc/PID/status after the passes, and the most established connections to the server seen while they ran
# (sampled every 20 ms with ss) and the most threads — the server's default `[server] max_connections` is 1024, so none queue.
# Usage: scripts/bench-memory.sh [IN_FLIGHT]
set -euo pipefail
cd "$(dirname "$0")/.."
IN_FLIGHT=${1:-1000}
source scripts/bench-lib.sh
LOAD=$TARGET/release/examples/sign_load

start_registry
mkdir -p "$work/policies"
cat > "$work/policies/bench.yaml" <<YML
policies:
  - name: bench
    images: ["$REG/memory/**"]
    authorities:
      - key: dev-ecdsa
YML
NOTARIUM_POLICIES_DIR=$work/policies start_notarium
PID=${pids[-1]}
PORT=${SERVER##*:}
status() { grep "^$1:" "/proc/$PID/status" | tr -s ' \t' ' ' | cut -d' ' -f2-; }
echo "## Memory with $IN_FLIGHT verifies in flight ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo "idle after start: VmRSS $(status VmRSS)"

"$LOAD" --registry "$REG" --images "$IN_FLIGHT" --repository memory/app --push-only > "$work/images.txt"
xargs -P 8 -I{} curl -sf -o /dev/null "$SERVER/v1/sign" -H 'Content-Type: application/json' \
  -d '{"image":"{}","key":"dev-ecdsa"}' < "$work/images.txt"
echo "after signing $IN_FLIGHT images (8 clients): VmRSS $(status VmRSS), VmHWM $(status VmHWM)"
echo 5 > "/proc/$PID/clear_refs"
echo "peak reset: VmHWM $(status VmHWM)"

( most=0 threads=0
  while :; do
    n=$(ss -Htn state established "( sport = :$PORT )" | wc -l)
    (( n > most )) && { most=$n; echo "$most" > "$work/connections"; }
    t=$(status Threads)
    (( t > threads )) && { threads=$t; echo "$threads" > "$work/threads"; }
    sleep 0.02
  done ) & pids+=($!)
"$LOAD" --server "$SERVER" --registry "$REG" --images "$IN_FLIGHT" --concurrency "$IN_FLIGHT" --verify \
  --signed-images "$work/images.txt"
echo "most established connections to the server during the passes: $(cat "$work/connections"), most threads: $(cat "$work/threads")"
echo "after the verify passes: VmRSS $(status VmRSS), peak VmHWM $(status VmHWM)"
