//! `notation:` authorities: the Notary Project trust-policy fields (trust stores, trusted identities, the
//! signature verification level and its per-check `override`) as a policy writes them, read and checked at load (every trust-store PEM
//! read, every subject DN parsed), and the rules that match a verified signer to them.
//!
//! Owns: the `notation:` field names and their errors, the subject-DN syntax and matching, what each
//! verification level (with its overrides) enforces, logs or skips. Must not touch: envelope parsing or the cryptography (`formats::notary`,
//! `pki::notary`), counting (`engine.rs`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use time::OffsetDateTime;

use super::engine::{NotaryCheck, NotaryEvidence, NotarySigner};
use crate::formats::Digest;
use crate::formats::cosign_layer::pem_certificates;
use crate::formats::notary::NotaryEnvelope;
use crate::pki::PkiError;
use crate::pki::notary;
use crate::pki::notary::NotaryTrust;

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

    /// What the level does with each check, as notation's levels do (trust-store-trust-policy.md).
    pub fn enforcement(self) -> Enforcement {
        use CheckAction::{Enforce, Log, Skip};
        let [integrity, authenticity, authentic_timestamp, expiry, revocation] = match self {
            Self::Strict => [Enforce; 5],
            Self::Permissive => [Enforce, Enforce, Log, Log, Log],
            Self::Audit => [Enforce, Log, Log, Log, Log],
            Self::Skip => [Skip; 5],
        };
        Enforcement { integrity, authenticity, authentic_timestamp, expiry, revocation }
    }
}

/// What an authority does when one of notation's checks fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckAction {
    /// The signature does not count.
    Enforce,
    /// The signature counts; the failure is listed in the decision's `logged`.
    Log,
    /// The check is not made (only revocation can be skipped by an override).
    Skip,
}

impl CheckAction {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "enforce" => Some(Self::Enforce),
            "log" => Some(Self::Log),
            "skip" => Some(Self::Skip),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Log => "log",
            Self::Skip => "skip",
        }
    }
}

/// The action for each of notation's five checks: the level's, with `signatureVerification.override` applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enforcement {
    pub integrity: CheckAction,
    pub authenticity: CheckAction,
    pub authentic_timestamp: CheckAction,
    pub expiry: CheckAction,
    pub revocation: CheckAction,
}

/// The checks an override may name, as notation spells them, and the actions each takes.
const OVERRIDABLE: [(&str, &[&str]); 4] = [
    ("authenticity", &["enforce", "log"]),
    ("authenticTimestamp", &["enforce", "log"]),
    ("expiry", &["enforce", "log"]),
    ("revocation", &["enforce", "log", "skip"]),
];

impl Enforcement {
    /// `level` with `overrides` applied, by notation's rules: `skip` cannot be customized, integrity cannot be
    /// overridden, only revocation can be skipped. Errors name the field.
    fn with_overrides(level: VerificationLevel, overrides: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut enforcement = level.enforcement();
        if overrides.is_empty() {
            return Ok(enforcement);
        }
        if level == VerificationLevel::Skip {
            return Err("notation.signature_verification.override: level skip cannot be customized \
                        (choose strict, permissive or audit)"
                .into());
        }
        for (check, action) in overrides {
            let field = format!("notation.signature_verification.override.{check}");
            if check == "integrity" {
                return Err(format!("{field}: integrity is always enforced and cannot be overridden"));
            }
            let Some((_, allowed)) = OVERRIDABLE.iter().find(|(name, _)| name == check) else {
                let names: Vec<&str> = OVERRIDABLE.iter().map(|(name, _)| *name).collect();
                return Err(format!("{field}: unknown check (overridable: {})", names.join(", ")));
            };
            let Some(parsed) = CheckAction::parse(action).filter(|_| allowed.contains(&action.as_str())) else {
                return Err(format!(
                    "{field}: {:?} is not allowed here (allowed: {})",
                    shorten(action),
                    allowed.join(", ")
                ));
            };
            match check.as_str() {
                "authenticity" => enforcement.authenticity = parsed,
                "authenticTimestamp" => enforcement.authentic_timestamp = parsed,
                "expiry" => enforcement.expiry = parsed,
                _ => enforcement.revocation = parsed,
            }
        }
        Ok(enforcement)
    }

    /// The checks whose action differs from `level`'s, as `check=action` (empty when none).
    fn differences(&self, level: VerificationLevel) -> Vec<String> {
        let base = level.enforcement();
        let pairs = [
            ("authenticity", self.authenticity, base.authenticity),
            ("authenticTimestamp", self.authentic_timestamp, base.authentic_timestamp),
            ("expiry", self.expiry, base.expiry),
            ("revocation", self.revocation, base.revocation),
        ];
        pairs.iter().filter(|(_, mine, theirs)| mine != theirs).map(|(n, a, _)| format!("{n}={}", a.name())).collect()
    }
}

/// One trust-store entry: the path as written, resolved, and the DER certificates read from it.
#[derive(Debug, Clone)]
pub struct TrustStoreFile {
    pub path: PathBuf,
    /// The path as the policy wrote it (a folder's file: the folder as written, then the file name).
    pub written: String,
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

    fn for_pki(&self) -> Vec<notary::TrustStore> {
        let kinds = [
            (notary::TrustStoreKind::Ca, &self.ca),
            (notary::TrustStoreKind::SigningAuthority, &self.signing_authority),
            (notary::TrustStoreKind::Tsa, &self.tsa),
        ];
        kinds
            .into_iter()
            .flat_map(|(kind, files)| {
                files.iter().map(move |f| notary::TrustStore {
                    name: f.written.clone(),
                    kind,
                    certificates: f.certificates.clone(),
                })
            })
            .collect()
    }

    fn files(&self) -> impl Iterator<Item = &TrustStoreFile> {
        self.ca.iter().chain(&self.signing_authority)
    }
}

/// A `trusted_identities` entry: any signer (`*`), or certificates whose subject holds every attribute of
/// this DN (notation's rule; `C`, `ST` and `O` are required, as notation requires).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedIdentity {
    Any,
    Subject { written: String, attributes: BTreeMap<String, String> },
}

impl TrustedIdentity {
    fn parse(text: &str) -> Result<Self, String> {
        if text.trim() == "*" {
            return Ok(Self::Any);
        }
        let Some(("x509.subject", dn)) = text.split_once(':').map(|(p, v)| (p.trim(), v.trim())) else {
            return Err(format!("{:?} is neither \"*\" nor \"x509.subject: <DN>\"", shorten(text)));
        };
        let attributes = notary::parse_dn(dn).map_err(|e| e.to_string())?;
        Ok(Self::Subject { written: dn.to_owned(), attributes })
    }
}

fn shorten(text: &str) -> String {
    text.trim().chars().take(64).collect()
}

/// A compiled `notation:` authority.
#[derive(Debug, Clone)]
pub struct Notation {
    pub trust_stores: TrustStores,
    pub trusted_identities: Vec<TrustedIdentity>,
    pub level: VerificationLevel,
    /// What the level, with its overrides, does with each check's failure.
    pub enforcement: Enforcement,
    /// SHA-256 over the trust stores' certificates: authorities with equal stores share signers.
    pub store_identity: Digest,
    /// SHA-256 over everything that changes how an envelope checks under this authority (the stores, the
    /// cached CRLs, the level and its overrides): authorities with equal ones share one check per envelope.
    pub check_identity: Digest,
    /// The stores as `pki::notary` takes them, one per file, named by its path.
    pub stores: Vec<notary::TrustStore>,
    /// Cached CRLs (DER), read at load from `crls:`: revocation is checked against them offline.
    pub crls: Vec<Vec<u8>>,
}

impl Notation {
    /// How reasons name it: `notation C=US, ST=WA, O=Acme under ca/root.pem` (the first identity and store).
    pub fn label(&self) -> String {
        let who = match self.trusted_identities.first() {
            None => "(no identity)".to_owned(),
            Some(TrustedIdentity::Any) => "*".to_owned(),
            Some(TrustedIdentity::Subject { written, .. }) => written.clone(),
        };
        let more = match self.trusted_identities.len() {
            0 | 1 => String::new(),
            n => format!(" (+{} more)", n - 1),
        };
        let store = self.trust_stores.files().next().map(|f| f.written.clone());
        let level = if self.enforcement == VerificationLevel::Strict.enforcement() {
            String::new()
        } else {
            format!(" [{}]", self.level_text())
        };
        match store {
            Some(store) => format!("notation {who}{more} under {store}{level}"),
            None => format!("notation{level}"),
        }
    }

    /// The level as reasons name it: `permissive`, or with overrides `strict (expiry=log)`.
    pub fn level_text(&self) -> String {
        let differences = self.enforcement.differences(self.level);
        if differences.is_empty() {
            self.level.name().to_owned()
        } else {
            format!("{} ({})", self.level.name(), differences.join(", "))
        }
    }

    /// True when a certificate whose subject is `subject` is one of this authority's trusted identities.
    pub fn trusts_subject(&self, subject: &str) -> bool {
        let parsed = notary::parse_dn(subject).ok();
        self.trusted_identities.iter().any(|t| match (t, &parsed) {
            (TrustedIdentity::Any, _) => true,
            (TrustedIdentity::Subject { attributes, .. }, Some(subject)) => notary::dn_matches(attributes, subject),
            (TrustedIdentity::Subject { .. }, None) => false,
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
/// cryptography), sorting what failed into notation's checks so that levels can enforce or log each. Every
/// check is evaluated whatever the others found, as notation does when a failure is only logged:
/// - integrity: the envelope parses and verifies when its own chain's last certificate is the anchor, at its
///   signing time (its signature, headers and chain are sound, whoever issued it);
/// - authenticity: it verifies under the authority's stores at its signing time (with no CRLs: a
///   certificate the CRLs revoke fails revocation, not authenticity; and, like integrity, without the `tsa`
///   stores: a timestamp token they do not vouch for fails the authentic timestamp only);
/// - authentic timestamp, expiry, revocation: [`notary::later_checks`] on the chain as it ends in the
///   authority's stores, or, when authenticity failed, in the envelope's own last certificate (notation checks
///   these on the envelope's own chain): the chain valid at the present or a trusted timestamp's time; the
///   expiry not passed; the cached and fetched CRLs (the evidence's) revoking nothing, and every certificate
///   naming a distribution point having a current CRL among them.
///
/// The engine's [`super::engine::NotaryVerifier`].
pub fn check_envelope(evidence: &NotaryEvidence, notation: &Notation, now: OffsetDateTime) -> NotaryCheck {
    let mut check = NotaryCheck {
        integrity: Ok(()),
        authenticity: Ok(()),
        authentic_timestamp: Ok(()),
        expiry: Ok(()),
        revocation: Ok(()),
        signer: None,
        target_digest: None,
    };
    let envelope = match NotaryEnvelope::parse(&evidence.media_type, &evidence.envelope) {
        Ok(envelope) => envelope,
        Err(e) => return NotaryCheck { integrity: Err(e.to_string()), ..check },
    };
    let authentic = kept_or_verified(evidence, &envelope, notation);
    let sound = match &authentic {
        Ok(verified) => Ok(verified.clone()),
        Err(_) => self_anchored(&envelope, notation),
    };
    let verified = match sound {
        Ok(verified) => verified,
        Err(e) => return NotaryCheck { integrity: Err(e.to_string()), ..check },
    };
    check.signer = Some(NotarySigner {
        subject: verified.subject.clone(),
        chain_sha256: verified.thumbprints.clone(),
        signing_time: Some(verified.signing_time),
    });
    check.target_digest = Some(verified.target.digest);
    let own;
    let stores = match authentic {
        Ok(_) => notation.stores.as_slice(),
        Err(e) => {
            check.authenticity = Err(e);
            own = own_chain_stores(&envelope, notation);
            own.as_slice()
        }
    };
    let crls: Cow<'_, [Vec<u8>]> = if evidence.crls.is_empty() {
        Cow::Borrowed(&notation.crls)
    } else {
        Cow::Owned(notation.crls.iter().chain(&evidence.crls).cloned().collect())
    };
    let later = notary::later_checks(&envelope, NotaryTrust { stores, crls: &crls }, now);
    check.authentic_timestamp = later.authentic_timestamp.map_err(|e| e.to_string());
    check.expiry = later.expiry.map_err(|e| e.to_string());
    check.revocation = match later.revocation {
        Ok(found) => revocation(&found, &evidence.crl_notes),
        Err(e) => Err(e.to_string()),
    };
    check
}

/// [`authentic`], as [`wanted_crl_urls`] kept it for this authority's rules or verified now.
fn kept_or_verified(
    evidence: &NotaryEvidence,
    envelope: &NotaryEnvelope,
    notation: &Notation,
) -> Result<notary::VerifiedNotary, String> {
    let kept = evidence.authentic.iter().find(|(rules, _)| *rules == notation.check_identity);
    match kept {
        Some((_, authentic)) => authentic.clone(),
        None => authentic(envelope, notation).map_err(|e| e.to_string()),
    }
}

/// The envelope verified under the authority's stores at its signing time, with no CRLs: authenticity.
fn authentic(envelope: &NotaryEnvelope, notation: &Notation) -> Result<notary::VerifiedNotary, PkiError> {
    at_signing_time(envelope, &notation.stores)
}

/// The envelope's own chain's last certificate as the only `ca` and `signingAuthority` store, beside the
/// authority's `tsa` stores.
fn own_chain_stores(envelope: &NotaryEnvelope, notation: &Notation) -> Vec<notary::TrustStore> {
    let last = envelope.certificate_chain.last().cloned().unwrap_or_default();
    let own = |kind| notary::TrustStore { name: "own chain".into(), kind, certificates: vec![last.clone()] };
    let mut stores = vec![own(notary::TrustStoreKind::Ca), own(notary::TrustStoreKind::SigningAuthority)];
    stores.extend(notation.stores.iter().filter(|s| s.kind == notary::TrustStoreKind::Tsa).cloned());
    stores
}

/// The envelope verified with its own chain as the anchor ([`own_chain_stores`]), at its signing time.
fn self_anchored(envelope: &NotaryEnvelope, notation: &Notation) -> Result<notary::VerifiedNotary, PkiError> {
    at_signing_time(envelope, &own_chain_stores(envelope, notation))
}

/// The envelope verified under `stores` without their `tsa` stores (a timestamp is the authentic timestamp
/// check's, never integrity's or authenticity's), at its signing time, with no CRLs.
fn at_signing_time(
    envelope: &NotaryEnvelope,
    stores: &[notary::TrustStore],
) -> Result<notary::VerifiedNotary, PkiError> {
    let stores: Vec<notary::TrustStore> =
        stores.iter().filter(|s| s.kind != notary::TrustStoreKind::Tsa).cloned().collect();
    let signing_time = envelope.scheme_signing_time().unwrap_or(OffsetDateTime::UNIX_EPOCH);
    notary::verify_notary(envelope, NotaryTrust { stores: &stores, crls: &[] }, signing_time)
}

/// The revocation outcome; an unknown status says why each fetch failed (`notes`).
fn revocation(found: &notary::Revocation, notes: &[String]) -> Result<(), String> {
    match found {
        notary::Revocation::Good => Ok(()),
        notary::Revocation::Unknown(lines) => {
            let lines: Vec<&String> = lines.iter().chain(notes).collect();
            Err(format!(
                "revocation status unknown: {}",
                lines.iter().map(|l| l.as_str()).collect::<Vec<_>>().join("; ")
            ))
        }
    }
}

/// The distribution points to fetch CRLs from for `evidence`: those its certificates name, when under one of
/// `notations` that checks revocation its revocation status is unknown with the cached CRL files alone, the
/// chain taken as it ends in the authority's stores (authenticity holds), or in its own last certificate
/// where the authority only logs authenticity and enforces revocation. So a signature nobody trusts makes
/// no request unless an authority's verdict depends on its revocation. Empty otherwise. Each authenticity it
/// verifies is kept in `evidence.authentic` for [`check_envelope`].
pub fn wanted_crl_urls<'a>(
    notations: impl Iterator<Item = &'a Notation>,
    evidence: &mut NotaryEvidence,
    now: OffsetDateTime,
) -> Vec<String> {
    let Ok(envelope) = NotaryEnvelope::parse(&evidence.media_type, &evidence.envelope) else {
        return Vec::new();
    };
    let mut checking =
        notations.filter(|n| n.level != VerificationLevel::Skip && n.enforcement.revocation != CheckAction::Skip);
    let unknown = checking.any(|notation| {
        let enforcement = &notation.enforcement;
        let own;
        let authentic = kept_or_verified(evidence, &envelope, notation);
        if !evidence.authentic.iter().any(|(rules, _)| *rules == notation.check_identity) {
            evidence.authentic.push((notation.check_identity.clone(), authentic.clone()));
        }
        let stores = match authentic {
            Ok(_) => notation.stores.as_slice(),
            Err(_)
                if enforcement.authenticity == CheckAction::Log && enforcement.revocation == CheckAction::Enforce =>
            {
                own = own_chain_stores(&envelope, notation);
                own.as_slice()
            }
            Err(_) => return false,
        };
        let trust = NotaryTrust { stores, crls: &notation.crls };
        matches!(notary::later_checks(&envelope, trust, now).revocation, Ok(found) if found != notary::Revocation::Good)
    });
    if unknown { notary::crl_distribution_urls(&envelope) } else { Vec::new() }
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotation {
    #[serde(default)]
    trust_stores: RawTrustStores,
    #[serde(default)]
    trusted_identities: Vec<String>,
    signature_verification: RawSignatureVerification,
    /// CRL files (DER or PEM `X509 CRL`) to check revocation against offline; a notarium addition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    crls: Vec<String>,
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
    /// notation's custom level: check name (`authenticity`, `authenticTimestamp`, `expiry`, `revocation`) to
    /// action (`enforce`, `log`, `skip`); checked against notation's rules at load.
    #[serde(default, rename = "override", skip_serializing_if = "BTreeMap::is_empty")]
    overrides: BTreeMap<String, String>,
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
        let enforcement = Enforcement::with_overrides(level, &self.signature_verification.overrides)?;
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
        let stores = trust_stores.for_pki();
        let crls: Vec<Vec<u8>> = self.crls.iter().map(|c| read_crl(&base.join(c))).collect::<Result<_, _>>()?;
        let check_identity = check_identity(&store_identity, &crls, level, &enforcement);
        Ok(Notation {
            trust_stores,
            trusted_identities,
            level,
            enforcement,
            store_identity,
            check_identity,
            stores,
            crls,
        })
    }
}

/// What [`Notation::check_identity`] digests: the store identity (the `tsa` store included), the cached CRLs'
/// digests sorted, the level and each check's action.
fn check_identity(store: &Digest, crls: &[Vec<u8>], level: VerificationLevel, enforcement: &Enforcement) -> Digest {
    let mut crls: Vec<String> = crls.iter().map(|crl| Digest::of(crl).hex().to_owned()).collect();
    crls.sort();
    crls.dedup();
    let text = format!("stores:{store}\ncrls:{}\nlevel:{}\n{enforcement:?}\n", crls.join(","), level.name());
    Digest::of(text.as_bytes())
}

/// Every certificate of every path of one store type: a file is read as PEM, a folder as all its files.
fn read_store(base: &Path, kind: &str, paths: &[String]) -> Result<Vec<TrustStoreFile>, String> {
    let mut files = Vec::new();
    for written in paths {
        let path = base.join(written);
        let field = format!("notation.trust_stores.{kind}");
        let entries = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => folder_files(&path).map_err(|e| format!("{field}: {e}"))?,
            Ok(_) => vec![path.clone()],
            Err(e) => return Err(format!("{field}: cannot read {}: {e}", path.display())),
        };
        if entries.is_empty() {
            return Err(format!("{field}: the folder {} holds no certificate file", base.join(written).display()));
        }
        for file in entries {
            let certificates = read_certificates(&file).map_err(|e| format!("{field}: {e}"))?;
            let written = match file.strip_prefix(&path) {
                Ok(inside) if !inside.as_os_str().is_empty() => format!("{written}/{}", inside.display()),
                _ => written.clone(),
            };
            files.push(TrustStoreFile { path: file, written, certificates });
        }
    }
    Ok(files)
}

/// A larger `crls:` file is refused unread (a CRL past pki::notary's 4 MiB is never used anyway).
const MAX_CRL_FILE_BYTES: u64 = 4 * crate::local_file::MIB;
/// A larger trust-store PEM file is refused unread (a PEM certificate is a few kilobytes).
const MAX_TRUST_STORE_FILE_BYTES: u64 = crate::local_file::MIB;

/// One CRL file, DER or PEM (`-----BEGIN X509 CRL-----`), as DER.
fn read_crl(file: &Path) -> Result<Vec<u8>, String> {
    let bytes = crate::local_file::read_capped(file, MAX_CRL_FILE_BYTES).map_err(|e| format!("notation.crls: {e}"))?;
    let Ok(text) = std::str::from_utf8(&bytes) else { return Ok(bytes) };
    let body: String = text.lines().map(str::trim).filter(|l| !l.starts_with("-----")).collect();
    if !text.contains("-----BEGIN X509 CRL-----") {
        return Err(format!("notation.crls: {} is neither DER nor a PEM X509 CRL", file.display()));
    }
    crate::formats::base64_bytes::decode(&body)
        .map_err(|_| format!("notation.crls: {} holds a PEM CRL that is not base64", file.display()))
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
    let text = crate::local_file::read_text_capped(file, MAX_TRUST_STORE_FILE_BYTES).map_err(|e| e.to_string())?;
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
    fn a_trusted_identity_is_a_star_or_an_x509_subject() {
        assert_eq!(TrustedIdentity::parse("*").unwrap(), TrustedIdentity::Any);
        assert!(matches!(
            TrustedIdentity::parse("x509.subject: C=US, ST=WA, O=N").unwrap(),
            TrustedIdentity::Subject { .. }
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
        assert!(err.contains("notation.trusted_identities") && err.contains("C is missing"), "{err}");
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

    #[test]
    fn policy_check_refuses_overrides_notation_refuses_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(format!("{FIXTURES}/chain-root.pem"), dir.path().join("root.pem")).unwrap();
        let with = |verification: &str| {
            load(
                dir.path(),
                &format!(
                    "          trust_stores: {{ca: [root.pem]}}\n          trusted_identities: [\"*\"]\n          signature_verification: {verification}\n"
                ),
            )
        };
        let field = "notation.signature_verification.override";
        let cases = [
            ("{level: strict, override: {integrity: log}}", format!("{field}.integrity: integrity is always enforced")),
            ("{level: strict, override: {expiry: skip}}", format!("{field}.expiry: \"skip\" is not allowed here")),
            (
                "{level: audit, override: {authenticity: skip}}",
                format!("{field}.authenticity: \"skip\" is not allowed"),
            ),
            ("{level: strict, override: {expiry: warn}}", format!("{field}.expiry: \"warn\" is not allowed here")),
            ("{level: strict, override: {signature: log}}", format!("{field}.signature: unknown check")),
            ("{level: skip, override: {revocation: skip}}", format!("{field}: level skip cannot be customized")),
        ];
        for (verification, expected) in cases {
            let err = with(verification);
            assert!(err.contains(&expected), "{verification}: {err}");
        }
    }

    #[test]
    fn overrides_apply_on_top_of_the_level() {
        let raw: RawNotation = yaml_serde::from_str(
            "trust_stores: {ca: [chain-root.pem]}\ntrusted_identities: [\"*\"]\n\
             signature_verification: {level: audit, override: {authenticity: enforce, revocation: skip}}\n",
        )
        .unwrap();
        let notation = raw.compile(Path::new(FIXTURES)).unwrap();
        let expected = Enforcement {
            integrity: CheckAction::Enforce,
            authenticity: CheckAction::Enforce,
            authentic_timestamp: CheckAction::Log,
            expiry: CheckAction::Log,
            revocation: CheckAction::Skip,
        };
        assert_eq!(notation.enforcement, expected);
        assert_eq!(notation.level_text(), "audit (authenticity=enforce, revocation=skip)");
        assert!(notation.label().ends_with("[audit (authenticity=enforce, revocation=skip)]"), "{}", notation.label());
        // An override equal to the level's own action changes nothing.
        let same =
            Enforcement::with_overrides(VerificationLevel::Strict, &[("expiry".into(), "enforce".into())].into());
        assert_eq!(same.unwrap(), VerificationLevel::Strict.enforcement());
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/third-party/notation-1.3");

    /// A `notation:` authority at `level` over the fixtures folder (`ca` store `ca`, optional `crls`).
    fn fixture_authority(ca: &str, identity: &str, level: &str, crls: &[&str]) -> Notation {
        let yaml = format!(
            "trust_stores: {{ca: [{ca}]}}\ntrusted_identities: [\"{identity}\"]\nsignature_verification: {{level: {level}}}\ncrls: {crls:?}\n"
        );
        let raw: RawNotation = yaml_serde::from_str(&yaml).unwrap();
        raw.compile(Path::new(FIXTURES)).unwrap()
    }

    fn fixture_evidence(name: &str) -> (NotaryEvidence, OffsetDateTime) {
        let envelope = std::fs::read(format!("{FIXTURES}/{name}")).unwrap();
        let media_type = if name.ends_with(".cose") { "application/cose" } else { "application/jose+json" };
        let parsed = NotaryEnvelope::parse(media_type, &envelope).unwrap();
        let soon = parsed.scheme_signing_time().unwrap() + time::Duration::minutes(1);
        (
            NotaryEvidence {
                envelope,
                media_type: media_type.into(),
                source: name.into(),
                ..NotaryEvidence::default()
            },
            soon,
        )
    }

    #[test]
    fn check_envelope_sorts_failures_into_notations_checks() {
        let (chain, soon) = fixture_evidence("chain.jws");
        let good =
            check_envelope(&chain, &fixture_authority("chain-root.pem", "*", "strict", &["intermediate.crl"]), soon);
        assert!(good.integrity.is_ok() && good.authenticity.is_ok() && good.revocation.is_ok(), "{good:?}");
        let signer = good.signer.unwrap();
        assert!(signer.subject.contains("CN=leaf.notarium.example"));
        assert_eq!(signer.chain_sha256.len(), 3);

        // Another store: integrity holds, authenticity fails.
        let other = check_envelope(&chain, &fixture_authority("generate-test.crt", "*", "strict", &[]), soon);
        assert!(other.integrity.is_ok(), "{other:?}");
        assert!(other.authenticity.as_ref().unwrap_err().contains("no trusted authority issued it"), "{other:?}");

        // No CRL cached for a certificate naming one: revocation unknown.
        let unknown = check_envelope(&chain, &fixture_authority("chain-root.pem", "*", "strict", &[]), soon);
        assert!(unknown.authenticity.is_ok() && unknown.revocation.is_err(), "{unknown:?}");

        // Revoked by the cached CRL: a revocation failure, not an authenticity one.
        let (revoked, soon) = fixture_evidence("chain-revoked.jws");
        let check =
            check_envelope(&revoked, &fixture_authority("chain-root.pem", "*", "strict", &["intermediate.crl"]), soon);
        assert!(check.authenticity.is_ok(), "{check:?}");
        assert!(check.revocation.as_ref().unwrap_err().contains("revoked"), "{check:?}");

        // The generate-test certificate two days later: expired, an authentic-timestamp failure.
        let (test, soon) = fixture_evidence("generate-test.jws");
        let store = fixture_authority("generate-test.crt", "*", "strict", &[]);
        let later = check_envelope(&test, &store, soon + time::Duration::days(2));
        assert!(later.authenticity.is_ok() && later.expiry.is_ok(), "{later:?}");
        assert!(later.authentic_timestamp.as_ref().unwrap_err().contains("not valid at"), "{later:?}");

        // A changed payload: integrity fails and no signer is named.
        let mut jws: serde_json::Value = serde_json::from_slice(&test.envelope).unwrap();
        let signature = jws["signature"].as_str().unwrap().to_owned();
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        jws["signature"] = format!("{flipped}{}", &signature[1..]).into();
        let tampered = NotaryEvidence { envelope: serde_json::to_vec(&jws).unwrap(), ..test };
        let check = check_envelope(&tampered, &store, soon);
        assert!(check.integrity.is_err() && check.signer.is_none(), "{check:?}");
    }

    #[test]
    fn every_check_is_evaluated_on_the_envelopes_own_chain_when_authenticity_fails() {
        let untrusted = |crls: &[&str]| fixture_authority("generate-test.crt", "*", "strict", crls);
        // Expired (48 hours) and under another store: expiry fails beside authenticity; the chain itself is
        // valid now, and its revocation is checked against the CRL files.
        let (chain, soon) = fixture_evidence("chain.jws");
        let later = soon + time::Duration::days(3);
        let check = check_envelope(&chain, &untrusted(&["intermediate.crl"]), later);
        assert!(check.integrity.is_ok() && check.authenticity.is_err(), "{check:?}");
        assert!(check.expiry.as_ref().unwrap_err().contains("expired"), "{check:?}");
        assert!(check.authentic_timestamp.is_ok() && check.revocation.is_ok(), "{check:?}");
        // No CRL for a certificate naming a distribution point: unknown, as under a trusted chain.
        let check = check_envelope(&chain, &untrusted(&[]), soon);
        assert!(check.revocation.as_ref().unwrap_err().contains("revocation status unknown"), "{check:?}");
        // A revoked leaf under another store: revocation fails.
        let (revoked, soon) = fixture_evidence("chain-revoked.jws");
        let check = check_envelope(&revoked, &untrusted(&["intermediate.crl"]), soon);
        assert!(check.authenticity.is_err(), "{check:?}");
        assert!(check.revocation.as_ref().unwrap_err().contains("is revoked"), "{check:?}");
        // An expired self-signed certificate under another store: the authentic timestamp fails.
        let (test, soon) = fixture_evidence("generate-test.jws");
        let check = check_envelope(
            &test,
            &fixture_authority("chain-root.pem", "*", "strict", &[]),
            soon + time::Duration::days(2),
        );
        assert!(check.authenticity.is_err(), "{check:?}");
        assert!(check.authentic_timestamp.as_ref().unwrap_err().contains("not valid at"), "{check:?}");
    }

    #[test]
    fn one_failing_check_does_not_hide_another() {
        // Trusted, expired, and no CRL for its distribution point: both expiry and revocation fail.
        let (chain, soon) = fixture_evidence("chain.jws");
        let check = check_envelope(
            &chain,
            &fixture_authority("chain-root.pem", "*", "strict", &[]),
            soon + time::Duration::days(3),
        );
        assert!(check.authenticity.is_ok() && check.authentic_timestamp.is_ok(), "{check:?}");
        assert!(check.expiry.is_err() && check.revocation.is_err(), "{check:?}");
    }

    #[test]
    fn an_envelope_verified_to_choose_crls_is_not_verified_again_by_the_check() {
        let (fresh, soon) = fixture_evidence("chain.jws");
        let bare = fixture_authority("chain-root.pem", "*", "strict", &[]);
        let mut chosen = fresh.clone();
        assert_eq!(wanted_crl_urls([&bare, &bare].into_iter(), &mut chosen, soon).len(), 1);
        assert_eq!(chosen.authentic.len(), 1, "verified once, kept under the authority's rules");
        assert!(matches!(&chosen.authentic[0], (rules, Ok(_)) if *rules == bare.check_identity));
        // The same check as without the kept result...
        let (kept, verified) = (check_envelope(&chosen, &bare, soon), check_envelope(&fresh, &bare, soon));
        assert_eq!(format!("{kept:?}"), format!("{verified:?}"));
        // ...because the check takes it (a kept failure shows), not verifying the envelope again.
        chosen.authentic[0].1 = Err("kept".into());
        assert_eq!(check_envelope(&chosen, &bare, soon).authenticity, Err("kept".into()));
    }

    #[test]
    fn a_kept_authenticity_serves_only_the_rules_it_was_verified_under() {
        let (mut evidence, soon) = fixture_evidence("chain.jws");
        let bare = fixture_authority("chain-root.pem", "*", "strict", &[]);
        let other = fixture_authority("generate-test.crt", "*", "strict", &[]);
        evidence.authentic.push((other.check_identity.clone(), Err("kept for another store".into())));
        assert!(check_envelope(&evidence, &bare, soon).authenticity.is_ok());
        let mut untrusted = fixture_evidence("chain.jws").0;
        wanted_crl_urls([&other].into_iter(), &mut untrusted, soon);
        assert!(check_envelope(&untrusted, &bare, soon).authenticity.is_ok(), "other's failure is not bare's");
    }

    #[test]
    fn crls_are_wanted_only_for_a_trusted_chain_the_cached_files_leave_unknown_and_fetched_ones_count() {
        let (chain, soon) = fixture_evidence("chain.jws");
        let wanted = |notation: &Notation| wanted_crl_urls([notation].into_iter(), &mut chain.clone(), soon);
        let bare = fixture_authority("chain-root.pem", "*", "strict", &[]);
        assert_eq!(wanted(&bare), vec!["http://crl.notarium.example/intermediate.crl".to_owned()]);
        let cached = fixture_authority("chain-root.pem", "*", "strict", &["intermediate.crl"]);
        assert!(wanted(&cached).is_empty(), "a cached CRL file serves offline");
        let other = fixture_authority("generate-test.crt", "*", "strict", &[]);
        assert!(wanted(&other).is_empty(), "a chain no store trusts makes no request");
        let audit = fixture_authority("generate-test.crt", "*", "audit", &[]);
        assert!(wanted(&audit).is_empty(), "revocation only logged for an untrusted chain: no request");
        // Authenticity logged, revocation enforced: the envelope's own chain's status decides, so it is fetched.
        let deciding = fixture_authority("generate-test.crt", "*", "strict, override: {authenticity: log}", &[]);
        assert_eq!(wanted(&deciding), vec!["http://crl.notarium.example/intermediate.crl".to_owned()]);
        // Expired: the revocation status still counts under an expiry override, so it is still wanted.
        let expired = wanted_crl_urls([&bare].into_iter(), &mut chain.clone(), soon + time::Duration::days(3));
        assert_eq!(expired.len(), 1);
        let skipping = fixture_authority("chain-root.pem", "*", "strict, override: {revocation: skip}", &[]);
        assert!(wanted(&skipping).is_empty(), "revocation skipped: nothing to fetch");

        // A fetched CRL is checked beside the cached files, exactly as they are.
        let crl = std::fs::read(format!("{FIXTURES}/intermediate.crl")).unwrap();
        let fetched = NotaryEvidence { crls: vec![crl.clone()], ..chain.clone() };
        assert!(check_envelope(&fetched, &bare, soon).revocation.is_ok());
        let (revoked, soon) = fixture_evidence("chain-revoked.jws");
        let check = check_envelope(&NotaryEvidence { crls: vec![crl], ..revoked }, &bare, soon);
        assert!(check.revocation.unwrap_err().contains("is revoked"));
        // A failed fetch says why in the unknown status.
        let note = "the CRL could not be fetched: crl.notarium.example answered HTTP 500".to_owned();
        let failed = NotaryEvidence { crl_notes: vec![note.clone()], ..chain };
        assert!(check_envelope(&failed, &bare, soon).revocation.unwrap_err().ends_with(&note));
    }

    #[test]
    fn a_crl_file_that_is_neither_der_nor_pem_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.crl"), "not a crl").unwrap();
        std::fs::copy(format!("{FIXTURES}/chain-root.pem"), dir.path().join("root.pem")).unwrap();
        let yaml = "trust_stores: {ca: [root.pem]}\ntrusted_identities: [\"*\"]\nsignature_verification: {level: strict}\ncrls: [bad.crl]\n";
        let raw: RawNotation = yaml_serde::from_str(yaml).unwrap();
        let err = raw.compile(dir.path()).unwrap_err();
        assert!(err.contains("notation.crls") && err.contains("bad.crl"), "{err}");
    }

    #[test]
    fn a_tsa_store_lets_an_expired_certificate_count_at_its_timestamps_time() {
        let (stamped, soon) = fixture_evidence("generate-test-timestamped.jws");
        let later = soon + time::Duration::days(2);
        let without = fixture_authority("generate-test.crt", "*", "strict", &[]);
        let check = check_envelope(&stamped, &without, later);
        assert!(check.authentic_timestamp.as_ref().unwrap_err().contains("not valid at"), "{check:?}");
        let yaml = "trust_stores: {ca: [generate-test.crt], tsa: [tsa-root.pem]}\ntrusted_identities: [\"*\"]\n\
                    signature_verification: {level: strict}\n";
        let raw: RawNotation = yaml_serde::from_str(yaml).unwrap();
        let with_tsa = raw.compile(Path::new(FIXTURES)).unwrap();
        let check = check_envelope(&stamped, &with_tsa, later);
        assert!(
            check.integrity.is_ok() && check.authenticity.is_ok() && check.authentic_timestamp.is_ok(),
            "{check:?}"
        );
        // A token the `tsa` store does not vouch for fails the authentic timestamp only.
        let yaml = "trust_stores: {ca: [generate-test.crt], tsa: [chain-root.pem]}\ntrusted_identities: [\"*\"]\n\
                    signature_verification: {level: strict}\n";
        let raw: RawNotation = yaml_serde::from_str(yaml).unwrap();
        let check = check_envelope(&stamped, &raw.compile(Path::new(FIXTURES)).unwrap(), soon);
        assert!(check.integrity.is_ok() && check.authenticity.is_ok(), "{check:?}");
        assert!(check.authentic_timestamp.is_err() && check.expiry.is_ok(), "{check:?}");
    }
}
