//! The searchable fields of a register entry (docs/FORMATS.md §11): what `GET /v1/log/search` filters on,
//! read from the entry's canonical JSON bytes. The store writes them next to each entry (`log_index`: in the
//! same transaction, or on SQLite before a search reads them); `migrations/*/0008_log_index.sql` computes the
//! same fields in SQL for entries written before.
//!
//! A leaf module: it uses no other module of the crate, and knows only which entry field answers which
//! filter. Must not touch: how entries are written (`register::event`) or stored (`store`).

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The kinds of entry the register writes, as `kind` names them.
pub const KINDS: [&str; 14] = [
    "sign",
    "attest",
    "verify",
    "key-added",
    "key-rotated",
    "key-revoked",
    "policy-loaded",
    "registry-push",
    "registry-pull",
    "registry-delete",
    "registry-mount",
    "request-denied",
    "token-created",
    "token-revoked",
];

/// What a search can find an entry by; a field the entry does not have (or holds as another JSON type) is
/// `None`, and an entry that is not a JSON object has every field `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryFields {
    pub kind: Option<String>,
    /// `time` as milliseconds since the Unix epoch (rounded to the nearest), when it is RFC 3339.
    pub time_ms: Option<i64>,
    /// `actor.name`.
    pub actor: Option<String>,
    /// `subject.registry`, `subject.repository`, `subject.digest`.
    pub registry: Option<String>,
    pub repository: Option<String>,
    pub digest: Option<String>,
    /// The key a `sign`/`attest` entry names in `details.key`/`details.key_version`, or the one a
    /// `key-added`/`key-rotated` entry is about (`subject.key`/`subject.version`).
    pub key: Option<String>,
    pub key_version: Option<i64>,
}

/// The fields of one entry.
pub fn entry_fields(entry: &[u8]) -> EntryFields {
    let Ok(Value::Object(e)) = serde_json::from_slice::<Value>(entry) else {
        return EntryFields::default();
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let (subject, details) = (e.get("subject"), e.get("details"));
    let kind = text(e.get("kind"));
    let (key, key_version) = match kind.as_deref() {
        Some("sign" | "attest") => (field(details, "key"), field(details, "key_version")),
        Some("key-added" | "key-rotated" | "key-revoked") => (field(subject, "key"), field(subject, "version")),
        _ => (None, None),
    };
    EntryFields {
        time_ms: e.get("time").and_then(Value::as_str).and_then(time_ms),
        actor: text(field(e.get("actor"), "name")),
        registry: text(field(subject, "registry")),
        repository: text(field(subject, "repository")),
        digest: text(field(subject, "digest")),
        key: text(key),
        key_version: key_version.and_then(Value::as_i64),
        kind,
    }
}

fn field<'v>(part: Option<&'v Value>, name: &str) -> Option<&'v Value> {
    part.and_then(|p| p.get(name))
}

/// An RFC 3339 time as milliseconds since the Unix epoch, rounded to the nearest (as SQLite's `julianday`
/// rounds, so the migration's backfill agrees).
pub fn time_ms(rfc3339: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(rfc3339, &Rfc3339).ok()?;
    i64::try_from((t.unix_timestamp_nanos() + 500_000).div_euclid(1_000_000)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_key_entries_name_their_key_and_others_do_not() {
        let sign = br#"{"actor":{"name":"token:ci"},"details":{"key":"k","key_version":2},"kind":"sign","subject":{"digest":"sha256:ab","registry":"r:5000","repository":"a/b"},"time":"2026-01-01T00:00:00.1235Z"}"#;
        let fields = entry_fields(sign);
        assert_eq!(
            fields,
            EntryFields {
                kind: Some("sign".into()),
                time_ms: Some(1_767_225_600_124),
                actor: Some("token:ci".into()),
                registry: Some("r:5000".into()),
                repository: Some("a/b".into()),
                digest: Some("sha256:ab".into()),
                key: Some("k".into()),
                key_version: Some(2),
            }
        );
        let rotated = br#"{"details":{},"kind":"key-rotated","subject":{"key":"k","version":3}}"#;
        assert_eq!((entry_fields(rotated).key, entry_fields(rotated).key_version), (Some("k".into()), Some(3)));
        let policy =
            br#"{"kind":"policy-loaded","details":{"key":"x"},"subject":{"policy":"p","version":"sha256:cd"}}"#;
        assert_eq!((entry_fields(policy).key, entry_fields(policy).key_version), (None, None));
    }

    #[test]
    fn what_is_not_a_string_or_not_json_is_no_field() {
        assert_eq!(entry_fields(b"not json"), EntryFields::default());
        assert_eq!(entry_fields(b"[1]"), EntryFields::default());
        let odd = br#"{"actor":{"name":7},"kind":["sign"],"time":"yesterday","subject":{"digest":{"a":1}}}"#;
        assert_eq!(entry_fields(odd), EntryFields::default());
        assert_eq!(time_ms("2026-01-01T01:00:00+01:00"), Some(1_767_225_600_000));
        assert_eq!(time_ms("2026-01-01T00:00:00.1234999Z"), Some(1_767_225_600_123));
    }
}
