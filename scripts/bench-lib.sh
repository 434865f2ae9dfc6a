# Shared start of the benchmark scripts (sourced, not run): tools on PATH, release builds, a work
# directory and background processes cleaned up on exit, and a free-port helper.
bash scripts/install-test-deps.sh >/dev/null
export PATH="$PWD/.tools/bin:$PATH"
cargo build --release --quiet --bin notarium --example sign_load --example backend_rate --example register_load
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
NOTARIUM=${NOTARIUM:-$TARGET/release/notarium}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work" "${REGISTRY_ROOT:-$work}/registry-$$"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts a CNCF distribution registry on a free port (storage under REGISTRY_ROOT if set); sets REG.
# `start_registry access-log` also logs every request to $work/registry.log, to count round trips.
start_registry() {
  REG=127.0.0.1:$(free_port)
  local log="{level: error}"
  [ "${1:-}" = access-log ] && log="{level: info, accesslog: {disabled: false}}"
  cat > "$work/registry.yml" <<YML
version: 0.1
log: $log
storage: {filesystem: {rootdirectory: ${REGISTRY_ROOT:-$work}/registry-$$}, delete: {enabled: true}}
http: {addr: $REG}
YML
  docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 & pids+=($!)
}

# Starts `notarium serve` on a free port, reaching REG over plain HTTP, with the NOTARIUM_* variables the caller
# puts in front of the call (e.g. NOTARIUM_CONFIG); sets SERVER and returns once it and the registry answer.
start_notarium() {
  local port; port=$(free_port); SERVER=http://127.0.0.1:$port
  NOTARIUM_LISTEN=127.0.0.1:$port NOTARIUM_DATA_DIR=$work/data NOTARIUM_INSECURE_REGISTRIES=$REG NOTARIUM_LOG=warn \
    "$NOTARIUM" serve > "$work/notarium.log" 2>&1 & pids+=($!)
  until curl -sf "$SERVER/healthz" >/dev/null && curl -sf "http://$REG/v2/" >/dev/null; do sleep 0.2; done
}

# With `start_registry access-log`: how many requests the registry has logged so far, and the last N of them
# (method and path), to count the round trips of an operation.
registry_requests() { grep -c '"\(GET\|HEAD\|PUT\|POST\|PATCH\) ' "$work/registry.log" || true; }
last_registry_requests() {
  grep '"\(GET\|HEAD\|PUT\|POST\|PATCH\) ' "$work/registry.log" | tail -n "$1" | sed 's/.*"\(\(GET\|HEAD\|PUT\|POST\|PATCH\) [^ ]*\).*/  \1/'
}
