//! The correlations an auditor asks for, computed over the entries of one period (docs/FORMATS.md §24):
//! digests pulled but never verified, pulls of digests that were denied, signatures by a key version after
//! that key was rotated, and the changes (keys, policies, tokens) that bear on every decision.
//!
//! Must not touch: HTML; this only reads entries.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// A manifest digest pulled from a repository with no `verify` entry for it in the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedPull {
    pub repository: String,
    pub digest: String,
    /// The `registry-pull` entries, ascending.
    pub pulls: Vec<u64>,
}

/// A pull of a digest that a `verify` entry of the period denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeniedPull {
    pub pull: u64,
    pub repository: String,
    pub digest: String,
    /// The denying `verify` entries, ascending.
    pub denials: Vec<u64>,
    /// Whether the last decision before the pull was a denial (the digest was pulled anyway).
    pub denied_before: bool,
}

/// A `sign` or `attest` entry made with a key version older than one a `key-rotated` entry before it named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateSignature {
    pub index: u64,
    pub key: String,
    pub key_version: u64,
    /// The `key-rotated` entry that made a newer version current, and that version.
    pub rotated_at: u64,
    pub current_version: u64,
}

/// Everything the report flags, each item naming its register indices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Correlations {
    pub pulled_never_verified: Vec<UnverifiedPull>,
    pub denied_then_pulled: Vec<DeniedPull>,
    pub signed_after_rotation: Vec<LateSignature>,
    /// `key-added`, `key-rotated`, `key-revoked`, `policy-loaded`, `token-created`, `token-revoked` entries.
    pub changes: Vec<u64>,
}

/// The kinds that change what later decisions mean.
pub(super) const CHANGE_KINDS: [&str; 6] =
    ["key-added", "key-rotated", "key-revoked", "policy-loaded", "token-created", "token-revoked"];

/// The text at `path` in `entry`: a string as it is, another scalar as JSON, absent or null as "".
pub(super) fn text_at(entry: &Value, path: &[&str]) -> String {
    let mut value = entry;
    for part in path {
        match value.get(part) {
            Some(next) => value = next,
            None => return String::new(),
        }
    }
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// An entry's kind.
pub(super) fn kind(entry: &Value) -> &str {
    entry.get("kind").and_then(Value::as_str).unwrap_or("")
}

/// A version written as a number or as the digits of one.
fn version_at(entry: &Value, path: &[&str]) -> Option<u64> {
    let text = text_at(entry, path);
    text.parse().ok()
}

/// Whether a registry event's media type names a manifest or an index (or is unknown): blob pulls are not
/// images an auditor asks about.
pub(super) fn is_manifest(entry: &Value) -> bool {
    let media_type = text_at(entry, &["details", "media_type"]);
    media_type.is_empty() || media_type.contains("manifest") || media_type.contains("index")
}

/// The manifests notarium itself wrote as signatures and attestations: pulling them is how verifiers read
/// them, not an image being run.
fn signature_manifests(entries: &[(u64, Value)]) -> BTreeSet<String> {
    let mut digests = BTreeSet::new();
    for (_, entry) in entries.iter().filter(|(_, e)| matches!(kind(e), "sign" | "attest")) {
        digests.insert(text_at(entry, &["details", "manifest_digest"]));
        let artifacts = entry.pointer("/details/artifacts").and_then(Value::as_array);
        for artifact in artifacts.into_iter().flatten() {
            digests.insert(text_at(artifact, &["manifest_digest"]));
        }
    }
    digests.remove("");
    digests
}

/// Tags of what signers write: cosign's `.sig` and `.att` and the OCI referrers fallback tag
/// (`sha256-<hex>`, an index of an image's referrers).
fn is_signature_tag(entry: &Value) -> bool {
    let tag = text_at(entry, &["details", "tag"]);
    let fallback =
        tag.strip_prefix("sha256-").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    tag.ends_with(".sig") || tag.ends_with(".att") || fallback
}

/// The image pulls of the period: `(index, repository, digest)` of manifest pulls that are not signatures.
fn image_pulls(entries: &[(u64, Value)]) -> Vec<(u64, String, String)> {
    let signatures = signature_manifests(entries);
    entries
        .iter()
        .filter(|(_, e)| kind(e) == "registry-pull" && is_manifest(e) && !is_signature_tag(e))
        .map(|(i, e)| (*i, text_at(e, &["subject", "repository"]), text_at(e, &["subject", "digest"])))
        .filter(|(_, _, digest)| !digest.is_empty() && !signatures.contains(digest))
        .collect()
}

/// The `verify` decisions per `(repository, digest)`: `(index, allowed)`, ascending.
fn decisions(entries: &[(u64, Value)]) -> BTreeMap<(String, String), Vec<(u64, bool)>> {
    let mut decided: BTreeMap<(String, String), Vec<(u64, bool)>> = BTreeMap::new();
    for (index, entry) in entries.iter().filter(|(_, e)| kind(e) == "verify") {
        let subject = (text_at(entry, &["subject", "repository"]), text_at(entry, &["subject", "digest"]));
        let allowed = entry.pointer("/details/allowed").and_then(Value::as_bool) == Some(true);
        decided.entry(subject).or_default().push((*index, allowed));
    }
    decided
}

/// The correlations over `entries` (ascending by index). A pull and a decision match when they name the same
/// repository and digest (the registry host a notification reports may differ from the one a verify named).
pub fn correlate(entries: &[(u64, Value)]) -> Correlations {
    let decided = decisions(entries);
    let mut unverified: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    let mut denied_then_pulled = Vec::new();
    for (pull, repository, digest) in image_pulls(entries) {
        let subject = (repository, digest);
        let Some(decisions) = decided.get(&subject) else {
            unverified.entry(subject).or_default().push(pull);
            continue;
        };
        let denials: Vec<u64> = decisions.iter().filter(|(_, allowed)| !allowed).map(|(i, _)| *i).collect();
        if denials.is_empty() {
            continue;
        }
        let last_before = decisions.iter().rev().find(|(i, _)| *i < pull);
        let denied_before = matches!(last_before, Some((_, false)));
        let (repository, digest) = subject;
        denied_then_pulled.push(DeniedPull { pull, repository, digest, denials, denied_before });
    }
    Correlations {
        pulled_never_verified: unverified
            .into_iter()
            .map(|((repository, digest), pulls)| UnverifiedPull { repository, digest, pulls })
            .collect(),
        denied_then_pulled,
        signed_after_rotation: late_signatures(entries),
        changes: entries.iter().filter(|(_, e)| CHANGE_KINDS.contains(&kind(e))).map(|(i, _)| *i).collect(),
    }
}

/// Signatures and attestations by a key version older than the newest version a `key-rotated` entry
/// before them named.
fn late_signatures(entries: &[(u64, Value)]) -> Vec<LateSignature> {
    let mut current: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut late = Vec::new();
    for (index, entry) in entries {
        match kind(entry) {
            "key-rotated" => {
                let key = text_at(entry, &["subject", "key"]);
                let Some(version) = version_at(entry, &["subject", "version"]) else { continue };
                let newest = current.entry(key).or_insert((version, *index));
                if version >= newest.0 {
                    *newest = (version, *index);
                }
            }
            "sign" | "attest" => {
                let key = text_at(entry, &["details", "key"]);
                let Some(version) = version_at(entry, &["details", "key_version"]) else { continue };
                let Some(&(current_version, rotated_at)) = current.get(&key) else { continue };
                if version < current_version {
                    late.push(LateSignature { index: *index, key, key_version: version, rotated_at, current_version });
                }
            }
            _ => {}
        }
    }
    late
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pull(repository: &str, digest: &str) -> Value {
        json!({"kind": "registry-pull", "subject": {"repository": repository, "digest": digest},
               "details": {"media_type": "application/vnd.oci.image.manifest.v1+json", "tag": "v1"}})
    }

    fn verify(repository: &str, digest: &str, allowed: bool) -> Value {
        json!({"kind": "verify", "subject": {"repository": repository, "digest": digest},
               "details": {"allowed": allowed, "reasons": ["no signature"]}})
    }

    fn sign(key: &str, version: u64, manifest: &str) -> Value {
        json!({"kind": "sign", "subject": {"repository": "app", "digest": "sha256:aa"},
               "details": {"key": key, "key_version": version, "manifest_digest": manifest}})
    }

    fn indexed(entries: Vec<Value>) -> Vec<(u64, Value)> {
        entries.into_iter().enumerate().map(|(i, e)| (i as u64 + 10, e)).collect()
    }

    #[test]
    fn a_pull_with_no_decision_for_its_repository_and_digest_is_unverified() {
        let entries = indexed(vec![
            verify("app", "sha256:aa", true),
            pull("app", "sha256:aa"),
            pull("app", "sha256:bb"),
            pull("other", "sha256:aa"),
            pull("app", "sha256:bb"),
        ]);
        let found = correlate(&entries).pulled_never_verified;
        assert_eq!(
            found,
            vec![
                UnverifiedPull { repository: "app".into(), digest: "sha256:bb".into(), pulls: vec![12, 14] },
                UnverifiedPull { repository: "other".into(), digest: "sha256:aa".into(), pulls: vec![13] },
            ]
        );
    }

    #[test]
    fn blob_and_signature_pulls_are_not_images() {
        let mut blob = pull("app", "sha256:b1");
        blob["details"]["media_type"] = json!("application/vnd.oci.image.layer.v1.tar+gzip");
        let mut by_tag = pull("app", "sha256:s2");
        by_tag["details"]["tag"] = json!("sha256-aa.sig");
        let mut referrers = pull("app", "sha256:s3");
        referrers["details"]["tag"] = json!(format!("sha256-{}", "ab".repeat(32)));
        let mut not_fallback = pull("app", "sha256:s4");
        not_fallback["details"]["tag"] = json!("sha256-latest");
        let entries =
            indexed(vec![sign("k", 1, "sha256:s1"), pull("app", "sha256:s1"), blob, by_tag, referrers, not_fallback]);
        let found: Vec<String> = correlate(&entries).pulled_never_verified.into_iter().map(|u| u.digest).collect();
        assert_eq!(found, ["sha256:s4"]);
    }

    #[test]
    fn a_digest_denied_then_pulled_is_flagged_and_a_pull_before_the_denial_is_told_apart() {
        let entries = indexed(vec![
            pull("app", "sha256:cc"),
            verify("app", "sha256:cc", false),
            pull("app", "sha256:cc"),
            verify("app", "sha256:cc", true),
            pull("app", "sha256:cc"),
            verify("app", "sha256:dd", true),
            pull("app", "sha256:dd"),
        ]);
        let found = correlate(&entries).denied_then_pulled;
        let flags: Vec<(u64, bool)> = found.iter().map(|d| (d.pull, d.denied_before)).collect();
        assert_eq!(flags, vec![(10, false), (12, true), (14, false)]);
        assert!(found.iter().all(|d| d.denials == vec![11]));
        assert_eq!(correlate(&entries).pulled_never_verified, vec![]);
    }

    #[test]
    fn a_signature_by_a_version_older_than_a_rotation_before_it_is_late() {
        let rotated = json!({"kind": "key-rotated", "subject": {"key": "k", "version": 2}});
        let added = json!({"kind": "key-added", "subject": {"key": "k", "version": 1}});
        let entries = indexed(vec![
            added,
            sign("k", 1, "sha256:m1"),
            rotated,
            sign("k", 2, "sha256:m2"),
            sign("k", 1, "sha256:m3"),
            sign("other", 1, "sha256:m4"),
        ]);
        let found = correlate(&entries);
        assert_eq!(
            found.signed_after_rotation,
            vec![LateSignature { index: 14, key: "k".into(), key_version: 1, rotated_at: 12, current_version: 2 }]
        );
        assert_eq!(found.changes, vec![10, 12]);
    }

    #[test]
    fn values_of_any_json_type_read_as_text() {
        let entry = json!({"a": {"s": "x", "n": 3, "b": false, "z": null}});
        let read: Vec<String> = ["s", "n", "b", "z", "missing"].iter().map(|k| text_at(&entry, &["a", k])).collect();
        assert_eq!(read, ["x", "3", "false", "", ""]);
    }
}
