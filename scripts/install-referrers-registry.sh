#!/usr/bin/env bash
# Builds tests/support/referrers-registry/main.go (a registry with the OCI referrers API:
# go-containerregistry's pkg/registry) into .tools/bin/referrers-registry, offline in GOPATH mode, from Debian
# packages unpacked under .tools/go-root with the private apt state of scripts/debian-unpack.sh: trixie's
# Go 1.24 toolchain and sid's go-containerregistry sources with the Go libraries they import.
# Called by scripts/install-test-deps.sh. Idempotent: skipped when built from the same source.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/.tools"
SOURCE=tests/support/referrers-registry/main.go
GO_PACKAGES=(golang-1.24-go golang-1.24-src)
GGCR_PACKAGES=(golang-github-google-go-containerregistry-dev)

stamp="$TOOLS/go-root/referrers-registry.source"
wanted=$(cat "$0" "$SOURCE" | sha256sum | cut -d' ' -f1)
if [ -x "$TOOLS/bin/referrers-registry" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  exit 0
fi

# shellcheck source=scripts/debian-unpack.sh
source scripts/debian-unpack.sh
rm -rf "$TOOLS/go-root"
debian_unpack trixie "$TOOLS/go-root" "${GO_PACKAGES[@]}"
debian_unpack sid "$TOOLS/go-root" "${GGCR_PACKAGES[@]}"

gopath=$(mktemp -d)
trap 'chmod -R u+w "$gopath"; rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src/referrers-registry"
cp "$SOURCE" "$gopath/src/referrers-registry/"
(cd "$gopath/src/referrers-registry" \
  && GO111MODULE=off GOPROXY=off GOFLAGS='' GOTOOLCHAIN=local CGO_ENABLED=0 \
     GOROOT="$TOOLS/go-root/usr/lib/go-1.24" GOPATH="$gopath:$TOOLS/go-root/usr/share/gocode" \
     GOCACHE="$gopath/cache" \
     "$TOOLS/go-root/usr/lib/go-1.24/bin/go" build -trimpath -o "$TOOLS/bin/referrers-registry" .)
echo "$wanted" > "$stamp"
echo "referrers-registry built from $SOURCE"
