#!/usr/bin/env bash
# Measures batch signing (docs/PERFORMANCE.md, "Batch signing"): 20 images signed as one `POST /v1/sign`
# with `"images"`, next to the same 20 as single calls from 1 and from 8 clients, ROUNDS times each, against a
# release build of `notarium serve` and a local CNCF distribution registry.
# Usage: scripts/bench-batch.sh [IMAGES] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-20}
ROUNDS=${2:-3}
source scripts/bench-lib.sh
LOAD=$TARGET/release/examples/sign_load

start_registry
start_notarium

echo "## $IMAGES images: single calls vs one batch ($(nproc) cores, $ROUNDS rounds)"
for round in $(seq "$ROUNDS"); do
  "$LOAD" --server "$SERVER" --registry "$REG" --images "$IMAGES" --concurrency 1 --repository "single1/r$round"
  "$LOAD" --server "$SERVER" --registry "$REG" --images "$IMAGES" --concurrency 8 --repository "single8/r$round"
  "$LOAD" --server "$SERVER" --registry "$REG" --images "$IMAGES" --batch "$IMAGES" --repository "batch/r$round"
done
