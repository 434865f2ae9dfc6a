//! in-toto Statements (docs/FORMATS.md §5): the v1 writer, a reader for v1 and v0.1 (cosign 2.5 still writes
//! v0.1), the predicate types notarium knows, and the required-field check of SLSA provenance v1.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Digest, FormatError};

pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
pub const STATEMENT_V0_1: &str = "https://in-toto.io/Statement/v0.1";

pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
pub const SPDX_DOCUMENT: &str = "https://spdx.dev/Document";
pub const CYCLONEDX_BOM: &str = "https://cyclonedx.org/bom";
pub const COSIGN_VULN_V1: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";
/// What cosign v3 signs for an image in the bundle layout, with an empty predicate.
pub const COSIGN_SIGN_V1: &str = "https://sigstore.dev/cosign/sign/v1";

/// One artifact a statement is about; v1 makes `name` optional and `digest` required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub digest: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Subject {
    pub fn sha256(name: Option<&str>, digest: &Digest) -> Self {
        let digest = BTreeMap::from([("sha256".to_owned(), digest.hex().to_owned())]);
        Self { name: name.map(str::to_owned), digest, extra: Map::new() }
    }

    /// The hex SHA-256 digest, if the subject has one.
    pub fn sha256_hex(&self) -> Option<&str> {
        self.digest.get("sha256").map(String::as_str)
    }
}

/// A statement: which artifacts, which kind of claim, and the claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// `{}` when the statement has none or `null`: the spec treats unset as set-but-empty.
    #[serde(default = "empty_object")]
    pub predicate: Value,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl Statement {
    /// A v1 statement; a `null` predicate is written as `{}`.
    pub fn v1(subject: Vec<Subject>, predicate_type: &str, predicate: Value) -> Self {
        let predicate = if predicate.is_null() { empty_object() } else { predicate };
        Self { statement_type: STATEMENT_V1.to_owned(), subject, predicate_type: predicate_type.to_owned(), predicate }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a statement of JSON values always serializes")
    }

    /// Parses a v1 or v0.1 statement with at least one subject, each with a digest.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let invalid = |reason: String| FormatError::malformed("in-toto statement", reason);
        let mut statement: Self = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if statement.predicate.is_null() {
            statement.predicate = empty_object();
        }
        if ![STATEMENT_V1, STATEMENT_V0_1].contains(&statement.statement_type.as_str()) {
            return Err(invalid(format!("unsupported _type {:?}", statement.statement_type)));
        }
        if statement.subject.is_empty() || statement.subject.iter().any(|s| s.digest.is_empty()) {
            return Err(invalid("every statement needs a subject, and every subject a digest".to_owned()));
        }
        if statement.predicate_type.is_empty() {
            return Err(invalid("predicateType is empty".to_owned()));
        }
        Ok(statement)
    }
}

/// The fields SLSA provenance v1 requires, parents before children ("REQUIRED for SLSA Build L1").
const SLSA_REQUIRED: [(&str, JsonKind); 6] = [
    ("buildDefinition", JsonKind::Object),
    ("buildDefinition.buildType", JsonKind::String),
    ("buildDefinition.externalParameters", JsonKind::Object),
    ("runDetails", JsonKind::Object),
    ("runDetails.builder", JsonKind::Object),
    ("runDetails.builder.id", JsonKind::String),
];

#[derive(Clone, Copy)]
enum JsonKind {
    Object,
    String,
}

impl JsonKind {
    fn name(self) -> &'static str {
        match self {
            Self::Object => "an object",
            Self::String => "a string",
        }
    }

    fn matches(self, value: &Value) -> bool {
        matches!((self, value), (Self::Object, Value::Object(_)) | (Self::String, Value::String(_)))
    }
}

/// Checks a SLSA provenance v1 predicate for its required fields and names the first one missing.
/// Unset, `null` and empty values count as missing, as the spec's parsing rules say.
pub fn check_slsa_provenance_v1(predicate: &Value) -> Result<(), FormatError> {
    let invalid = |reason: String| FormatError::malformed("SLSA provenance v1 predicate", reason);
    for (path, kind) in SLSA_REQUIRED {
        let value = path.split('.').try_fold(predicate, |v, key| v.get(key)).filter(|v| !is_empty(v));
        let Some(value) = value else {
            return Err(invalid(format!("required field {path} is missing")));
        };
        if !kind.matches(value) {
            return Err(invalid(format!("field {path} must be {}", kind.name())));
        }
    }
    Ok(())
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::formats::dsse::Envelope;

    const COSIGN_ENVELOPE: &[u8] = include_bytes!("../../tests/fixtures/third-party/cosign-2.5/att-dsse-envelope.json");

    /// Found by fuzz/ (target in_toto): a long integer beyond u64 in the statement was read 1 ULP off, so
    /// the statement written back parsed to another one.
    #[test]
    fn long_numbers_survive_a_round_trip() {
        let number = format!("{},555555557{}", "5".repeat(34), "5".repeat(76));
        let text = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2","subject":[{{"name":"a","digest":{{"sha256":"c4"}}}}],"predicate":{{"n":[{number}]}}}}"#
        );
        let statement = Statement::parse(text.as_bytes()).unwrap();
        assert_eq!(Statement::parse(&statement.to_json()).unwrap(), statement);
    }
    const IMAGE_DIGEST: &str = "sha256:c4ea3eb55a9e77e1edfcec7acc64cab6650ef710811264fdd18cedeba6de5c83";

    fn provenance() -> Value {
        json!({
            "buildDefinition": {"buildType": "https://example.com/build/v1", "externalParameters": {"ref": "main"}},
            "runDetails": {"builder": {"id": "https://example.com/builder"}}
        })
    }

    fn missing(path: &str) -> FormatError {
        FormatError::malformed("SLSA provenance v1 predicate", format!("required field {path} is missing"))
    }

    #[test]
    fn reads_the_v0_1_statement_cosign_2_5_wrote() {
        let payload = Envelope::parse(COSIGN_ENVELOPE).unwrap().payload;
        let statement = Statement::parse(&payload).unwrap();
        assert_eq!(statement.statement_type, STATEMENT_V0_1);
        assert_eq!(statement.predicate_type, SLSA_PROVENANCE_V1);
        assert_eq!(statement.subject.len(), 1);
        assert_eq!(statement.subject[0].name.as_deref(), Some("127.0.0.1:5055/demo/cosign"));
        assert_eq!(statement.subject[0].sha256_hex(), Some(Digest::parse(IMAGE_DIGEST).unwrap().hex()));
        assert_eq!(statement.predicate["runDetails"]["builder"]["id"], "https://example.invalid/b");
    }

    #[test]
    fn writes_v1_in_spec_order_and_reads_it_back() {
        let digest = Digest::parse(IMAGE_DIGEST).unwrap();
        let statement =
            Statement::v1(vec![Subject::sha256(Some("r.example/app"), &digest)], SLSA_PROVENANCE_V1, provenance());
        let json = String::from_utf8(statement.to_json()).unwrap();
        let expected_start = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"r.example/app","digest":{{"sha256":"{}"}}}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{{"#,
            digest.hex()
        );
        assert!(json.starts_with(&expected_start), "{json}");
        assert_eq!(Statement::parse(json.as_bytes()).unwrap(), statement);
    }

    #[test]
    fn cosign_sign_statement_has_a_nameless_subject_and_an_empty_predicate() {
        let digest = Digest::parse(IMAGE_DIGEST).unwrap();
        let statement = Statement::v1(vec![Subject::sha256(None, &digest)], COSIGN_SIGN_V1, Value::Null);
        let json = String::from_utf8(statement.to_json()).unwrap();
        assert!(json.contains(&format!(r#""subject":[{{"digest":{{"sha256":"{}"}}}}]"#, digest.hex())), "{json}");
        assert!(json.ends_with(r#""predicate":{}}"#), "{json}");
    }

    #[test]
    fn keeps_unknown_subject_fields_and_defaults_a_missing_predicate() {
        let json = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"ab"},"annotations":{"k":"v"}}],"predicateType":"x"}"#;
        let statement = Statement::parse(json).unwrap();
        assert_eq!(statement.subject[0].extra["annotations"], json!({"k": "v"}));
        assert_eq!(statement.predicate, json!({}));
        let null_predicate = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"ab"}}],"predicateType":"x","predicate":null}"#;
        assert_eq!(Statement::parse(null_predicate).unwrap().predicate, json!({}));
    }

    #[test]
    fn refuses_other_types_and_subjects_without_digest() {
        for bad in [
            r#"{"_type":"https://in-toto.io/Statement/v2","subject":[{"digest":{"sha256":"ab"}}],"predicateType":"x"}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x"}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{}}],"predicateType":"x"}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"ab"}}],"predicateType":""}"#,
        ] {
            assert!(Statement::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn complete_provenance_passes() {
        assert_eq!(check_slsa_provenance_v1(&provenance()), Ok(()));
    }

    type Breakage = fn(&mut Value);

    #[test]
    fn names_the_first_missing_slsa_field() {
        let cases: [(&str, Breakage); 7] = [
            ("buildDefinition", |p| p["buildDefinition"] = Value::Null),
            ("buildDefinition", |p| p["buildDefinition"].as_object_mut().unwrap().clear()),
            ("buildDefinition.buildType", |p| _ = p["buildDefinition"].as_object_mut().unwrap().remove("buildType")),
            ("buildDefinition.buildType", |p| p["buildDefinition"]["buildType"] = json!("")),
            ("buildDefinition.externalParameters", |p| p["buildDefinition"]["externalParameters"] = json!({})),
            ("runDetails.builder", |p| p["runDetails"] = json!({"metadata": {}, "builder": null})),
            ("runDetails.builder.id", |p| p["runDetails"]["builder"] = json!({"version": {"v": "1"}})),
        ];
        for (path, break_it) in cases {
            let mut predicate = provenance();
            break_it(&mut predicate);
            assert_eq!(check_slsa_provenance_v1(&predicate), Err(missing(path)), "{predicate}");
        }
        assert_eq!(check_slsa_provenance_v1(&json!({})), Err(missing("buildDefinition")));
    }

    #[test]
    fn cosign_fixture_provenance_lacks_external_parameters() {
        let payload = Envelope::parse(COSIGN_ENVELOPE).unwrap().payload;
        let statement = Statement::parse(&payload).unwrap();
        let expected = missing("buildDefinition.externalParameters");
        assert_eq!(check_slsa_provenance_v1(&statement.predicate), Err(expected));
    }

    #[test]
    fn wrong_types_are_named() {
        let mut predicate = provenance();
        predicate["runDetails"]["builder"]["id"] = json!(7);
        let expected =
            FormatError::malformed("SLSA provenance v1 predicate", "field runDetails.builder.id must be a string");
        assert_eq!(check_slsa_provenance_v1(&predicate), Err(expected));
    }
}
