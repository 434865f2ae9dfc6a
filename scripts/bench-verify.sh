#!/usr/bin/env bash
# Verify figures for docs/PERFORMANCE.md: POST /v1/verify latency and verifications/s with
# examples/sign_load.rs --verify (1 and 8 clients) against a release build of `notarium serve`: each image is
# signed first (untimed), then verified cold (the first decision about each digest: the .sig and .att tags
# and the OCI 1.1 referrers read from the registry over loopback, signatures checked) and warm (the same
# digests again, answered from the decision cache). Every verify also appends its register entry (durable).
# Then the registry round trips of one cold verify, counted from the registry's access log, and the CPU time
# (user + system, from /proc/PID/stat) notarium and the registry spent per cold verify.
# Usage: scripts/bench-verify.sh [IMAGES_PER_LOAD_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-300}
source scripts/bench-lib.sh
LOAD=$TARGET/release/examples/sign_load
# utime + stime of process $1 so far, in clock ticks (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

start_registry access-log
mkdir -p "$work/policies"
cat > "$work/policies/bench.yaml" <<YML
policies:
  - name: bench
    images: ["$REG/verify/**"]
    authorities:
      - key: dev-ecdsa
YML
printf '[policies]\ndir = "%s"\ncache_secs = 3600\n' "$work/policies" > "$work/notarium.toml"
NOTARIUM_CONFIG=$work/notarium.toml start_notarium

echo "## Verify through the API ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start, $IMAGES distinct signed images per run)"
for c in 1 8; do
  "$LOAD" --server "$SERVER" --registry "$REG" --images "$IMAGES" --concurrency "$c" --verify --repository "verify/c$c"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

COUNT=50
echo "## Registry round trips and CPU per cold verify ($COUNT images signed by notarium, by digest, one at a time)"
"$LOAD" --registry "$REG" --images "$COUNT" --repository verify/count --push-only > "$work/images.txt"
while read -r image; do
  curl -sf "$SERVER/v1/sign" -H 'Content-Type: application/json' -d "{\"image\":\"$image\",\"key\":\"dev-ecdsa\"}" > /dev/null
done < "$work/images.txt"
before=$(registry_requests)
cpu_before=("$(cpu_ticks "${pids[1]}")" "$(cpu_ticks "${pids[0]}")")
while read -r image; do
  answer=$(curl -sf "$SERVER/v1/verify" -H 'Content-Type: application/json' -d "{\"image\":\"$image\"}")
  [[ $answer == *'"allowed":true'* ]] || { echo "not allowed: $answer"; exit 1; }
done < "$work/images.txt"
after=$(registry_requests)
cpu_after=("$(cpu_ticks "${pids[1]}")" "$(cpu_ticks "${pids[0]}")")
tick_us=$(( 1000000 / $(getconf CLK_TCK) ))
echo "CPU per cold verify: notarium $(( (cpu_after[0] - cpu_before[0]) * tick_us / COUNT )) µs," \
  "registry $(( (cpu_after[1] - cpu_before[1]) * tick_us / COUNT )) µs"
echo "round trips per cold verify: $(( (after - before) / COUNT ))"
last_registry_requests $(( (after - before) / COUNT ))
