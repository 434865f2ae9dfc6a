#!/bin/bash
# GET /v1/log/checkpoint with a witness configured (docs/PERFORMANCE.md "The public checkpoint with
# witnesses"): a `notarium witness serve` and a notarium (SQLite) that sends it checkpoints, three entries
# cosigned, then `ab -n N -c C` (apache2-utils) on the route. Run from the repository root:
#   bash scripts/bench-checkpoint.sh BINARY LABEL [N] [C]
set -u
BIN=$1; LABEL=$2; N=${3:-3000}; C=${4:-8}
ROOT=$PWD
D=$(mktemp -d)
WPORT=$((20000 + RANDOM % 10000)); PORT=$((WPORT + 1))
$BIN witness key generate --name witness.test/w1 --output json --key $D/w.pem > $D/wkey.json
VKEY=$(python3 -c "import json;print(json.load(open('$D/wkey.json'))['vkey'])")
openssl pkey -in $ROOT/keys.example/dev-log.pem -pubout -out $D/log.pub 2>/dev/null
$BIN witness serve --listen 127.0.0.1:$WPORT --name witness.test/w1 --key $D/w.pem --state $D/state \
  --log-pem notarium.local/log=$D/log.pub >/dev/null 2>$D/w.err &
WPID=$!
cat > $D/notarium.toml <<TOML
[auth]
public_rate_per_minute = 0

[log]
witness_interval_secs = 1
witness_timeout_secs = 5

[[log.witnesses]]
url = "http://127.0.0.1:$WPORT"
vkey = "$VKEY"

[[keys]]
id = "dev-ecdsa"
backend = "file"
path = "$ROOT/keys.example/dev-ecdsa.pem"

[[keys]]
id = "dev-log"
backend = "file"
path = "$ROOT/keys.example/dev-log.pem"
TOML
NOTARIUM_LISTEN=127.0.0.1:$PORT NOTARIUM_DATA_DIR=$D NOTARIUM_INSECURE_REGISTRIES=127.0.0.1:$WPORT NOTARIUM_LOG=warn \
NOTARIUM_DATABASE_URL=sqlite://$D/n.db NOTARIUM_POLICIES_DIR=$D/none NOTARIUM_CONFIG=$D/notarium.toml \
  $BIN serve >/dev/null 2>$D/n.err &
NPID=$!
for i in $(seq 50); do curl -sf http://127.0.0.1:$PORT/v1/log/checkpoint >/dev/null && break; sleep 0.2; done
for i in 1 2 3; do NOTARIUM_DATABASE_URL=sqlite://$D/n.db $BIN token create --role auditor --output json >/dev/null; done
# Wait until the witness cosigned the current size (two signature lines).
for i in $(seq 100); do [ "$(curl -s http://127.0.0.1:$PORT/v1/log/checkpoint | grep -c '^—')" -ge 2 ] && break; sleep 0.2; done
curl -s http://127.0.0.1:$PORT/v1/log/checkpoint | grep -c '^—' | sed 's/^/signature lines: /'
echo "$LABEL load before: $(cut -d' ' -f1-3 /proc/loadavg)"
ab -q -n $N -c $C http://127.0.0.1:$PORT/v1/log/checkpoint 2>&1 | grep -E "Requests per second|Time per request.*mean\)|Failed requests|Non-2xx|  99%|  50%"
echo "$LABEL load after: $(cut -d' ' -f1-3 /proc/loadavg)"
kill $NPID $WPID; wait $NPID $WPID 2>/dev/null
rm -rf $D
