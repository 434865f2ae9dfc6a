#!/usr/bin/env bash
# Unpacks Debian 13's OpenSSL 3.5 under .tools/trixie-openssl, without touching the system's dpkg database, and
# runs it as .tools/bin/openssl-codesign: Debian 12's OpenSSL 3.0 has no `codesign` purpose for
# `openssl verify -purpose` (it came with OpenSSL 3.2), which tests/key_certificates.rs needs. The system
# `openssl` stays the one every other test uses.
# trixie's libssl3t64 needs glibc >= 2.38 (GLIBC_2.38 symbols) and bookworm has 2.36, so trixie's libc6 is
# unpacked beside it and the binary runs through trixie's own dynamic loader, with that tree's configuration and
# provider modules rather than bookworm's.
# openssl and libssl3t64 are pinned by version and by the .deb's SHA-256 (the tests were written against them);
# the runtime libraries are trixie's current builds. apt checks every .deb against the suite's signed index.
# Called by scripts/install-test-deps.sh. Idempotent: skipped when the pinned version is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/.tools"
OPENSSL_VERSION=3.5.9-1~deb13u1
# NAME SHA256 of each pinned trixie .deb, all at $OPENSSL_VERSION.
PINS=("openssl faf53a993766c81f94f35b6a31202f0dcd936e1529791790a393aa59f41c0993"
      "libssl3t64 ffefb9af363e0e4592251b2533eb06453c8e470f7772e40263c4b2129251a6d5")
RUNTIME_PACKAGES=(libc6 libgcc-s1 zlib1g libzstd1)

wrapper="$TOOLS/bin/openssl-codesign"
if [ "$("$wrapper" version 2>/dev/null)" != "" ] \
   && [ "$(cat "$TOOLS/trixie-openssl/openssl.version" 2>/dev/null)" = "$OPENSSL_VERSION" ]; then
  exit 0
fi

# shellcheck source=scripts/debian-unpack.sh
source scripts/debian-unpack.sh
root="$(readlink -f "$TOOLS")/trixie-openssl"
rm -rf "$root"
debian_unpack trixie "$root" "openssl=$OPENSSL_VERSION" "libssl3t64=$OPENSSL_VERSION" "${RUNTIME_PACKAGES[@]}"
for pin in "${PINS[@]}"; do
  read -r name sha <<<"$pin"
  # apt-get download writes the epoch-less version with ~ kept and : escaped.
  echo "$sha  $TOOLS/apt/trixie/debs/${name}_${OPENSSL_VERSION}_amd64.deb" | sha256sum --check --quiet
done
libs="$root/usr/lib/x86_64-linux-gnu"
cat > "$wrapper" <<SH
#!/bin/sh
# Debian 13's OpenSSL $OPENSSL_VERSION (scripts/install-openssl-codesign.sh), through trixie's own loader.
OPENSSL_CONF="$root/etc/ssl/openssl.cnf" OPENSSL_MODULES="$libs/ossl-modules" \\
  exec "$root/usr/lib64/ld-linux-x86-64.so.2" --library-path "$libs" "$root/usr/bin/openssl" "\$@"
SH
chmod +x "$wrapper"
echo "$OPENSSL_VERSION" > "$root/openssl.version"
"$wrapper" version
