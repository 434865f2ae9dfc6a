//! The auditor's export formats: JSON Lines (a header with the signed checkpoint, then one line per entry
//! with its leaf hash and inclusion proof) and a CSV view of the same entries for spreadsheets.
//!
//! Owns: the bytes of each line. Must not touch: the store (the service feeds it entries and proofs).

use serde_json::{Value, json};

use crate::formats::digest::hex_lower;
use crate::merkle::{Hash, leaf_hash};

/// What `notarium log export` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// JSON Lines with checkpoint and proofs: what `notarium log verify` checks.
    #[default]
    Jsonl,
    /// One row per entry, no proofs: for reading, not for verifying.
    Csv,
}

impl ExportFormat {
    /// The name in `?format=` and `--format`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jsonl => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// A consistency proof from an earlier tree size to the exported checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consistency {
    pub from_size: u64,
    pub hashes: Vec<Hash>,
}

/// The first line of a JSON Lines export.
pub fn header_line(checkpoint: &str, tree_size: u64, first: u64, count: u64, since: Option<&Consistency>) -> String {
    let mut header = json!({
        "type": "notarium-register-export",
        "checkpoint": checkpoint,
        "tree_size": tree_size,
        "first_index": first,
        "count": count,
    });
    if let Some(c) = since {
        header["consistency"] = json!({"from_size": c.from_size, "hashes": hex_list(&c.hashes)});
    }
    format!("{header}\n")
}

pub fn entry_line(index: u64, entry: &[u8], proof: &[Hash]) -> String {
    let mut line = String::new();
    push_entry_line(&mut line, index, entry, proof);
    line
}

/// Appends the line of entry `index` to `out`: the bytes `serde_json` writes for the object
/// `{index, leaf_hash, entry, inclusion_proof}` (keys sorted, as its maps keep them), written directly rather
/// than through a `Value` per line and a `String` per hex hash. The entry is written as `serde_json` writes it
/// once parsed (`null` if it is not JSON), so every line keeps its bytes.
pub fn push_entry_line(out: &mut String, index: u64, entry: &[u8], proof: &[Hash]) {
    out.push_str("{\"entry\":");
    match serde_json::from_slice::<Value>(entry) {
        Ok(value) => out.push_str(&value.to_string()),
        Err(_) => out.push_str("null"),
    }
    out.push_str(",\"inclusion_proof\":[");
    for (i, hash) in proof.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        push_hex(out, hash);
        out.push('"');
    }
    out.push_str("],\"index\":");
    out.push_str(&index.to_string());
    out.push_str(",\"leaf_hash\":\"");
    push_hex(out, &leaf_hash(entry));
    out.push_str("\"}\n");
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

fn hex_list(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| hex_lower(h)).collect()
}

const CSV_COLUMNS: [&str; 15] = [
    "index",
    "time",
    "kind",
    "actor",
    "source",
    "registry",
    "repository",
    "digest",
    "key",
    "key_version",
    "tag",
    "policy",
    "policy_digest",
    "details",
    "leaf_hash",
];

pub fn csv_header() -> String {
    CSV_COLUMNS.join(",") + "\r\n"
}

/// One CSV row (RFC 4180). The full details stay available as JSON in the `details` column. Each column
/// holds one thing: `key_version` only a key's version (a `policy-loaded` subject's version is the policy's
/// digest, so it goes under `policy_digest`), `tag` the tag written (`signature_tag` of a `sign` entry, `tag`
/// of an `attest` or `registry-*` one).
pub fn csv_row(index: u64, entry: &[u8]) -> String {
    let e: Value = serde_json::from_slice(entry).unwrap_or_default();
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let (d, subject) = (&e["details"], &e["subject"]);
    let either = |first: &Value, second: &Value| text(if first.is_null() { second } else { first });
    let key_version = if subject["key"].is_null() { Value::Null } else { subject["version"].clone() };
    let policy_digest = if subject["policy"].is_null() { Value::Null } else { subject["version"].clone() };
    let cells = [
        index.to_string(),
        text(&e["time"]),
        text(&e["kind"]),
        text(&e["actor"]["name"]),
        text(&e["actor"]["addr"]),
        text(&subject["registry"]),
        text(&subject["repository"]),
        text(&subject["digest"]),
        either(&d["key"], &subject["key"]),
        either(&d["key_version"], &key_version),
        either(&d["tag"], &d["signature_tag"]),
        text(&subject["policy"]),
        text(&policy_digest),
        text(d),
        hex_lower(&leaf_hash(entry)),
    ];
    cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",") + "\r\n"
}

/// Quotes a cell when needed, and defuses text a spreadsheet would run as a formula: entries carry
/// strings from outside (user agents, actor names), so a leading `=`, `+`, `-`, `@` gets a `'` first.
fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.into() };
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line as a `Value` serialized: what `entry_line` wrote before it wrote the bytes directly.
    fn entry_line_through_a_value(index: u64, entry: &[u8], proof: &[Hash]) -> String {
        let line = json!({
            "index": index,
            "leaf_hash": hex_lower(&leaf_hash(entry)),
            "entry": serde_json::from_slice::<Value>(entry).unwrap_or_default(),
            "inclusion_proof": hex_list(proof),
        });
        format!("{line}\n")
    }

    #[test]
    fn entry_lines_are_the_bytes_a_value_would_serialize_to() {
        let entries: [&[u8]; 7] = [
            br#"{"actor":{"addr":null,"name":"token:a"},"details":{"key":"k","key_version":2,"n":-9007199254740991},"kind":"sign","subject":{"digest":"sha256:ab"},"time":"2026-01-01T00:00:00Z"}"#,
            "{\"a\":\"\\u0001\\n\\\"\\\\/é😀\u{2028}\",\"é\":1,\"z\":[true,false,null,{}]}".as_bytes(),
            br#"{"b":1, "a" : 2.50, "c":1e21}"#,
            br#"{"kind":"sign","n":0}"#,
            b"not json",
            b"[]",
            b"",
        ];
        let proofs: [&[Hash]; 3] = [&[], &[[0xab; 32]], &[[0; 32], [0xff; 32], [7; 32]]];
        for (i, entry) in entries.iter().enumerate() {
            for proof in proofs {
                let index = [0, 7, u64::MAX][i % 3];
                assert_eq!(entry_line(index, entry, proof), entry_line_through_a_value(index, entry, proof));
            }
        }
    }

    #[test]
    fn csv_rows_quote_separators_and_defuse_formulas() {
        let entry = br#"{"actor":{"name":"=HYPERLINK(\"x\")"},"details":{"key":"k","key_version":2},"kind":"sign","subject":{"digest":"sha256:ab","registry":"r:5000","repository":"a,b"},"time":"t"}"#;
        let expected = format!(
            "7,t,sign,\"'=HYPERLINK(\"\"x\"\")\",,r:5000,\"a,b\",sha256:ab,k,2,,,,\"{{\"\"key\"\":\"\"k\"\",\"\"key_version\"\":2}}\",{}\r\n",
            hex_lower(&leaf_hash(entry))
        );
        assert_eq!(csv_row(7, entry), expected);
    }

    fn cells(row: &str, from: usize, to: usize) -> Vec<String> {
        row.split(',').skip(from).take(to - from).map(str::to_owned).collect()
    }

    #[test]
    fn policy_rows_name_the_policy_and_its_digest_and_sign_rows_their_tag() {
        let policy = br#"{"actor":{"name":"notarium"},"details":{"file":"p.yaml"},"kind":"policy-loaded","subject":{"policy":"prod","version":"sha256:cd"},"time":"t"}"#;
        // key, key_version, tag, policy, policy_digest
        assert_eq!(cells(&csv_row(1, policy), 8, 13), ["", "", "", "prod", "sha256:cd"]);
        let sign = br#"{"details":{"key":"k","key_version":2,"signature_tag":"sha256-ab.sig"},"kind":"sign","subject":{"digest":"sha256:ab"}}"#;
        assert_eq!(cells(&csv_row(2, sign), 8, 13), ["k", "2", "sha256-ab.sig", "", ""]);
        let rotated = br#"{"details":{},"kind":"key-rotated","subject":{"key":"k","version":3}}"#;
        assert_eq!(cells(&csv_row(3, rotated), 8, 13), ["k", "3", "", "", ""]);
        assert_eq!(csv_header().trim_end().split(',').count(), 15);
    }
}
