#!/usr/bin/env bash
# Unpacks Debian builds under .tools/ without touching the system's dpkg database:
#  - from trixie, skopeo 1.18 (bookworm's 1.9.3 has sigstore disabled) and cosign 2.5 under .tools/root; the
#    trixie libraries skopeo needs are run through trixie's own dynamic loader (see .tools/bin/skopeo);
#  - with --cosign3 (the test stack only), from sid, cosign 3.1 (a Go binary needing only glibc >= 2.34) under
#    .tools/sid-root, run as .tools/bin/cosign3;
#  - with --notation (the test stack only), from sid, notation 1.3.2 and oras 1.3.3 (Go binaries needing only
#    glibc), pinned by version and by the .deb's SHA-256, under .tools/sid-notation, run as .tools/bin/notation
#    and .tools/bin/oras.
# Each .deb is fetched by apt-get from the suite's Packages index, whose Release file is checked against the
# Debian archive keyring, and apt checks each .deb's SHA-256 against that index.
# Called by scripts/install-test-deps.sh and scripts/install-walkthrough-tools.sh. Idempotent: a second run
# only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/.tools"
# The cosign 3 series the interop tests (tests/cosign3.rs) were written against; sid's current build of it is taken.
COSIGN3_SERIES=3.1.

mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}

# debian_unpack SUITE ROOT PACKAGE...: downloads each PACKAGE (NAME or NAME=VERSION) of Debian SUITE with an
# apt state of its own (.tools/apt/SUITE) and unpacks it under ROOT.
debian_unpack() {
  local suite=$1 root=$2
  shift 2
  local state="$TOOLS/apt/$suite"
  rm -rf "$state/debs"
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/debs" "$root" "$TOOLS/bin"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" > "$state/sources.list"
  local apt_opts=(-o Dir::Etc::sourcelist="$state/sources.list" -o Dir::Etc::sourceparts=-
                  -o Dir::State::Lists="$state/lists" -o Dir::Cache="$state/cache"
                  -o Dir::State::status=/dev/null -o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1)
  apt-get "${apt_opts[@]}" update -q
  (cd "$state/debs" && chmod 777 . && apt-get "${apt_opts[@]}" download "$@")
  for deb in "$state/debs"/*.deb; do dpkg-deb -x "$deb" "$root"; done
}

if ! { [ -x "$TOOLS/bin/skopeo" ] && [ -x "$TOOLS/bin/cosign" ] \
       && "$TOOLS/bin/skopeo" --version >/dev/null 2>&1 && "$TOOLS/bin/cosign" version >/dev/null 2>&1; }; then
  TRIXIE_PACKAGES=(skopeo cosign libc6 libgpgme11t64 libassuan9 libgpg-error0 libsqlite3-0 libdevmapper1.02.1 libselinux1 libpcre2-8-0 libudev1 libcap2 libsubid5 libaudit1 libcap-ng0 libbsd0 libmd0 libsemanage2 libbz2-1.0)
  debian_unpack trixie "$TOOLS/root" "${TRIXIE_PACKAGES[@]}"
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
fi

flags=" $* "
install_notation_oras() {
  # NAME VERSION SHA256 of each sid .deb (tests/notation.rs and tests/support/notation.rs were written against them).
  local pins=("notation 1.3.2-2 f99975ecb56869b85290b30322167d1392e7f7d4eebb40a8bec4386bb95a6789"
              "oras 1.3.3-1 474f8451e880a64d7daed412baa52febd1c7d988ed778eadac00bdcbdad53af4")
  local root pin name version sha
  root="$(readlink -f "$TOOLS")/sid-notation"
  # Captured first: `grep -q` closing the pipe early would fail the pipeline under pipefail.
  local installed
  installed="$("$TOOLS/bin/notation" version 2>/dev/null; "$TOOLS/bin/oras" version 2>/dev/null)" || true
  if [[ "$installed" =~ Version:\ +v1\.3\.2 ]] && [[ "$installed" =~ Version:\ +1\.3\.3 ]]; then
    return 0
  fi
  rm -rf "$root"
  debian_unpack sid "$root" "notation=1.3.2-2" "oras=1.3.3-1"
  for pin in "${pins[@]}"; do
    read -r name version sha <<<"$pin"
    echo "$sha  $TOOLS/apt/sid/debs/${name}_${version}_amd64.deb" | sha256sum --check --quiet
    printf '#!/bin/sh\nexec "%s/usr/bin/%s" "$@"\n' "$root" "$name" > "$TOOLS/bin/$name"
    chmod +x "$TOOLS/bin/$name"
  done
  "$TOOLS/bin/notation" version
  "$TOOLS/bin/oras" version
}
[[ "$flags" == *" --notation "* ]] && install_notation_oras
[[ "$flags" == *" --cosign3 "* ]] || exit 0
# Debian's build says "GitVersion: devel": the package's version is kept beside it instead.
cosign3_version() { cat "$TOOLS/sid-root/cosign.version" 2>/dev/null; }
if ! { [ -x "$TOOLS/bin/cosign3" ] && [[ "$(cosign3_version)" == "$COSIGN3_SERIES"* ]] \
       && "$TOOLS/bin/cosign3" version >/dev/null 2>&1; }; then
  rm -rf "$TOOLS/sid-root"
  debian_unpack sid "$TOOLS/sid-root" cosign
  dpkg-deb -f "$TOOLS"/apt/sid/debs/cosign_*.deb Version > "$TOOLS/sid-root/cosign.version"
  cat > "$TOOLS/bin/cosign3" <<SH
#!/bin/sh
exec "$TOOLS/sid-root/usr/bin/cosign" "\$@"
SH
  chmod +x "$TOOLS/bin/cosign3"
  echo "cosign $(cosign3_version) from sid"
  if [[ "$(cosign3_version)" != "$COSIGN3_SERIES"* ]]; then
    echo "Debian sid's cosign is no longer $COSIGN3_SERIES*: re-check tests/cosign3.rs against it" >&2
    exit 1
  fi
fi
