# Shared by the CI steps in this folder (sourced, not run): the notarium binary, required inputs, and step
# outputs. The steps are the same for the GitHub Action (action.yml), the GitLab template
# (templates/notarium.yml) and any other CI; tests run them as the runner does.
#
# NOTARIUM_BIN          the notarium binary (default: `notarium` on PATH, where install.sh puts it)
# GITHUB_OUTPUT         GitHub's step output file: `name=value` lines are appended to it when set
# NOTARIUM_DOTENV       a dotenv file (GitLab `artifacts: reports: dotenv:`): `NOTARIUM_NAME=value` lines

NOTARIUM_BIN=${NOTARIUM_BIN:-notarium}

fail() {
  echo "notarium step: $*" >&2
  exit 2
}

# Fails naming every variable of "$@" that is unset or empty.
require() {
  local missing=()
  for name in "$@"; do
    [ -n "${!name:-}" ] || missing+=("$name")
  done
  [ ${#missing[@]} -eq 0 ] || fail "missing input: ${missing[*]}"
}

# An image reference must name a digest: sign exactly what was pushed, never what a tag points at now.
require_digest() {
  case "$1" in
    *@sha256:*) ;;
    *) fail "NOTARIUM_IMAGE must be a digest reference (host/repo@sha256:…), the digest your push step printed" ;;
  esac
}

# notarium COMMAND ARGS against NOTARIUM_SERVER with the job's ID token (NOTARIUM_ID_TOKEN_SOURCE: github by
# default, gitlab, env:VAR or file:PATH; empty: NOTARIUM_TOKEN instead) for NOTARIUM_AUDIENCE, as JSON.
notarium_json() {
  local source=${NOTARIUM_ID_TOKEN_SOURCE-github}
  local identity=()
  [ -z "$source" ] || identity=(--id-token "$source" --audience "${NOTARIUM_AUDIENCE:-notarium}")
  "$NOTARIUM_BIN" "$@" --server "$NOTARIUM_SERVER" "${identity[@]}" --output json
}

# Records step output NAME=VALUE (GitHub) and NOTARIUM_NAME=VALUE (dotenv, NAME upper-cased, - as _).
output() {
  local name=$1 value=$2
  echo "$name=$value"
  [ -z "${GITHUB_OUTPUT:-}" ] || echo "$name=$value" >>"$GITHUB_OUTPUT"
  if [ -n "${NOTARIUM_DOTENV:-}" ]; then
    local upper=${name^^}
    echo "NOTARIUM_${upper//-/_}=$value" >>"$NOTARIUM_DOTENV"
  fi
}
