#!/usr/bin/env bash
# Measures the HSM and Vault backends for docs/PERFORMANCE.md, in one run on this machine:
#  1. raw sign rate (cryptoki straight on SoftHSM2; HTTP straight to OpenBao Transit) next to the same
#     signatures through notarium's Signer (session pool / Vault client), examples/backend_rate.rs;
#  2. signatures/s through the API with each backend, examples/sign_load.rs against a real registry.
# Usage: [REGISTRY_ROOT=DIR] scripts/bench-keys.sh [SECONDS] [IMAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-5}
IMAGES=${2:-300}
source scripts/bench-lib.sh

# SoftHSM2 token with a P-256 key generated on it.
mkdir -p "$work/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/tokens" > "$work/softhsm2.conf"
export SOFTHSM2_CONF=$work/softhsm2.conf BENCH_PIN=bench-pin-4711
softhsm2-util --init-token --free --label bench --so-pin so-1234 --pin "$BENCH_PIN" >/dev/null
pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label bench --login --pin "$BENCH_PIN" \
  --keypairgen --key-type EC:prime256v1 --label p256 --id 01 --usage-sign --private >/dev/null

# OpenBao dev server with a Transit ecdsa-p256 key.
bao_port=$(free_port); export BAO_ADDR=http://127.0.0.1:$bao_port BENCH_BAO_TOKEN=bench-root-token
HOME=$work bao server -dev -dev-no-store-token -dev-root-token-id="$BENCH_BAO_TOKEN" \
  -dev-listen-address=127.0.0.1:$bao_port > "$work/bao.log" 2>&1 & pids+=($!)
until curl -sf "$BAO_ADDR/v1/sys/health" >/dev/null; do sleep 0.2; done
BAO_TOKEN=$BENCH_BAO_TOKEN HOME=$work bao secrets enable transit >/dev/null
BAO_TOKEN=$BENCH_BAO_TOKEN HOME=$work bao write -f transit/keys/bench type=ecdsa-p256 >/dev/null

echo "## Backend sign rate, raw vs through notarium's Signer ($(nproc) cores, ${SECONDS_PER_RUN}s each)"
for c in 1 2; do
  echo "### SoftHSM2, $c session(s)"
  target/release/examples/backend_rate --concurrency "$c" --seconds "$SECONDS_PER_RUN" pkcs11 \
    --module /usr/lib/softhsm/libsofthsm2.so --token bench --label p256 --pin-env BENCH_PIN
done
for c in 1 8; do
  echo "### OpenBao Transit, $c client(s)"
  target/release/examples/backend_rate --concurrency "$c" --seconds "$SECONDS_PER_RUN" vault \
    --address "$BAO_ADDR" --key bench --token-env BENCH_BAO_TOKEN
done

start_registry
cat > "$work/notarium.toml" <<TOML
[[keys]]
id = "hsm-p256"
backend = "pkcs11"
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "bench"
key_label = "p256"
pin_env = "BENCH_PIN"

[[keys]]
id = "vault-p256"
backend = "vault"
address = "$BAO_ADDR"
key = "bench"
token_env = "BENCH_BAO_TOKEN"
TOML
NOTARIUM_CONFIG=$work/notarium.toml start_notarium
echo "## API throughput with each backend ($IMAGES images, registry storage in ${REGISTRY_ROOT:-$work})"
for key in hsm-p256 vault-p256; do
  for c in 1 8; do
    target/release/examples/sign_load --server "$SERVER" --registry "$REG" --images "$IMAGES" --concurrency "$c" \
      --key "$key" --repository "load/$key-$c"
  done
done
