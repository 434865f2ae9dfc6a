#!/usr/bin/env bash
# Unpacks skopeo 1.18 (bookworm's 1.9.3 has sigstore disabled) and cosign 2.5 from Debian trixie under .tools/,
# without touching the system's dpkg database: the trixie libraries skopeo needs are run through trixie's
# own dynamic loader (see .tools/bin/skopeo). Called by scripts/install-test-deps.sh and
# scripts/install-walkthrough-tools.sh. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/.tools"

if [ -x "$TOOLS/bin/skopeo" ] && [ -x "$TOOLS/bin/cosign" ] \
   && "$TOOLS/bin/skopeo" --version >/dev/null 2>&1 && "$TOOLS/bin/cosign" version >/dev/null 2>&1; then
  exit 0
fi

mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
state="$TOOLS/apt"
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/debs" "$TOOLS/root" "$TOOLS/bin"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$state/sources.list"
APT_OPTS=(-o Dir::Etc::sourcelist="$state/sources.list" -o Dir::Etc::sourceparts=- \
          -o Dir::State::Lists="$state/lists" -o Dir::Cache="$state/cache" \
          -o Dir::State::status=/dev/null -o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1)
apt-get "${APT_OPTS[@]}" update -q
TRIXIE_PACKAGES=(skopeo cosign libc6 libgpgme11t64 libassuan9 libgpg-error0 libsqlite3-0 libdevmapper1.02.1 libselinux1 libpcre2-8-0 libudev1 libcap2 libsubid5 libaudit1 libcap-ng0 libbsd0 libmd0 libsemanage2 libbz2-1.0)
(cd "$state/debs" && chmod 777 . && apt-get "${APT_OPTS[@]}" download "${TRIXIE_PACKAGES[@]}")
for deb in "$state/debs"/*.deb; do dpkg-deb -x "$deb" "$TOOLS/root"; done

libs="$TOOLS/root/usr/lib/x86_64-linux-gnu"
cat > "$TOOLS/bin/skopeo" <<SH
#!/bin/sh
exec "$TOOLS/root/usr/lib64/ld-linux-x86-64.so.2" --library-path "$libs" "$TOOLS/root/usr/bin/skopeo" "\$@"
SH
cat > "$TOOLS/bin/cosign" <<SH
#!/bin/sh
exec "$TOOLS/root/usr/bin/cosign" "\$@"
SH
chmod +x "$TOOLS/bin/skopeo" "$TOOLS/bin/cosign"
"$TOOLS/bin/skopeo" --version
"$TOOLS/bin/cosign" version 2>&1 | grep -i gitversion
