#!/usr/bin/env bash
# Pushes the image scripts/build-image.sh made, then has a running notarium sign it and attest its SLSA
# provenance:
#   scripts/release-image.sh OUT_DIR HOST/REPOSITORY[:TAG] --key ID [--server URL] [--insecure-registry]
# The tag defaults to the layout's own (the crate version). The signature and the attestation are about the
# pushed digest, checked to be the layout's, so they name exactly the bytes that were built.
# Tools: skopeo (or $SKOPEO) and notarium (or $NOTARIUM), which sends NOTARIUM_TOKEN to --server (or
# NOTARIUM_SERVER). skopeo reads its registry credentials as usual (`skopeo login`, REGISTRY_AUTH_FILE).
set -euo pipefail

usage() {
  echo "usage: $0 OUT_DIR HOST/REPOSITORY[:TAG] --key ID [--server URL] [--insecure-registry]" >&2
  exit 2
}
[ $# -ge 2 ] || usage
LAYOUT=$1 REFERENCE=$2; shift 2
KEY="" SERVER_ARGS=() TLS_VERIFY=true
while [ $# -gt 0 ]; do
  case "$1" in
    --key) [ $# -ge 2 ] || usage; KEY=$2; shift 2 ;;
    --server) [ $# -ge 2 ] || usage; SERVER_ARGS=(--server "$2"); shift 2 ;;
    --insecure-registry) TLS_VERIFY=false; shift ;;
    *) usage ;;
  esac
done
[ -n "$KEY" ] || usage
SKOPEO=${SKOPEO:-skopeo}
NOTARIUM=${NOTARIUM:-notarium}
for file in index.json oci-layout provenance.json; do
  [ -f "$LAYOUT/$file" ] || { echo "release-image: $LAYOUT/$file is missing: run scripts/build-image.sh" >&2; exit 2; }
done

# The layout names one manifest: its digest and tag.
# (index.json has no final newline: a command substitution reads it whole.)
ENTRY=$(sed -n 's/.*"digest":"\(sha256:[0-9a-f]\{64\}\)".*"org.opencontainers.image.ref.name":"\([^"]*\)".*/\1 \2/p' \
  "$LAYOUT/index.json")
DIGEST=${ENTRY%% *} LAYOUT_TAG=${ENTRY#* }
[ -n "${DIGEST:-}" ] || { echo "release-image: $LAYOUT/index.json names no manifest" >&2; exit 2; }
REPOSITORY=$REFERENCE TAG=$LAYOUT_TAG
case "${REFERENCE##*/}" in *:*) REPOSITORY=${REFERENCE%:*} TAG=${REFERENCE##*:} ;; esac

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# The source is the layout just built here: nothing to verify about it, so the copy accepts it as it is.
printf '{"default":[{"type":"insecureAcceptAnything"}]}' > "$WORK/policy.json"
"$SKOPEO" --policy "$WORK/policy.json" copy --dest-tls-verify="$TLS_VERIFY" --digestfile "$WORK/digest" \
  "oci:$LAYOUT:$LAYOUT_TAG" "docker://$REPOSITORY:$TAG"
PUSHED=$(cat "$WORK/digest")
if [ "$PUSHED" != "$DIGEST" ]; then
  echo "release-image: the registry holds $PUSHED, not the built $DIGEST; nothing signed" >&2
  exit 1
fi

IMAGE="$REPOSITORY@$DIGEST"
"$NOTARIUM" sign "$IMAGE" --key "$KEY" "${SERVER_ARGS[@]}"
"$NOTARIUM" attest "$IMAGE" --key "$KEY" --type https://slsa.dev/provenance/v1 \
  --predicate "$LAYOUT/provenance.json" "${SERVER_ARGS[@]}"
echo "$IMAGE"
