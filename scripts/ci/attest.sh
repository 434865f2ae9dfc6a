#!/usr/bin/env bash
# CI step: attest NOTARIUM_IMAGE (a digest reference) with the predicate in the JSON file NOTARIUM_PREDICATE
# of type NOTARIUM_PREDICATE_TYPE (default SLSA provenance v1), or with NOTARIUM_PREDICATE=slsa the SLSA
# provenance v1 of this CI run (provenance.sh writes it to $RUNNER_TEMP), with NOTARIUM_KEY through NOTARIUM_SERVER,
# authenticated with the job's ID token (see common.sh), and output `attest-log-index` (the register index of
# the attest entry; empty when the same attestation was already there) and `attestation-tag`.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require NOTARIUM_SERVER NOTARIUM_IMAGE NOTARIUM_KEY NOTARIUM_PREDICATE
require_digest "$NOTARIUM_IMAGE"
predicate=$NOTARIUM_PREDICATE
predicate_type=${NOTARIUM_PREDICATE_TYPE:-https://slsa.dev/provenance/v1}
if [ "$predicate" = slsa ]; then
  # RUNNER_TEMP is the job's own (GitHub); elsewhere /tmp may be shared by concurrent jobs.
  if [ -n "${RUNNER_TEMP:-}" ]; then predicate="$RUNNER_TEMP/notarium-provenance.json"; else predicate="$(mktemp -d)/provenance.json"; fi
  bash "$(dirname "${BASH_SOURCE[0]}")/provenance.sh" "$predicate"
  predicate_type=https://slsa.dev/provenance/v1
fi
[ -f "$predicate" ] || fail "NOTARIUM_PREDICATE: no file $predicate"
answer=$(notarium_json attest "$NOTARIUM_IMAGE" --key "$NOTARIUM_KEY" --type "$predicate_type" --predicate "$predicate")
echo "attested $NOTARIUM_IMAGE ($(jq -r .predicate_type <<<"$answer"))"
output attest-log-index "$(jq -r '.log.index // empty' <<<"$answer")"
output attestation-tag "$(jq -r '.attestation.tag' <<<"$answer")"
