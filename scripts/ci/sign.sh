#!/usr/bin/env bash
# CI step: sign NOTARIUM_IMAGE (a digest reference) with NOTARIUM_KEY through NOTARIUM_SERVER, authenticated
# with the job's ID token (see common.sh), and output `log-index` (the register index of the sign entry;
# empty when this key had already signed the digest) and `signature-tag`.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require NOTARIUM_SERVER NOTARIUM_IMAGE NOTARIUM_KEY
require_digest "$NOTARIUM_IMAGE"
answer=$(notarium_json sign "$NOTARIUM_IMAGE" --key "$NOTARIUM_KEY")
echo "signed $NOTARIUM_IMAGE with $(jq -r '"\(.key)@\(.key_version)"' <<<"$answer")"
output log-index "$(jq -r '.log.index // empty' <<<"$answer")"
output signature-tag "$(jq -r '.signature.tag' <<<"$answer")"
