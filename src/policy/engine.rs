//! The decision engine: from a policy, the public keys its authorities stand for and the evidence read
//! from a registry, to an allowance and the reasons for it. Pure: no I/O and no clock.
//!
//! Owns: identity binding (a signature counts only for the repository it names), counting over distinct
//! signers (k of n means k keys or keyless identities, distinct by public key or by (issuer, subject), each
//! signature meeting at most one authority), keyless authorities (a Sigstore bundle verified by
//! `pki::verify_bundle` against the configured trusted roots at the time given), `require_tlog`, attestation
//! checks and their conditions (over `predicate` and the signer's `certificate`), `require_digest`. Must not
//! touch: registries, key backends, the register, the cache; `service::verify` gathers the evidence, the
//! trusted roots and the present time, and records the decision.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::notation::{CheckAction, Enforcement, Notation, VerificationLevel};
use super::{Authority, ConditionOutcome, IdentityMode, Keyless, Mode, Policy, RequiredAttestation};
use crate::config::TrustedRoots;
use crate::formats::bundle::{Bundle, Signer};
use crate::formats::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use crate::formats::in_toto::{COSIGN_SIGN_V1, Statement};
use crate::formats::simple_signing::SimpleSigning;
use crate::formats::{Digest, FormatError, ImageReference};
use crate::glob::glob_matches;
use crate::keys::PublicKey;
use crate::pki::{self, Artifact, CertificateIdentity, Expected};

/// A simple-signing payload and the signature over it, as read from a `.sig` layer (unverified).
#[derive(Debug, Clone)]
pub struct SignedPayload {
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Everything read about one digest: tag-scheme signatures, DSSE envelopes (`.att` layers and Sigstore
/// bundle referrers), whole Sigstore bundles (bundle referrers, and `.sig` layers carrying cosign's
/// certificate or log annotations), Notary Project signature envelopes (referrers), and what could not be
/// read, with why.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub signatures: Vec<SignedPayload>,
    pub envelopes: Vec<Vec<u8>>,
    pub bundles: Vec<SigstoreEvidence>,
    pub notary: Vec<NotaryEvidence>,
    pub skipped: Vec<String>,
    /// Key versions revoked (docs/FORMATS.md §25), with what the register proves about this digest.
    pub revoked: Vec<RevokedKey>,
}

/// A revoked key version as verification sees it: its signatures do not count, except, when it has a
/// `compromised_at`, those the register proves were made before it (`earlier`).
#[derive(Debug, Clone)]
pub struct RevokedKey {
    pub key: PublicKey,
    /// `id@N`, as reasons name it.
    pub label: String,
    pub reason: String,
    /// RFC 3339; `None`: every signature by the version is refused.
    pub compromised_at: Option<String>,
    /// SHA-256 (hex) of the signatures (of the envelopes, for attestations) whose `sign`/`attest` entry is
    /// in the register, included in a signed checkpoint, with a time before `compromised_at`.
    pub earlier: Vec<String>,
}

impl RevokedKey {
    /// Why a signature (or envelope) with SHA-256 `sha256` by this version does not count, if it does not.
    fn refuses(&self, sha256: &str) -> Option<String> {
        match &self.compromised_at {
            None => Some(format!("key {} is revoked: {}", self.label, self.reason)),
            Some(_) if self.earlier.iter().any(|e| e == sha256) => None,
            Some(at) => Some(format!(
                "key {} is revoked as compromised at {at} ({}): signature sha256:{sha256} is not provably earlier \
                 (no register entry before {at} in a signed checkpoint)",
                self.label, self.reason
            )),
        }
    }
}

/// A Notary Project signature envelope read from a referrer of artifact type
/// `application/vnd.cncf.notary.signature`, unverified, with the CRLs fetched for it.
#[derive(Debug, Clone, Default)]
pub struct NotaryEvidence {
    pub envelope: Vec<u8>,
    /// The envelope's media type: `application/jose+json` (JWS) or `application/cose` (COSE).
    pub media_type: String,
    /// How reasons name it (`notation signature sha256:…`).
    pub source: String,
    /// CRLs (DER, unverified) fetched from the distribution points its certificates name; checked beside an
    /// authority's cached CRL files, exactly as they are.
    pub crls: Vec<Vec<u8>>,
    /// Why a distribution point gave no CRL (the URL's host and what failed), for revocation reasons.
    pub crl_notes: Vec<String>,
    /// The envelope's authenticity under an authority (by [`Notation::check_identity`]), where choosing the
    /// CRLs to fetch already verified it: [`super::notation::check_envelope`] takes it instead of verifying
    /// the envelope again. Set only by that choice, on this envelope's own bytes.
    pub authentic: Vec<(Digest, Result<pki::notary::VerifiedNotary, String>)>,
}

/// What verifying one Notary Project envelope against one authority's trust stores established, check by
/// check as the Notary Project names them (levels decide which are enforced and which only logged).
#[derive(Debug, Clone)]
pub struct NotaryCheck {
    /// The envelope parses, its signature verifies with the leaf's key, its critical headers are known.
    pub integrity: Result<(), String>,
    /// The chain ends at a certificate of the trust store (the `ca` or `signingAuthority` store, by the
    /// envelope's signing scheme), valid at the signing time.
    pub authenticity: Result<(), String>,
    /// An RFC 3161 countersignature, where there is one, chains to the `tsa` store and covers the signature.
    pub authentic_timestamp: Result<(), String>,
    /// The envelope's expiry claim has not passed.
    pub expiry: Result<(), String>,
    /// No certificate of the chain is revoked (by a CRL where one is named and reachable).
    pub revocation: Result<(), String>,
    /// The signer, when integrity holds.
    pub signer: Option<NotarySigner>,
    /// The descriptor digest the payload signs.
    pub target_digest: Option<String>,
}

/// Who signed a Notary Project envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotarySigner {
    /// The leaf certificate's subject DN (RFC 4514 text).
    pub subject: String,
    /// SHA-256 of each certificate of the envelope's chain, leaf first.
    pub chain_sha256: Vec<String>,
    /// The signing time the envelope claims (or the timestamp's time, when one verified).
    pub signing_time: Option<OffsetDateTime>,
}

impl NotaryCheck {
    /// The checks `enforcement` enforces that failed, and the ones it only logs that failed (a skipped
    /// check's failure is in neither).
    fn under(&self, enforcement: &Enforcement) -> (Vec<String>, Vec<String>) {
        let checks = [
            ("integrity", &self.integrity, enforcement.integrity),
            ("authenticity", &self.authenticity, enforcement.authenticity),
            ("authentic timestamp", &self.authentic_timestamp, enforcement.authentic_timestamp),
            ("expiry", &self.expiry, enforcement.expiry),
            ("revocation", &self.revocation, enforcement.revocation),
        ];
        let (mut enforced, mut logged) = (Vec::new(), Vec::new());
        for (name, outcome, action) in checks {
            let Err(why) = outcome else { continue };
            let line = format!("{name}: {why}");
            match action {
                CheckAction::Enforce => enforced.push(line),
                CheckAction::Log => logged.push(line),
                CheckAction::Skip => {}
            }
        }
        (enforced, logged)
    }
}

/// A Notary Project envelope checked under the authorities whose [`Notation::check_identity`] is `rules`,
/// whose trust stores are `store` (a [`Notation::store_identity`]).
#[derive(Debug, Clone)]
pub struct NotaryFact {
    pub store: Digest,
    pub rules: Digest,
    pub check: NotaryCheck,
    pub source: String,
    /// SHA-256 of the envelope, to find it again.
    pub sha256: String,
}

/// A Sigstore bundle read from a registry, unverified.
#[derive(Debug, Clone)]
pub struct SigstoreEvidence {
    pub bundle: Bundle,
    /// What a message signature signed: a `.sig` layer's simple-signing payload. `None` for a DSSE bundle
    /// (its in-toto Statement binds the image).
    pub payload: Option<Vec<u8>>,
    /// How reasons name it (`bundle sha256:…`, `.sig layer sha256:…`).
    pub source: String,
}

/// Where Sigstore bundles and Notary Project envelopes are judged: the trusted roots in force, how a Notary
/// Project envelope is checked against an authority's trust stores, and the present time.
#[derive(Clone, Copy)]
pub struct Trust<'a> {
    pub roots: &'a TrustedRoots,
    pub notary: NotaryVerifier,
    pub now: OffsetDateTime,
}

/// Checks one Notary Project envelope against one `notation:` authority's trust stores at a time.
pub type NotaryVerifier = fn(&NotaryEvidence, &Notation, OffsetDateTime) -> NotaryCheck;

/// An authority and the public keys it stands for, or why they could not be had.
#[derive(Debug, Clone)]
pub struct AuthorityKeys {
    pub label: String,
    pub keys: Result<Vec<PublicKey>, String>,
}

/// What the engine needs to know besides the policy and the evidence.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// An envelope carrying more signatures than this is skipped before any is checked.
    pub max_envelope_signatures: usize,
}

/// The engine's answer.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub allowed: bool,
    pub reasons: Vec<String>,
    pub signatures: Vec<UsedSignature>,
    pub attestations: Vec<UsedAttestation>,
    /// Evidence left out, with why (unreadable, oversized, over a cap).
    pub skipped: Vec<String>,
    /// Checks a `notation:` authority's level logs rather than enforces, that failed on a signature it counted.
    pub logged: Vec<String>,
}

/// A signature that counted toward the threshold.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct UsedSignature {
    pub authority: String,
    /// The repository (and tag) the signature names, in canonical form.
    pub identity: Option<String>,
    /// SHA-256 of the signature bytes (of the envelope for a bundle signature), to find it again.
    pub signature_sha256: String,
    /// A keyless signature's certificate subject (SAN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_identity: Option<String>,
    /// A keyless signature's certificate OIDC issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_issuer: Option<String>,
    /// A Notary Project signature's leaf certificate subject DN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_dn: Option<String>,
    /// A Notary Project signature's certificate chain: SHA-256 of each certificate, leaf first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_chain_sha256: Option<Vec<String>>,
    /// The index of the transparency-log entry that vouched for the signature, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    /// The configured trusted root the bundle verified under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_root: Option<String>,
}

/// An attestation that satisfied a requirement.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsedAttestation {
    pub predicate_type: String,
    pub authority: String,
    pub envelope_digest: String,
}

/// Decides whether `digest`, which `image` names, may run under `policy`.
pub fn decide(
    policy: &Policy,
    authorities: &[AuthorityKeys],
    image: &ImageReference,
    digest: &Digest,
    evidence: &Evidence,
    bounds: Bounds,
    trust: Trust<'_>,
) -> Verdict {
    let keys = DistinctKeys::of(authorities);
    let (facts, failures) = verify_bundles(policy, &keys, &evidence.bundles, trust);
    let notary = verify_notary(policy, &evidence.notary, trust);
    let checked = Checked { facts: &facts, failures: &failures, notary: &notary };
    judge(policy, authorities, image, digest, evidence, bounds, keys, checked)
}

/// Every Notary Project envelope checked once for each distinct (non-skip) `notation:` authority's rules
/// (its stores, cached CRLs, level and overrides): authorities share a check only where it cannot differ.
fn verify_notary(policy: &Policy, evidence: &[NotaryEvidence], trust: Trust<'_>) -> Vec<NotaryFact> {
    let mut distinct: Vec<&Notation> = Vec::new();
    for notation in policy.notation().filter(|n| n.level != VerificationLevel::Skip) {
        if !distinct.iter().any(|s| s.check_identity == notation.check_identity) {
            distinct.push(notation);
        }
    }
    let mut facts = Vec::new();
    for envelope in evidence {
        for notation in &distinct {
            facts.push(NotaryFact {
                store: notation.store_identity.clone(),
                rules: notation.check_identity.clone(),
                check: (trust.notary)(envelope, notation, trust.now),
                source: envelope.source.clone(),
                sha256: Digest::of(&envelope.envelope).hex().to_owned(),
            });
        }
    }
    facts
}

/// What the checks before counting established: verified Sigstore bundles, why the others did not verify,
/// and every Notary Project envelope checked against each trust store.
#[derive(Clone, Copy)]
struct Checked<'a> {
    facts: &'a [SigstoreFact],
    failures: &'a [BundleFailure],
    notary: &'a [NotaryFact],
}

/// What a Sigstore bundle that verified establishes.
#[derive(Debug, Clone)]
struct SigstoreFact {
    signer: SigstoreSigner,
    /// The trusted root it verified under.
    root: String,
    /// The first log entry's index, when a log vouched for it.
    log_index: Option<u64>,
    /// True when a log entry or a timestamp vouched for it.
    logged: bool,
    content: SigstoreContent,
    /// SHA-256 of the signature (message signatures) or the envelope's payload (DSSE), to find it again.
    sha256: String,
}

#[derive(Debug, Clone)]
enum SigstoreSigner {
    /// One of the policy's distinct keys (`require_tlog` authorities).
    Key(usize),
    Certificate(CertificateIdentity),
}

#[derive(Debug, Clone)]
enum SigstoreContent {
    /// A message signature over a simple-signing payload.
    SimpleSigning(Vec<u8>),
    /// A DSSE envelope's in-toto Statement.
    Statement(Vec<u8>),
}

/// Why a bundle did not verify, and for whom that matters: keyless authorities, or the distinct key tried.
#[derive(Debug, Clone)]
struct BundleFailure {
    key: Option<usize>,
    reason: String,
}

/// Every bundle verified against the roots keyless authorities trust (any certificate: the policy
/// decides which identities count), and against each key of a `require_tlog` authority; with why the
/// others did not verify.
fn verify_bundles(
    policy: &Policy,
    keys: &DistinctKeys,
    bundles: &[SigstoreEvidence],
    trust: Trust<'_>,
) -> (Vec<SigstoreFact>, Vec<BundleFailure>) {
    let keyless: Vec<&Keyless> = policy.keyless().collect();
    let roots: Vec<_> = trust.roots.roots.iter().filter(|r| keyless.iter().any(|k| k.trusts_root(&r.name))).collect();
    let logged_keys: Vec<usize> = {
        let mut logged: Vec<usize> = (0..policy.authorities.len())
            .filter(|a| policy.require_tlog[*a] && !matches!(policy.authorities[*a], Authority::Keyless(_)))
            .flat_map(|a| keys.of_authority[a].iter().copied())
            .collect();
        logged.sort_unstable();
        logged.dedup();
        logged
    };
    let (mut facts, mut failures) = (Vec::new(), Vec::new());
    for evidence in bundles {
        let artifact = Artifact::Bytes(evidence.payload.as_deref().unwrap_or_default());
        let by_certificate = matches!(evidence.bundle.verification_material.signer(), Some(Signer::Certificate { .. }));
        if by_certificate && !roots.is_empty() {
            let mut errors = Vec::new();
            for root in &roots {
                match pki::verify_bundle(&evidence.bundle, &root.root, Expected::AnyCertificate, artifact, trust.now) {
                    Ok(verified) => match fact(evidence, &root.name, verified, None) {
                        Some(fact) => {
                            facts.push(fact);
                            errors.clear();
                            break;
                        }
                        None => errors.push(format!("under {}: it holds no content to judge", root.name)),
                    },
                    Err(e) => errors.push(format!("under {}: {e}", root.name)),
                }
            }
            if !errors.is_empty() {
                failures
                    .push(BundleFailure { key: None, reason: format!("{}: {}", evidence.source, errors.join("; ")) });
            }
        }
        for &key in logged_keys.iter().filter(|_| !by_certificate) {
            let mut errors = Vec::new();
            for root in &trust.roots.roots {
                let expected = Expected::Key(&keys.keys[key]);
                match pki::verify_bundle(&evidence.bundle, &root.root, expected, artifact, trust.now) {
                    Ok(verified) => {
                        facts.extend(fact(evidence, &root.name, verified, Some(key)));
                        errors.clear();
                        break;
                    }
                    Err(e) => errors.push(format!("under {}: {e}", root.name)),
                }
            }
            if !errors.is_empty() {
                let reason = format!("{}: {}", evidence.source, errors.join("; "));
                failures.push(BundleFailure { key: Some(key), reason });
            }
        }
    }
    (facts, failures)
}

/// The fact a verified bundle establishes, by `key` or (without) by its certificate.
fn fact(
    evidence: &SigstoreEvidence,
    root: &str,
    verified: pki::VerifiedBundle,
    key: Option<usize>,
) -> Option<SigstoreFact> {
    let signer = match (key, verified.certificate) {
        (Some(key), _) => SigstoreSigner::Key(key),
        (None, Some(certificate)) => SigstoreSigner::Certificate(certificate),
        (None, None) => return None,
    };
    let (content, sha256) = match (verified.dsse_payload, &evidence.payload) {
        (Some((payload_type, payload)), _) if payload_type == IN_TOTO_PAYLOAD_TYPE => {
            let sha256 = Digest::of(&payload).hex().to_owned();
            (SigstoreContent::Statement(payload), sha256)
        }
        (None, Some(payload)) => {
            let sha256 = Digest::of(&evidence.bundle.to_json()).hex().to_owned();
            (SigstoreContent::SimpleSigning(payload.clone()), sha256)
        }
        _ => return None,
    };
    let log_index = verified.entries.first().map(|e| e.log_index);
    let logged = !verified.entries.is_empty() || !verified.timestamps.is_empty();
    Some(SigstoreFact { signer, root: root.to_owned(), log_index, logged, content, sha256 })
}

/// The pure counting once every signature was checked: `facts` are the bundles that verified.
#[allow(clippy::too_many_arguments)]
fn judge(
    policy: &Policy,
    authorities: &[AuthorityKeys],
    image: &ImageReference,
    digest: &Digest,
    evidence: &Evidence,
    bounds: Bounds,
    keys: DistinctKeys,
    checked: Checked<'_>,
) -> Verdict {
    let Checked { facts, failures, notary } = checked;
    let signers = Signers::of(policy, keys, facts, notary);
    let binding = Binding { policy, image, digest };
    let mut skipped = evidence.skipped.clone();
    let mut statements = verified_statements(&evidence.envelopes, &signers.keys, &binding, bounds, &mut skipped);
    statements.extend(fact_statements(facts, &signers, &binding));
    let mut revocations = refuse_revoked_statements(&mut statements, &signers.keys, &evidence.revoked);
    let mut candidates = signature_candidates(&evidence.signatures, &statements, &signers.keys, &binding);
    candidates.extend(fact_signatures(facts, &signers, &binding));
    candidates.extend(notary_signatures(notary, &signers, &binding));
    revocations.extend(refuse_revoked(&mut candidates, &signers.keys, &evidence.revoked));
    let notary_failures = notary_failures(notary);
    let judging = Judging { policy, authorities, signers: &signers, failures, notary_failures: &notary_failures };
    let (signatures, mut reasons, logged) = count_signers(&judging, &candidates, digest);
    let mut attestations = Vec::new();
    for required in &policy.attestations {
        match check_attestation(required, &judging, &statements) {
            Ok(used) => attestations.push(used),
            Err(why) => reasons.extend(why),
        }
    }
    if policy.require_digest && image.digest.is_none() {
        reasons.push(format!("{image} names a tag: policy {:?} requires a digest (require_digest)", policy.name));
    }
    if !reasons.is_empty() {
        revocations.dedup();
        reasons.extend(revocations);
    }
    let allowed = reasons.is_empty() || policy.mode == Mode::Warn;
    Verdict { allowed, reasons, signatures, attestations, skipped, logged }
}

/// The revoked key version that signed with distinct key `key`, if one did.
fn revocation_of<'a>(keys: &DistinctKeys, key: usize, revoked: &'a [RevokedKey]) -> Option<&'a RevokedKey> {
    let public_key = keys.keys.get(key)?;
    revoked.iter().find(|r| r.key.spki_der() == public_key.spki_der())
}

/// Marks every candidate signed by a revoked key version and not provably earlier as not counting;
/// returns why, once per refused signature.
fn refuse_revoked(candidates: &mut [Candidate], keys: &DistinctKeys, revoked: &[RevokedKey]) -> Vec<String> {
    let mut reasons = Vec::new();
    for candidate in candidates.iter_mut() {
        let Some(revocation) = revocation_of(keys, candidate.key, revoked) else { continue };
        if let Some(why) = revocation.refuses(&candidate.used.signature_sha256) {
            candidate.unbound = Some(why.clone());
            reasons.push(why);
        }
    }
    reasons
}

/// Drops every statement signed by a revoked key version and not provably earlier; returns why.
fn refuse_revoked_statements(
    statements: &mut Vec<VerifiedStatement>,
    keys: &DistinctKeys,
    revoked: &[RevokedKey],
) -> Vec<String> {
    let mut reasons = Vec::new();
    statements.retain(|s| {
        let why = revocation_of(keys, s.key, revoked).and_then(|r| r.refuses(&s.envelope_sha256));
        reasons.extend(why.clone());
        why.is_none()
    });
    reasons
}

/// The repository (and tag) a signature may name for `image`, and the digest it must name.
struct Binding<'a> {
    policy: &'a Policy,
    image: &'a ImageReference,
    digest: &'a Digest,
}

impl Binding<'_> {
    /// Why `named` (a simple-signing `docker-reference` or a subject name) does not identify the image, if it
    /// does not. With `with_tag`, `identity: exact` also compares the tag.
    fn mismatch(&self, named: &str, with_tag: bool) -> Option<String> {
        let needed = self.needed(with_tag);
        let Some((repository, tag)) = parse_identity(named) else {
            return Some(format!("names {named:?}, which is not an image reference; {needed} was needed"));
        };
        let repository_ok = repository == self.image.repository_name()
            || self.policy.identities.iter().any(|glob| glob_matches(glob, &repository));
        let tag_ok = !with_tag || self.policy.identity == IdentityMode::Repository || tag == self.image.tag;
        let shown = match &tag {
            Some(tag) => format!("{repository}:{tag}"),
            None => repository,
        };
        (!(repository_ok && tag_ok)).then(|| format!("names {shown}; {needed} was needed"))
    }

    fn needed(&self, with_tag: bool) -> String {
        let mut needed = self.image.repository_name();
        if with_tag && self.policy.identity == IdentityMode::Exact {
            needed = match &self.image.tag {
                Some(tag) => format!("{needed}:{tag}"),
                None => format!("{needed} without a tag"),
            };
        }
        for glob in &self.policy.identities {
            needed.push_str(&format!(" or {glob}"));
        }
        needed
    }
}

/// `host/repo[:tag]` in canonical form, and the tag only when `named` spells one (a bare name is not `latest`).
fn parse_identity(named: &str) -> Option<(String, Option<String>)> {
    let parsed = ImageReference::parse(named).ok()?;
    let name = named.split('@').next().unwrap_or(named);
    let spells_tag = name.rsplit('/').next().is_some_and(|last| last.contains(':'));
    Some((parsed.repository_name(), parsed.tag.filter(|_| spells_tag)))
}

/// The public keys of every authority, each distinct key once (by SPKI), and which authorities stand for it.
struct DistinctKeys {
    keys: Vec<PublicKey>,
    /// For each authority, the indexes of its keys in `keys`.
    of_authority: Vec<Vec<usize>>,
}

impl DistinctKeys {
    fn of(authorities: &[AuthorityKeys]) -> Self {
        let mut keys: Vec<PublicKey> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let of_authority = authorities
            .iter()
            .map(|a| {
                let mut mine: Vec<usize> = a
                    .keys
                    .iter()
                    .flatten()
                    .map(|key| {
                        *index.entry(key.spki_der().to_vec()).or_insert_with(|| {
                            keys.push(key.clone());
                            keys.len() - 1
                        })
                    })
                    .collect();
                mine.dedup();
                mine
            })
            .collect();
        Self { keys, of_authority }
    }
}

/// Every distinct signer: the policy's keys first (numbered as in [`DistinctKeys`]), then each certificate
/// identity, distinct by (issuer, subject), that a verified bundle names; and which signers each authority
/// stands for.
struct Signers {
    keys: DistinctKeys,
    identities: Vec<(String, String)>,
    /// Notary Project signers, distinct by (trust store, leaf subject DN), numbered after the identities.
    notary: Vec<(Digest, String)>,
    of_authority: Vec<Vec<usize>>,
}

impl Signers {
    fn of(policy: &Policy, keys: DistinctKeys, facts: &[SigstoreFact], notary: &[NotaryFact]) -> Self {
        let mut identities: Vec<(String, String)> = Vec::new();
        for fact in facts {
            if let SigstoreSigner::Certificate(c) = &fact.signer {
                let identity = (c.issuer.clone(), c.subject.clone());
                if !identities.contains(&identity) {
                    identities.push(identity);
                }
            }
        }
        let mut notary_signers: Vec<(Digest, String)> = Vec::new();
        for fact in notary.iter().filter(|f| f.check.integrity.is_ok()) {
            let Some(signer) = &fact.check.signer else { continue };
            let signer = (fact.store.clone(), signer.subject.clone());
            if !notary_signers.contains(&signer) {
                notary_signers.push(signer);
            }
        }
        let first_identity = keys.keys.len();
        let first_notary = first_identity + identities.len();
        let of_authority = (0..keys.of_authority.len().max(policy.authorities.len()))
            .map(|a| match policy.authorities.get(a) {
                Some(Authority::Keyless(keyless)) => (identities.iter().enumerate())
                    .filter(|(_, (issuer, subject))| keyless.names(issuer, subject))
                    .map(|(j, _)| first_identity + j)
                    .collect(),
                Some(Authority::Notation(notation)) => (notary_signers.iter().enumerate())
                    .filter(|(_, (store, subject))| notation_stands_for(notation, store, subject))
                    .map(|(j, _)| first_notary + j)
                    .collect(),
                _ => keys.of_authority.get(a).cloned().unwrap_or_default(),
            })
            .collect();
        Self { keys, identities, notary: notary_signers, of_authority }
    }

    fn count(&self) -> usize {
        self.keys.keys.len() + self.identities.len() + self.notary.len()
    }

    fn notary_index(&self, store: &Digest, subject: &str) -> Option<usize> {
        let j = self.notary.iter().position(|(s, d)| s == store && d == subject)?;
        Some(self.keys.keys.len() + self.identities.len() + j)
    }

    fn index(&self, signer: &SigstoreSigner) -> usize {
        match signer {
            SigstoreSigner::Key(key) => *key,
            SigstoreSigner::Certificate(c) => {
                let j = self.identities.iter().position(|(i, s)| *i == c.issuer && *s == c.subject);
                self.keys.keys.len() + j.expect("every certificate identity of a fact is listed")
            }
        }
    }
}

/// True when a `notation:` authority stands for the signer `subject` under `store`: its stores, and one of
/// its trusted identities (any identity where authenticity is only logged, as at level audit; none at skip).
fn notation_stands_for(notation: &Notation, store: &Digest, subject: &str) -> bool {
    *store == notation.store_identity
        && notation.level != VerificationLevel::Skip
        && (notation.enforcement.authenticity == CheckAction::Log || notation.trusts_subject(subject))
}

/// How a signature or statement was vouched for beyond its signature: a transparency log or timestamp,
/// the trusted root, the certificate of a keyless signer, a Notary Project envelope's checks.
#[derive(Debug, Clone, Default)]
struct Provenance {
    logged: bool,
    root: Option<String>,
    certificate: Option<CertificateIdentity>,
    log_index: Option<u64>,
    notary: Option<NotaryCheck>,
    /// The [`Notation::check_identity`] of the rules `notary` was checked under.
    notary_rules: Option<Digest>,
}

impl Provenance {
    fn of(fact: &SigstoreFact) -> Self {
        let certificate = match &fact.signer {
            SigstoreSigner::Certificate(c) => Some(c.clone()),
            SigstoreSigner::Key(_) => None,
        };
        // The register writes only integers a double holds exactly (FORMATS.md §11).
        let log_index = fact.log_index.filter(|i| *i < 1 << 53);
        Self { logged: fact.logged, root: Some(fact.root.clone()), certificate, log_index, ..Self::default() }
    }

    /// `used` with the certificate identity, log index and root this provenance names.
    fn describe(&self, used: UsedSignature) -> UsedSignature {
        UsedSignature {
            certificate_identity: self.certificate.as_ref().map(|c| c.subject.clone()),
            certificate_issuer: self.certificate.as_ref().map(|c| c.issuer.clone()),
            log_index: self.log_index,
            trusted_root: self.root.clone(),
            ..used
        }
    }

    /// The certificate as CEL conditions read it: `subject`, `issuer` and each Fulcio extension by name.
    fn certificate_json(&self) -> Option<Value> {
        let c = self.certificate.as_ref()?;
        let mut fields: serde_json::Map<String, Value> =
            c.extensions.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        fields.insert("subject".into(), Value::String(c.subject.clone()));
        fields.insert("issuer".into(), Value::String(c.issuer.clone()));
        Some(Value::Object(fields))
    }
}

/// A verified in-toto statement: by which signer, and whether its subject names the image.
struct VerifiedStatement {
    /// The signer: a distinct key, or a certificate identity (numbered after the keys).
    key: usize,
    statement: Statement,
    envelope_sha256: String,
    /// Why the subject does not bind to this image (another digest, or a name of another repository).
    unbound: Option<String>,
    provenance: Provenance,
}

/// Every envelope that verifies under some authority's key, once per key that signed it.
fn verified_statements(
    envelopes: &[Vec<u8>],
    keys: &DistinctKeys,
    binding: &Binding<'_>,
    bounds: Bounds,
    skipped: &mut Vec<String>,
) -> Vec<VerifiedStatement> {
    let mut verified = Vec::new();
    for bytes in envelopes {
        let envelope = match Envelope::parse_bounded(bytes, bounds.max_envelope_signatures) {
            Ok(envelope) if envelope.payload_type == IN_TOTO_PAYLOAD_TYPE => envelope,
            Err(e @ FormatError::TooManySignatures { .. }) => {
                skipped.push(format!("envelope {}: {e}", Digest::of(bytes)));
                continue;
            }
            _ => continue,
        };
        let envelope_sha256 = Digest::of(bytes).hex().to_owned();
        for (key, public_key) in keys.keys.iter().enumerate() {
            let Ok(payload) = envelope.verify(public_key) else { continue };
            let Ok(statement) = Statement::parse(payload) else { continue };
            let unbound = subject_mismatch(&statement, binding);
            let envelope_sha256 = envelope_sha256.clone();
            verified.push(VerifiedStatement {
                key,
                statement,
                envelope_sha256,
                unbound,
                provenance: Provenance::default(),
            });
        }
    }
    verified
}

/// Why `statement` is not about this image: no subject with its digest, or every such subject names
/// another repository.
fn subject_mismatch(statement: &Statement, binding: &Binding<'_>) -> Option<String> {
    let about: Vec<_> = statement.subject.iter().filter(|s| s.sha256_hex() == Some(binding.digest.hex())).collect();
    if about.is_empty() {
        return Some(format!("a {} statement names another digest", statement.predicate_type));
    }
    let mismatches: Vec<String> = about
        .iter()
        .filter_map(|s| match s.name.as_deref().filter(|n| !n.is_empty()) {
            None => None,
            Some(name) => Some(binding.mismatch(name, false)?),
        })
        .collect();
    (mismatches.len() == about.len())
        .then(|| format!("a {} statement's subject {}", statement.predicate_type, mismatches.join(", ")))
}

/// The statements of verified DSSE bundles.
fn fact_statements(facts: &[SigstoreFact], signers: &Signers, binding: &Binding<'_>) -> Vec<VerifiedStatement> {
    let mut statements = Vec::new();
    for fact in facts {
        let SigstoreContent::Statement(payload) = &fact.content else { continue };
        let Ok(statement) = Statement::parse(payload) else { continue };
        let unbound = subject_mismatch(&statement, binding);
        let (key, provenance) = (signers.index(&fact.signer), Provenance::of(fact));
        statements.push(VerifiedStatement {
            key,
            statement,
            envelope_sha256: fact.sha256.clone(),
            unbound,
            provenance,
        });
    }
    statements
}

/// The simple-signing message signatures of verified bundles (`.sig` layers) about this digest.
fn fact_signatures(facts: &[SigstoreFact], signers: &Signers, binding: &Binding<'_>) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    for fact in facts {
        let SigstoreContent::SimpleSigning(payload) = &fact.content else { continue };
        let Ok(payload) = SimpleSigning::parse(payload) else { continue };
        if payload.digest() != binding.digest.as_str() {
            continue;
        }
        let named = payload.identity();
        let provenance = Provenance::of(fact);
        let used = provenance.describe(UsedSignature {
            identity: display_identity(named),
            signature_sha256: fact.sha256.clone(),
            ..UsedSignature::default()
        });
        let unbound = binding.mismatch(named, true);
        candidates.push(Candidate { key: signers.index(&fact.signer), used, unbound, provenance });
    }
    candidates
}

/// The Notary Project envelopes whose integrity holds, as candidates for their (store, DN) signer: bound
/// when the payload's descriptor names this digest. A Notary payload names no repository, so under
/// `identity: exact` it cannot count (no tag to compare).
fn notary_signatures(facts: &[NotaryFact], signers: &Signers, binding: &Binding<'_>) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    for fact in facts.iter().filter(|f| f.check.integrity.is_ok()) {
        let Some(signer) = &fact.check.signer else { continue };
        let Some(key) = signers.notary_index(&fact.store, &signer.subject) else { continue };
        let target = fact.check.target_digest.as_deref().unwrap_or_default();
        let unbound = if target == binding.digest.as_str() {
            exact_statement_mismatch(None, binding)
        } else {
            Some(format!("signs {}, not {}", if target.is_empty() { "no digest" } else { target }, binding.digest))
        };
        let used = UsedSignature {
            signature_sha256: fact.sha256.clone(),
            signer_dn: Some(signer.subject.clone()),
            certificate_chain_sha256: Some(signer.chain_sha256.clone()),
            ..UsedSignature::default()
        };
        let provenance = Provenance {
            notary: Some(fact.check.clone()),
            notary_rules: Some(fact.rules.clone()),
            ..Provenance::default()
        };
        candidates.push(Candidate { key, used, unbound, provenance });
    }
    candidates
}

/// Why each Notary Project envelope whose integrity does not hold was not counted, once per envelope.
fn notary_failures(facts: &[NotaryFact]) -> Vec<String> {
    let mut failures: Vec<String> = Vec::new();
    for fact in facts {
        if let Err(why) = &fact.check.integrity {
            let line = format!("{}: {why}", fact.source);
            if !failures.contains(&line) {
                failures.push(line);
            }
        }
    }
    failures
}

/// `named` as a used signature shows it: canonical repository, and the tag when it spells one.
fn display_identity(named: &str) -> Option<String> {
    parse_identity(named).map(|(repo, tag)| match tag {
        Some(tag) => format!("{repo}:{tag}"),
        None => repo,
    })
}

/// A valid signature by a distinct signer, bound to the image or not.
struct Candidate {
    /// The signer: a distinct key, or a certificate identity (numbered after the keys).
    key: usize,
    used: UsedSignature,
    /// Why it does not count for this image, when it names another.
    unbound: Option<String>,
    provenance: Provenance,
}

/// Every (key, signature) pair that verifies: simple-signing layers about the digest, and cosign v3
/// `cosign/sign/v1` statements.
fn signature_candidates(
    signatures: &[SignedPayload],
    statements: &[VerifiedStatement],
    keys: &DistinctKeys,
    binding: &Binding<'_>,
) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    for signed in signatures {
        let Ok(payload) = SimpleSigning::parse(&signed.payload) else { continue };
        if payload.digest() != binding.digest.as_str() {
            continue;
        }
        let named = payload.identity();
        for (key, public_key) in keys.keys.iter().enumerate() {
            if public_key.verify(&signed.payload, &signed.signature).is_ok() {
                let used = UsedSignature {
                    identity: display_identity(named),
                    signature_sha256: Digest::of(&signed.signature).hex().to_owned(),
                    ..UsedSignature::default()
                };
                let provenance = Provenance::default();
                candidates.push(Candidate { key, used, unbound: binding.mismatch(named, true), provenance });
            }
        }
    }
    for s in statements.iter().filter(|s| s.statement.predicate_type == COSIGN_SIGN_V1) {
        let named = subject_name(&s.statement, binding.digest);
        let identity = named.and_then(parse_identity).map(|(repo, _)| repo);
        let used = UsedSignature { identity, signature_sha256: s.envelope_sha256.clone(), ..UsedSignature::default() };
        let used = s.provenance.describe(used);
        let unbound = s.unbound.clone().or_else(|| exact_statement_mismatch(named, binding));
        candidates.push(Candidate { key: s.key, used, unbound, provenance: s.provenance.clone() });
    }
    candidates
}

/// The name of the subject of `statement` that carries `digest`, if it has one.
fn subject_name<'a>(statement: &'a Statement, digest: &Digest) -> Option<&'a str> {
    statement
        .subject
        .iter()
        .filter(|s| s.sha256_hex() == Some(digest.hex()))
        .find_map(|s| s.name.as_deref().filter(|n| !n.is_empty()))
}

/// Under `identity: exact`, a statement used as a signature must name the tag too; one without a name
/// cannot.
fn exact_statement_mismatch(named: Option<&str>, binding: &Binding<'_>) -> Option<String> {
    if binding.policy.identity != IdentityMode::Exact {
        return None;
    }
    match named {
        Some(named) => binding.mismatch(named, true),
        None => Some(format!("names no repository; {} was needed", binding.needed(true))),
    }
}

/// The policy and what is known about its signers, for counting and for attestations.
struct Judging<'a> {
    policy: &'a Policy,
    authorities: &'a [AuthorityKeys],
    signers: &'a Signers,
    failures: &'a [BundleFailure],
    /// Notary Project envelopes that failed integrity, with why.
    notary_failures: &'a [String],
}

impl Judging<'_> {
    /// True when authority `a` stands for `signer` and takes a signature with `provenance`.
    fn accepts(&self, a: usize, signer: usize, provenance: &Provenance) -> bool {
        self.signers.of_authority.get(a).is_some_and(|mine| mine.contains(&signer))
            && self.refusal(a, provenance).is_none()
    }

    /// Why authority `a` does not take a signature by one of its signers with `provenance`: a trusted root
    /// it does not trust, a failing certificate condition, no log entry under `require_tlog`.
    fn refusal(&self, a: usize, provenance: &Provenance) -> Option<String> {
        match self.policy.authorities.get(a) {
            Some(Authority::Notation(notation)) => {
                let Some(check) = &provenance.notary else {
                    return Some("is not a Notary Project signature".into());
                };
                if provenance.notary_rules.as_ref() != Some(&notation.check_identity) {
                    return Some("was checked under another authority's CRLs or level".into());
                }
                if notation.level == VerificationLevel::Skip {
                    return Some("cannot count: level skip verifies nothing".into());
                }
                let (enforced, _) = check.under(&notation.enforcement);
                (!enforced.is_empty())
                    .then(|| format!("fails at level {}: {}", notation.level_text(), enforced.join("; ")))
            }
            Some(Authority::Keyless(keyless)) => {
                let root = provenance.root.as_deref().unwrap_or_default();
                if !keyless.trusts_root(root) {
                    let wanted = keyless.trusted_root.as_deref().unwrap_or_default();
                    return Some(format!("verified under trusted root {root:?}, not {wanted:?}"));
                }
                let certificate = provenance.certificate_json().unwrap_or(Value::Null);
                let failed: Vec<String> = (keyless.conditions.iter())
                    .filter_map(|c| match c.evaluate_with(&[("certificate", &certificate)]) {
                        ConditionOutcome::Holds => None,
                        ConditionOutcome::Fails(why) => Some(why),
                    })
                    .collect();
                (!failed.is_empty()).then(|| format!("has a certificate that fails a condition: {}", failed.join("; ")))
            }
            Some(_) if self.policy.require_tlog.get(a) == Some(&true) && !provenance.logged => {
                Some("has no verified transparency-log entry or timestamp (require_tlog)".into())
            }
            _ => None,
        }
    }

    /// The label of the first authority that takes a statement by `signer` with `provenance`.
    fn authority_of(&self, signer: usize, provenance: &Provenance) -> Option<String> {
        (0..self.authorities.len())
            .find(|a| self.accepts(*a, signer, provenance))
            .map(|a| self.authorities[a].label.clone())
    }
}

/// The signatures that count, one distinct signer per authority (a maximum matching, so no assignment order
/// can do better), and, below the threshold, why.
fn count_signers(
    judging: &Judging<'_>,
    candidates: &[Candidate],
    digest: &Digest,
) -> (Vec<UsedSignature>, Vec<String>, Vec<String>) {
    let bound: Vec<&Candidate> = candidates.iter().filter(|c| c.unbound.is_none()).collect();
    let taking = |a: usize, signer: usize| {
        bound.iter().copied().find(|c| c.key == signer && judging.accepts(a, signer, &c.provenance))
    };
    let signed: Vec<Vec<usize>> = (0..judging.authorities.len())
        .map(|a| {
            let mine = judging.signers.of_authority.get(a).map(Vec::as_slice).unwrap_or_default();
            mine.iter().copied().filter(|s| taking(a, *s).is_some()).collect()
        })
        .collect();
    let matched = maximum_matching(&signed, judging.signers.count());
    let mut used = Vec::new();
    let mut logged = Vec::new();
    for (authority, signer) in matched.iter().enumerate() {
        if let Some(signer) = signer {
            let candidate = taking(authority, *signer).expect("a matched signer has a bound candidate");
            let label = &judging.authorities[authority].label;
            logged.extend(logged_checks(judging, authority, candidate));
            used.push(UsedSignature { authority: label.clone(), ..candidate.used.clone() });
        }
    }
    if used.len() >= judging.policy.threshold {
        return (used, Vec::new(), logged);
    }
    let mut reasons =
        vec![format!("{} of the {} required authorities signed {digest}", used.len(), judging.policy.threshold)];
    for authority in (0..judging.authorities.len()).filter(|a| matched[*a].is_none()) {
        reasons.push(missing_signer_reason(judging, authority, &signed[authority], candidates));
    }
    (used, reasons, logged)
}

/// The failed checks a `notation:` authority's level only logs, on the signature counted for it; and, where
/// authenticity is only logged (level audit), a signer outside its trusted identities.
fn logged_checks(judging: &Judging<'_>, a: usize, candidate: &Candidate) -> Vec<String> {
    let (Some(Authority::Notation(notation)), Some(check)) =
        (judging.policy.authorities.get(a), &candidate.provenance.notary)
    else {
        return Vec::new();
    };
    let (_, mut logged) = check.under(&notation.enforcement);
    let subject = candidate.used.signer_dn.as_deref().unwrap_or_default();
    if !notation.trusts_subject(subject) {
        logged.push(format!("authenticity: the signer {subject} is not a trusted identity"));
    }
    let label = &judging.authorities[a].label;
    let level = notation.level_text();
    let sha = &candidate.used.signature_sha256;
    logged
        .into_iter()
        .map(|why| format!("notation signature sha256:{sha} counted for {label} at level {level} although {why}"))
        .collect()
}

/// Why `authority` did not count: its key could not be had, its signer already counted for another
/// authority, no signature by its signers names this image or meets its terms, or the bundles that might
/// have been its did not verify.
fn missing_signer_reason(judging: &Judging<'_>, a: usize, signed: &[usize], candidates: &[Candidate]) -> String {
    let authority = &judging.authorities[a];
    let label = &authority.label;
    if let Err(e) = &authority.keys {
        return format!("no valid signature by {label}: {e}");
    }
    if let Some(Authority::Notation(notation)) = judging.policy.authorities.get(a) {
        return missing_notation_reason(judging, a, notation, signed, candidates);
    }
    let keyless = matches!(judging.policy.authorities.get(a), Some(Authority::Keyless(_)));
    if !signed.is_empty() {
        let what = if keyless { "an identity" } else { "a key" };
        let once = if keyless { "one identity counts once" } else { "one key counts once" };
        return format!("{label} signed with {what} that already counted for another authority ({once})");
    }
    let its = judging.signers.of_authority.get(a).map(Vec::as_slice).unwrap_or_default();
    let mine: Vec<&Candidate> = candidates.iter().filter(|c| its.contains(&c.key)).collect();
    if let Some(why) = mine.iter().find_map(|c| c.unbound.as_deref()) {
        return format!("no valid signature by {label} for this image: a signature by {label} {why}");
    }
    let keys = judging.signers.keys.of_authority.get(a).map(Vec::as_slice).unwrap_or_default();
    let failed: Vec<&str> = (judging.failures.iter())
        .filter(|f| match f.key {
            None => keyless,
            Some(key) => !keyless && keys.contains(&key),
        })
        .map(|f| f.reason.as_str())
        .collect();
    let did_not_verify = format!("did not verify: {}", failed.join("; "));
    if let Some(why) = mine.iter().find_map(|c| judging.refusal(a, &c.provenance)) {
        let also = if failed.is_empty() { String::new() } else { format!("; a bundle {did_not_verify}") };
        return format!("no valid signature by {label}: a signature by {label} {why}{also}");
    }
    let others: Vec<String> = if keyless {
        let found = candidates.iter().filter_map(|c| c.provenance.certificate.as_ref());
        let mut others: Vec<String> = found.map(|c| format!("{} from {}", c.subject, c.issuer)).collect();
        others.dedup();
        others
    } else {
        Vec::new()
    };
    let mut why = Vec::new();
    if !others.is_empty() {
        why.push(format!("the keyless signatures found are by {}", others.join(", ")));
    }
    if !failed.is_empty() {
        why.push(did_not_verify);
    }
    match why.is_empty() {
        true => format!("no valid signature by {label}"),
        false => format!("no valid signature by {label}: {}", why.join("; ")),
    }
}

/// Why a `notation:` authority did not count: level skip, its signer already counted, a signature of its
/// signer about another digest or failing a check its level enforces, signatures by other signers, or
/// envelopes that failed integrity.
fn missing_notation_reason(
    judging: &Judging<'_>,
    a: usize,
    notation: &Notation,
    signed: &[usize],
    candidates: &[Candidate],
) -> String {
    let label = &judging.authorities[a].label;
    if notation.level == VerificationLevel::Skip {
        return format!("{label} cannot count: level skip verifies nothing");
    }
    if !signed.is_empty() {
        return format!(
            "{label} signed with a certificate that already counted for another authority (one signer counts once)"
        );
    }
    let its = judging.signers.of_authority.get(a).map(Vec::as_slice).unwrap_or_default();
    let mine: Vec<&Candidate> = (candidates.iter())
        .filter(|c| its.contains(&c.key) && c.provenance.notary_rules.as_ref() == Some(&notation.check_identity))
        .collect();
    if let Some(why) = mine.iter().find_map(|c| c.unbound.as_deref()) {
        return format!("no valid signature by {label} for this image: a notation signature by {label} {why}");
    }
    if let Some(why) = mine.iter().find_map(|c| judging.refusal(a, &c.provenance)) {
        return format!("no valid signature by {label}: a notation signature by {label} {why}");
    }
    let mut why = Vec::new();
    let mut others: Vec<String> = (candidates.iter())
        .filter(|c| c.provenance.notary.is_some())
        .filter_map(|c| c.used.signer_dn.clone())
        .collect();
    others.sort();
    others.dedup();
    if !others.is_empty() {
        why.push(format!("the notation signatures found are by {}", others.join(", ")));
    }
    if !judging.notary_failures.is_empty() {
        why.push(format!("did not verify: {}", judging.notary_failures.join("; ")));
    }
    match why.is_empty() {
        true => format!("no valid signature by {label}"),
        false => format!("no valid signature by {label}: {}", why.join("; ")),
    }
}

/// For each authority, the key it is matched to, so that no key serves two authorities and as many
/// authorities as possible are matched (augmenting paths; policies list a handful of authorities).
fn maximum_matching(signed_keys: &[Vec<usize>], key_count: usize) -> Vec<Option<usize>> {
    let mut owner: Vec<Option<usize>> = vec![None; key_count];
    for authority in 0..signed_keys.len() {
        let mut visited = vec![false; key_count];
        augment(authority, signed_keys, &mut owner, &mut visited);
    }
    let mut matched = vec![None; signed_keys.len()];
    for (key, authority) in owner.iter().enumerate() {
        if let Some(a) = authority {
            matched[*a] = Some(key);
        }
    }
    matched
}

fn augment(authority: usize, signed_keys: &[Vec<usize>], owner: &mut [Option<usize>], visited: &mut [bool]) -> bool {
    for &key in &signed_keys[authority] {
        if visited[key] {
            continue;
        }
        visited[key] = true;
        if owner[key].is_none_or(|other| augment(other, signed_keys, owner, visited)) {
            owner[key] = Some(authority);
            return true;
        }
    }
    false
}

/// The first statement of `required`'s type by an authority's key, about this image, whose predicate meets
/// every condition; otherwise why none did.
fn check_attestation(
    required: &RequiredAttestation,
    judging: &Judging<'_>,
    statements: &[VerifiedStatement],
) -> Result<UsedAttestation, Vec<String>> {
    let wanted = required.predicate_type.as_str();
    let mut unbound = Vec::new();
    let mut failed_conditions = Vec::new();
    for s in statements.iter().filter(|s| s.statement.predicate_type == wanted) {
        let Some(authority) = judging.authority_of(s.key, &s.provenance) else { continue };
        if let Some(why) = &s.unbound {
            unbound.push(why.clone());
            continue;
        }
        let certificate = s.provenance.certificate_json();
        let failures = failing_conditions(required, &s.statement.predicate, certificate.as_ref());
        if failures.is_empty() {
            let envelope_digest = format!("sha256:{}", s.envelope_sha256);
            return Ok(UsedAttestation { predicate_type: wanted.to_owned(), authority, envelope_digest });
        }
        failed_conditions.extend(failures.into_iter().map(|f| format!("attestation {wanted}: {f}")));
    }
    if !failed_conditions.is_empty() {
        return Err(failed_conditions);
    }
    let mut reason = format!("no valid {wanted} attestation signed by an authority");
    if !unbound.is_empty() {
        unbound.dedup();
        reason = format!("{reason} ({})", unbound.join("; "));
    }
    Err(vec![reason])
}

/// The conditions `predicate` (signed by a keyless signer's `certificate`, if any) fails, explained.
fn failing_conditions(required: &RequiredAttestation, predicate: &Value, certificate: Option<&Value>) -> Vec<String> {
    let mut variables = vec![("predicate", predicate)];
    variables.extend(certificate.map(|c| ("certificate", c)));
    required
        .conditions
        .iter()
        .filter_map(|c| match c.evaluate_with(&variables) {
            ConditionOutcome::Holds => None,
            ConditionOutcome::Fails(why) => Some(why),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::in_toto::Subject;
    use crate::policy::PolicySet;
    use p256::ecdsa::signature::Signer as _;
    use serde_json::json;

    const HOST: &str = "r.example";

    struct Key {
        signing: p256::ecdsa::SigningKey,
        public: PublicKey,
    }

    fn key(seed: u8) -> Key {
        let signing = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
        let public = PublicKey::from_p256(signing.verifying_key());
        Key { signing, public }
    }

    impl Key {
        fn sign(&self, message: &[u8]) -> Vec<u8> {
            let signature: p256::ecdsa::Signature = self.signing.sign(message);
            signature.to_der().as_bytes().to_vec()
        }

        fn simple(&self, identity: &str, digest: &Digest) -> SignedPayload {
            let payload = SimpleSigning::new(identity, digest, None).to_bytes();
            SignedPayload { signature: self.sign(&payload), payload }
        }

        fn statement(&self, name: Option<&str>, digest: &Digest, predicate_type: &str) -> Vec<u8> {
            let statement = Statement::v1(vec![Subject::sha256(name, digest)], predicate_type, serde_json::json!({}));
            let mut envelope = Envelope::unsigned(IN_TOTO_PAYLOAD_TYPE, statement.to_json());
            envelope.add_signature(self.sign(&envelope.pae()));
            envelope.to_json()
        }
    }

    fn policy(extra: &str) -> Policy {
        let text = format!(
            "policies:\n  - name: p\n    images: [\"{HOST}/team-b/*\"]\n    authorities: [{{key: a}}, {{key: b}}]\n{extra}"
        );
        PolicySet::parse("p.yaml", &text).unwrap().0.policies.remove(0)
    }

    fn authority(label: &str, keys: &[&Key]) -> AuthorityKeys {
        AuthorityKeys { label: label.into(), keys: Ok(keys.iter().map(|k| k.public.clone()).collect()) }
    }

    fn image(reference: &str) -> ImageReference {
        ImageReference::parse(reference).unwrap()
    }

    fn digest() -> Digest {
        Digest::of(b"image")
    }

    const BOUNDS: Bounds = Bounds { max_envelope_signatures: 4 };

    fn judge(policy: &Policy, authorities: &[AuthorityKeys], reference: &str, evidence: Evidence) -> Verdict {
        let roots = TrustedRoots::default();
        let trust = Trust { roots: &roots, notary: fake_notary, now: OffsetDateTime::UNIX_EPOCH };
        decide(policy, authorities, &image(reference), &digest(), &evidence, BOUNDS, trust)
    }

    fn signatures(signed: Vec<SignedPayload>) -> Evidence {
        Evidence { signatures: signed, ..Evidence::default() }
    }

    fn revoked(key: &Key, compromised_at: Option<&str>, earlier: &[&SignedPayload]) -> RevokedKey {
        RevokedKey {
            key: key.public.clone(),
            label: "a@1".into(),
            reason: "stolen".into(),
            compromised_at: compromised_at.map(str::to_owned),
            earlier: earlier.iter().map(|s| Digest::of(&s.signature).hex().to_owned()).collect(),
        }
    }

    #[test]
    fn a_revoked_version_signs_nothing_and_the_reason_names_the_revocation() {
        let (a, b) = (key(1), key(2));
        let authorities = [authority("a", &[&a]), authority("b", &[&b])];
        let (d, p) = (digest(), policy("    threshold: 1\n"));
        let here = format!("{HOST}/team-b/app@{d}");
        let signed = a.simple("r.example/team-b/app", &d);
        let evidence = Evidence { revoked: vec![revoked(&a, None, &[])], ..signatures(vec![signed.clone()]) };
        let verdict = judge(&p, &authorities, &here, evidence);
        assert!(!verdict.allowed);
        assert!(verdict.reasons.join(" | ").contains("key a@1 is revoked: stolen"), "{:?}", verdict.reasons);
        // Another authority's key still counts beside the revoked one.
        let both = vec![signed, b.simple("r.example/team-b/app", &d)];
        let evidence = Evidence { revoked: vec![revoked(&a, None, &[])], ..signatures(both) };
        assert!(judge(&p, &authorities, &here, evidence).allowed);
    }

    #[test]
    fn under_compromised_at_only_signatures_the_register_proves_earlier_count() {
        let (a, b) = (key(1), key(2));
        let authorities = [authority("a", &[&a]), authority("b", &[&b])];
        let (d, p) = (digest(), policy("    threshold: 1\n"));
        let here = format!("{HOST}/team-b/app@{d}");
        let at = Some("2026-11-30T12:00:00Z");
        let earlier = a.simple("r.example/team-b/app", &d);
        let evidence = Evidence { revoked: vec![revoked(&a, at, &[&earlier])], ..signatures(vec![earlier.clone()]) };
        assert!(judge(&p, &authorities, &here, evidence).allowed, "its sign entry is before the compromise");

        // Made after the compromise with a creator timestamp claiming an earlier time, or never logged at all:
        // the register holds no entry before compromised_at for it, so it counts as later.
        let forged_time = serde_json::Map::from_iter([("timestamp".to_owned(), json!(1_600_000_000))]);
        let payload = SimpleSigning::new("r.example/team-b/app", &d, Some(forged_time)).to_bytes();
        let forged = SignedPayload { signature: a.sign(&payload), payload };
        let other = serde_json::Map::from_iter([("made".to_owned(), json!("after the compromise"))]);
        let payload = SimpleSigning::new("r.example/team-b/app", &d, Some(other)).to_bytes();
        let unlogged = SignedPayload { signature: a.sign(&payload), payload };
        for later in [forged, unlogged] {
            let evidence = Evidence { revoked: vec![revoked(&a, at, &[&earlier])], ..signatures(vec![later]) };
            let verdict = judge(&p, &authorities, &here, evidence);
            assert!(!verdict.allowed);
            let why = verdict.reasons.join(" | ");
            assert!(
                why.contains("key a@1 is revoked as compromised at 2026-11-30T12:00:00Z")
                    && why.contains("not provably earlier"),
                "{why}"
            );
        }
    }

    #[test]
    fn an_attestation_by_a_revoked_version_does_not_satisfy_a_requirement() {
        let a = key(1);
        let authorities = [authority("a", &[&a]), authority("b", &[])];
        let d = digest();
        let p = policy("    threshold: 1\n    attestations:\n      - predicate_type: https://example.com/p\n");
        let here = format!("{HOST}/team-b/app@{d}");
        let evidence = |revoked: Vec<RevokedKey>| Evidence {
            envelopes: vec![a.statement(None, &d, "https://example.com/p")],
            revoked,
            ..signatures(vec![a.simple("r.example/team-b/app", &d)])
        };
        assert!(judge(&p, &authorities, &here, evidence(Vec::new())).allowed);
        let verdict = judge(&p, &authorities, &here, evidence(vec![revoked(&a, Some("2026-11-30T12:00:00Z"), &[])]));
        assert!(!verdict.allowed);
        assert!(verdict.reasons.join(" | ").contains("key a@1 is revoked"), "{:?}", verdict.reasons);
    }

    #[test]
    fn a_signature_counts_only_for_the_repository_it_names() {
        let (a, b) = (key(1), key(2));
        let authorities = [authority("a", &[&a]), authority("b", &[&b])];
        let d = digest();
        let here = format!("{HOST}/team-b/app@{d}");
        let cases: [(&str, &str, bool); 6] = [
            ("", "r.example/team-b/app", true),
            ("", "r.example/team-b/app:v1", true),
            ("", "r.example/team-a/app", false),
            ("", "r.example/team-b/app-other", false),
            ("", "not a reference", false),
            ("    identities: [\"r.example/team-a/*\"]\n", "r.example/team-a/app", true),
        ];
        for (extra, named, allowed) in cases {
            let verdict = judge(&policy(extra), &authorities, &here, signatures(vec![a.simple(named, &d)]));
            assert_eq!(verdict.allowed, allowed, "{extra} {named}: {:?}", verdict.reasons);
            if !allowed {
                let why = verdict.reasons.join(" | ");
                assert!(why.contains("was needed") && why.contains("r.example/team-b/app"), "{why}");
            }
        }
    }

    #[test]
    fn exact_identity_compares_the_tag_too() {
        let a = key(1);
        let authorities = [authority("a", &[&a])];
        let p = policy("    identity: exact\n    threshold: 1\n");
        let d = digest();
        let cases = [
            ("r.example/team-b/app:v1", "r.example/team-b/app:v1", true),
            ("r.example/team-b/app:v1", "r.example/team-b/app:v2", false),
            ("r.example/team-b/app:v1", "r.example/team-b/app", false),
            ("r.example/team-b/app", "r.example/team-b/app:v1", false),
        ];
        for (named, requested, allowed) in cases {
            let reference = format!("{requested}@{d}");
            let verdict = judge(&p, &authorities, &reference, signatures(vec![a.simple(named, &d)]));
            assert_eq!(verdict.allowed, allowed, "{named} for {requested}: {:?}", verdict.reasons);
        }
        let nameless = Evidence { envelopes: vec![a.statement(None, &d, COSIGN_SIGN_V1)], ..Evidence::default() };
        let verdict = judge(&p, &authorities, &format!("r.example/team-b/app:v1@{d}"), nameless);
        assert!(!verdict.allowed, "a bundle signature naming no tag cannot meet identity: exact");
        assert!(verdict.reasons.join(" ").contains("names no repository"), "{:?}", verdict.reasons);
    }

    #[test]
    fn one_key_meets_at_most_one_authority() {
        let (a, b) = (key(1), key(2));
        let d = digest();
        let here = format!("{HOST}/team-b/app@{d}");
        let p = policy("    threshold: 2\n");
        let one_signature = signatures(vec![a.simple("r.example/team-b/app", &d)]);
        let same_key_twice = [authority("a", &[&a]), authority("b", &[&a])];
        let verdict = judge(&p, &same_key_twice, &here, one_signature);
        assert!(!verdict.allowed);
        assert!(verdict.reasons.join(" ").contains("already counted for another authority"), "{:?}", verdict.reasons);
        // The same key signing twice is still one key.
        let twice = signatures(vec![a.simple("r.example/team-b/app", &d), a.simple("r.example/team-b/app:v1", &d)]);
        assert!(!judge(&p, &same_key_twice, &here, twice).allowed);
        // A maximum matching: `a` could take either key, `b` only key a; both count.
        let flexible = [authority("a", &[&a, &b]), authority("b", &[&a])];
        let both = signatures(vec![a.simple("r.example/team-b/app", &d), b.simple("r.example/team-b/app", &d)]);
        let verdict = judge(&p, &flexible, &here, both);
        assert!(verdict.allowed, "{:?}", verdict.reasons);
        let used: Vec<_> = verdict.signatures.iter().map(|s| s.signature_sha256.clone()).collect();
        assert_ne!(used[0], used[1]);
    }

    #[test]
    fn signatures_about_another_digest_or_by_another_key_do_not_count() {
        let (a, b, c) = (key(1), key(2), key(3));
        let authorities = [authority("a", &[&a]), authority("b", &[&b])];
        let d = digest();
        let here = format!("{HOST}/team-b/app@{d}");
        let other = signatures(vec![a.simple("r.example/team-b/app", &Digest::of(b"other"))]);
        assert!(!judge(&policy(""), &authorities, &here, other).allowed);
        let stranger = signatures(vec![c.simple("r.example/team-b/app", &d)]);
        assert!(!judge(&policy(""), &authorities, &here, stranger).allowed);
        let mut forged = a.simple("r.example/team-b/app", &d);
        forged.payload = SimpleSigning::new("r.example/team-b/app", &Digest::of(b"x"), None).to_bytes();
        assert!(!judge(&policy(""), &authorities, &here, signatures(vec![forged])).allowed);
    }

    #[test]
    fn statements_count_only_when_their_subject_names_this_image() {
        let a = key(1);
        let authorities = [authority("a", &[&a]), authority("b", &[&key(2)])];
        let p = policy(&format!("    attestations: [{{predicate_type: \"{COSIGN_SIGN_V1}x\"}}]\n"));
        let d = digest();
        let here = format!("{HOST}/team-b/app@{d}");
        let signed = a.simple("r.example/team-b/app", &d);
        let predicate = format!("{COSIGN_SIGN_V1}x");
        let cases = [
            (None, true),
            (Some("r.example/team-b/app"), true),
            (Some("r.example/team-a/app"), false),
            (Some("app.tar"), false),
        ];
        for (name, allowed) in cases {
            let evidence = Evidence {
                signatures: vec![signed.clone()],
                envelopes: vec![a.statement(name, &d, &predicate)],
                ..Evidence::default()
            };
            let verdict = judge(&p, &authorities, &here, evidence);
            assert_eq!(verdict.allowed, allowed, "{name:?}: {:?}", verdict.reasons);
        }
        let bundle_signature =
            Evidence { envelopes: vec![a.statement(None, &d, COSIGN_SIGN_V1)], ..Evidence::default() };
        assert!(judge(&policy(""), &authorities, &here, bundle_signature).allowed);
        let copied = Evidence {
            envelopes: vec![a.statement(Some("r.example/team-a/app"), &d, COSIGN_SIGN_V1)],
            ..Evidence::default()
        };
        assert!(!judge(&policy(""), &authorities, &here, copied).allowed);
    }

    #[test]
    fn an_envelope_over_the_signature_cap_is_skipped_unchecked() {
        let a = key(1);
        let authorities = [authority("a", &[&a]), authority("b", &[&key(2)])];
        let d = digest();
        let statement = Statement::v1(vec![Subject::sha256(None, &d)], COSIGN_SIGN_V1, serde_json::json!({}));
        let mut envelope = Envelope::unsigned(IN_TOTO_PAYLOAD_TYPE, statement.to_json());
        for _ in 0..BOUNDS.max_envelope_signatures + 1 {
            envelope.add_signature(a.sign(&envelope.pae()));
        }
        let evidence = Evidence { envelopes: vec![envelope.to_json()], ..Evidence::default() };
        let verdict = judge(&policy(""), &authorities, &format!("{HOST}/team-b/app@{d}"), evidence);
        assert!(!verdict.allowed);
        assert!(verdict.skipped[0].ends_with("has 5 signatures; the limit is 4"), "{:?}", verdict.skipped);
    }

    #[test]
    fn require_digest_denies_a_tag_and_warn_mode_only_warns() {
        let a = key(1);
        let authorities = [authority("a", &[&a]), authority("b", &[&key(2)])];
        let d = digest();
        let evidence = signatures(vec![a.simple("r.example/team-b/app", &d)]);
        let p = policy("    require_digest: true\n");
        assert!(!judge(&p, &authorities, "r.example/team-b/app:v1", evidence.clone()).allowed);
        assert!(judge(&p, &authorities, &format!("r.example/team-b/app:v1@{d}"), evidence.clone()).allowed);
        let warn = policy("    require_digest: true\n    mode: warn\n");
        let verdict = judge(&warn, &authorities, "r.example/team-b/app:v1", evidence);
        assert!(verdict.allowed && verdict.reasons[0].contains("require_digest"), "{:?}", verdict.reasons);
    }

    const GITHUB: &str = "https://token.actions.githubusercontent.com";
    const RELEASE: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";

    fn identity(subject: &str, issuer: &str, extensions: &[(&str, &str)]) -> CertificateIdentity {
        CertificateIdentity {
            subject: subject.into(),
            issuer: issuer.into(),
            extensions: extensions.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            not_before: OffsetDateTime::UNIX_EPOCH,
            not_after: OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(10),
        }
    }

    /// A `.sig` layer's bundle that verified, signed by `signer`, naming `named` and the test digest.
    fn signed_fact(signer: SigstoreSigner, named: &str, root: &str) -> SigstoreFact {
        let payload = SimpleSigning::new(named, &digest(), None).to_bytes();
        SigstoreFact {
            signer,
            root: root.into(),
            log_index: Some(42),
            logged: true,
            sha256: Digest::of(&payload).hex().to_owned(),
            content: SigstoreContent::SimpleSigning(payload),
        }
    }

    fn keyless_fact(subject: &str, issuer: &str) -> SigstoreFact {
        signed_fact(SigstoreSigner::Certificate(identity(subject, issuer, &[])), "r.example/team-b/app", "public-good")
    }

    fn keyless_policy(authorities: &str, extra: &str) -> Policy {
        let text = format!(
            "policies:\n  - name: p\n    images: [\"{HOST}/team-b/*\"]\n    authorities:\n{authorities}{extra}"
        );
        PolicySet::parse("p.yaml", &text).unwrap().0.policies.remove(0)
    }

    /// The engine after verification: `facts` stand for bundles that verified, `failures` for those that did not.
    fn judge_facts(
        policy: &Policy,
        authorities: &[AuthorityKeys],
        facts: &[SigstoreFact],
        failures: &[BundleFailure],
        evidence: Evidence,
    ) -> Verdict {
        let here = image(&format!("{HOST}/team-b/app@{}", digest()));
        let keys = DistinctKeys::of(authorities);
        let checked = Checked { facts, failures, notary: &[] };
        super::judge(policy, authorities, &here, &digest(), &evidence, BOUNDS, keys, checked)
    }

    fn keyless_authorities(policy: &Policy) -> Vec<AuthorityKeys> {
        policy.authorities.iter().map(|a| AuthorityKeys { label: a.label(), keys: Ok(Vec::new()) }).collect()
    }

    #[test]
    fn a_keyless_signature_counts_for_its_identity_only_and_names_it() {
        let p = keyless_policy(&format!("      - keyless: {{issuer: \"{GITHUB}\", subject: \"{RELEASE}\"}}\n"), "");
        let authorities = keyless_authorities(&p);
        let verdict = judge_facts(&p, &authorities, &[keyless_fact(RELEASE, GITHUB)], &[], Evidence::default());
        assert!(verdict.allowed, "{:?}", verdict.reasons);
        let used = &verdict.signatures[0];
        assert_eq!(used.certificate_identity.as_deref(), Some(RELEASE));
        assert_eq!(used.certificate_issuer.as_deref(), Some(GITHUB));
        assert_eq!((used.log_index, used.trusted_root.as_deref()), (Some(42), Some("public-good")));
        assert_eq!(used.identity.as_deref(), Some("r.example/team-b/app"));

        let stranger = "https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main";
        let verdict = judge_facts(&p, &authorities, &[keyless_fact(stranger, GITHUB)], &[], Evidence::default());
        assert!(!verdict.allowed);
        let why = verdict.reasons.join(" | ");
        assert!(why.contains(&format!("the keyless signatures found are by {stranger} from {GITHUB}")), "{why}");
        let other_issuer = keyless_fact(RELEASE, "https://accounts.example");
        assert!(!judge_facts(&p, &authorities, &[other_issuer], &[], Evidence::default()).allowed);

        let mut elsewhere = keyless_fact(RELEASE, GITHUB);
        elsewhere.content =
            SigstoreContent::SimpleSigning(SimpleSigning::new("r.example/team-a/app", &digest(), None).to_bytes());
        let verdict = judge_facts(&p, &authorities, &[elsewhere], &[], Evidence::default());
        assert!(!verdict.allowed);
        assert!(verdict.reasons.join(" ").contains("names r.example/team-a/app"), "{:?}", verdict.reasons);
    }

    #[test]
    fn a_bundle_that_did_not_verify_is_named_in_the_keyless_reason() {
        let p = keyless_policy("      - keyless: {issuer: i, subject_regex: \".*\"}\n", "");
        let failure = BundleFailure {
            key: None,
            reason: "bundle sha256:ab: under public-good: certificate: expired at the signing time".into(),
        };
        let verdict = judge_facts(&p, &keyless_authorities(&p), &[], &[failure], Evidence::default());
        assert!(!verdict.allowed);
        assert!(
            verdict.reasons[1].ends_with(
                "did not verify: bundle sha256:ab: under public-good: certificate: expired at the signing time"
            ),
            "{:?}",
            verdict.reasons
        );
    }

    #[test]
    fn keyless_identities_count_once_each_in_k_of_n() {
        let authorities_yaml = format!(
            "      - keyless: {{issuer: \"{GITHUB}\", subject_regex: \"https://github.com/acme/.*\"}}\n      - keyless: {{issuer: \"{GITHUB}\", subject: \"{RELEASE}\"}}\n"
        );
        let p = keyless_policy(&authorities_yaml, "    threshold: 2\n");
        let authorities = keyless_authorities(&p);
        let twice = [keyless_fact(RELEASE, GITHUB), keyless_fact(RELEASE, GITHUB)];
        let verdict = judge_facts(&p, &authorities, &twice, &[], Evidence::default());
        assert!(!verdict.allowed, "one identity cannot meet two authorities");
        assert!(verdict.reasons.join(" ").contains("already counted for another authority (one identity counts once)"));
        let nightly = "https://github.com/acme/app/.github/workflows/nightly.yml@refs/heads/main";
        let two = [keyless_fact(RELEASE, GITHUB), keyless_fact(nightly, GITHUB)];
        let verdict = judge_facts(&p, &authorities, &two, &[], Evidence::default());
        assert!(verdict.allowed, "{:?}", verdict.reasons);
        assert_eq!(verdict.signatures.len(), 2);
    }

    #[test]
    fn a_keyless_authority_holds_to_its_trusted_root_and_certificate_conditions() {
        let yaml = format!(
            "      - keyless:\n          issuer: \"{GITHUB}\"\n          subject: \"{RELEASE}\"\n          trusted_root: private\n          conditions: [\"certificate.sourceRepositoryRef == 'refs/heads/main'\"]\n"
        );
        let p = keyless_policy(&yaml, "");
        let authorities = keyless_authorities(&p);
        let signer =
            |ref_: &str| SigstoreSigner::Certificate(identity(RELEASE, GITHUB, &[("sourceRepositoryRef", ref_)]));
        let good = signed_fact(signer("refs/heads/main"), "r.example/team-b/app", "private");
        assert!(judge_facts(&p, &authorities, &[good], &[], Evidence::default()).allowed);
        let public = signed_fact(signer("refs/heads/main"), "r.example/team-b/app", "public-good");
        let verdict = judge_facts(&p, &authorities, &[public], &[], Evidence::default());
        assert!(verdict.reasons.join(" ").contains("verified under trusted root \"public-good\", not \"private\""));
        let branch = signed_fact(signer("refs/heads/dev"), "r.example/team-b/app", "private");
        let verdict = judge_facts(&p, &authorities, &[branch], &[], Evidence::default());
        assert!(!verdict.allowed);
        let why = verdict.reasons.join(" ");
        assert!(why.contains("certificate.sourceRepositoryRef was \"refs/heads/dev\""), "{why}");
    }

    #[test]
    fn require_tlog_counts_a_key_signature_only_with_a_verified_log_entry() {
        let a = key(1);
        let p = keyless_policy("      - key: a\n        require_tlog: true\n", "");
        let authorities = [authority("a", &[&a])];
        let d = digest();
        let plain = signatures(vec![a.simple("r.example/team-b/app", &d)]);
        let verdict = judge_facts(&p, &authorities, &[], &[], plain.clone());
        assert!(!verdict.allowed);
        assert!(
            verdict.reasons[1].contains("has no verified transparency-log entry or timestamp (require_tlog)"),
            "{:?}",
            verdict.reasons
        );
        let logged = signed_fact(SigstoreSigner::Key(0), "r.example/team-b/app", "public-good");
        let verdict = judge_facts(&p, &authorities, &[logged], &[], plain);
        assert!(verdict.allowed, "{:?}", verdict.reasons);
        assert_eq!(verdict.signatures[0].log_index, Some(42));
        let failure = BundleFailure {
            key: Some(0),
            reason: "bundle sha256:cd: under public-good: transparency log: the SET does not verify".into(),
        };
        let verdict = judge_facts(&p, &authorities, &[], &[failure], Evidence::default());
        assert!(verdict.reasons[1].contains("the SET does not verify"), "{:?}", verdict.reasons);
    }

    #[test]
    fn attestation_conditions_read_the_keyless_signers_certificate() {
        let yaml = format!("      - keyless: {{issuer: \"{GITHUB}\", subject: \"{RELEASE}\"}}\n");
        let extra = "    attestations:\n      - predicate_type: https://slsa.dev/provenance/v1\n        conditions: [\"certificate.buildTrigger == 'push' && predicate.ok\"]\n";
        let p = keyless_policy(&yaml, extra);
        let authorities = keyless_authorities(&p);
        let statement = |trigger: &str| {
            let statement = Statement::v1(
                vec![Subject::sha256(None, &digest())],
                "https://slsa.dev/provenance/v1",
                serde_json::json!({"ok": true}),
            );
            SigstoreFact {
                signer: SigstoreSigner::Certificate(identity(RELEASE, GITHUB, &[("buildTrigger", trigger)])),
                root: "public-good".into(),
                log_index: Some(7),
                logged: true,
                sha256: "00".repeat(32),
                content: SigstoreContent::Statement(statement.to_json()),
            }
        };
        let facts = [keyless_fact(RELEASE, GITHUB), statement("push")];
        let verdict = judge_facts(&p, &authorities, &facts, &[], Evidence::default());
        assert!(verdict.allowed, "{:?}", verdict.reasons);
        assert_eq!(verdict.attestations[0].authority, format!("keyless {RELEASE} from {GITHUB}"));
        let facts = [keyless_fact(RELEASE, GITHUB), statement("workflow_dispatch")];
        let verdict = judge_facts(&p, &authorities, &facts, &[], Evidence::default());
        assert!(
            verdict.reasons.join(" ").contains("certificate.buildTrigger was \"workflow_dispatch\""),
            "{:?}",
            verdict.reasons
        );
    }

    #[test]
    fn a_bundle_signed_by_a_key_is_not_judged_as_keyless_nor_a_keyless_one_under_a_key() {
        let a = key(1);
        let d = digest();
        let payload = SimpleSigning::new("r.example/team-b/app", &d, None).to_bytes();
        let bundle = Bundle::message_signature(&a.public, &Digest::of(&payload), a.sign(&payload));
        let evidence = Evidence {
            bundles: vec![SigstoreEvidence { bundle, payload: Some(payload), source: "bundle sha256:ab".into() }],
            ..Evidence::default()
        };
        let p = keyless_policy("      - keyless: {issuer: i, subject: s}\n", "");
        let roots = TrustedRoots {
            roots: vec![crate::config::NamedTrustedRoot {
                name: "public-good".into(),
                root: pki::TrustedRoot::production(),
            }],
        };
        let trust = Trust { roots: &roots, notary: fake_notary, now: OffsetDateTime::now_utc() };
        let keys = DistinctKeys::of(&keyless_authorities(&p));
        let (facts, failures) = verify_bundles(&p, &keys, &evidence.bundles, trust);
        assert!(facts.is_empty() && failures.is_empty(), "{failures:?}");
        // Under require_tlog the same bundle is tried with the key: it verifies, but no log vouched for it.
        let logged = keyless_policy("      - key: a\n        require_tlog: true\n", "");
        let authorities = [authority("a", &[&a])];
        let (facts, failures) = verify_bundles(&logged, &DistinctKeys::of(&authorities), &evidence.bundles, trust);
        assert!(failures.is_empty(), "{failures:?}");
        assert!(matches!(facts[..], [SigstoreFact { signer: SigstoreSigner::Key(0), logged: false, .. }]));
        let verdict = judge_facts(&logged, &authorities, &facts, &failures, Evidence::default());
        assert!(!verdict.allowed);
        assert!(verdict.reasons[1].ends_with("has no verified transparency-log entry or timestamp (require_tlog)"));
    }

    #[test]
    fn an_authority_whose_key_cannot_be_had_says_why() {
        let a = key(1);
        let d = digest();
        let broken = AuthorityKeys { label: "b".into(), keys: Err("vault unreachable".into()) };
        let authorities = [authority("a", &[&a]), broken];
        let p = policy("    threshold: 2\n");
        let verdict = judge(
            &p,
            &authorities,
            &format!("{HOST}/team-b/app@{d}"),
            signatures(vec![a.simple("r.example/team-b/app", &d)]),
        );
        assert!(
            verdict.reasons.contains(&"no valid signature by b: vault unreachable".to_owned()),
            "{:?}",
            verdict.reasons
        );
    }

    /// A stand-in for `pki::notary`: the "envelope" is JSON naming its signer, the trust-store file its chain
    /// ends at, the digest it signs and what is wrong with it.
    fn fake_notary(evidence: &NotaryEvidence, notation: &Notation, _now: OffsetDateTime) -> NotaryCheck {
        let claims: Value = serde_json::from_slice(&evidence.envelope).unwrap();
        let claim = |name: &str| claims[name].as_str().unwrap_or_default().to_owned();
        let flag = |name: &str| claims[name].as_bool().unwrap_or_default();
        let root = claim("root");
        let chains = notation.trust_stores.ca.iter().any(|f| f.path.file_name().is_some_and(|n| n == root.as_str()));
        let fail = |bad: bool, why: &str| if bad { Err(why.to_owned()) } else { Ok(()) };
        NotaryCheck {
            integrity: fail(flag("tampered"), "the signature does not verify"),
            authenticity: fail(!chains, "the chain ends at no certificate of the trust store"),
            authentic_timestamp: Ok(()),
            expiry: fail(flag("expired"), "the signature expired"),
            revocation: fail(flag("unrevocable"), "revocation status unknown: no current CRL"),
            signer: (!flag("tampered")).then(|| NotarySigner {
                subject: claim("subject"),
                chain_sha256: vec!["aa".repeat(32), "bb".repeat(32)],
                signing_time: None,
            }),
            target_digest: Some(claims["target"].as_str().map_or(digest().to_string(), str::to_owned)),
        }
    }

    const SIGNER: &str = "CN=signer,O=Notary,L=Seattle,ST=WA,C=US";

    fn notary(claims: Value) -> NotaryEvidence {
        let envelope = serde_json::to_vec(&claims).unwrap();
        let source = format!("notation signature {}", Digest::of(&envelope));
        NotaryEvidence { envelope, media_type: "application/jose+json".into(), source, ..NotaryEvidence::default() }
    }

    /// Two trust stores (`a.pem`, `b.pem`, distinct certificates) in a temporary folder, and a policy there.
    fn notation_policy(authorities: &str, extra: &str) -> (tempfile::TempDir, Policy) {
        let dir = tempfile::tempdir().unwrap();
        let chain = crate::pki::certificate::tests::certificates("bundle-from-wrong-instance_fail");
        let pem = |der: &[u8]| {
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                crate::formats::base64_bytes::encode(der)
            )
        };
        std::fs::write(dir.path().join("a.pem"), pem(&chain[0])).unwrap();
        std::fs::write(dir.path().join("b.pem"), pem(chain.last().unwrap())).unwrap();
        let text = format!(
            "policies:\n  - name: p\n    images: [\"{HOST}/team-b/*\"]\n    authorities:\n{authorities}\n{extra}"
        );
        let file = dir.path().join("p.yaml");
        let policy = PolicySet::parse(&file.display().to_string(), &text).unwrap().0.policies.remove(0);
        (dir, policy)
    }

    fn notation_authority(store: &str, identity: &str, level: &str) -> String {
        format!(
            "      - notation:\n          trust_stores: {{ca: [{store}]}}\n          trusted_identities: [\"{identity}\"]\n          signature_verification: {{level: {level}}}\n"
        )
    }

    fn judge_notary(policy: &Policy, evidence: Vec<NotaryEvidence>) -> Verdict {
        let authorities: Vec<AuthorityKeys> =
            (policy.authorities.iter()).map(|a| AuthorityKeys { label: a.label(), keys: Ok(Vec::new()) }).collect();
        let evidence = Evidence { notary: evidence, ..Evidence::default() };
        judge(policy, &authorities, &format!("{HOST}/team-b/app@{}", digest()), evidence)
    }

    #[test]
    fn a_notation_signature_counts_under_its_trust_store_and_identity_and_names_signer_and_chain() {
        let (_dir, policy) =
            notation_policy(&notation_authority("a.pem", "x509.subject: C=US, ST=WA, O=Notary", "strict"), "");
        let verdict = judge_notary(&policy, vec![notary(json!({"subject": SIGNER, "root": "a.pem"}))]);
        assert!(verdict.allowed, "{:?}", verdict.reasons);
        let used = &verdict.signatures[0];
        assert_eq!(used.signer_dn.as_deref(), Some(SIGNER));
        assert_eq!(used.certificate_chain_sha256.as_ref().unwrap().len(), 2);
        assert!(used.authority.starts_with("notation C=US, ST=WA, O=Notary under "), "{}", used.authority);

        let other_store = judge_notary(&policy, vec![notary(json!({"subject": SIGNER, "root": "b.pem"}))]);
        assert!(!other_store.allowed);
        assert!(
            other_store.reasons[1].contains("authenticity: the chain ends at no certificate"),
            "{:?}",
            other_store.reasons
        );

        let stranger = "CN=x,O=Other,ST=WA,C=US";
        let other_identity = judge_notary(&policy, vec![notary(json!({"subject": stranger, "root": "a.pem"}))]);
        assert!(!other_identity.allowed);
        assert!(
            other_identity.reasons[1].contains(&format!("the notation signatures found are by {stranger}")),
            "{:?}",
            other_identity.reasons
        );
    }

    #[test]
    fn a_tampered_or_misdirected_notation_signature_does_not_count_and_says_why() {
        let (_dir, policy) = notation_policy(&notation_authority("a.pem", "*", "strict"), "");
        let tampered =
            judge_notary(&policy, vec![notary(json!({"subject": SIGNER, "root": "a.pem", "tampered": true}))]);
        assert!(!tampered.allowed);
        assert!(tampered.reasons[1].contains("did not verify: notation signature sha256:"), "{:?}", tampered.reasons);
        assert!(tampered.reasons[1].contains("the signature does not verify"), "{:?}", tampered.reasons);
        let other = Digest::of(b"other image");
        let misdirected = judge_notary(
            &policy,
            vec![notary(json!({"subject": SIGNER, "root": "a.pem", "target": other.to_string()}))],
        );
        assert!(!misdirected.allowed);
        assert!(
            misdirected.reasons[1].contains(&format!("signs {other}, not {}", digest())),
            "{:?}",
            misdirected.reasons
        );
    }

    const NOTATION_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/third-party/notation-1.3");

    /// A policy over the notation fixtures folder (its stores and CRL files) with `authorities`.
    fn fixture_policy(authorities: &str) -> Policy {
        let text =
            format!("policies:\n  - name: p\n    images: [\"{HOST}/team-b/*\"]\n    authorities:\n{authorities}");
        let file = format!("{NOTATION_FIXTURES}/p.yaml");
        PolicySet::parse(&file, &text).unwrap().0.policies.remove(0)
    }

    fn fixture_authority(store: &str, identity: &str, verification: &str, crls: &str) -> String {
        format!(
            "      - notation:\n          trust_stores: {{ca: [{store}]}}\n          trusted_identities: [\"{identity}\"]\n          signature_verification: {{{verification}}}\n          crls: [{crls}]\n"
        )
    }

    /// Judges the fixture envelope `name` with the real `check_envelope`, `after` its signing time.
    fn judge_fixture(policy: &Policy, name: &str, after: time::Duration) -> Verdict {
        let envelope = std::fs::read(format!("{NOTATION_FIXTURES}/{name}")).unwrap();
        let parsed = crate::formats::notary::NotaryEnvelope::parse("application/jose+json", &envelope).unwrap();
        let now = parsed.scheme_signing_time().unwrap() + after;
        let target = Digest::parse(&parsed.target_artifact.digest).unwrap();
        let source = format!("notation signature {}", Digest::of(&envelope));
        let evidence = NotaryEvidence {
            envelope,
            media_type: "application/jose+json".into(),
            source,
            ..NotaryEvidence::default()
        };
        let evidence = Evidence { notary: vec![evidence], ..Evidence::default() };
        let authorities: Vec<AuthorityKeys> =
            (policy.authorities.iter()).map(|a| AuthorityKeys { label: a.label(), keys: Ok(Vec::new()) }).collect();
        let roots = TrustedRoots::default();
        let trust = Trust { roots: &roots, notary: super::super::notation::check_envelope, now };
        let reference = format!("{HOST}/team-b/app@{target}");
        decide(policy, &authorities, &image(&reference), &target, &evidence, BOUNDS, trust)
    }

    #[test]
    fn checks_a_level_enforces_count_even_where_authenticity_is_only_logged() {
        let minute = time::Duration::minutes(1);
        let expired = time::Duration::days(3);
        let untrusted = |verification: &str, crls: &str| {
            fixture_policy(&fixture_authority("generate-test.crt", "*", verification, crls))
        };
        // strict, authenticity logged, expiry enforced: an expired envelope from an untrusted chain is denied.
        let policy = untrusted("level: strict, override: {authenticity: log}", "intermediate.crl");
        let verdict = judge_fixture(&policy, "chain.jws", expired);
        assert!(!verdict.allowed);
        assert!(
            verdict.reasons[1].contains("expiry: Notary Project signature: the signature has expired"),
            "{:?}",
            verdict.reasons
        );
        // The same, not yet expired: counts, the untrusted chain logged.
        let verdict = judge_fixture(&policy, "chain.jws", minute);
        assert!(verdict.allowed, "{:?}", verdict.reasons);
        assert!(verdict.logged.iter().any(|l| l.contains("although authenticity:")), "{:?}", verdict.logged);
        // Expiry logged too: counts, both logged.
        let policy = untrusted("level: strict, override: {authenticity: log, expiry: log}", "intermediate.crl");
        let verdict = judge_fixture(&policy, "chain.jws", expired);
        assert!(verdict.allowed, "{:?}", verdict.reasons);
        assert!(verdict.logged.iter().any(|l| l.contains("although expiry:")), "{:?}", verdict.logged);
        // Revocation enforced: the untrusted chain's revoked leaf is denied, and an unknown status too.
        let policy = untrusted("level: strict, override: {authenticity: log}", "intermediate.crl");
        let verdict = judge_fixture(&policy, "chain-revoked.jws", minute);
        assert!(!verdict.allowed);
        assert!(
            verdict.reasons[1].contains("revocation: Notary Project signature: the certificate"),
            "{:?}",
            verdict.reasons
        );
        let policy = untrusted("level: permissive, override: {authenticity: log, revocation: enforce}", "");
        let verdict = judge_fixture(&policy, "chain.jws", minute);
        assert!(!verdict.allowed);
        assert!(verdict.reasons[1].contains("revocation: revocation status unknown"), "{:?}", verdict.reasons);
        // audit with the authentic timestamp enforced: an expired certificate from an untrusted store is denied.
        let policy = fixture_policy(&fixture_authority(
            "chain-root.pem",
            "*",
            "level: audit, override: {authenticTimestamp: enforce}",
            "",
        ));
        let verdict = judge_fixture(&policy, "generate-test.jws", time::Duration::days(2));
        assert!(!verdict.allowed);
        assert!(verdict.reasons[1].contains("authentic timestamp:"), "{:?}", verdict.reasons);
        let verdict = judge_fixture(&policy, "generate-test.jws", minute);
        assert!(verdict.allowed, "{:?}", verdict.reasons);
    }

    #[test]
    fn authorities_with_the_same_stores_but_other_crls_get_their_own_revocation_result() {
        let leaf = "x509.subject: C=US, ST=WA, O=Notarium Fixtures";
        let without = fixture_authority("chain-root.pem", "*", "level: strict", "");
        let with = fixture_authority("chain-root.pem", leaf, "level: strict", "intermediate.crl");
        let minute = time::Duration::minutes(1);
        // A good leaf: the authority with the CRL file counts it, the one without (listed first) cannot.
        for authorities in [[&without, &with], [&with, &without]] {
            let policy = fixture_policy(&authorities.map(String::as_str).concat());
            let verdict = judge_fixture(&policy, "chain.jws", minute);
            assert!(verdict.allowed, "{:?}", verdict.reasons);
            assert_eq!(verdict.signatures.len(), 1);
            assert!(
                verdict.signatures[0].authority.starts_with(&format!("notation {}", &leaf[14..])),
                "{:?}",
                verdict.signatures
            );
        }
        // A revoked leaf: each authority says its own why (revoked by the file; unknown without it).
        let policy = fixture_policy(&format!("{without}{with}    threshold: 1\n"));
        let verdict = judge_fixture(&policy, "chain-revoked.jws", minute);
        assert!(!verdict.allowed);
        let reasons = verdict.reasons.join("\n");
        assert!(reasons.contains("notation * under chain-root.pem: a notation signature by notation * under chain-root.pem fails at level strict: revocation: revocation status unknown"), "{reasons}");
        assert!(reasons.contains("is revoked by its issuer's CRL"), "{reasons}");
        // Same stores and CRLs, another level: a check of its own too (permissive logs what strict enforces).
        let lenient = fixture_authority("chain-root.pem", "*", "level: permissive", "intermediate.crl");
        let policy = fixture_policy(&format!("{with}{lenient}"));
        let verdict = judge_fixture(&policy, "chain-revoked.jws", minute);
        assert!(verdict.allowed, "{:?}", verdict.reasons);
        assert!(verdict.signatures[0].authority.contains("[permissive]"), "{:?}", verdict.signatures);
    }

    #[test]
    fn levels_enforce_or_log_as_notation_does() {
        let expired = || notary(json!({"subject": SIGNER, "root": "a.pem", "expired": true}));
        let (_dir, strict) = notation_policy(&notation_authority("a.pem", "*", "strict"), "");
        let verdict = judge_notary(&strict, vec![expired()]);
        assert!(!verdict.allowed);
        assert!(
            verdict.reasons[1].contains("fails at level strict: expiry: the signature expired"),
            "{:?}",
            verdict.reasons
        );

        let (_dir, permissive) = notation_policy(&notation_authority("a.pem", "*", "permissive"), "");
        let verdict = judge_notary(&permissive, vec![expired()]);
        assert!(verdict.allowed, "{:?}", verdict.reasons);
        assert!(
            verdict.logged[0].contains("at level permissive although expiry: the signature expired"),
            "{:?}",
            verdict.logged
        );
        let untrusted = judge_notary(&permissive, vec![notary(json!({"subject": SIGNER, "root": "b.pem"}))]);
        assert!(!untrusted.allowed, "permissive enforces authenticity");

        let (_dir, audit) =
            notation_policy(&notation_authority("a.pem", "x509.subject: C=US, ST=WA, O=Elsewhere", "audit"), "");
        let verdict = judge_notary(&audit, vec![notary(json!({"subject": SIGNER, "root": "b.pem"}))]);
        assert!(verdict.allowed, "audit enforces integrity only: {:?}", verdict.reasons);
        assert!(verdict.logged.iter().any(|l| l.contains("authenticity: the chain")), "{:?}", verdict.logged);
        assert!(verdict.logged.iter().any(|l| l.contains("is not a trusted identity")), "{:?}", verdict.logged);
        let tampered =
            judge_notary(&audit, vec![notary(json!({"subject": SIGNER, "root": "a.pem", "tampered": true}))]);
        assert!(!tampered.allowed, "audit still enforces integrity");
    }

    #[test]
    fn overrides_change_what_a_level_enforces_logs_or_skips() {
        let signed = |flag: &str| notary(json!({"subject": SIGNER, "root": "a.pem", flag: true}));
        let level = |text: &str| notation_policy(&notation_authority("a.pem", "*", text), "");

        let (_dir, lenient_expiry) = level("strict, override: {expiry: log}");
        let verdict = judge_notary(&lenient_expiry, vec![signed("expired")]);
        assert!(verdict.allowed, "{:?}", verdict.reasons);
        assert!(verdict.logged[0].contains("at level strict (expiry=log) although expiry"), "{:?}", verdict.logged);
        let verdict = judge_notary(&lenient_expiry, vec![signed("unrevocable")]);
        assert!(!verdict.allowed, "the other checks stay enforced");

        let (_dir, strict_revocation) = level("permissive, override: {revocation: enforce}");
        let verdict = judge_notary(&strict_revocation, vec![signed("unrevocable")]);
        assert!(!verdict.allowed);
        assert!(
            verdict.reasons[1]
                .contains("fails at level permissive (revocation=enforce): revocation: revocation status"),
            "{:?}",
            verdict.reasons
        );
        let (_dir, permissive) = level("permissive");
        assert!(judge_notary(&permissive, vec![signed("unrevocable")]).allowed, "permissive logs revocation");

        let (_dir, no_revocation) = level("strict, override: {revocation: skip}");
        let verdict = judge_notary(&no_revocation, vec![signed("unrevocable")]);
        assert!(verdict.allowed && verdict.logged.is_empty(), "a skipped check is not even logged: {verdict:?}");

        let audit_enforcing = |identity: &str| {
            let authority = notation_authority("a.pem", identity, "audit, override: {authenticity: enforce}");
            notation_policy(&authority, "")
        };
        let (_dir, policy) = audit_enforcing("*");
        let other_store = judge_notary(&policy, vec![notary(json!({"subject": SIGNER, "root": "b.pem"}))]);
        assert!(!other_store.allowed, "authenticity enforced at level audit");
        let verdict = judge_notary(&policy, vec![signed("expired")]);
        assert!(verdict.allowed && verdict.logged[0].contains("expiry"), "{verdict:?}");
        let (_dir, policy) = audit_enforcing("x509.subject: C=US, ST=WA, O=Elsewhere");
        let stranger = judge_notary(&policy, vec![notary(json!({"subject": SIGNER, "root": "a.pem"}))]);
        assert!(!stranger.allowed, "an identity outside trusted_identities fails enforced authenticity");

        let (_dir, logged_authenticity) = level("strict, override: {authenticity: log}");
        let verdict = judge_notary(&logged_authenticity, vec![notary(json!({"subject": SIGNER, "root": "b.pem"}))]);
        assert!(verdict.allowed, "{:?}", verdict.reasons);
        assert!(
            verdict.logged[0].contains("(authenticity=log) although authenticity: the chain"),
            "{:?}",
            verdict.logged
        );
    }

    #[test]
    fn a_skip_authority_never_counts_and_a_threshold_cannot_lean_on_it() {
        let skip = "      - notation:\n          signature_verification: {level: skip}\n";
        let both = format!("{}{skip}", notation_authority("a.pem", "*", "strict"));
        let (dir, policy) = notation_policy(&both, "");
        let verdict = judge_notary(&policy, vec![notary(json!({"subject": SIGNER, "root": "a.pem"}))]);
        assert!(verdict.allowed);
        assert!(verdict.signatures.iter().all(|s| !s.authority.contains("skip")));
        let text = format!("policies:\n  - name: p\n    images: [\"*\"]\n    threshold: 1\n    authorities:\n{skip}");
        let err = PolicySet::parse(&dir.path().join("p.yaml").display().to_string(), &text).unwrap_err().to_string();
        assert!(err.contains("only 0 of the 1 authorities can count"), "{err}");
        let with_store = "      - notation:\n          trust_stores: {ca: [a.pem]}\n          signature_verification: {level: skip}\n";
        let text = format!(
            "policies:\n  - name: p\n    images: [\"*\"]\n    authorities:\n{}{with_store}",
            notation_authority("a.pem", "*", "strict")
        );
        let err = PolicySet::parse(&dir.path().join("p.yaml").display().to_string(), &text).unwrap_err().to_string();
        assert!(err.contains("a skip level verifies nothing"), "{err}");
    }

    #[test]
    fn one_notation_signer_meets_at_most_one_authority_and_distinct_signers_meet_two() {
        let two = format!(
            "{}{}",
            notation_authority("a.pem", "x509.subject: C=US, ST=WA, O=Notary", "strict"),
            notation_authority("a.pem", "*", "strict")
        );
        let (_dir, policy) = notation_policy(&two, "    threshold: 2");
        let one = judge_notary(&policy, vec![notary(json!({"subject": SIGNER, "root": "a.pem"}))]);
        assert!(!one.allowed);
        assert!(
            one.reasons.iter().any(|r| r.contains("already counted for another authority (one signer counts once)")),
            "{:?}",
            one.reasons
        );
        let second = "CN=other,O=Acme,ST=CA,C=US";
        let both = judge_notary(
            &policy,
            vec![
                notary(json!({"subject": SIGNER, "root": "a.pem"})),
                notary(json!({"subject": second, "root": "a.pem"})),
            ],
        );
        assert!(both.allowed, "{:?}", both.reasons);
        assert_eq!(both.signatures.len(), 2);
    }

    #[test]
    fn a_notation_signature_names_no_repository_so_identity_exact_refuses_it() {
        let (_dir, policy) = notation_policy(&notation_authority("a.pem", "*", "strict"), "    identity: exact");
        let verdict = judge_notary(&policy, vec![notary(json!({"subject": SIGNER, "root": "a.pem"}))]);
        assert!(!verdict.allowed);
        assert!(verdict.reasons[1].contains("names no repository"), "{:?}", verdict.reasons);
    }
}
