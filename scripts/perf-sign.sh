#!/usr/bin/env bash
# Where notarium's own CPU per sign goes (docs/PERFORMANCE.md, issue 19): the release build signs IMAGES images
# (both layouts, dev-ecdsa) from CLIENTS clients against a fresh CNCF distribution registry while `perf record`
# samples the `notarium serve` process (perf's own overhead inflates the CPU figure printed: take CPU per sign
# from scripts/bench-sign-registry.sh); prints its CPU per sign (from /proc/PID/stat), the share of its samples
# by category (scripts/perf-categories.py) and the top symbols. perf.data is left in a temporary folder
# deleted on exit unless PERF_DATA names a path (then delete it when done: it is large).
# Usage: [NOTARIUM_BIN=…] [PERF_DATA=path] scripts/perf-sign.sh [IMAGES] [CLIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-200}
CLIENTS=${2:-8}
source scripts/bench-lib.sh
LOAD=$TARGET/release/examples/sign_load
DATA=${PERF_DATA:-$work/perf.data}
echo "## load average: $(cut -d' ' -f1-3 /proc/loadavg), notarium $NOTARIUM"
cpu_ms() { sed 's/.*) //' "/proc/$1/stat" | awk '{print ($12 + $13) * 10}'; }

start_registry
start_notarium
# The pushes go to the registry only, so every sample of notarium over the run is the signs'.
perf record -F 999 --call-graph dwarf,32768 -p "${pids[1]}" -o "$DATA" >/dev/null 2>&1 & perf_pid=$!
sleep 1
before=$(cpu_ms "${pids[1]}")
"$LOAD" --server "$SERVER" --registry "$REG" --images "$IMAGES" --concurrency "$CLIENTS" --key dev-ecdsa \
  --formats cosign,bundle --repository "load/perf"
echo "notarium_cpu signs: $(( $(cpu_ms "${pids[1]}") - before )) ms total over $IMAGES" | \
  awk -v n="$IMAGES" '{printf "%s, %.2f ms per item\n", $0, $3 / n}'
kill -INT "$perf_pid"; wait "$perf_pid" || true
perf script -i "$DATA" 2>/dev/null | python3 scripts/perf-categories.py
perf report -i "$DATA" --no-children --sort dso,symbol --percent-limit 1 --stdio -g none 2>/dev/null | grep '%' | cut -c1-120
