#!/usr/bin/env bash
# The whole test suite: installs the real components first (apt + Debian 13 skopeo/cosign under .tools/),
# then runs every unit and integration test against them, and ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "notarium: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
