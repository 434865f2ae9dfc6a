#!/usr/bin/env bash
# Attestation figures for docs/PERFORMANCE.md: attestations/s through `POST /v1/attest` (SLSA provenance v1,
# P-256, 1 and 8 clients) with examples/sign_load.rs --attest, and the registry round trips and bytes written
# per attestation, counted from the registry's own access log over a run of ROUND_TRIP_IMAGES attestations.
# Usage: scripts/bench-attest.sh [IMAGES_PER_LOAD_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-200}
source scripts/bench-lib.sh
LOAD=$PWD/target/release/examples/sign_load

start_registry access-log
start_notarium

echo "## Attestations through the API ($(nproc) cores, $IMAGES distinct images per run)"
for c in 1 8; do
  "$LOAD" --server "$SERVER" --registry "$REG" --images "$IMAGES" --concurrency "$c" --attest --repository "att/$c"
done

echo "## Registry round trips and bytes written per attestation (.att layout)"
"$LOAD" --registry "$REG" --images 20 --repository att/count --push-only > "$work/images.txt"
before=$(registry_requests)
while read -r image; do
  curl -sf "$SERVER/v1/attest" -H 'Content-Type: application/json' -d "{\"image\":\"$image\",\"key\":\"dev-ecdsa\",
    \"predicate_type\":\"https://slsa.dev/provenance/v1\",\"predicate\":{\"buildDefinition\":{\"buildType\":\"t:x\",
    \"externalParameters\":{\"a\":1}},\"runDetails\":{\"builder\":{\"id\":\"b:y\"}}}}" > /dev/null
done < "$work/images.txt"
after=$(registry_requests)
echo "round trips per attestation: $(( (after - before) / 20 ))"
last_registry_requests $(( (after - before) / 20 ))
envelope=$(curl -sf "http://$REG/v2/att/count/manifests/$(head -1 "$work/images.txt" | sed 's/.*@sha256:/sha256-/').att" -H 'Accept: application/vnd.oci.image.manifest.v1+json' | python3 -c 'import json,sys; m=json.load(sys.stdin); print(sum(l["size"] for l in m["layers"]), m["config"]["size"])')
echo "bytes: envelope layer + config blob = $envelope (the manifest itself is under 1 KB)"
