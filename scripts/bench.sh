#!/usr/bin/env bash
# Measures what docs/PERFORMANCE.md reports, on this machine, against a real local registry:
#  1. signatures/s through the API (P-256 and Ed25519; 1 and 8 concurrent clients), with the load tool
#     examples/sign_load.rs against a release build of `notarium serve`;
#  2. the per-image CLI path: one `notarium sign` call, next to one `skopeo copy --sign-by-sigstore-private-key`
#     and one `cosign sign --key` of images in the same registry (mean and min of RUNS calls each);
#  3. the criterion micro-benchmarks (benches/signing.rs).
# Usage: [REGISTRY_ROOT=DIR] scripts/bench.sh [IMAGES_PER_LOAD_RUN] [RUNS]
# REGISTRY_ROOT puts the registry's storage elsewhere (e.g. /dev/shm to take its disk writes out of the figures).
# API_ONLY=1 stops after the API throughput (scripts/bench-all.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-300}
RUNS=${2:-10}
source scripts/bench-lib.sh
LOAD=$TARGET/release/examples/sign_load

start_registry
start_notarium

echo "## API throughput ($(nproc) cores, $IMAGES distinct images per run, registry storage in ${REGISTRY_ROOT:-$work})"
for key in dev-ecdsa dev-ed25519; do
  for c in 1 8; do
    "$LOAD" --server "$SERVER" --registry "$REG" --images "$IMAGES" --concurrency "$c" --key "$key" --repository "load/$key-$c"
  done
done

[ "${API_ONLY:-0}" = 1 ] && exit 0

time_each() { # label, then a command template with {} for the image; prints mean and min in ms
  local label=$1; shift
  local total=0 min=999999 i=0
  while read -r image; do
    local cmd=${*//\{\}/$image}
    local t0; t0=$(date +%s%N)
    eval "$cmd" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
    local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    total=$((total + ms)); i=$((i + 1)); [ "$ms" -lt "$min" ] && min=$ms
  done
  echo "$label: mean $((total / i)) ms, min $min ms over $i calls"
}

echo "## One sign per image from the command line ($RUNS images each)"
"$LOAD" --registry "$REG" --images "$RUNS" --repository cli/notarium --push-only > "$work/n.txt"
"$LOAD" --registry "$REG" --images "$RUNS" --repository cli/skopeo --push-only > "$work/s.txt"
"$LOAD" --registry "$REG" --images "$RUNS" --repository cli/cosign --push-only > "$work/c.txt"
printf 'bench\n' > "$work/pass"
skopeo generate-sigstore-key --output-prefix "$work/sk" --passphrase-file "$work/pass" >/dev/null
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$work/accept.json"
mkdir -p "$work/regd" && printf 'default-docker:\n  use-sigstore-attachments: true\n' > "$work/regd/default.yaml"
cosign() { HOME=$work TUF_ROOT=$work/tuf COSIGN_PASSWORD="" COSIGN_YES=true command cosign "$@"; }
(cd "$work" && cosign generate-key-pair >/dev/null 2>&1)
time_each "notarium sign (CLI -> API, P-256)" "$NOTARIUM" sign {} --key dev-ecdsa --server "$SERVER" < "$work/n.txt"
time_each "skopeo copy --sign-by-sigstore-private-key (P-256)" skopeo --policy "$work/accept.json" --registries.d "$work/regd" \
  copy --src-tls-verify=false --dest-tls-verify=false --sign-by-sigstore-private-key "$work/sk.private" \
  --sign-passphrase-file "$work/pass" docker://{} 'docker://$(echo {} | sed "s/@.*//"):signed' < "$work/s.txt"
time_each "cosign sign --key (P-256, no tlog)" cosign sign --key "$work/cosign.key" --tlog-upload=false \
  --allow-http-registry {} < "$work/c.txt"

echo "## Micro-benchmarks"
cargo bench --quiet --bench signing -- --noplot 2>/dev/null | grep -B1 "time:" | grep -v "^--$" || true
