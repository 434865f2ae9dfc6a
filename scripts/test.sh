#!/usr/bin/env bash
# The whole test suite: installs the real components first (apt + Debian 13 skopeo/cosign under .tools/),
# then runs every unit, integration and doc test against them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo test --all-targets "$@"
