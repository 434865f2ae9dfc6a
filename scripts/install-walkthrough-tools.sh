#!/usr/bin/env bash
# Installs only what the README's five-minute walkthrough uses, on Debian 12: the CNCF distribution registry
# (docker-registry), umoci and curl from apt, then skopeo 1.18 and cosign 2.5 from trixie under .tools/bin
# (scripts/install-skopeo-cosign.sh). The whole test stack is scripts/install-test-deps.sh.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
APT_PACKAGES=(docker-registry umoci curl ca-certificates)

need_apt=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # Debian's policy-rc.d convention: the packaged registry service (on :5000, the walkthrough's port) does
  # not start during this install. An existing policy is left as it is.
  if ! [ -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

bash scripts/install-skopeo-cosign.sh
