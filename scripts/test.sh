#!/usr/bin/env bash
# The whole test suite: installs the real components first (apt + Debian 13 skopeo/cosign under .tools/),
# then runs every unit and integration test against them on SQLite, runs the tests that touch the database
# (module `db` of the integration binary) again on PostgreSQL (a throwaway cluster for the run), and ends
# with one summary line for both runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test "$@" 2>&1 | tee "$log" || status=$?

started=$(date +%s)
NOTARIUM_TEST_DATABASE=postgres cargo test --test integration db:: "$@" 2>&1 | tee -a "$log" || status=$?
echo "notarium: PostgreSQL pass took $(( $(date +%s) - started ))s"

awk '/^test result:/ { passed += $4; failed += $6 } END { printf "notarium: %d passed, %d failed (SQLite and PostgreSQL runs)\n", passed, failed }' "$log"
exit "$status"
