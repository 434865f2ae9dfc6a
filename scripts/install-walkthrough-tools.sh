#!/usr/bin/env bash
# Installs only what the README's five-minute walkthrough uses, on Debian 12: the CNCF distribution registry
# (docker-registry), umoci and curl from apt, then skopeo 1.18 and cosign 2.5 from trixie under .tools/bin
# (scripts/install-skopeo-cosign.sh). The whole test stack is scripts/install-test-deps.sh.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
APT_PACKAGES=(docker-registry umoci curl ca-certificates)

bash scripts/install-apt.sh "${APT_PACKAGES[@]}"

bash scripts/install-skopeo-cosign.sh
