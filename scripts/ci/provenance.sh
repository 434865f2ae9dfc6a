#!/usr/bin/env bash
# CI step: write an SLSA provenance v1 predicate (https://slsa.dev/provenance/v1) describing this CI run to
# the file $1, from the variables GitHub Actions or GitLab CI set (GITHUB_* or CI_*), for `notarium attest
# --type https://slsa.dev/provenance/v1 --predicate FILE`. It records what the runner says: the workflow or
# job, the repository and commit, the run; a builder that signs its own provenance is a stronger claim.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
out=${1:?usage: provenance.sh OUTPUT_FILE}

if [ -n "${GITHUB_ACTIONS:-}" ]; then
  require GITHUB_SERVER_URL GITHUB_REPOSITORY GITHUB_SHA GITHUB_REF GITHUB_WORKFLOW_REF GITHUB_RUN_ID
  repository_url="$GITHUB_SERVER_URL/$GITHUB_REPOSITORY"
  workflow_path=${GITHUB_WORKFLOW_REF#"$GITHUB_REPOSITORY"/}
  jq -n \
    --arg repository "$repository_url" --arg ref "$GITHUB_REF" --arg sha "$GITHUB_SHA" \
    --arg path "${workflow_path%%@*}" --arg event "${GITHUB_EVENT_NAME:-}" \
    --arg builder "$GITHUB_SERVER_URL/actions/runner/${RUNNER_ENVIRONMENT:-github-hosted}" \
    --arg run "$repository_url/actions/runs/$GITHUB_RUN_ID/attempts/${GITHUB_RUN_ATTEMPT:-1}" \
    '{buildDefinition: {
        buildType: "https://actions.github.io/buildtypes/workflow/v1",
        externalParameters: {workflow: {ref: $ref, repository: $repository, path: $path}},
        internalParameters: {github: {event_name: $event}},
        resolvedDependencies: [{uri: "git+\($repository)@\($ref)", digest: {gitCommit: $sha}}]},
      runDetails: {builder: {id: $builder}, metadata: {invocationId: $run}}}' >"$out"
elif [ -n "${GITLAB_CI:-}" ]; then
  require CI_PROJECT_URL CI_COMMIT_SHA CI_COMMIT_REF_NAME CI_JOB_NAME CI_JOB_URL CI_SERVER_URL
  jq -n \
    --arg project "$CI_PROJECT_URL" --arg ref "$CI_COMMIT_REF_NAME" --arg sha "$CI_COMMIT_SHA" \
    --arg job "$CI_JOB_NAME" --arg pipeline "${CI_PIPELINE_SOURCE:-}" \
    --arg builder "$CI_SERVER_URL/runners/${CI_RUNNER_ID:-unknown}" --arg run "$CI_JOB_URL" \
    '{buildDefinition: {
        buildType: "https://docs.gitlab.com/ci/pipelines/",
        externalParameters: {source: $project, ref: $ref, entryPoint: $job},
        internalParameters: {pipeline_source: $pipeline},
        resolvedDependencies: [{uri: "git+\($project)@\($ref)", digest: {gitCommit: $sha}}]},
      runDetails: {builder: {id: $builder}, metadata: {invocationId: $run}}}' >"$out"
else
  fail "provenance.sh knows GitHub Actions (GITHUB_ACTIONS) and GitLab CI (GITLAB_CI); write the predicate yourself elsewhere"
fi
echo "wrote SLSA provenance v1 predicate to $out"
