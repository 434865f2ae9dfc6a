#!/usr/bin/env bash
# Sign figures for docs/PERFORMANCE.md, issue 17: a sign writing three formats (cosign `.sig` layer, Sigstore
# bundle referrer, Notary Project JWS referrer) against one writing two (`.sig` and bundle), with the writes
# concurrent. examples/sign_load.rs --formats at 1 and 8 clients (P-256 file key with the committed test
# chain), then the registry round trips of one sign of each kind, counted from the registry's access log.
# Usage: scripts/bench-sign-formats.sh [IMAGES_PER_LOAD_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-200}
source scripts/bench-lib.sh
NOTARIUM=${CARGO_TARGET_DIR:-$PWD/target}/release/notarium
LOAD=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/sign_load

start_registry access-log
cat > "$work/notarium.toml" <<TOML
[[keys]]
id = "dev-ecdsa"
backend = "file"
path = "$PWD/keys.example/dev-ecdsa.pem"
certificate_chain = "$PWD/tests/fixtures/certificates/dev-ecdsa.chain.pem"

[[keys]]
id = "dev-log"
backend = "file"
path = "$PWD/keys.example/dev-log.pem"
TOML
NOTARIUM_CONFIG=$work/notarium.toml start_notarium

echo "## Sign in two and three formats ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start, $IMAGES distinct images per run)"
for c in 1 8; do
  for formats in cosign,bundle cosign,bundle,notation; do
    echo "formats $formats, $c clients:"
    "$LOAD" --server "$SERVER" --registry "$REG" --images "$IMAGES" --concurrency "$c" --key dev-ecdsa \
      --formats "$formats" --repository "formats/${formats//,/-}-$c"
  done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "## Registry round trips per sign (20 images each, by digest)"
for formats in cosign,bundle cosign,bundle,notation; do
  "$LOAD" --registry "$REG" --images 20 --repository "count/${formats//,/-}" --push-only > "$work/images.txt"
  list=$(printf '"%s",' ${formats//,/ }); list="[${list%,}]"
  before=$(registry_requests)
  while read -r image; do
    curl -sf "$SERVER/v1/sign" -H 'Content-Type: application/json' \
      -d "{\"image\":\"$image\",\"key\":\"dev-ecdsa\",\"formats\":$list}" > /dev/null
  done < "$work/images.txt"
  after=$(registry_requests)
  echo "formats $formats: $(( (after - before) / 20 )) round trips per sign"
  last_registry_requests $(( (after - before) / 20 ))
done
