//! `notation:` authorities: the Notary Project trust-policy fields (trust stores, trusted identities, the
//! signature verification level) as a policy writes them, read and checked at load (every trust-store PEM
//! read, every subject DN parsed), and the rules that match a verified signer to them.
//!
//! Owns: the `notation:` field names and their errors, the subject-DN syntax and matching, what each
//! verification level enforces. Must not touch: envelope parsing or the cryptography (`formats::notary`,
//! `pki::notary`), counting (`engine.rs`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use time::OffsetDateTime;

use super::engine::{NotaryCheck, NotaryEvidence};
use crate::formats::Digest;
use crate::formats::cosign_layer::pem_certificates;

/// How much of a Notary Project signature's verification an authority enforces, as notation's
/// `signatureVerification.level` does. `Skip` verifies nothing, so a `skip` authority never counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerificationLevel {
    /// Integrity, authenticity (chain and identity), timestamp, expiry and revocation all enforced.
    Strict,
    /// Integrity and authenticity enforced; timestamp, expiry and revocation failures only logged.
    Permissive,
    /// Integrity enforced; everything else only logged.
    Audit,
    /// Nothing verified: the authority never counts toward a threshold.
    Skip,
}

impl VerificationLevel {
    pub fn name(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Permissive => "permissive",
            Self::Audit => "audit",
            Self::Skip => "skip",
        }
    }
}

/// One trust-store entry: the path as written, resolved, and the DER certificates read from it.
#[derive(Debug, Clone)]
pub struct TrustStoreFile {
    pub path: PathBuf,
    pub certificates: Vec<Vec<u8>>,
}

/// The roots a `notation:` authority trusts, by notation's trust-store types.
#[derive(Debug, Clone, Default)]
pub struct TrustStores {
    /// Roots for the `notary.x509` signing scheme.
    pub ca: Vec<TrustStoreFile>,
    /// Roots for the `notary.x509.signingAuthority` signing scheme.
    pub signing_authority: Vec<TrustStoreFile>,
    /// Roots of the RFC 3161 timestamp authorities whose countersignatures are accepted.
    pub tsa: Vec<TrustStoreFile>,
}

impl TrustStores {
    pub fn ca_certificates(&self) -> Vec<&[u8]> {
        self.ca.iter().flat_map(|f| f.certificates.iter().map(Vec::as_slice)).collect()
    }

    pub fn signing_authority_certificates(&self) -> Vec<&[u8]> {
        self.signing_authority.iter().flat_map(|f| f.certificates.iter().map(Vec::as_slice)).collect()
    }

    pub fn tsa_certificates(&self) -> Vec<&[u8]> {
        self.tsa.iter().flat_map(|f| f.certificates.iter().map(Vec::as_slice)).collect()
    }

    /// What makes two authorities' stores the same: the SHA-256 of their certificates' thumbprints, sorted,
    /// per store type.
    fn identity(&self) -> Digest {
        let mut text = String::new();
        for (kind, files) in [("ca", &self.ca), ("signingAuthority", &self.signing_authority), ("tsa", &self.tsa)] {
            let mut thumbprints: Vec<String> =
                files.iter().flat_map(|f| &f.certificates).map(|c| Digest::of(c).hex().to_owned()).collect();
            thumbprints.sort();
            thumbprints.dedup();
            text.push_str(&format!("{kind}:{}\n", thumbprints.join(",")));
        }
        Digest::of(text.as_bytes())
    }

    fn files(&self) -> impl Iterator<Item = &TrustStoreFile> {
        self.ca.iter().chain(&self.signing_authority)
    }
}

/// A subject distinguished name as attribute/value pairs, in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinguishedName(pub Vec<(String, String)>);

impl DistinguishedName {
    /// Parses `C=US, ST=WA, O=Acme, CN=signer` (RFC 4514 text: `,` between attributes, `\` escaping, spaces
    /// around separators ignored). Every attribute has a type and a non-empty value and appears once; like
    /// notation, `C`, `ST` and `O` must be present (`S` is read as `ST`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut attributes = Vec::new();
        for part in split_unescaped(text) {
            let Some((kind, value)) = part.split_once('=') else {
                return Err(format!("{:?} is not TYPE=value", shorten(&part)));
            };
            let kind = match kind.trim().to_ascii_uppercase().as_str() {
                "S" => "ST".to_owned(),
                other => other.to_owned(),
            };
            let value = unescape(value.trim());
            if kind.is_empty() || value.is_empty() {
                return Err(format!("{:?} has an empty attribute type or value", shorten(&part)));
            }
            if attributes.iter().any(|(k, _)| *k == kind) {
                return Err(format!("attribute {kind} appears twice"));
            }
            attributes.push((kind, value));
        }
        Ok(Self(attributes))
    }

    /// [`Self::parse`] plus notation's mandatory attributes, for a trusted identity.
    pub fn parse_trusted(text: &str) -> Result<Self, String> {
        let dn = Self::parse(text)?;
        for required in ["C", "ST", "O"] {
            if !dn.0.iter().any(|(k, _)| k == required) {
                return Err(format!("it has no {required} attribute (C, ST and O are required, as notation requires)"));
            }
        }
        Ok(dn)
    }

    /// True when every attribute of `self` is in `subject` with the same value (notation's match: the
    /// trusted DN may leave attributes of the certificate's subject out).
    pub fn is_within(&self, subject: &Self) -> bool {
        self.0.iter().all(|(k, v)| subject.0.iter().any(|(sk, sv)| sk == k && sv == v))
    }
}

impl std::fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={}", escape(v))).collect();
        f.write_str(&parts.join(", "))
    }
}

fn split_unescaped(text: &str) -> Vec<String> {
    let (mut parts, mut current, mut escaped) = (Vec::new(), String::new(), false);
    for c in text.chars() {
        match (escaped, c) {
            (true, _) => {
                current.push('\\');
                current.push(c);
                escaped = false;
            }
            (false, '\\') => escaped = true,
            (false, ',' | ';') => parts.push(std::mem::take(&mut current)),
            (false, _) => current.push(c),
        }
    }
    parts.push(current);
    parts
}

fn unescape(value: &str) -> String {
    let (mut out, mut escaped) = (String::new(), false);
    for c in value.chars() {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            _ => {
                out.push(c);
                escaped = false;
            }
        }
    }
    out
}

fn escape(value: &str) -> String {
    value.chars().flat_map(|c| if matches!(c, ',' | ';' | '\\' | '+') { vec!['\\', c] } else { vec![c] }).collect()
}

fn shorten(text: &str) -> String {
    text.trim().chars().take(64).collect()
}

/// A `trusted_identities` entry: any signer (`*`), or certificates whose subject holds this DN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedIdentity {
    Any,
    Subject(DistinguishedName),
}

impl TrustedIdentity {
    fn parse(text: &str) -> Result<Self, String> {
        if text.trim() == "*" {
            return Ok(Self::Any);
        }
        let Some(("x509.subject", dn)) = text.split_once(':').map(|(p, v)| (p.trim(), v)) else {
            return Err(format!("{:?} is neither \"*\" nor \"x509.subject: <DN>\"", shorten(text)));
        };
        DistinguishedName::parse_trusted(dn).map(Self::Subject).map_err(|e| format!("{:?}: {e}", shorten(text)))
    }
}

/// A compiled `notation:` authority.
#[derive(Debug, Clone)]
pub struct Notation {
    pub trust_stores: TrustStores,
    pub trusted_identities: Vec<TrustedIdentity>,
    pub level: VerificationLevel,
    /// SHA-256 over the trust stores' certificates: authorities with equal stores share signers.
    pub store_identity: Digest,
}

impl Notation {
    /// How reasons name it: `notation C=US, ST=WA, O=Acme under ca/root.pem` (the first identity and store).
    pub fn label(&self) -> String {
        let who = match self.trusted_identities.first() {
            None => "(no identity)".to_owned(),
            Some(TrustedIdentity::Any) => "*".to_owned(),
            Some(TrustedIdentity::Subject(dn)) => dn.to_string(),
        };
        let more = match self.trusted_identities.len() {
            0 | 1 => String::new(),
            n => format!(" (+{} more)", n - 1),
        };
        let store = self.trust_stores.files().next().map(|f| f.path.display().to_string());
        let level =
            if self.level == VerificationLevel::Strict { String::new() } else { format!(" [{}]", self.level.name()) };
        match store {
            Some(store) => format!("notation {who}{more} under {store}{level}"),
            None => format!("notation{level}"),
        }
    }

    /// True when a certificate whose subject is `subject` is one of this authority's trusted identities.
    pub fn trusts_subject(&self, subject: &str) -> bool {
        let Ok(subject) = DistinguishedName::parse(subject) else { return false };
        self.trusted_identities.iter().any(|t| match t {
            TrustedIdentity::Any => true,
            TrustedIdentity::Subject(dn) => dn.is_within(&subject),
        })
    }

    /// True when this authority and `other` trust the same stores and at least one identity in common:
    /// one signature could meet both, and one signer counts once.
    pub fn same_signers(&self, other: &Self) -> bool {
        self.level != VerificationLevel::Skip
            && other.level != VerificationLevel::Skip
            && self.store_identity == other.store_identity
            && self.trusted_identities.iter().any(|t| other.trusted_identities.contains(t))
    }
}

/// Checks one Notary Project envelope against `notation`'s trust stores at `now` (`pki::notary` does the
/// cryptography); the engine's [`super::engine::NotaryVerifier`].
pub fn check_envelope(evidence: &NotaryEvidence, notation: &Notation, now: OffsetDateTime) -> NotaryCheck {
    let _ = (notation, now);
    let unverified = || Err(format!("{} envelopes cannot be verified by this build", evidence.media_type));
    NotaryCheck {
        integrity: unverified(),
        authenticity: unverified(),
        authentic_timestamp: unverified(),
        expiry: unverified(),
        revocation: unverified(),
        signer: None,
        target_digest: None,
    }
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotation {
    #[serde(default)]
    trust_stores: RawTrustStores,
    #[serde(default)]
    trusted_identities: Vec<String>,
    signature_verification: RawSignatureVerification,
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawTrustStores {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ca: Vec<String>,
    #[serde(default, rename = "signingAuthority", alias = "signing_authority", skip_serializing_if = "Vec::is_empty")]
    signing_authority: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tsa: Vec<String>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawSignatureVerification {
    level: VerificationLevel,
}

impl RawNotation {
    /// The text that finds this authority's line in its file.
    pub(super) fn needle(&self) -> String {
        let store = self.trust_stores.ca.first().or(self.trust_stores.signing_authority.first());
        let identity = self.trusted_identities.first().filter(|i| i.trim() != "*");
        match (store, identity) {
            (Some(store), _) => store.clone(),
            (None, Some(identity)) => identity.clone(),
            (None, None) => "notation:".into(),
        }
    }

    /// Compiles the authority, reading every trust-store file relative to `base` (the policy file's
    /// folder); errors name the field and the file.
    pub(super) fn compile(&self, base: &Path) -> Result<Notation, String> {
        let level = self.signature_verification.level;
        let stores = &self.trust_stores;
        let has_stores = !stores.ca.is_empty() || !stores.signing_authority.is_empty();
        if level == VerificationLevel::Skip {
            if has_stores || !stores.tsa.is_empty() || !self.trusted_identities.is_empty() {
                return Err("notation: a skip level verifies nothing, so it takes no trust_stores or \
                            trusted_identities (remove them, or choose another level)"
                    .into());
            }
        } else {
            if !has_stores {
                return Err("notation.trust_stores: list at least one ca or signingAuthority PEM file or folder".into());
            }
            if self.trusted_identities.is_empty() {
                return Err("notation.trusted_identities: list at least one \"x509.subject: <DN>\" or \"*\"".into());
            }
        }
        let trusted_identities = self
            .trusted_identities
            .iter()
            .map(|t| TrustedIdentity::parse(t).map_err(|e| format!("notation.trusted_identities: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if trusted_identities.len() > 1 && trusted_identities.contains(&TrustedIdentity::Any) {
            return Err("notation.trusted_identities: \"*\" cannot be listed with other identities".into());
        }
        let trust_stores = TrustStores {
            ca: read_store(base, "ca", &stores.ca)?,
            signing_authority: read_store(base, "signingAuthority", &stores.signing_authority)?,
            tsa: read_store(base, "tsa", &stores.tsa)?,
        };
        let store_identity = trust_stores.identity();
        Ok(Notation { trust_stores, trusted_identities, level, store_identity })
    }
}

/// Every certificate of every path of one store type: a file is read as PEM, a folder as all its files.
fn read_store(base: &Path, kind: &str, paths: &[String]) -> Result<Vec<TrustStoreFile>, String> {
    let mut files = Vec::new();
    for written in paths {
        let path = base.join(written);
        let field = format!("notation.trust_stores.{kind}");
        let entries = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => folder_files(&path).map_err(|e| format!("{field}: {e}"))?,
            Ok(_) => vec![path],
            Err(e) => return Err(format!("{field}: cannot read {}: {e}", path.display())),
        };
        if entries.is_empty() {
            return Err(format!("{field}: the folder {} holds no certificate file", base.join(written).display()));
        }
        for file in entries {
            let certificates = read_certificates(&file).map_err(|e| format!("{field}: {e}"))?;
            files.push(TrustStoreFile { path: file, certificates });
        }
    }
    Ok(files)
}

fn folder_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let read_error = |e: std::io::Error| format!("cannot read {}: {e}", dir.display());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The DER certificates of one PEM file, each checked to be an X.509 certificate.
fn read_certificates(file: &Path) -> Result<Vec<Vec<u8>>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let certificates =
        pem_certificates(&text).map_err(|_| format!("{} holds no readable PEM certificate", file.display()))?;
    for (i, der) in certificates.iter().enumerate() {
        crate::pki::certificate::parse(der, &format!("certificate {} of {}", i + 1, file.display()))
            .map_err(|e| e.to_string())?;
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_dn_needs_c_st_and_o_and_matches_a_subject_that_holds_it() {
        let trusted = DistinguishedName::parse_trusted("C=US, ST=WA, O=Notary").unwrap();
        let subject = DistinguishedName::parse("CN=signer,O=Notary,L=Seattle,ST=WA,C=US").unwrap();
        assert!(trusted.is_within(&subject));
        let other = DistinguishedName::parse("CN=signer,O=Other,ST=WA,C=US").unwrap();
        assert!(!trusted.is_within(&other));
        let err = DistinguishedName::parse_trusted("C=US, O=Notary, CN=x").unwrap_err();
        assert!(err.contains("no ST attribute"), "{err}");
        assert!(DistinguishedName::parse("C=US, garbage").unwrap_err().contains("TYPE=value"));
        assert!(DistinguishedName::parse("C=US, C=DE").unwrap_err().contains("twice"));
        let escaped = DistinguishedName::parse(r"O=Acme\, Inc., C=US").unwrap();
        assert_eq!(escaped.0[0], ("O".into(), "Acme, Inc.".into()));
    }

    #[test]
    fn a_trusted_identity_is_a_star_or_an_x509_subject() {
        assert_eq!(TrustedIdentity::parse("*").unwrap(), TrustedIdentity::Any);
        assert!(matches!(
            TrustedIdentity::parse("x509.subject: C=US, ST=WA, O=N").unwrap(),
            TrustedIdentity::Subject(_)
        ));
        assert!(TrustedIdentity::parse("email: a@b").unwrap_err().contains("x509.subject"));
    }

    fn load(dir: &Path, notation: &str) -> String {
        let text =
            format!("policies:\n  - name: p\n    images: [\"*\"]\n    authorities:\n      - notation:\n{notation}");
        let file = dir.join("p.yaml");
        super::super::PolicySet::parse(&file.display().to_string(), &text).unwrap_err().to_string()
    }

    #[test]
    fn policy_check_names_the_missing_store_the_unreadable_pem_the_bad_dn_and_the_unknown_level() {
        let dir = tempfile::tempdir().unwrap();
        let identity = "          trusted_identities: [\"*\"]\n";
        let strict = "          signature_verification: {level: strict}\n";
        let err = load(dir.path(), &format!("          trust_stores: {{ca: [missing.pem]}}\n{identity}{strict}"));
        assert!(err.contains("notation.trust_stores.ca: cannot read") && err.contains("missing.pem"), "{err}");
        assert!(err.contains("line 6"), "{err}");
        std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
        let err = load(
            dir.path(),
            &format!("          trust_stores: {{tsa: [junk.pem], ca: [junk.pem]}}\n{identity}{strict}"),
        );
        assert!(err.contains("junk.pem holds no readable PEM certificate"), "{err}");
        std::fs::write(
            dir.path().join("bad-der.pem"),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = load(dir.path(), &format!("          trust_stores: {{ca: [bad-der.pem]}}\n{identity}{strict}"));
        assert!(err.contains("certificate 1 of") && err.contains("bad-der.pem"), "{err}");
        let err = load(
            dir.path(),
            &format!(
                "          trust_stores: {{ca: [bad-der.pem]}}\n          trusted_identities: [\"x509.subject: CN=only\"]\n{strict}"
            ),
        );
        assert!(err.contains("notation.trusted_identities") && err.contains("no C attribute"), "{err}");
        let err = load(
            dir.path(),
            &format!(
                "          trust_stores: {{ca: [bad-der.pem]}}\n{identity}          signature_verification: {{level: lenient}}\n"
            ),
        );
        assert!(err.contains("unknown variant `lenient`") && err.contains("strict"), "{err}");
        let err = load(dir.path(), &format!("{identity}{strict}"));
        assert!(err.contains("notation.trust_stores: list at least one"), "{err}");
    }
}
