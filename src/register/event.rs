//! Register entries: one canonical JSON object per event, `{kind, time, actor, subject, details}`.

use serde_json::json;

use crate::formats::canonical::{MAX_EXACT_INTEGER, canonical_json, is_exact_integer};
use crate::store::{NewSignature, RecordKind};

/// The entry recording that the row `record` (a signature or an attestation) is stored in its registry in
/// manifest `manifest_digest`. A function of the database row alone, so reconciliation after a crash
/// writes the same entry the request would have.
pub fn stored_entry(record: &NewSignature, manifest_digest: &str) -> Vec<u8> {
    match record.kind {
        RecordKind::Signature => sign_entry(record, manifest_digest),
        RecordKind::Attestation => attest_entry(record, manifest_digest),
    }
}

/// The `attest` entry: an envelope about `subject` stored under its `.att` tag.
pub fn attest_entry(a: &NewSignature, manifest_digest: &str) -> Vec<u8> {
    canonical_json(&json!({
        "kind": "attest",
        "time": a.created_at,
        "actor": {"name": a.actor, "addr": a.source_addr},
        "subject": {"registry": a.registry, "repository": a.repository, "digest": a.digest},
        "details": {
            "predicate_type": a.identity,
            "key": a.key_id,
            "key_version": a.key_version,
            "algorithm": a.algorithm,
            "tag": a.signature_tag,
            "manifest_digest": manifest_digest,
            "envelope_digest": a.payload_digest,
            "signature": a.signature_b64,
        },
    }))
}

/// The `sign` entry: a simple-signing signature stored under its `.sig` tag.
pub fn sign_entry(signature: &NewSignature, manifest_digest: &str) -> Vec<u8> {
    let s = signature;
    let mut entry = json!({
        "kind": "sign",
        "time": s.created_at,
        "actor": {"name": s.actor, "addr": s.source_addr},
        "subject": {"registry": s.registry, "repository": s.repository, "digest": s.digest},
        "details": {
            "identity": s.identity,
            "key": s.key_id,
            "key_version": s.key_version,
            "algorithm": s.algorithm,
            "signature_tag": s.signature_tag,
            "manifest_digest": manifest_digest,
            "payload_digest": s.payload_digest,
            "signature": s.signature_b64,
        },
    });
    if !s.artifacts.is_empty() {
        entry["details"]["artifacts"] = artifacts(&s.artifacts, manifest_digest);
    }
    canonical_json(&entry)
}

/// A sign entry's `artifacts`: each format written with its manifest digest; the `cosign` one is the `.sig`
/// tag's manifest, `manifest_digest` (docs/FORMATS.md §11).
fn artifacts(artifacts: &[crate::store::Artifact], manifest_digest: &str) -> serde_json::Value {
    let listed = artifacts.iter().map(|a| {
        let digest = a.manifest_digest.as_deref().unwrap_or(manifest_digest);
        json!({"format": a.format, "manifest_digest": digest})
    });
    serde_json::Value::Array(listed.collect())
}

/// One event of a CNCF distribution notification envelope (docs/FORMATS.md §15); unknown fields are ignored.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
pub struct RegistryEvent {
    pub id: String,
    pub timestamp: Option<String>,
    pub action: String,
    #[serde(default, deserialize_with = "json_object")]
    #[schema(value_type = Object)]
    pub target: serde_json::Value,
    #[serde(default, deserialize_with = "json_object")]
    #[schema(value_type = Object)]
    pub request: serde_json::Value,
    #[serde(default, deserialize_with = "json_object")]
    #[schema(value_type = Object)]
    pub actor: serde_json::Value,
    #[serde(default, deserialize_with = "json_object")]
    #[schema(value_type = Object)]
    pub source: serde_json::Value,
}

/// A JSON object, kept as a `Value` to read fields from; anything else is refused, so an event that breaks
/// the shape distribution sends gets a 400 rather than an entry with empty fields.
fn json_object<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<serde_json::Value, D::Error> {
    match <serde_json::Value as serde::Deserialize>::deserialize(deserializer)? {
        object @ serde_json::Value::Object(_) => Ok(object),
        other => Err(serde::de::Error::custom(format!("expected a JSON object, found {other}"))),
    }
}

/// The envelope distribution POSTs: `{"events": [...]}`. An event holding a number that is not an integer
/// within ±(2^53 − 1) is refused, naming the field: entries are RFC 8785 JSON, which writes every other
/// number as a rounded double that JSON parsers do not all read back alike (distribution sends sizes and
/// lengths as integers).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(try_from = "UncheckedEnvelope")]
pub struct RegistryEnvelope {
    pub events: Vec<RegistryEvent>,
}

#[derive(serde::Deserialize)]
struct UncheckedEnvelope {
    events: Vec<RegistryEvent>,
}

impl TryFrom<UncheckedEnvelope> for RegistryEnvelope {
    type Error = String;

    fn try_from(envelope: UncheckedEnvelope) -> Result<Self, String> {
        for (i, event) in envelope.events.iter().enumerate() {
            let parts = [("target", &event.target), ("request", &event.request), ("actor", &event.actor)];
            for (name, part) in parts.into_iter().chain([("source", &event.source)]) {
                check_numbers(part, &format!("events[{i}].{name}"))?;
            }
        }
        Ok(Self { events: envelope.events })
    }
}

/// The first number in `value` (at `path`) that is not an integer an entry may hold.
fn check_numbers(value: &serde_json::Value, path: &str) -> Result<(), String> {
    match value {
        serde_json::Value::Number(n) if !is_exact_integer(n) => Err(format!(
            "{path}: {n} is not an integer within ±{MAX_EXACT_INTEGER}, the only numbers the register records"
        )),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| check_numbers(v, &format!("{path}.{k}"))),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, v)| check_numbers(v, &format!("{path}[{i}]")))
        }
        _ => Ok(()),
    }
}

/// Registry actions the register records.
pub const RECORDED_ACTIONS: [&str; 4] = ["push", "pull", "delete", "mount"];

/// The entry for one registry event: `registry-push`, `registry-pull`, …
pub fn registry_entry(event: &RegistryEvent) -> Vec<u8> {
    let (t, r) = (&event.target, &event.request);
    canonical_json(&json!({
        "kind": format!("registry-{}", event.action),
        "time": event.timestamp,
        "actor": {"name": event.actor["name"], "addr": r["addr"], "user_agent": r["useragent"]},
        "subject": {"registry": canonical_host(&r["host"]), "repository": t["repository"], "digest": t["digest"]},
        "details": {
            "event_id": event.id,
            "media_type": t["mediaType"],
            "tag": t["tag"],
            "size": t["size"],
            "method": r["method"],
            "source": event.source["addr"],
        },
    }))
}

/// The registry's host in canonical form, as every other entry names it; a host that is not one stays as
/// the registry reported it.
fn canonical_host(host: &serde_json::Value) -> serde_json::Value {
    match host.as_str().map(crate::formats::canonical_registry) {
        Some(Ok(canonical)) => serde_json::Value::String(canonical),
        _ => host.clone(),
    }
}

/// A key version as the register records it when notarium first sees it.
#[derive(Debug, Clone)]
pub struct KeyEvent<'a> {
    pub key: &'a str,
    pub backend: &'a str,
    pub version: u32,
    /// False for the key's first version: later versions are rotations.
    pub rotated: bool,
    pub algorithm: &'a str,
    pub public_key_pem: &'a str,
    pub public_key_sha256: &'a str,
    pub time: &'a str,
}

/// The entry `key-added` or `key-rotated`; the public key is in it, so an auditor can check any logged
/// signature against the key the register says was in force.
pub fn key_entry(event: &KeyEvent<'_>) -> Vec<u8> {
    canonical_json(&json!({
        "kind": if event.rotated { "key-rotated" } else { "key-added" },
        "time": event.time,
        "actor": {"name": "notarium"},
        "subject": {"key": event.key, "version": event.version},
        "details": {
            "backend": event.backend,
            "algorithm": event.algorithm,
            "public_key": event.public_key_pem,
            "public_key_sha256": event.public_key_sha256,
        },
    }))
}

/// A verify decision as the register records it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyEvent<'a> {
    pub time: &'a str,
    pub actor: &'a str,
    pub addr: Option<&'a str>,
    pub registry: &'a str,
    pub repository: &'a str,
    pub digest: &'a str,
    pub allowed: bool,
    pub policy: Option<&'a str>,
    pub policy_version: Option<&'a str>,
    pub mode: Option<&'a str>,
    pub reasons: &'a [String],
    /// What counted: `{authority, identity, signature_sha256}` per signature.
    pub signatures: serde_json::Value,
    pub attestations: serde_json::Value,
}

/// The `verify` entry: which policy version decided about which digest, and on which signatures.
pub fn verify_entry(v: &VerifyEvent<'_>) -> Vec<u8> {
    canonical_json(&json!({
        "kind": "verify",
        "time": v.time,
        "actor": {"name": v.actor, "addr": v.addr},
        "subject": {"registry": v.registry, "repository": v.repository, "digest": v.digest},
        "details": {
            "allowed": v.allowed,
            "policy": v.policy,
            "policy_version": v.policy_version,
            "mode": v.mode,
            "reasons": v.reasons,
            "signatures": v.signatures,
            "attestations": v.attestations,
        },
    }))
}

/// A request the API refused because the caller may not do it (authenticated, but not allowed).
pub struct DeniedRequest<'a> {
    pub time: &'a str,
    pub actor: &'a str,
    pub addr: Option<&'a str>,
    /// `METHOD /path`.
    pub route: &'a str,
    pub reason: &'a str,
    /// How many refusals of the caller this entry stands for (see `auth::denials`): 1 for the first of a
    /// minute, recorded at once; the rest of that minute in one entry whose `since` is the first of them.
    pub count: u64,
    pub since: Option<&'a str>,
}

/// The `request-denied` entry; `route`, `addr` and `reason` are those of the first refusal it counts.
pub fn denied_entry(d: &DeniedRequest<'_>) -> Vec<u8> {
    let mut details = json!({"reason": d.reason, "count": d.count});
    if let Some(since) = d.since {
        details["since"] = json!(since);
    }
    canonical_json(&json!({
        "kind": "request-denied",
        "time": d.time,
        "actor": {"name": d.actor, "addr": d.addr},
        "subject": {"route": d.route},
        "details": details,
    }))
}

/// A token made or revoked: `kind` is `token-created` or `token-revoked`; `details` describe the token
/// (id, role, scope, expiry), never the token or its hash.
pub fn token_entry(kind: &str, time: &str, actor: &str, details: &serde_json::Value) -> Vec<u8> {
    canonical_json(&json!({
        "kind": kind,
        "time": time,
        "actor": {"name": actor},
        "subject": {"token": details["id"]},
        "details": details,
    }))
}

/// A key version revoked (docs/FORMATS.md §25): from this entry on, verification refuses the version's
/// signatures, or with `compromised_at` only those whose `sign`/`attest` entry is not provably earlier.
pub struct KeyRevokedEvent<'a> {
    pub time: &'a str,
    pub actor: &'a str,
    pub addr: Option<&'a str>,
    pub key: &'a str,
    pub version: u32,
    pub compromised_at: Option<&'a str>,
    pub reason: &'a str,
}

/// The `key-revoked` entry.
pub fn key_revoked_entry(event: &KeyRevokedEvent<'_>) -> Vec<u8> {
    canonical_json(&json!({
        "kind": "key-revoked",
        "time": event.time,
        "actor": {"name": event.actor, "addr": event.addr},
        "subject": {"key": event.key, "version": event.version},
        "details": {"compromised_at": event.compromised_at, "reason": event.reason},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_parts_must_be_objects() {
        let event = |target: &str| format!(r#"{{"events": [{{"id": "1", "action": "push", "target": {target}}}]}}"#);
        assert!(serde_json::from_str::<RegistryEnvelope>(&event(r#"{"repository": "a"}"#)).is_ok());
        for wrong in ["[null, null]", "null", "\"a\"", "1"] {
            assert!(serde_json::from_str::<RegistryEnvelope>(&event(wrong)).is_err(), "{wrong} was accepted");
        }
    }

    #[test]
    fn numbers_other_than_exact_integers_are_refused_naming_the_field() {
        let event = |target: &str| format!(r#"{{"events": [{{"id": "1", "action": "push", "target": {target}}}]}}"#);
        let ok = serde_json::from_str::<RegistryEnvelope>(&event(r#"{"size": 9007199254740991, "length": -3}"#));
        let entry = registry_entry(&ok.unwrap().events[0]);
        assert!(String::from_utf8(entry).unwrap().contains(r#""size":9007199254740991"#));
        for (target, field) in [
            (r#"{"size": 1.5}"#, "events[0].target.size: 1.5"),
            (r#"{"size": 1.0}"#, "events[0].target.size: 1.0"),
            (r#"{"size": 9007199254740992}"#, "events[0].target.size: 9007199254740992"),
            (r#"{"size": -9007199254740992}"#, "events[0].target.size: -9007199254740992"),
            (r#"{"references": [{"size": 2}, {"size": 1e3}]}"#, "events[0].target.references[1].size: 1000.0"),
        ] {
            let error = serde_json::from_str::<RegistryEnvelope>(&event(target)).unwrap_err().to_string();
            assert!(error.starts_with(field), "{target}: {error}");
        }
    }
}
