//! What several test areas read from a verdict or build for one: the reasons joined, a tag-scheme tag, an
//! SLSA provenance predicate.

use serde_json::{Value, json};

/// A verify answer's reasons, joined by ` | ` (empty when there are none).
pub(crate) fn reasons(answer: &Value) -> String {
    answer["reasons"]
        .as_array()
        .map(|r| r.iter().map(|r| r.as_str().unwrap_or_default()).collect::<Vec<_>>().join(" | "))
        .unwrap_or_default()
}

/// cosign's tag for `digest`'s `.sig`/`.att` (`suffix`) manifest.
pub(crate) fn tag_of(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replace(':', "-"))
}

/// An SLSA v1 provenance predicate naming `repository` as the workflow's source.
pub(crate) fn slsa_predicate(repository: &str) -> Value {
    json!({
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"repository": repository, "ref": "refs/heads/main"}},
        },
        "runDetails": {"builder": {"id": "https://github.com/actions/runner"}},
    })
}
