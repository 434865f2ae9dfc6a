#!/usr/bin/env bash
# CI step: install the released notarium binary NOTARIUM_VERSION (e.g. 0.2.0) for this machine, checked
# against its published SHA-256, into $RUNNER_TEMP/notarium-VERSION (or a new temporary folder), and put that folder on
# the PATH of the following GitHub steps (GITHUB_PATH), or print `export PATH=…` for other CIs
# (`eval "$(bash install.sh)"`).
#
# The download URL pattern lives here and only here. A release publishes, for each target
# (x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu), `notarium-VERSION-TARGET.tar.gz` holding the
# `notarium` binary, and next to it `notarium-VERSION-TARGET.tar.gz.sha256` (`sha256sum` output).
#   NOTARIUM_RELEASE_REPOSITORY  owner/name whose GitHub releases hold them (default: the Action's own
#                                repository, GITHUB_ACTION_REPOSITORY or where GITHUB_ACTION_PATH is)
#   NOTARIUM_DOWNLOAD_URL        another pattern instead (a mirror, a GitLab package registry): `{version}`
#                                and `{target}` are replaced; https:// or file:// only
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require NOTARIUM_VERSION
version=${NOTARIUM_VERSION#v}
target="$(uname -m)-unknown-linux-gnu"
repository=${NOTARIUM_RELEASE_REPOSITORY:-${GITHUB_ACTION_REPOSITORY:-}}
# Inside composite actions the two may be empty; the runner checks actions out to _actions/OWNER/NAME/REF.
if [ -z "$repository" ] && [[ "${GITHUB_ACTION_PATH:-}" =~ /_actions/([^/]+)/([^/]+)/[^/]+$ ]]; then
  repository="${BASH_REMATCH[1]}/${BASH_REMATCH[2]}"
fi
if [ -z "${NOTARIUM_DOWNLOAD_URL:-}" ]; then
  [ -n "$repository" ] || fail "set NOTARIUM_RELEASE_REPOSITORY (owner/name) or NOTARIUM_DOWNLOAD_URL"
fi
release_pattern="https://github.com/$repository/releases/download/v{version}/notarium-{version}-{target}.tar.gz"
pattern=${NOTARIUM_DOWNLOAD_URL:-$release_pattern}
url=${pattern//\{version\}/$version}
url=${url//\{target\}/$target}

# RUNNER_TEMP is the job's own (GitHub); elsewhere /tmp may be shared by concurrent jobs.
if [ -n "${RUNNER_TEMP:-}" ]; then dir="$RUNNER_TEMP/notarium-$version"; else dir=$(mktemp -d); fi
mkdir -p "$dir"
fetch() { curl --fail --silent --show-error --location --proto '=https,file' --max-time 300 -o "$2" "$1"; }
fetch "$url" "$dir/notarium.tar.gz"
fetch "$url.sha256" "$dir/notarium.tar.gz.sha256"
expected=$(head -c 64 "$dir/notarium.tar.gz.sha256")
echo "$expected  $dir/notarium.tar.gz" | sha256sum --check --status ||
  fail "the download from $url does not match its published SHA-256"
tar -xzf "$dir/notarium.tar.gz" -C "$dir" --no-same-owner notarium
rm -f "$dir/notarium.tar.gz" "$dir/notarium.tar.gz.sha256"
"$dir/notarium" --version >&2
if [ -n "${GITHUB_PATH:-}" ]; then
  echo "$dir" >>"$GITHUB_PATH"
else
  echo "export PATH=\"$dir:\$PATH\""
fi
