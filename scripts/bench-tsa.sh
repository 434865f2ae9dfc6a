#!/usr/bin/env bash
# Measures what a `[tsa]` countersignature adds to a sign (docs/PERFORMANCE.md): examples/sign_load.rs writing
# all three formats (cosign, bundle, notation) with 1 and 8 clients, against `notarium serve` without `[tsa]`
# and with one pointing at a local RFC 3161 TSA: `openssl ts -reply` run once per request behind a small
# Python HTTP server, as tests/support/tsa.rs does (a test TSA CA made here by openssl, P-256, critical
# timeStamping EKU). `dev-ecdsa` signs with the committed test chain.
# Usage: [REGISTRY_ROOT=DIR] scripts/bench-tsa.sh [IMAGES_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-150}
source scripts/bench-lib.sh
LOAD=$TARGET/release/examples/sign_load

# The test TSA: a root and a timestamping certificate under it.
(
  cd "$work"
  ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  openssl req -x509 -new "${ec[@]}" -keyout tsa-root.key -out tsa-root.pem -days 30 -subj "/CN=Bench TSA Root" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req -new "${ec[@]}" -keyout tsa.key -out tsa.csr -subj "/CN=Bench TSA" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n' > tsa.ext
  openssl x509 -req -in tsa.csr -CA tsa-root.pem -CAkey tsa-root.key -set_serial 7 -days 30 -extfile tsa.ext \
    -out tsa.pem 2>/dev/null
  printf '[tsa]\ndefault_tsa=bench\n[bench]\nserial=%s/serial\nsigner_digest=sha256\ndefault_policy=1.2.3.4.1\ndigests=sha256\ness_cert_id_alg=sha256\n' \
    "$work" > ts.cnf
  echo 01 > serial
)
cat > "$work/tsa.py" <<'PY'
import http.server, subprocess, sys, threading
lock = threading.Lock()
class Tsa(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        query = self.rfile.read(int(self.headers["Content-Length"]))
        with lock:
            open("query.tsq", "wb").write(query)
            subprocess.run(["openssl", "ts", "-reply", "-config", "ts.cnf", "-queryfile", "query.tsq",
                            "-signer", "tsa.pem", "-inkey", "tsa.key", "-out", "reply.tsr"],
                           check=True, stderr=subprocess.DEVNULL)
            reply = open("reply.tsr", "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Tsa).serve_forever()
PY
TSA=127.0.0.1:$(free_port)
(cd "$work" && exec python3 tsa.py "${TSA#*:}") & pids+=($!)

config() { # $1: the [tsa] table or nothing
  cat <<TOML
[[keys]]
id = "dev-ecdsa"
backend = "file"
path = "$PWD/keys.example/dev-ecdsa.pem"
certificate_chain = "$PWD/tests/fixtures/certificates/dev-ecdsa.chain.pem"

[[keys]]
id = "dev-log"
backend = "file"
path = "$PWD/keys.example/dev-log.pem"

[registries]
allow = ["$TSA"]

$1
TOML
}
config "" > "$work/plain.toml"
config "$(printf '[tsa]\nurl = "http://%s/tsa"\nroots = ["%s/tsa-root.pem"]\n' "$TSA" "$work")" > "$work/tsa.toml"

start_registry
echo "## Sign in three formats without and with [tsa] ($(nproc) cores, $IMAGES images per run)"
for setup in plain tsa; do
  NOTARIUM_CONFIG=$work/$setup.toml start_notarium
  for c in 1 8; do
    echo "# $setup, $c client(s)"
    "$LOAD" --server "$SERVER" --registry "$REG" --images "$IMAGES" --concurrency "$c" --key dev-ecdsa \
      --formats cosign,bundle,notation --repository "tsa/$setup-$c"
  done
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
done
