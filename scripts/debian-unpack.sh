# Sourced (not run) by the scripts that unpack Debian builds under .tools/ without touching the system's dpkg
# database: scripts/install-skopeo-cosign.sh and scripts/install-referrers-registry.sh. Expects $TOOLS.
# shellcheck shell=bash

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
