//! The policy engine: may this digest run? Reads the `.sig` signatures and `.att` attestations on the
//! digest, checks each cryptographically against the governing policy's authorities (no replay of a
//! payload made for another digest), evaluates attestation conditions and says why in sentences.
//!
//! Must not touch: HTTP, or how policies are written (that is `policy`).

use serde::Serialize;

use super::check::check_signatures;
use super::{LogPosition, Service, ServiceError, manifest_of, now_rfc3339, repository_of};
use crate::formats::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use crate::formats::in_toto::Statement;
use crate::formats::{Digest, FormatError, ImageReference};
use crate::keys::{KeyRing, PublicKey};
use crate::oci::{EvidenceLimits, ReferrerStore, SignatureStore, StoredAttestation, StoredSignature};
use crate::policy::{Authority, ConditionOutcome, Fallback, Mode, Policy, PolicySet, RequiredAttestation};
use crate::register::event::{VerifyEvent, verify_entry};
use crate::store::{Append, Effect};

/// The predicate type of cosign v3's image signatures (a Statement in DSSE, in a bundle referrer).
const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// The answer to "may this image run?".
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Decision {
    pub allowed: bool,
    #[serde(serialize_with = "digest_string")]
    #[schema(value_type = String)]
    pub digest: Digest,
    /// The governing policy; `None` when no policy matches and the default decided.
    pub policy: Option<String>,
    /// The governing policy file's version (SHA-256 of its text).
    pub policy_version: Option<String>,
    pub mode: Option<Mode>,
    /// Why it was denied (or, in `warn` mode, would have been); empty when everything held.
    pub reasons: Vec<String>,
    /// True when this came from the decision cache rather than the registry.
    pub cached: bool,
    pub signatures: Vec<UsedSignature>,
    pub attestations: Vec<UsedAttestation>,
    /// Evidence the registry offered that was not read or not checked (beyond a cap, missing, oversized),
    /// and why; the decision is made without it.
    pub skipped: Vec<String>,
}

fn digest_string<S: serde::Serializer>(digest: &Digest, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(digest.as_str())
}

/// A signature that counted toward the threshold.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsedSignature {
    pub authority: String,
    pub identity: Option<String>,
    /// SHA-256 of the signature bytes, to find the layer again.
    pub signature_sha256: String,
}

/// An attestation that satisfied a requirement.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsedAttestation {
    pub predicate_type: String,
    pub authority: String,
    pub envelope_digest: String,
}

/// Where the engine reads keys, tag-scheme signatures and OCI 1.1 referrers, and how much it may read.
pub struct Sources<'a> {
    pub keys: &'a KeyRing,
    pub signatures: &'a SignatureStore,
    pub referrers: &'a ReferrerStore,
    pub limits: &'a EvidenceLimits,
}

/// An authority with the public keys it stands for (every version of an unpinned key).
struct ResolvedAuthority {
    label: String,
    keys: Vec<PublicKey>,
}

impl Service {
    /// Decides whether `image` may run under `policies`: under the policy called `policy_name`, or else the
    /// first whose images match. From the cache when this digest was allowed by the same policy version
    /// within the TTL (a tag is still resolved: it may have moved).
    pub async fn verify(
        &self,
        image: &str,
        policies: &PolicySet,
        policy_name: Option<&str>,
    ) -> Result<Decision, ServiceError> {
        let image = ImageReference::parse(image)?;
        let governing = match policy_name {
            Some(name) => Some(policies.named(name).ok_or_else(|| ServiceError::UnknownPolicy(name.to_owned()))?),
            None => policies.governing(&image),
        };
        let digest = match &image.digest {
            Some(d) => d.clone(),
            None => manifest_of(self.signatures.registry().as_ref(), &image).await?.digest,
        };
        let key = (digest.clone(), decided_by(governing, policies.default));
        if let Some(mut hit) = self.decisions.get(&key) {
            hit.cached = true;
            count_decision(&hit, "hit");
            return Ok(hit);
        }
        let sources = Sources {
            keys: &self.keys,
            signatures: &self.signatures,
            referrers: &self.referrers,
            limits: &self.evidence_limits,
        };
        let decision = decide(&sources, &image, digest, governing, policies.default).await?;
        count_decision(&decision, "miss");
        // A denial is not kept: the signature or attestation it lacked may be added a moment later.
        if decision.allowed {
            self.decisions.put(key, decision.clone());
        }
        Ok(decision)
    }
}

/// Which policy version decides (or the default, when none governs): the cache key next to the digest.
fn decided_by(governing: Option<&Policy>, default: Fallback) -> String {
    match governing {
        Some(p) => format!("{} {}", p.name, p.version),
        None => format!("default {default:?}"),
    }
}

/// The engine without a server: what `notarium verify --policy` runs.
pub async fn verify_image(sources: &Sources<'_>, image: &str, policies: &PolicySet) -> Result<Decision, ServiceError> {
    let image = ImageReference::parse(image)?;
    let digest = manifest_of(sources.signatures.registry().as_ref(), &image).await?.digest;
    decide(sources, &image, digest, policies.governing(&image), policies.default).await
}

/// The decision about `digest`, which `image` names, under `governing` (or `default` when none governs).
async fn decide(
    sources: &Sources<'_>,
    image: &ImageReference,
    digest: Digest,
    governing: Option<&Policy>,
    default: Fallback,
) -> Result<Decision, ServiceError> {
    let Some(policy) = governing else {
        return Ok(fallback(image, digest, default));
    };
    let authorities = resolve_authorities(sources.keys, &policy.authorities).await;
    let repo = repository_of(image);
    let limits = sources.limits;
    let ((_, stored), (_, attested), bundles) = tokio::try_join!(
        sources.signatures.read(&repo, &digest, limits),
        sources.signatures.read_attestations(&repo, &digest, limits),
        sources.referrers.bundle_envelopes(&repo, &digest, limits),
    )?;
    let mut skipped = [stored.skipped, attested.skipped, bundles.skipped].concat();
    let offered = attested.items.into_iter().chain(bundles.items.into_iter().map(|e| (None, e)));
    let envelopes = within_signature_cap(offered, limits.max_envelope_signatures, &mut skipped);
    let (signatures, mut reasons) = count_signers(policy, &authorities, &stored.items, &envelopes, &digest);
    let mut attestations = Vec::new();
    for required in &policy.attestations {
        match check_attestation(required, &authorities, &envelopes, &digest) {
            Ok(used) => attestations.push(used),
            Err(why) => reasons.extend(why),
        }
    }
    Ok(Decision {
        allowed: reasons.is_empty() || policy.mode == Mode::Warn,
        digest,
        policy: Some(policy.name.clone()),
        policy_version: Some(policy.version.clone()),
        mode: Some(policy.mode),
        reasons,
        cached: false,
        signatures,
        attestations,
        skipped,
    })
}

/// The envelopes with at most `max_signatures` signatures each; every other one is skipped, with the
/// reason, before any of its signatures is checked. Envelopes that do not parse are kept as they are (the
/// checks pass them over).
fn within_signature_cap(
    envelopes: impl Iterator<Item = StoredAttestation>,
    max_signatures: usize,
    skipped: &mut Vec<String>,
) -> Vec<StoredAttestation> {
    envelopes
        .filter(|(_, bytes)| match Envelope::parse_bounded(bytes, max_signatures) {
            Err(e @ FormatError::TooManySignatures { .. }) => {
                skipped.push(format!("envelope {}: {e}", Digest::of(bytes)));
                false
            }
            _ => true,
        })
        .collect()
}

fn fallback(image: &ImageReference, digest: Digest, default: Fallback) -> Decision {
    let verb = if default == Fallback::Allow { "allow" } else { "deny" };
    Decision {
        allowed: default == Fallback::Allow,
        digest,
        policy: None,
        policy_version: None,
        mode: None,
        reasons: vec![format!("no policy matches {}; the default is {verb}", image.repository_name())],
        cached: false,
        signatures: Vec::new(),
        attestations: Vec::new(),
        skipped: Vec::new(),
    }
}

/// Each authority's keys; an authority whose key cannot be had counts as not signing, and says why.
async fn resolve_authorities(keys: &KeyRing, authorities: &[Authority]) -> Vec<Result<ResolvedAuthority, String>> {
    let mut resolved = Vec::with_capacity(authorities.len());
    for authority in authorities {
        let label = authority.label();
        let found = match authority {
            Authority::PublicKey { key, .. } => Ok(vec![key.clone()]),
            Authority::Key(r) if r.version.is_some() => keys.public_key(r).await.map(|k| vec![k.public_key]),
            Authority::Key(r) => match keys.get(&r.id) {
                Ok(signer) => signer.versions().await.map(|v| v.into_iter().map(|k| k.public_key).collect()),
                Err(e) => Err(e),
            },
        };
        resolved.push(
            found.map(|keys| ResolvedAuthority { label: label.clone(), keys }).map_err(|e| format!("{label}: {e}")),
        );
    }
    resolved
}

/// The signatures that count (one per distinct authority) and, below the threshold, the reasons.
fn count_signers(
    policy: &Policy,
    authorities: &[Result<ResolvedAuthority, String>],
    stored: &[StoredSignature],
    envelopes: &[(Option<String>, Vec<u8>)],
    digest: &Digest,
) -> (Vec<UsedSignature>, Vec<String>) {
    let mut used = Vec::new();
    let mut missing = Vec::new();
    for authority in authorities {
        match authority {
            Ok(a) => match signed_by(a, stored, digest).or_else(|| bundle_signed_by(a, envelopes, digest)) {
                Some(signature) => used.push(signature),
                None => missing.push(format!("no valid signature by {}", a.label)),
            },
            Err(e) => missing.push(format!("no valid signature by {e}")),
        }
    }
    if used.len() >= policy.threshold {
        return (used, Vec::new());
    }
    let mut reasons = vec![format!("{} of the {} required authorities signed {digest}", used.len(), policy.threshold)];
    reasons.extend(missing);
    (used, reasons)
}

fn signed_by(authority: &ResolvedAuthority, stored: &[StoredSignature], digest: &Digest) -> Option<UsedSignature> {
    authority.keys.iter().find_map(|key| {
        let checked = check_signatures(stored, digest, key);
        checked.into_iter().zip(stored).find(|(c, _)| c.result.is_ok()).map(|(c, s)| UsedSignature {
            authority: authority.label.clone(),
            identity: c.identity,
            signature_sha256: Digest::of(&s.signature).hex().to_owned(),
        })
    })
}

/// A cosign v3 signature: a DSSE Statement of predicate type `cosign/sign/v1` about `digest`, by `authority`.
fn bundle_signed_by(
    authority: &ResolvedAuthority,
    envelopes: &[(Option<String>, Vec<u8>)],
    digest: &Digest,
) -> Option<UsedSignature> {
    let own = std::slice::from_ref(authority);
    envelopes.iter().find_map(|(_, bytes)| {
        let (_, statement) = authentic_statement(bytes, own, digest).ok()??;
        (statement.predicate_type == COSIGN_SIGN_PREDICATE).then(|| UsedSignature {
            authority: authority.label.clone(),
            identity: None,
            signature_sha256: Digest::of(bytes).hex().to_owned(),
        })
    })
}

/// The first envelope of `required`'s type, signed by an authority and about `digest`, whose predicate
/// meets every condition; otherwise why none did.
fn check_attestation(
    required: &RequiredAttestation,
    authorities: &[Result<ResolvedAuthority, String>],
    envelopes: &[(Option<String>, Vec<u8>)],
    digest: &Digest,
) -> Result<UsedAttestation, Vec<String>> {
    let wanted = required.predicate_type.as_str();
    let mut rejected = Vec::new();
    let mut failed_conditions = Vec::new();
    for (_, bytes) in envelopes {
        let (authority, statement) = match authentic_statement(bytes, authorities.iter().flatten(), digest) {
            Ok(Some(found)) if found.1.predicate_type == wanted => found,
            Ok(_) => continue,
            Err(e) => {
                rejected.push(e);
                continue;
            }
        };
        let failures = failing_conditions(required, &statement.predicate);
        if failures.is_empty() {
            let envelope_digest = Digest::of(bytes).to_string();
            return Ok(UsedAttestation { predicate_type: wanted.to_owned(), authority, envelope_digest });
        }
        failed_conditions.extend(failures.into_iter().map(|f| format!("attestation {wanted}: {f}")));
    }
    if !failed_conditions.is_empty() {
        return Err(failed_conditions);
    }
    let mut reason = format!("no valid {wanted} attestation signed by an authority");
    if !rejected.is_empty() {
        reason = format!("{reason} ({})", rejected.join("; "));
    }
    Err(vec![reason])
}

/// The statement of an envelope verified by some authority and naming `digest`; `Ok(None)` for an envelope
/// that is not an in-toto statement at all (another tool's layer), `Err` for one that fails a check.
fn authentic_statement<'a>(
    bytes: &[u8],
    authorities: impl IntoIterator<Item = &'a ResolvedAuthority>,
    digest: &Digest,
) -> Result<Option<(String, Statement)>, String> {
    let Ok(envelope) = Envelope::parse(bytes) else { return Ok(None) };
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Ok(None);
    }
    let verified = authorities
        .into_iter()
        .find_map(|a| a.keys.iter().find_map(|k| envelope.verify(k).ok()).map(|payload| (a.label.clone(), payload)));
    let Some((authority, payload)) = verified else {
        return Err("an envelope is signed by no authority".into());
    };
    let statement = Statement::parse(payload).map_err(|e| e.to_string())?;
    if !statement.subject.iter().any(|s| s.sha256_hex() == Some(digest.hex())) {
        return Err(format!("a {} statement names another digest", statement.predicate_type));
    }
    Ok(Some((authority, statement)))
}

fn failing_conditions(required: &RequiredAttestation, predicate: &serde_json::Value) -> Vec<String> {
    required
        .conditions
        .iter()
        .filter_map(|c| match c.evaluate(predicate) {
            ConditionOutcome::Holds => None,
            ConditionOutcome::Fails(why) => Some(why),
        })
        .collect()
}

impl Service {
    /// Appends `decision` about `image` to the register as a `verify` entry.
    pub async fn record_decision(
        &self,
        image: &str,
        decision: &Decision,
        actor: &str,
        addr: Option<&str>,
    ) -> Result<LogPosition, ServiceError> {
        let image = ImageReference::parse(image)?;
        let mode = decision.mode.map(|m| if m == Mode::Warn { "warn" } else { "enforce" });
        let entry = verify_entry(&VerifyEvent {
            time: &now_rfc3339(),
            actor,
            addr,
            registry: &image.registry,
            repository: &image.repository,
            digest: decision.digest.as_str(),
            allowed: decision.allowed,
            policy: decision.policy.as_deref(),
            policy_version: decision.policy_version.as_deref(),
            mode,
            reasons: &decision.reasons,
            signatures: serde_json::to_value(&decision.signatures).expect("plain strings serialize"),
            attestations: serde_json::to_value(&decision.attestations).expect("plain strings serialize"),
        });
        Ok(self.log.append(Append { entry, effect: Effect::None }).await?.into())
    }
}

fn count_decision(decision: &Decision, cache: &str) {
    let result = match (decision.allowed, decision.reasons.is_empty()) {
        (true, true) => "allowed",
        (true, false) => "allowed-with-warnings",
        (false, _) => "denied",
    };
    let m = crate::metrics::metrics();
    m.verify_decisions.get_or_create(&crate::metrics::OutcomeLabels { outcome: result.into() }).inc();
    m.verify_cache.get_or_create(&crate::metrics::OutcomeLabels { outcome: cache.into() }).inc();
}
