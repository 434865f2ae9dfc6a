//! Use cases: sign an image, reconcile interrupted signs, read and check the signatures on a digest.
//!
//! Owns: the order of operations across keys, registry and database (the invariants in ARCHITECTURE.md).
//! Must not touch: HTTP (no status codes here) or wire encodings (those are `formats`).

mod admission;
mod attest;
mod certificates;
mod check;
mod checkpoint;
mod crls;
mod decision_cache;
mod dry_run;
mod events;
mod evidence;
mod export;
mod keys;
mod policies;
mod reconcile;
mod record;
mod referrers;
mod register;
mod revocation;
mod sign;
mod sign_batch;
mod sign_on_push;
mod tiles;
mod timestamp;
mod verdicts;
mod verify;
mod witnesses;

use std::sync::Arc;

use futures_util::StreamExt as _;

use crate::config::{EvidenceLimits, TrustedRoots};
use crate::formats::image_index::index_entries;
use crate::formats::signature_manifest::Descriptor;
use crate::formats::{Digest, FormatError, ImageReference};
use crate::keys::{KeyError, KeyRing, Signature, Signer};
use crate::metrics::{key_labels, metrics};
use crate::oci::{
    EgressRules, ImmutableContent, Manifest, OciError, ReferrerLayout, Registry, RememberingRegistry, Repository,
    TagLayout,
};
use crate::policy::PolicySet;
use crate::register::{Register, RegisterError};
use crate::store::{RegisterStore, Store, StoreError};

pub use attest::{AttestOutcome, AttestRequest, MAX_ENVELOPE_BYTES};
pub use certificates::{Issued, attach_configured_chains};
pub use check::{CheckedSignature, check_signatures};
pub use checkpoint::RegisterSettings;
pub use crls::CrlFetcher;
pub use dry_run::{
    ChangedImage, DEFAULT_MAX_IMAGES, DEFAULT_SINCE, DryRun, DryRunReport, MAX_IMAGES, RepositoryChanges,
    UnevaluatedImage, period_start_ms,
};
pub use events::RecordedEvents;
pub use evidence::EvidenceWritten;
pub use export::{EXPORT_PAGE, ExportPlan, Period};
pub use reconcile::Reconciled;
pub use record::LogPosition;
pub use referrers::{Attached, TagListing};
pub use revocation::RevokeRequest;
pub use sign::{SignOutcome, SignRequest, WrittenArtifact};
pub use sign_batch::{BatchRefused, ImageSigned};
pub use sign_on_push::{ImageStatus, RuleStatus};
pub use verdicts::SignedVerdict;
pub use verify::RecordedDecision;
pub use verify::{Decision, Sources, UsedAttestation, UsedSignature, check_policy_keys, verify_image};
pub use witnesses::{MAX_WITNESS_ANSWER_BYTES, WitnessOutcome};

/// Everything a use case needs, shared by all requests.
pub struct Service {
    keys: KeyRing,
    signatures: TagLayout,
    store: Arc<dyn Store>,
    log: Register,
    register: RegisterSettings,
    /// OCI 1.1 referrers (Sigstore bundles) next to the tag scheme.
    referrers: ReferrerLayout,
    /// The same layouts for verification's evidence reads, over the view of the registry that answers
    /// reads by digest from memory (`oci::RememberingRegistry`).
    evidence: EvidenceReads,
    layouts: Layouts,
    /// How much evidence one verify (or sign's already-signed check) reads from a registry.
    evidence_limits: EvidenceLimits,
    /// The Sigstore trusted roots keyless signatures and logged bundles are judged against (`[sigstore]`).
    trusted_roots: Arc<TrustedRoots>,
    /// Key versions this process knows are in the register (see `keys.rs`).
    seen_key_versions: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The trust policies in force; replaced whole, so a verify sees one consistent set.
    policies: std::sync::RwLock<Arc<PolicySet>>,
    decisions: Arc<decision_cache::DecisionCache>,
    /// The revocations in force, read by concurrent verifies together (see `revocation.rs`).
    revocation_reads: revocation::RevocationReads,
    /// Signed checkpoints by tree size (see `checkpoint.rs`).
    checkpoints: checkpoint::CheckpointCache,
    /// `[ca]` and the keys it serves, when configured (see `certificates.rs`).
    ca: Option<certificates::CaSettings>,
    /// Fetches the CRLs Notary Project chains name (see `crls.rs`); `None`: cached CRL files only.
    crl_fetcher: Option<CrlFetcher>,
    /// `[tsa]`, which countersigns Notary Project signatures, when configured (see `timestamp.rs`).
    tsa: Option<Arc<timestamp::TsaClient>>,
    /// `[[log.witnesses]]`, which cosign checkpoints, when configured (see `witnesses.rs`).
    witnesses: Option<Arc<witnesses::WitnessClient>>,
    /// `[[sign_on_push]]` and `[sign_queue]` (see `sign_on_push.rs`); no rules by default.
    push_signing: sign_on_push::PushSigning,
    /// `[verdicts]` and the verdicts attached so far (see `verdicts.rs`); none by default.
    verdicts: verdicts::Verdicts,
}

/// Where verification reads signatures and referrers (see [`Service::sources`]).
struct EvidenceReads {
    signatures: TagLayout,
    referrers: ReferrerLayout,
}

/// Why a use case failed. The API maps each variant to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Reference(#[from] FormatError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("image {0} not found in its registry")]
    ImageNotFound(String),
    #[error(transparent)]
    Registry(#[from] OciError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("annotations must be a JSON object of strings: {0}")]
    Annotations(String),
    /// A sign's `formats`: an empty list, or none of them writable with this key at this registry.
    #[error("{0}")]
    Formats(String),
    #[error(transparent)]
    Register(#[from] RegisterError),
    #[error(
        "{image} is an image index of {platforms} platform manifests: set \"recursive\": true to cover the index and \
         each platform, or name one platform manifest by its digest"
    )]
    IndexNeedsRecursive { image: String, platforms: usize },
    #[error(
        "{image} is an image index of {platforms} manifests; a recursive sign or attest covers at most {limit}: \
         sign its platform manifests by digest instead"
    )]
    IndexTooLarge { image: String, platforms: usize, limit: usize },
    #[error("images lists {count} images; a batch names 1 to {limit} ([sign] max_batch)")]
    BatchSize { count: usize, limit: usize },
    #[error(
        "the images and their platform manifests make {count} manifests; a batch signs at most {limit} \
         ([sign] max_batch_manifests)"
    )]
    BatchManifests { count: usize, limit: usize },
    #[error("{image} is listed twice (first at images[{first}]); name each image once")]
    DuplicateImage { image: String, first: usize },
    #[error("invalid predicate: {0}")]
    Predicate(String),
    #[error("{what} would be {size} bytes; the limit is {limit}")]
    TooLarge { what: &'static str, size: usize, limit: usize },
    #[error("checkpoints cannot be signed: {0}")]
    CheckpointKey(String),
    /// An evidence pack could not be written (its temporary file or archive).
    #[error("the evidence pack could not be written: {0}")]
    Evidence(String),
    #[error("no policy called {0:?} is loaded")]
    UnknownPolicy(String),
    /// A signing key's certificate chain is unusable (the message names the key and the file).
    #[error("{0}")]
    Certificate(String),
    #[error("no [ca] is configured: certificates come from [[keys]] certificate_chain only")]
    NoCa,
    #[error("no [verdicts] is configured: set [verdicts] key to sign verdicts")]
    NoVerdicts,
    /// `[tsa]` gave no usable timestamp (refused by the egress rules, unreachable, or an answer that fails
    /// a check); `reason` is in notarium's words, never the TSA's.
    #[error("the timestamp authority {tsa} gave no usable timestamp: {reason}")]
    Timestamp { tsa: String, reason: String },
    /// A key revocation's field is malformed; the message names it.
    #[error("{0}")]
    InvalidRevocation(String),
    #[error("{0}")]
    AlreadyRevoked(String),
}

impl Service {
    pub fn new(keys: KeyRing, registry: Arc<dyn Registry>, store: Arc<dyn Store>, register: RegisterSettings) -> Self {
        let log = Register::new(store.clone() as Arc<dyn RegisterStore>);
        let decisions = Arc::new(decision_cache::DecisionCache::new(std::time::Duration::ZERO));
        let forgetting = decisions.clone();
        log.observe(Box::new(move |index, entry| forgetting.observe_local(index, entry)));
        let seen_key_versions = Default::default();
        // Manifests and blobs by digest, remembered from writes and reads, answer verification's reads.
        let memory = Arc::new(ImmutableContent::default());
        let writing: Arc<dyn Registry> = Arc::new(RememberingRegistry::writing(registry.clone(), memory.clone()));
        let reading: Arc<dyn Registry> = Arc::new(RememberingRegistry::reading(registry, memory));
        let referrers = ReferrerLayout::new(writing.clone(), store.subject_locks());
        let evidence = EvidenceReads {
            signatures: TagLayout::new(reading.clone(), store.subject_locks()),
            referrers: referrers.over(reading, store.subject_locks()),
        };
        Self {
            keys,
            signatures: TagLayout::new(writing, store.subject_locks()),
            referrers,
            evidence,
            layouts: Layouts::default(),
            evidence_limits: EvidenceLimits::default(),
            trusted_roots: Default::default(),
            store,
            log,
            register,
            seen_key_versions,
            policies: Default::default(),
            decisions,
            revocation_reads: Default::default(),
            checkpoints: Default::default(),
            ca: None,
            crl_fetcher: None,
            tsa: None,
            witnesses: None,
            push_signing: Default::default(),
            verdicts: Default::default(),
        }
    }

    /// Fetches the CRLs that Notary Project chains name, under `rules` (the egress rules of `[registries]`).
    pub fn with_crl_fetching(self, rules: EgressRules) -> Self {
        Self { crl_fetcher: Some(CrlFetcher::new(rules)), ..self }
    }

    /// Which registries get referrer copies beside the tag scheme.
    pub fn with_layouts(self, layouts: Layouts) -> Self {
        Self { layouts, ..self }
    }

    /// How much evidence one verify (or sign's already-signed check) reads from a registry.
    pub fn with_evidence_limits(self, evidence_limits: EvidenceLimits) -> Self {
        Self { evidence_limits, ..self }
    }

    /// The Sigstore trusted roots keyless signatures are judged against.
    pub fn with_trusted_roots(self, trusted_roots: TrustedRoots) -> Self {
        Self { trusted_roots: Arc::new(trusted_roots), ..self }
    }

    /// The names of the trusted roots in force, which keyless authorities may name.
    pub fn trusted_root_names(&self) -> Vec<&str> {
        self.trusted_roots.names()
    }

    /// The configured keys (image-signing keys and the checkpoint key).
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The database.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// What is not ready, in the words of the database and key backends (empty when all answer).
    pub async fn unready(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if let Err(e) = self.store.ping().await {
            failures.push(format!("database: {e}"));
        }
        for (id, signer) in self.keys.iter() {
            if let Err(e) = signer.versions().await {
                failures.push(format!("key {id}: {e}"));
            }
        }
        failures
    }

    pub fn policies(&self) -> Arc<PolicySet> {
        self.policies.read().expect("policy lock is never poisoned").clone()
    }

    /// Keeps verify allowances for `ttl` (zero, the default, keeps none).
    pub fn cache_decisions(&self, ttl: std::time::Duration) {
        self.decisions.set_ttl(ttl);
    }

    /// Puts `policies` in force; every kept allowance goes (their keys name policy contents, but an
    /// allowance by the default may now fall under a policy).
    pub fn set_policies(&self, policies: PolicySet) {
        *self.policies.write().expect("policy lock is never poisoned") = Arc::new(policies);
        self.decisions.forget(&decision_cache::Forget::Everything);
    }

    /// Forgets kept allowances that register entries appended by another replica make stale: reads every
    /// entry from `seen` to the current size that this server did not append (its own were handled as they
    /// were appended, and are not read back) and returns the new size.
    pub async fn follow_register(&self, seen: u64) -> Result<u64, ServiceError> {
        const PAGE: u64 = 1000;
        let size = self.log.size().await?;
        for run in self.decisions.foreign_runs(seen.min(size), size) {
            let mut start = run.start;
            while start < run.end {
                let end = (start + PAGE).min(run.end);
                for (index, entry) in self.log.entries(start, end).await? {
                    self.decisions.observe_remote(index, &entry);
                }
                start = end;
            }
        }
        self.decisions.followed_to(size);
        Ok(size)
    }

    /// The digest `image` names: its own digest after checking the registry holds it, or the digest its
    /// tag points to now.
    pub async fn resolve(&self, image: &ImageReference) -> Result<Digest, ServiceError> {
        Ok(self.resolve_manifest(image).await?.digest)
    }

    /// The manifest `image` names, as the registry serves it.
    pub async fn resolve_manifest(&self, image: &ImageReference) -> Result<Manifest, ServiceError> {
        manifest_of(self.signatures.registry().as_ref(), image).await
    }

    /// What a sign or attest of `image` covers: the manifest itself and, for an image index with
    /// `recursive`, every platform manifest it lists. An index without `recursive` is refused, so nobody
    /// believes the platform images signed when only their index is.
    pub(crate) async fn targets(&self, image: &ImageReference, recursive: bool) -> Result<Targets, ServiceError> {
        let manifest = self.resolve_manifest(image).await?;
        let platforms = platform_targets(&manifest)?;
        if !platforms.is_empty() && !recursive {
            return Err(ServiceError::IndexNeedsRecursive { image: image.to_string(), platforms: platforms.len() });
        }
        if platforms.len() > MAX_PLATFORMS {
            let (image, platforms) = (image.to_string(), platforms.len());
            return Err(ServiceError::IndexTooLarge { image, platforms, limit: MAX_PLATFORMS });
        }
        let top = Target {
            descriptor: Descriptor::new(&manifest.media_type, &manifest.digest, manifest.bytes.len() as u64),
            digest: manifest.digest,
        };
        Ok(Targets { top, platforms })
    }
}

/// The most manifests a recursive sign or attest covers in one request: each costs a signature and registry
/// writes, and real multi-platform indexes list a few dozen at most (platforms plus their attestation manifests).
const MAX_PLATFORMS: usize = 64;

/// Which layouts beside cosign's tag scheme a registry gets.
#[derive(Debug, Clone, Default)]
pub struct Layouts {
    /// Registries (`host[:port]`) that get no OCI 1.1 referrer copies (Sigstore bundles) of attestations.
    pub referrers_off: Vec<String>,
    /// Registry → the formats a sign writes there when the request names none (`[registries.formats]`).
    pub formats: std::collections::HashMap<String, Vec<crate::config::SignFormat>>,
    /// How long after signing a Notary Project signature expires (`[sign] notation_expiry_days`).
    pub notation_expiry: Option<time::Duration>,
    /// The most images one batch sign names (`[sign] max_batch`); `None`: `config::DEFAULT_MAX_BATCH`.
    pub max_batch: Option<usize>,
    /// The most manifests one batch signs in all, platforms included (`[sign] max_batch_manifests`);
    /// `None`: `config::DEFAULT_MAX_BATCH_MANIFESTS`.
    pub max_batch_manifests: Option<usize>,
}

impl Layouts {
    pub fn referrers(&self, registry: &str) -> bool {
        !self.referrers_off.iter().any(|host| host == registry)
    }
}

/// One manifest a request covers, with the descriptor a referrer names as its subject.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub digest: Digest,
    pub descriptor: Descriptor,
}

/// What a request covers: the named manifest and, for an index, its platform manifests.
pub(crate) struct Targets {
    pub top: Target,
    pub platforms: Vec<Target>,
}

/// How many platform manifests of one index are signed or attested at once.
const PLATFORMS_AT_ONCE: usize = 8;

impl Targets {
    /// How many manifests the request writes for: the named one and each platform.
    pub(crate) fn count(&self) -> usize {
        1 + self.platforms.len()
    }
}

/// `each` over every platform, at most [`PLATFORMS_AT_ONCE`] at a time, results in the platforms' order.
/// Every one runs to its end, even after another failed: a sign cut off between its registry writes and
/// its register entry would be left for reconciliation instead of answered.
async fn each_platform<'a, T, F, Fut>(platforms: &'a [Target], each: F) -> Vec<Result<T, ServiceError>>
where
    F: FnMut(&'a Target) -> Fut,
    Fut: Future<Output = Result<T, ServiceError>>,
{
    // Collected first: a lazy map's closure in the stream's type trips the Send check of the handler.
    let runs: Vec<Fut> = platforms.iter().map(each).collect();
    futures_util::stream::iter(runs).buffered(PLATFORMS_AT_ONCE).collect().await
}

/// The manifests an image index (OCI or Docker manifest list) lists; none for an image manifest.
fn platform_targets(manifest: &Manifest) -> Result<Vec<Target>, ServiceError> {
    let entries = index_entries(&manifest.media_type, &manifest.bytes)?;
    Ok(entries.into_iter().map(|entry| Target { digest: entry.digest, descriptor: entry.descriptor }).collect())
}

/// Signs `message` with version `version` of key `id`, reporting latency and failures to the metrics.
pub(crate) async fn timed_sign(
    id: &str,
    signer: &dyn Signer,
    version: Option<u32>,
    message: &[u8],
) -> Result<Signature, KeyError> {
    let labels = key_labels(id, signer.backend());
    let started = std::time::Instant::now();
    let signed = signer.sign(version, message).await;
    match &signed {
        Ok(_) => metrics().key_sign_seconds.get_or_create(&labels).observe(started.elapsed().as_secs_f64()),
        Err(_) => {
            metrics().key_errors.get_or_create(&labels).inc();
        }
    }
    signed
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("current time formats")
}

/// The manifest `image` names (by digest or by its tag now), as `registry` serves it.
pub async fn manifest_of(registry: &dyn Registry, image: &ImageReference) -> Result<Manifest, ServiceError> {
    let reference = match &image.digest {
        Some(d) => d.to_string(),
        None => image.tag.clone().expect("a reference has a tag or a digest"),
    };
    match registry.get_manifest(&repository_of(image), &reference).await? {
        Some(manifest) => Ok(manifest),
        None => Err(ServiceError::ImageNotFound(image.to_string())),
    }
}

pub fn repository_of(image: &ImageReference) -> Repository {
    Repository { registry: image.registry.clone(), name: image.repository.clone() }
}
