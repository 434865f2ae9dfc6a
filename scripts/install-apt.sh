#!/usr/bin/env bash
# Installs the Debian packages named as arguments that are not installed yet (apt-get update first), with no
# packaged service started meanwhile: Debian's policy-rc.d convention keeps the system PostgreSQL cluster and
# the packaged registry on :5000 down during the install. An existing policy is left as it is.
# Shared by scripts/install-test-deps.sh and scripts/install-walkthrough-tools.sh.
set -euo pipefail
need_apt=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need_apt+=("$p")
done
[ ${#need_apt[@]} -gt 0 ] || exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! [ -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need_apt[@]}"
