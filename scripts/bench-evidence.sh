#!/usr/bin/env bash
# Offline verification figures for docs/PERFORMANCE.md: `notarium log verify` of a 1M-entry export and
# `notarium evidence verify` of a 1M-entry pack (one sign entry in ten, each signature checked again),
# built in memory by examples/verify_load (no server), timed with hyperfine; then on one thread for comparison.
#   bash scripts/bench-evidence.sh            # ENTRIES=1000000 by default; needs ~4 GB in $TMPDIR
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
command -v hyperfine >/dev/null || bash scripts/install-apt.sh hyperfine
cargo build --release --quiet --example verify_load
"$TARGET/release/examples/verify_load" --entries "${ENTRIES:-1000000}" --out "$work"
cd "$work"
hyperfine --runs 3 \
  -n 'log verify' "$NOTARIUM log verify export.jsonl --log-key log.pub" \
  -n 'evidence verify' "$NOTARIUM evidence verify pack --log-key log.pub" \
  -n 'log verify, one thread' "RAYON_NUM_THREADS=1 $NOTARIUM log verify export.jsonl --log-key log.pub"
