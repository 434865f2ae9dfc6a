#!/usr/bin/env bash
# CI step (deploy): check NOTARIUM_IMAGE (a digest reference) against the trust policy file NOTARIUM_POLICY,
# reading the registry directly (no server, no token); NOTARIUM_CONFIG names a notarium.toml when the
# policy's authorities are `key:` ids rather than `public_key:` PEMs. The registry credentials are those of
# Docker's or containers' auth files (e.g. after `docker login`), or NOTARIUM_REGISTRY_USERNAME and
# NOTARIUM_REGISTRY_PASSWORD for the image's registry. Outputs `verified=true`, or fails (exit 1) with
# notarium's reasons.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require NOTARIUM_IMAGE NOTARIUM_POLICY
require_digest "$NOTARIUM_IMAGE"
if [ -n "${NOTARIUM_REGISTRY_USERNAME:-}" ]; then
  require NOTARIUM_REGISTRY_PASSWORD
  "$NOTARIUM_BIN" verify "$NOTARIUM_IMAGE" --policy "$NOTARIUM_POLICY" \
    --registry-username "$NOTARIUM_REGISTRY_USERNAME" --registry-password-stdin <<<"$NOTARIUM_REGISTRY_PASSWORD"
else
  "$NOTARIUM_BIN" verify "$NOTARIUM_IMAGE" --policy "$NOTARIUM_POLICY"
fi
output verified true
