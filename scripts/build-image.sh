#!/usr/bin/env bash
# Builds notarium's container image as an OCI image layout in OUT_DIR, without a container engine:
#   scripts/build-image.sh OUT_DIR [--binary PATH] [--profile NAME]
# Without --binary it runs `cargo build --release --locked` and packs target/release/notarium.
#
# One layer: the binary (/usr/local/bin/notarium), exactly the shared libraries `ldd` lists for it plus the
# dynamic loader, Debian's CA bundle, /etc/passwd and /etc/group with the user `notarium` (uid/gid 65532),
# and the data folder /var/lib/notarium (owned by that user, 0700). Nothing else: no shell, no package manager.
# The configuration runs `notarium serve` as uid 65532 in /var/lib/notarium, with NOTARIUM_CONFIG
# /etc/notarium/notarium.toml (mounted by the operator) and NOTARIUM_DATA_DIR /var/lib/notarium (a volume).
#
# Reproducible: the same commit and binary give the same bytes, hence the same digest. Every time is
# SOURCE_DATE_EPOCH (the commit's time unless set), tar entries are sorted with fixed owners and modes,
# gzip writes no name or time, and the config has no history.
#
# Besides the layout, OUT_DIR/provenance.json is an SLSA provenance v1 predicate describing this build (for
# `notarium attest --type https://slsa.dev/provenance/v1`; scripts/release-image.sh pushes, signs and
# attests). Tools: bash, coreutils, GNU tar, gzip, ldd, git, and dpkg-query when present (package versions).
set -euo pipefail
export LC_ALL=C TZ=UTC

usage() { echo "usage: $0 OUT_DIR [--binary PATH] [--profile NAME]" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUT=$1; shift
BINARY=""; PROFILE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) [ $# -ge 2 ] || usage; BINARY=$2; shift 2 ;;
    --profile) [ $# -ge 2 ] || usage; PROFILE=$2; shift 2 ;;
    *) usage ;;
  esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then
  echo "build-image: $OUT exists and is not empty" >&2; exit 2
fi

COMMIT=$(git -C "$REPO" rev-parse HEAD)
if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]; then
  echo "build-image: warning: the work tree has changes not in $COMMIT; the provenance names $COMMIT" >&2
fi
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct "$COMMIT")}
[[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]] || { echo "build-image: SOURCE_DATE_EPOCH must be seconds since 1970" >&2; exit 2; }
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
VERSION=$(sed -n 's/^version = "\([0-9A-Za-z.+-]*\)"$/\1/p' "$REPO/Cargo.toml" | head -1)
[ -n "$VERSION" ] || { echo "build-image: no version in Cargo.toml" >&2; exit 2; }

if [ -z "$BINARY" ]; then
  # The path cargo reports, wherever CARGO_TARGET_DIR or a cargo config puts the target folder.
  BINARY=$(cd "$REPO" && cargo build --release --locked --bin notarium --message-format=json-render-diagnostics |
    sed -n 's/.*"executable":"\([^"]*\/notarium\)".*/\1/p' | tail -1)
  PROFILE=${PROFILE:-release}
fi
[ -x "$BINARY" ] || { echo "build-image: $BINARY is not an executable" >&2; exit 2; }
# A binary given with --binary names its profile by its folder (target/debug, target/release).
if [ -z "$PROFILE" ]; then
  case "$(basename "$(dirname "$BINARY")")" in
    debug | release) PROFILE=$(basename "$(dirname "$BINARY")") ;;
    *) PROFILE=unknown ;;
  esac
fi

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
ROOTFS=$STAGE/rootfs
mkdir -p "$ROOTFS"

# put SOURCE DEST MODE: a regular file (symlinks followed) at DEST in the root file system.
put() {
  mkdir -p "$ROOTFS/$(dirname "$2")"
  cp -L "$1" "$ROOTFS/$2"
  chmod "$3" "$ROOTFS/$2"
}

put "$BINARY" usr/local/bin/notarium 0755
# Exactly what the dynamic linker resolves for this binary (each `=> /path`, and the loader itself).
mapfile -t LIBRARIES < <(ldd "$BINARY" | awk '/not found/ { print "MISSING " $1; next }
  { for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }')
for lib in "${LIBRARIES[@]}"; do
  case "$lib" in MISSING*) echo "build-image: ldd: ${lib#MISSING } not found" >&2; exit 1 ;; esac
  put "$lib" "${lib#/}" 0755
done
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
[ -f "$CA_BUNDLE" ] || { echo "build-image: $CA_BUNDLE is missing: apt-get install ca-certificates" >&2; exit 2; }
put "$CA_BUNDLE" "${CA_BUNDLE#/}" 0644
printf 'root:x:0:0:root:/root:/sbin/nologin\nnotarium:x:65532:65532:notarium:/var/lib/notarium:/sbin/nologin\n' \
  > "$STAGE/passwd"
printf 'root:x:0:\nnotarium:x:65532:\n' > "$STAGE/group"
put "$STAGE/passwd" etc/passwd 0644
put "$STAGE/group" etc/group 0644
mkdir -p "$ROOTFS/var/lib/notarium"
find "$ROOTFS" -type d -exec chmod 0755 {} +
chmod 0700 "$ROOTFS/var/lib/notarium"

# The layer: every entry root-owned, sorted, at SOURCE_DATE_EPOCH; then the data folder, owned by 65532.
TAR_OPTIONS=(--format=ustar --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" --no-recursion -C "$ROOTFS")
(cd "$ROOTFS" && find . -mindepth 1 ! -path ./var/lib/notarium | sed 's|^\./||' | sort) > "$STAGE/entries"
tar -cf "$STAGE/layer.tar" "${TAR_OPTIONS[@]}" --owner=0 --group=0 -T "$STAGE/entries"
tar -rf "$STAGE/layer.tar" "${TAR_OPTIONS[@]}" --owner=65532 --group=65532 var/lib/notarium
gzip -n -c "$STAGE/layer.tar" > "$STAGE/layer.tar.gz"

mkdir -p "$OUT/blobs/sha256"
sha() { sha256sum "$1" | cut -d' ' -f1; }
# blob FILE: stores FILE under its digest; prints "sha256:HEX SIZE".
blob() {
  local hex; hex=$(sha "$1")
  cp "$1" "$OUT/blobs/sha256/$hex"
  echo "sha256:$hex $(stat -c %s "$1")"
}

DIFF_ID="sha256:$(sha "$STAGE/layer.tar")"
read -r LAYER LAYER_SIZE < <(blob "$STAGE/layer.tar.gz")
printf '%s' "{\"created\":\"$CREATED\",\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"65532:65532\",\
\"ExposedPorts\":{\"8080/tcp\":{}},\"Env\":[\"PATH=/usr/local/bin\",\"NOTARIUM_CONFIG=/etc/notarium/notarium.toml\",\
\"NOTARIUM_DATA_DIR=/var/lib/notarium\",\"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt\"],\
\"Entrypoint\":[\"/usr/local/bin/notarium\"],\"Cmd\":[\"serve\"],\"Volumes\":{\"/var/lib/notarium\":{}},\
\"WorkingDir\":\"/var/lib/notarium\",\"Labels\":{\"org.opencontainers.image.revision\":\"$COMMIT\",\
\"org.opencontainers.image.version\":\"$VERSION\",\"org.opencontainers.image.title\":\"notarium\"}},\
\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"$DIFF_ID\"]}}" > "$STAGE/config.json"
read -r CONFIG CONFIG_SIZE < <(blob "$STAGE/config.json")
printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$CONFIG\",\"size\":$CONFIG_SIZE},\
\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$LAYER\",\"size\":$LAYER_SIZE}],\
\"annotations\":{\"org.opencontainers.image.created\":\"$CREATED\",\"org.opencontainers.image.revision\":\"$COMMIT\",\
\"org.opencontainers.image.version\":\"$VERSION\"}}" > "$STAGE/manifest.json"
read -r MANIFEST MANIFEST_SIZE < <(blob "$STAGE/manifest.json")
printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{\
\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$MANIFEST\",\"size\":$MANIFEST_SIZE,\
\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},\"annotations\":{\"org.opencontainers.image.ref.name\":\"$VERSION\"}}]}" \
  > "$OUT/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$OUT/oci-layout"

# The SLSA provenance v1 predicate of this build. Every value derives from the commit, the binary and the
# base files, so it is reproducible too (startedOn = finishedOn = SOURCE_DATE_EPOCH).
package_of() {
  local file=$1
  [ "$file" = "$CA_BUNDLE" ] && file=/usr/sbin/update-ca-certificates   # the bundle is generated by that package
  command -v dpkg-query > /dev/null || return 0
  local package; package=$(dpkg-query -S "$file" 2> /dev/null | head -1 | sed "s/: .*//") || return 0
  [ -n "$package" ] || return 0
  dpkg-query -W -f='${Package}:${Architecture} ${Version}' "$package" 2> /dev/null || true
}
dependency() {  # URI SHA256 [DEBIAN_PACKAGE]
  local annotations=""
  [ -n "${3:-}" ] && annotations=",\"annotations\":{\"debianPackage\":\"$3\"}"
  printf '{"uri":"%s","digest":{"sha256":"%s"}%s}' "$1" "$2" "$annotations"
}
# json_string TEXT: TEXT with JSON's two special characters escaped (no control characters expected).
json_string() { printf '%s' "$1" | sed 's/[\\"]/\\&/g'; }
# The repository's address without any user or token a remote URL may carry (https://user:token@host/...).
SOURCE_URI=$(git -C "$REPO" config --get remote.origin.url || echo "file://$REPO")
SOURCE_URI=$(json_string "$(printf '%s' "$SOURCE_URI" | sed -E 's#^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@#\1#')")
DEPENDENCIES="{\"uri\":\"git+$SOURCE_URI@$COMMIT\",\"digest\":{\"gitCommit\":\"$COMMIT\"}}"
DEPENDENCIES+=",$(dependency "file:Cargo.lock" "$(sha "$REPO/Cargo.lock")")"
DEPENDENCIES+=",$(dependency "file:usr/local/bin/notarium" "$(sha "$BINARY")")"
for file in "${LIBRARIES[@]}" "$CA_BUNDLE"; do
  DEPENDENCIES+=",$(dependency "file:${file#/}" "$(sha "$file")" "$(package_of "$file")")"
done
for file in passwd group; do
  DEPENDENCIES+=",$(dependency "file:etc/$file" "$(sha "$STAGE/$file")")"
done
printf '%s\n' "{\"buildDefinition\":{\"buildType\":\"https://notarium.dev/buildtypes/build-image/v1\",\
\"externalParameters\":{\"source\":{\"commit\":\"$COMMIT\"},\"script\":\"scripts/build-image.sh\",\
\"binaryProfile\":\"$PROFILE\",\"sourceDateEpoch\":$SOURCE_DATE_EPOCH},\
\"resolvedDependencies\":[$DEPENDENCIES]},\
\"runDetails\":{\"builder\":{\"id\":\"$(json_string "${BUILDER_ID:-https://notarium.dev/builders/build-image.sh}")\"},\
\"metadata\":{\"startedOn\":\"$CREATED\",\"finishedOn\":\"$CREATED\"}}}" > "$OUT/provenance.json"

echo "$MANIFEST"
