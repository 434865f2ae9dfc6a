//! Verdict statements (docs/FORMATS.md §27): a policy decision written as an in-toto Statement v1 with the
//! Simple Verification Result predicate v0.2 or the SLSA Verification Summary v1 predicate. Pure: the facts
//! in, the statement out; signing and attaching are the service's.
//!
//! Must not touch: keys, registries, the register.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Digest;
use super::digest::hex_lower;
use super::in_toto::{Statement, Subject};

/// The Simple Verification Result predicate type, version 0.2.
pub const SVR_V0_2: &str = "https://in-toto.io/attestation/svr/v0.2";
/// The SLSA Verification Summary predicate type, version 1.
pub const SLSA_VSA_V1: &str = "https://slsa.dev/verification_summary/v1";
/// The extension field (a URI, as the in-toto parsing rules ask) holding what only notarium knows: the
/// result as a boolean, the register entry of the decision, the reasons.
pub const NOTARIUM_VERDICT_FIELD: &str = "https://notarium.dev/verdict/v1";
/// The SVR property an allowed image passes; a denied one passes none.
pub const ALLOWED_PROPERTY: &str = "NOTARIUM_POLICY_ALLOWED";

/// Which predicate a verdict is written with (`[verdicts] format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictFormat {
    #[default]
    Svr,
    Vsa,
}

impl VerdictFormat {
    pub fn predicate_type(self) -> &'static str {
        match self {
            Self::Svr => SVR_V0_2,
            Self::Vsa => SLSA_VSA_V1,
        }
    }
}

/// What a verdict states: one decision about one digest, and where the register holds it.
#[derive(Debug, Clone)]
pub struct VerdictFacts<'a> {
    /// The canonical repository name (`host/path`), the subject's name.
    pub repository: &'a str,
    pub digest: &'a Digest,
    /// notarium's version (`CARGO_PKG_VERSION`), part of the verifier's id.
    pub verifier_version: &'a str,
    /// RFC 3339 UTC time of the decision.
    pub time: &'a str,
    pub allowed: bool,
    /// The governing policy's name and content digest; `None`: the default decided.
    pub policy: Option<(&'a str, &'a str)>,
    pub register_index: u64,
    /// The RFC 9162 leaf hash of the decision's register entry.
    pub leaf_hash: &'a [u8; 32],
    pub reasons: &'a [String],
}

impl VerdictFacts<'_> {
    /// The verifier's id: notarium, versioned, as the SVR spec recommends.
    pub fn verifier_id(&self) -> String {
        format!("https://notarium.dev/verifier/v{}", self.verifier_version)
    }

    /// The statement in `format`.
    pub fn statement(&self, format: VerdictFormat) -> Statement {
        let subject = Subject::sha256(Some(self.repository), self.digest);
        let predicate = match format {
            VerdictFormat::Svr => self.svr_predicate(),
            VerdictFormat::Vsa => self.vsa_predicate(),
        };
        Statement::v1(vec![subject], format.predicate_type(), predicate)
    }

    fn policy_descriptor(&self) -> Value {
        match self.policy {
            Some((name, version)) => json!({
                "name": name,
                "uri": format!("notarium:policy/{name}"),
                "digest": {"sha256": version.strip_prefix("sha256:").unwrap_or(version)},
            }),
            None => json!({"name": "default", "uri": "notarium:policy-default"}),
        }
    }

    fn extension(&self) -> Value {
        json!({
            "allowed": self.allowed,
            "register": {"index": self.register_index, "leafHash": hex_lower(self.leaf_hash)},
            "reasons": self.reasons,
        })
    }

    /// SVR v0.2: `verifier.policies` is required (empty only when no policy governs); `properties` lists the
    /// passing properties, so a denial lists none.
    fn svr_predicate(&self) -> Value {
        let policies = if self.policy.is_some() { vec![self.policy_descriptor()] } else { Vec::new() };
        let properties: Vec<&str> = if self.allowed { vec![ALLOWED_PROPERTY] } else { Vec::new() };
        json!({
            "verifier": {"id": self.verifier_id(), "policies": policies},
            "timeCreated": self.time,
            "properties": properties,
            NOTARIUM_VERDICT_FIELD: self.extension(),
        })
    }

    /// SLSA VSA v1: every required field; `verifiedLevels` is `FAILED` on a denial and otherwise empty
    /// (notarium's policies do not judge SLSA levels).
    fn vsa_predicate(&self) -> Value {
        let (result, levels): (&str, Vec<&str>) =
            if self.allowed { ("PASSED", Vec::new()) } else { ("FAILED", vec!["FAILED"]) };
        json!({
            "verifier": {"id": self.verifier_id(), "version": {"notarium": self.verifier_version}},
            "timeVerified": self.time,
            "resourceUri": format!("oci://{}@{}", self.repository, self.digest.as_str()),
            "policy": self.policy_descriptor(),
            "verificationResult": result,
            "verifiedLevels": levels,
            "slsaVersion": "1.0",
            NOTARIUM_VERDICT_FIELD: self.extension(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY_HEX: &str = "789abc0000000000000000000000000000000000000000000000000000000000";

    fn facts<'a>(allowed: bool, digest: &'a Digest, reasons: &'a [String]) -> VerdictFacts<'a> {
        VerdictFacts {
            repository: "registry.example/team/webapp",
            digest,
            verifier_version: "0.1.0",
            time: "2024-03-15T14:22:00Z",
            allowed,
            policy: Some(("production", POLICY_HEX)),
            register_index: 41,
            leaf_hash: &[7; 32],
            reasons,
        }
    }

    fn digest() -> Digest {
        Digest::of(b"webapp")
    }

    /// Shaped as the SVR v0.2 spec's "Policy Information Example": the statement fields, the verifier with
    /// id and a resource descriptor per policy, timeCreated, the passing properties.
    #[test]
    fn an_allowed_svr_has_the_spec_fields_and_names_policy_and_register_entry() {
        let digest = digest();
        let statement = facts(true, &digest, &[]).statement(VerdictFormat::Svr);
        let json: Value = serde_json::from_slice(&statement.to_json()).unwrap();
        assert_eq!(json["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(json["predicateType"], "https://in-toto.io/attestation/svr/v0.2");
        assert_eq!(json["subject"][0]["name"], "registry.example/team/webapp");
        assert_eq!(json["subject"][0]["digest"]["sha256"], digest.hex());
        let predicate = &json["predicate"];
        assert_eq!(predicate["verifier"]["id"], "https://notarium.dev/verifier/v0.1.0");
        assert_eq!(predicate["verifier"]["policies"][0]["digest"]["sha256"], POLICY_HEX);
        assert!(predicate["verifier"]["policies"][0]["uri"].is_string());
        assert_eq!(predicate["timeCreated"], "2024-03-15T14:22:00Z");
        assert_eq!(predicate["properties"], json!([ALLOWED_PROPERTY]));
        let ours = &predicate[NOTARIUM_VERDICT_FIELD];
        assert_eq!(ours["allowed"], true);
        assert_eq!(ours["register"]["index"], 41);
        assert_eq!(ours["register"]["leafHash"], "07".repeat(32));
    }

    #[test]
    fn a_denied_svr_passes_no_property_and_says_false() {
        let (digest, reasons) = (digest(), vec!["no signature".to_owned()]);
        let statement = facts(false, &digest, &reasons).statement(VerdictFormat::Svr);
        assert_eq!(statement.predicate["properties"], json!([]));
        assert_eq!(statement.predicate[NOTARIUM_VERDICT_FIELD]["allowed"], false);
        assert_eq!(statement.predicate[NOTARIUM_VERDICT_FIELD]["reasons"], json!(["no signature"]));
    }

    /// v0.2 makes `verifier.policies` required: an empty array when no policy governs.
    #[test]
    fn an_svr_by_the_default_has_an_empty_policies_array() {
        let digest = digest();
        let mut facts = facts(true, &digest, &[]);
        facts.policy = None;
        assert_eq!(facts.statement(VerdictFormat::Svr).predicate["verifier"]["policies"], json!([]));
    }

    /// The fields the SLSA VSA v1 spec marks required, with its example's shapes.
    #[test]
    fn a_vsa_has_every_required_field_and_passed_or_failed() {
        let digest = digest();
        let passed = facts(true, &digest, &[]).statement(VerdictFormat::Vsa);
        assert_eq!(passed.predicate_type, "https://slsa.dev/verification_summary/v1");
        let p = &passed.predicate;
        for field in ["verifier", "timeVerified", "resourceUri", "policy", "verificationResult", "verifiedLevels"] {
            assert!(!p[field].is_null(), "{field} missing");
        }
        assert_eq!(p["verifier"]["id"], "https://notarium.dev/verifier/v0.1.0");
        assert_eq!(p["policy"]["uri"], "notarium:policy/production");
        assert_eq!(p["policy"]["digest"]["sha256"], POLICY_HEX);
        assert_eq!(p["resourceUri"], format!("oci://registry.example/team/webapp@{}", digest.as_str()));
        assert_eq!(p["verificationResult"], "PASSED");
        assert_eq!(p["slsaVersion"], "1.0");
        let failed = facts(false, &digest, &[]).statement(VerdictFormat::Vsa);
        assert_eq!(failed.predicate["verificationResult"], "FAILED");
        assert_eq!(failed.predicate["verifiedLevels"], json!(["FAILED"]));
        assert_eq!(failed.predicate[NOTARIUM_VERDICT_FIELD]["register"]["index"], 41);
    }

    #[test]
    fn the_format_names_parse_from_config() {
        #[derive(Deserialize)]
        struct T {
            format: VerdictFormat,
        }
        let vsa: T = toml::from_str("format = \"vsa\"").unwrap();
        assert_eq!(vsa.format.predicate_type(), SLSA_VSA_V1);
        assert!(toml::from_str::<T>("format = \"other\"").is_err());
    }
}
