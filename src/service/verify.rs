//! Verification as a use case: gathers the evidence about a digest (the `.sig` signatures and `.att`
//! attestations of the tag scheme, cosign's certificate and Rekor annotations on `.sig` and `.att` layers
//! read as Sigstore bundles, the Sigstore bundles among its OCI 1.1 referrers) and the public keys of the governing
//! policy's authorities, and the CRLs that trusted Notary Project chains name when no cached CRL file serves
//! (`crls.rs`, under the egress rules), hands them with the configured trusted roots and the present time to
//! the pure engine (`policy::engine`) off the async workers, keeps allowances in the decision cache and records
//! decisions in the register (a keyless signature's certificate identity, issuer and log index with them).
//!
//! Must not touch: HTTP, how policies are written or how a decision is reached (that is `policy`).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::crls::CrlFetcher;
use super::decision_cache::DecisionKey;
use super::{LogPosition, Service, ServiceError, manifest_of, now_rfc3339, repository_of};
use crate::config::{EvidenceLimits, TrustedRoots};
use crate::formats::dsse::Envelope;
use crate::formats::{Digest, ImageReference};
use crate::keys::KeyRing;
use crate::oci::{ReferrerLayout, Registry, Repository, TagLayout};
use crate::policy::engine::{
    self, AuthorityKeys, Bounds, Evidence, NotaryEvidence, RevokedKey, SignedPayload, SigstoreEvidence, Trust,
};
use crate::policy::{Authority, Fallback, Mode, Policy, PolicySet};
use crate::register::event::{VerifyEvent, verify_entry};
use crate::store::{Append, Effect};

pub use crate::policy::engine::{UsedAttestation, UsedSignature};

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
    /// Evidence that was not considered, and why (unreadable, oversized, over a cap).
    pub skipped: Vec<String>,
    /// Failed checks that a `notation:` authority's level (permissive, audit) logs instead of enforcing, on
    /// signatures it counted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logged: Vec<String>,
}

fn digest_string<S: serde::Serializer>(digest: &Digest, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(digest.as_str())
}

/// Where the engine reads keys, tag-scheme signatures and OCI 1.1 referrers, how much it may read, and the
/// Sigstore trusted roots keyless signatures are judged against.
pub struct Sources<'a> {
    /// Where an image's manifest is read (always asked: it names the digest, and that the registry holds it).
    pub registry: &'a Arc<dyn Registry>,
    pub keys: &'a KeyRing,
    pub signatures: &'a TagLayout,
    pub referrers: &'a ReferrerLayout,
    pub limits: &'a EvidenceLimits,
    pub trusted_roots: &'a Arc<TrustedRoots>,
    /// Fetches CRLs from distribution points; `None`: only the policies' cached CRL files are used.
    pub crl_fetcher: Option<&'a CrlFetcher>,
}

/// The policy that decides an image, or the default when none governs.
#[derive(Clone)]
struct Deciding {
    policies: Arc<PolicySet>,
    index: Option<usize>,
}

impl Deciding {
    fn choose(policies: Arc<PolicySet>, image: &ImageReference, name: Option<&str>) -> Result<Self, ServiceError> {
        let index = match name {
            Some(name) => Some(
                policies
                    .policies
                    .iter()
                    .position(|p| p.name == name)
                    .ok_or_else(|| ServiceError::UnknownPolicy(name.to_owned()))?,
            ),
            None => policies.policies.iter().position(|p| p.matches(image)),
        };
        Ok(Self { policies, index })
    }

    fn policy(&self) -> Option<&Policy> {
        self.index.map(|i| &self.policies.policies[i])
    }

    /// What the cache key holds for the policy: its content digest, or the default.
    fn content_digest(&self) -> Digest {
        match self.policy() {
            Some(p) => p.content_digest.clone(),
            None => Digest::of(format!("default {:?}", self.policies.default).as_bytes()),
        }
    }
}

impl Service {
    /// What `POST /v1/verify` reads evidence and keys from: manifests and blobs by digest come from memory
    /// when this process wrote or read them before (they cannot change), tags always from the registry.
    pub(super) fn sources(&self) -> Sources<'_> {
        Sources {
            registry: self.signatures.registry(),
            keys: &self.keys,
            signatures: &self.evidence.signatures,
            referrers: &self.evidence.referrers,
            limits: &self.evidence_limits,
            trusted_roots: &self.trusted_roots,
            crl_fetcher: self.crl_fetcher.as_ref(),
        }
    }

    /// Decides whether `image` may run under `policies`: under the policy called `policy_name`, or else the
    /// first whose images match. A kept allowance answers when nothing that could change it happened since
    /// (a tag is still resolved: it may have moved); concurrent cold verifies of one image share one decision.
    pub async fn verify(
        &self,
        image: &str,
        policies: Arc<PolicySet>,
        policy_name: Option<&str>,
    ) -> Result<Decision, ServiceError> {
        let image = ImageReference::parse(image)?;
        let deciding = Deciding::choose(policies, &image, policy_name)?;
        let digest = match &image.digest {
            Some(d) => d.clone(),
            None => manifest_of(self.signatures.registry().as_ref(), &image).await?.digest,
        };
        let revoked = self.revoked_keys(&digest).await?;
        let key = DecisionKey {
            repository: image.repository_name(),
            tag: image.tag.clone(),
            by_digest: image.digest.is_some() && deciding.policy().is_some_and(|p| p.require_digest),
            digest: digest.clone(),
            policy: super::revocation::with_revocations(deciding.content_digest(), &revoked),
        };
        let sources = self.sources();
        let decision =
            self.decisions.get_or_decide(&key, || decide(&sources, image, digest, deciding, revoked)).await?;
        count_decision(&decision, if decision.cached { "hit" } else { "miss" });
        Ok(decision)
    }
}

/// The engine without a server: what `notarium verify --policy` runs.
pub async fn verify_image(
    sources: &Sources<'_>,
    image: &str,
    policies: Arc<PolicySet>,
) -> Result<Decision, ServiceError> {
    let image = ImageReference::parse(image)?;
    let digest = manifest_of(sources.registry.as_ref(), &image).await?.digest;
    let deciding = Deciding::choose(policies, &image, None)?;
    decide(sources, image, digest, deciding, Vec::new()).await
}

/// The decision about `digest`, which `image` names: evidence and keys gathered here, judged by the engine
/// on a blocking thread (signature checks are CPU work).
async fn decide(
    sources: &Sources<'_>,
    image: ImageReference,
    digest: Digest,
    deciding: Deciding,
    revoked: Vec<RevokedKey>,
) -> Result<Decision, ServiceError> {
    let Some(policy) = deciding.policy() else {
        return Ok(fallback(&image, digest, deciding.policies.default));
    };
    let authorities = resolve_authorities(sources.keys, &policy.authorities).await;
    let mut evidence = gather(sources, &repository_of(&image), &digest).await?;
    evidence.revoked = revoked;
    if let Some(fetcher) = sources.crl_fetcher {
        fetch_crls(fetcher, &deciding, &mut evidence.notary).await;
    }
    let bounds = Bounds { max_envelope_signatures: sources.limits.max_envelope_signatures };
    let judged = {
        let (deciding, digest, roots) = (deciding.clone(), digest.clone(), sources.trusted_roots.clone());
        tokio::task::spawn_blocking(move || {
            let policy = deciding.policy().expect("a governing policy");
            let notary = crate::policy::notation::check_envelope;
            let trust = Trust { roots: &roots, notary, now: time::OffsetDateTime::now_utc() };
            engine::decide(policy, &authorities, &image, &digest, &evidence, bounds, trust)
        })
        .await
        .expect("the engine does not panic")
    };
    let policy = deciding.policy().expect("a governing policy");
    Ok(Decision {
        allowed: judged.allowed,
        digest,
        policy: Some(policy.name.clone()),
        policy_version: Some(policy.version.clone()),
        mode: Some(policy.mode),
        reasons: judged.reasons,
        cached: false,
        signatures: judged.signatures,
        attestations: judged.attestations,
        skipped: judged.skipped,
        logged: judged.logged,
    })
}

/// Every signature, envelope and bundle on `digest` within the caps: `.sig`, `.att` and bundle referrers,
/// read concurrently, with what was left out and why. A `.sig` layer with cosign's certificate or Rekor
/// annotations is also read as a bundle; one whose annotations are malformed is skipped as a bundle, with why.
async fn gather(sources: &Sources<'_>, repo: &Repository, digest: &Digest) -> Result<Evidence, ServiceError> {
    let limits = sources.limits;
    let ((_, stored), (_, attested), referred) = tokio::try_join!(
        sources.signatures.read(repo, digest, limits),
        sources.signatures.read_attestations(repo, digest, limits),
        sources.referrers.referred_evidence(repo, digest, limits),
    )?;
    let (referred, notary) = (referred.bundles, referred.notary);
    let mut skipped = [stored.skipped, attested.skipped, referred.skipped, notary.skipped].concat();
    let mut bundles = Vec::new();
    for found in stored.items.iter().filter(|s| s.sigstore.any()) {
        let source = format!(".sig layer with signature sha256:{}", Digest::of(&found.signature).hex());
        match found.sigstore.message_signature_bundle(&found.payload, &found.signature) {
            Ok(bundle) => bundles.push(SigstoreEvidence { bundle, payload: Some(found.payload.clone()), source }),
            Err(e) => skipped.push(format!("{source}: {e}")),
        }
    }
    for found in attested.items.iter().filter(|a| a.sigstore.any()) {
        let source = format!(".att layer sha256:{}", Digest::of(&found.envelope).hex());
        let bundle = Envelope::parse_bounded(&found.envelope, limits.max_envelope_signatures)
            .and_then(|envelope| found.sigstore.dsse_bundle(&envelope));
        match bundle {
            Ok(bundle) => bundles.push(SigstoreEvidence { bundle, payload: None, source }),
            Err(e) => skipped.push(format!("{source}: {e}")),
        }
    }
    let envelopes = (referred.items.iter())
        .filter_map(|b| b.envelope().map(|e| e.to_json()))
        .chain(attested.items.into_iter().map(|a| a.envelope))
        .collect();
    bundles.extend(referred.items.into_iter().map(|bundle| {
        let source = format!("bundle sha256:{}", Digest::of(&bundle.to_json()).hex());
        SigstoreEvidence { bundle, payload: None, source }
    }));
    let signatures =
        stored.items.into_iter().map(|s| SignedPayload { payload: s.payload, signature: s.signature }).collect();
    let notary = (notary.items.into_iter())
        .map(|n| {
            let source =
                format!("notation signature {} (envelope sha256:{})", n.manifest, Digest::of(&n.envelope).hex());
            NotaryEvidence { envelope: n.envelope, media_type: n.media_type, source, ..NotaryEvidence::default() }
        })
        .collect();
    Ok(Evidence { signatures, envelopes, bundles, notary, skipped, revoked: Vec::new() })
}

/// Attaches to each Notary Project envelope the CRLs its certificates name, fetched (or kept) when, under
/// one of the governing policy's `notation:` authorities, their cached CRL files leave its revocation status
/// unknown for a chain it trusts (or, where it only logs authenticity and enforces revocation, any chain). Which ones want CRLs is decided off the async workers (it verifies signatures); each
/// distribution point is fetched once per verify, all of them concurrently.
async fn fetch_crls(fetcher: &CrlFetcher, deciding: &Deciding, notary: &mut [NotaryEvidence]) {
    if notary.is_empty() {
        return;
    }
    let now = time::OffsetDateTime::now_utc();
    let (wanted, checked) = {
        let (deciding, mut envelopes) = (deciding.clone(), notary.to_vec());
        tokio::task::spawn_blocking(move || {
            let policy = deciding.policy().expect("a governing policy");
            let urls = |evidence| crate::policy::notation::wanted_crl_urls(policy.notation(), evidence, now);
            (envelopes.iter_mut().map(urls).collect::<Vec<_>>(), envelopes)
        })
        .await
        .expect("checking envelopes does not panic")
    };
    // What was verified to choose the CRLs is not verified again by the engine.
    for (evidence, checked) in notary.iter_mut().zip(checked) {
        evidence.authentic = checked.authentic;
    }
    let mut every: Vec<String> = wanted.iter().flatten().cloned().collect();
    every.sort();
    every.dedup();
    if every.is_empty() {
        return;
    }
    let fetched: HashMap<String, Result<Vec<u8>, String>> =
        every.iter().cloned().zip(fetcher.fetch(&every, now).await).collect();
    for (evidence, urls) in notary.iter_mut().zip(wanted) {
        for outcome in urls.iter().filter_map(|url| fetched.get(url)) {
            match outcome {
                Ok(der) => evidence.crls.push(der.clone()),
                Err(note) => evidence.crl_notes.push(note.clone()),
            }
        }
    }
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
        logged: Vec::new(),
    }
}

/// Each authority's keys (every version of an unpinned key); an authority whose key cannot be had counts as
/// not signing, and says why.
pub(crate) async fn resolve_authorities(keys: &KeyRing, authorities: &[Authority]) -> Vec<AuthorityKeys> {
    let mut resolved = Vec::with_capacity(authorities.len());
    for authority in authorities {
        let found = match authority {
            Authority::PublicKey { key, .. } => Ok(vec![key.clone()]),
            Authority::Keyless(_) | Authority::Notation(_) => Ok(Vec::new()),
            Authority::Key(r) if r.version.is_some() => keys.public_key(r).await.map(|k| vec![k.public_key]),
            Authority::Key(r) => match keys.get(&r.id) {
                Ok(signer) => signer.versions().await.map(|v| v.into_iter().map(|k| k.public_key).collect()),
                Err(e) => Err(e),
            },
        };
        resolved.push(AuthorityKeys { label: authority.label(), keys: found.map_err(|e| e.to_string()) });
    }
    resolved
}

/// Refuses a policy set in which two authorities of one policy stand for the same public key as the key
/// ring resolves them (two ids on one backend key, a `key:` and its own PEM), or an authority stands for the
/// register's checkpoint key (by id, or by its public key under another id or inline); an authority whose key
/// cannot be had now is left out of the key comparisons (counting over distinct keys still holds at decision
/// time, and the checkpoint key signs no image).
pub async fn check_policy_keys(keys: &KeyRing, policies: &PolicySet) -> Result<(), crate::policy::PolicyError> {
    let checkpoint_versions: Option<Vec<_>> = match keys.checkpoint_key().map(|id| keys.get(id)) {
        Some(Ok(signer)) => signer.versions().await.ok().map(|v| v.into_iter().map(|k| k.public_key).collect()),
        _ => None,
    };
    for policy in &policies.policies {
        let resolved = resolve_authorities(keys, &policy.authorities).await;
        let known: Vec<_> = resolved.into_iter().map(|a| a.keys.ok()).collect();
        policy.overlapping_keys(&known)?;
        if let Some(checkpoint_key) = keys.checkpoint_key() {
            policy.checkpoint_key_authority(checkpoint_key, checkpoint_versions.as_deref(), &known)?;
        }
    }
    Ok(())
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
        Ok(self.record_decision_entry(image, decision, actor, addr).await?.position)
    }

    /// Records `decision` as [`record_decision`](Self::record_decision) does, returning also the entry's
    /// leaf hash and time, which a verdict binds to.
    pub async fn record_decision_entry(
        &self,
        image: &str,
        decision: &Decision,
        actor: &str,
        addr: Option<&str>,
    ) -> Result<RecordedDecision, ServiceError> {
        let image = ImageReference::parse(image)?;
        let mode = decision.mode.map(|m| if m == Mode::Warn { "warn" } else { "enforce" });
        let time = now_rfc3339();
        let entry = verify_entry(&VerifyEvent {
            time: &time,
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
        let leaf_hash = crate::merkle::leaf_hash(&entry);
        let position = self.log.append(Append { entry, effect: Effect::None }).await?.into();
        Ok(RecordedDecision { position, leaf_hash, time })
    }
}

/// Where a decision's register entry landed, its RFC 9162 leaf hash and the time it states.
#[derive(Debug, Clone)]
pub struct RecordedDecision {
    pub position: LogPosition,
    pub leaf_hash: crate::merkle::Hash,
    pub time: String,
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
