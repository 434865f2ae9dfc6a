//! The OCI 1.1 referrers layout: attaches a referrer manifest to a subject and lists a subject's referrers,
//! through the registry's referrers API where it has a usable one and through the fallback tag
//! `sha256-<hex>` where it has not, never dropping another writer's index entry. A registry found without a
//! usable referrers API (404, 429, a redirect elsewhere, a body that is no image index) is remembered as such
//! for a while, so its referrers API is not asked before every read.
//!
//! Owns: uploading referrer manifests and the read-merge-write of the fallback index. Must not touch: what
//! the manifests and index entries say (`formats::referrer` builds them), the `.sig` tag (`signatures.rs`),
//! keys or the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::memory::Remembered;

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;

use super::subject_tags::SubjectTags;
use super::{Gathered, OciError, PutManifest, Registry, Repository, a_few_at_a_time, read_blobs, skip_reason};
use crate::config::EvidenceLimits;
use crate::formats::bundle::Bundle;
use crate::formats::referrer::{ReferrersIndex, referrers_tag};
use crate::formats::signature_manifest::{Descriptor, OCI_INDEX, SignatureManifest};
use crate::formats::{Digest, FormatError};
use crate::store::{HeldLock, SubjectLocks};

/// How long a registry found without a usable referrers API is read through fallback tags only before its
/// referrers API is asked again (a registry upgraded meanwhile is noticed within this time).
const NO_REFERRERS_API_MEMORY: Duration = Duration::from_secs(600);
/// The most registries remembered without a referrers API; past it the memory starts over.
const MAX_REGISTRIES_REMEMBERED: usize = 1024;

/// A Notary Project signature envelope read from a referrer, unverified.
#[derive(Debug, Clone)]
pub struct NotaryEnvelope {
    pub envelope: Vec<u8>,
    /// `application/jose+json` or `application/cose`.
    pub media_type: String,
    /// The referrer manifest that carried it.
    pub manifest: Digest,
}

/// The signatures read from a subject's referrers: Sigstore bundles and Notary Project envelopes.
#[derive(Debug, Clone, Default)]
pub struct ReferredEvidence {
    pub bundles: Gathered<Bundle>,
    pub notary: Gathered<NotaryEnvelope>,
}

/// Where an attached referrer is now found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedReferrer {
    pub manifest_digest: Digest,
    /// True when the registry indexed the subject itself (`OCI-Subject`); false when the fallback tag lists it.
    pub via_referrers_api: bool,
}

/// The lock on a subject's fallback tag taken ahead of an attach, and the index as read under it (if it
/// was). Dropped, it releases the lock.
pub struct HeldIndex {
    lock: HeldLock,
    tag: String,
    read: Option<Result<ReferrersIndex, OciError>>,
}

/// Manifests whose attach waits to list them in a subject's fallback index.
type Waiting = Mutex<HashMap<(Repository, Digest), Vec<Vec<u8>>>>;

/// Attaches and lists referrers. Fallback index updates for one subject are serialized through the store's
/// subject locks (every process on the database), and each lists every manifest waiting for that subject in
/// this process, so concurrent attaches share writes.
pub struct ReferrerLayout {
    registry: Arc<dyn Registry>,
    tags: SubjectTags,
    waiting: Waiting,
    /// Registries found without a usable referrers API, and until when that is assumed (shared with the
    /// layouts made [`over`](Self::over) this one).
    without_referrers_api: Arc<Remembered<String>>,
}

impl ReferrerLayout {
    /// `locks` are the store's (shared by every process on its database); a process that only reads can
    /// pass in-process ones.
    pub fn new(registry: Arc<dyn Registry>, locks: Arc<dyn SubjectLocks>) -> Self {
        Self {
            registry,
            tags: SubjectTags::new(locks),
            waiting: Waiting::default(),
            without_referrers_api: Arc::new(Remembered::new(NO_REFERRERS_API_MEMORY, MAX_REGISTRIES_REMEMBERED)),
        }
    }

    /// A layout over another view of the same registries (verification's, which answers reads by digest from
    /// memory) that shares what this one found out about their referrers APIs, so neither probes again.
    pub fn over(&self, registry: Arc<dyn Registry>, locks: Arc<dyn SubjectLocks>) -> Self {
        Self { without_referrers_api: self.without_referrers_api.clone(), ..Self::new(registry, locks) }
    }

    /// Uploads `blobs` (the manifest's config and layers) and the referrer manifest `manifest_bytes`, whose
    /// `subject` must be `subject`, under its digest; lists it in the fallback index unless the registry
    /// indexed it.
    pub async fn attach(
        &self,
        repo: &Repository,
        subject: &Digest,
        manifest_bytes: &[u8],
        blobs: &[&[u8]],
    ) -> Result<AttachedReferrer, OciError> {
        let attached = self.attach_if(repo, subject, manifest_bytes, blobs, async { true }, None).await?;
        Ok(attached.expect("an attach that is not held back writes"))
    }

    /// Takes the lock on `subject`'s fallback tag, for an [`attach_if`](Self::attach_if) to come, when the
    /// registry is remembered without a usable referrers API (the attach then lists the manifest there);
    /// `None` otherwise. Dropping what it returns releases the lock.
    pub async fn hold_index(&self, repo: &Repository, subject: &Digest) -> Result<Option<HeldIndex>, OciError> {
        if !self.without_referrers_api.holds(repo.registry.as_str()) {
            return Ok(None);
        }
        let tag = referrers_tag(subject);
        let lock = self.tags.hold(repo, &tag).await?;
        Ok(Some(HeldIndex { lock, tag, read: None }))
    }

    /// Reads the fallback index `held` locks, for the attach's first merge: what a sign does while it reads
    /// the image.
    pub async fn read_held(&self, held: &mut HeldIndex, repo: &Repository) {
        held.read = Some(self.fallback_index(repo, &held.tag).await);
    }

    /// [`Self::attach`], the blobs uploaded while `go` decides whether the manifest is written at all
    /// (`None`: it was not). Against a registry remembered without a usable referrers API, the manifest's PUT
    /// and the first read of the fallback index run together, unless the index was read under a lock `held`
    /// from before: it is then merged and written as soon as the PUT has landed.
    pub async fn attach_if(
        &self,
        repo: &Repository,
        subject: &Digest,
        manifest_bytes: &[u8],
        blobs: &[&[u8]],
        go: impl Future<Output = bool>,
        held: Option<HeldIndex>,
    ) -> Result<Option<AttachedReferrer>, OciError> {
        let manifest = referrer_of(subject, manifest_bytes)?;
        let uploads = futures_util::future::try_join_all(blobs.iter().map(|blob| self.registry.put_blob(repo, blob)));
        let (uploaded, go) = tokio::join!(uploads, go);
        uploaded?;
        if !go {
            return Ok(None);
        }
        let by_digest = Digest::of(manifest_bytes);
        let put = self.registry.put_manifest(repo, by_digest.as_str(), &manifest.media_type, manifest_bytes);
        if self.without_referrers_api.holds(repo.registry.as_str()) {
            // Reads go to the fallback tag for now: the referrer is listed there even if the registry indexed
            // it, so that it is found before the registry's referrers API is asked again.
            let put = self.list_in_fallback(repo, subject, manifest_bytes, Some(put.boxed()), held).await?;
            return Ok(Some(AttachedReferrer { manifest_digest: put.digest, via_referrers_api: put.subject_indexed }));
        }
        let put = put.await?;
        let indexed = put.subject_indexed || self.api_lists(repo, subject, &put.digest).await;
        if !indexed || self.without_referrers_api.holds(repo.registry.as_str()) {
            self.list_in_fallback(repo, subject, manifest_bytes, None, held).await?;
        }
        Ok(Some(AttachedReferrer { manifest_digest: put.digest, via_referrers_api: indexed }))
    }

    /// Whether the registry's referrers API, asked after a PUT that carried no `OCI-Subject` header, already
    /// lists `manifest` among `subject`'s referrers (go-containerregistry's registry indexes subjects without
    /// sending the header). A registry found without a usable referrers API is remembered as such.
    async fn api_lists(&self, repo: &Repository, subject: &Digest, manifest: &Digest) -> bool {
        if self.without_referrers_api.holds(repo.registry.as_str()) {
            return false;
        }
        match self.registry.get_referrers(repo, subject).await {
            Ok(Some(index)) => index.manifests.iter().any(|entry| entry.digest == manifest.as_str()),
            Ok(None) => {
                self.without_referrers_api.remember(repo.registry.clone());
                false
            }
            Err(_) => false,
        }
    }

    /// Every referrer of `subject` as its index lists it, other writers' entries (such as cosign's, listed
    /// under the empty config's media type) as they are, except that an entry without an `artifactType` (or
    /// with an empty one, as go-containerregistry's registry and older cosign list them) gets the one its
    /// manifest declares (its `artifactType`, else its config's media type), for the first `resolve_at_most`
    /// such entries. Unverified: callers read and check the manifests.
    pub async fn list(
        &self,
        repo: &Repository,
        subject: &Digest,
        resolve_at_most: usize,
    ) -> Result<Vec<Descriptor>, OciError> {
        let mut referrers = self.index(repo, subject).await?.manifests;
        let untyped: Vec<usize> = (0..referrers.len())
            .filter(|&i| referrers[i].artifact_type.as_deref().is_none_or(str::is_empty))
            .take(resolve_at_most)
            .collect();
        let reads = untyped.iter().map(|&i| self.declared_artifact_type(repo, &referrers[i]).boxed()).collect();
        let declared = a_few_at_a_time(reads).await;
        for (i, artifact_type) in untyped.into_iter().zip(declared) {
            if artifact_type.is_some() {
                referrers[i].artifact_type = artifact_type;
            }
        }
        Ok(referrers)
    }

    /// The artifact type the manifest behind `referrer` declares, when it can be read.
    async fn declared_artifact_type(&self, repo: &Repository, referrer: &Descriptor) -> Option<String> {
        let digest = Digest::parse(&referrer.digest).ok()?;
        let manifest = self.registry.get_manifest(repo, digest.as_str()).await.ok()??;
        Some(SignatureManifest::parse(&manifest.bytes).ok()?.index_artifact_type().to_owned())
    }

    /// `subject`'s referrers index: from the referrers API, unless the registry has no usable one (now, or
    /// remembered from an earlier answer), then from the fallback tag.
    async fn index(&self, repo: &Repository, subject: &Digest) -> Result<ReferrersIndex, OciError> {
        if !self.without_referrers_api.holds(repo.registry.as_str()) {
            match self.registry.get_referrers(repo, subject).await? {
                Some(index) => return Ok(index),
                None => self.without_referrers_api.remember(repo.registry.clone()),
            }
        }
        self.fallback_index(repo, &referrers_tag(subject)).await
    }

    /// The DSSE envelopes of the Sigstore bundles attached to `subject` as referrers (cosign v3's layout for
    /// signatures and attestations, and notarium's copies), unverified, within `limits`: the first
    /// `max_referrers` referrers, each bundle at most `max_bundle_bytes`. Referrers that are not bundles are
    /// passed over; what could not be read is skipped with a reason.
    pub async fn bundle_envelopes(
        &self,
        repo: &Repository,
        subject: &Digest,
        limits: &EvidenceLimits,
    ) -> Result<Gathered<Vec<u8>>, OciError> {
        let bundles = self.bundles(repo, subject, limits).await?;
        let envelopes = bundles.items.iter().filter_map(|b| b.envelope().map(|e| e.to_json())).collect();
        Ok(Gathered { items: envelopes, skipped: bundles.skipped })
    }

    /// The whole Sigstore bundles (certificate, log entries, timestamps kept) among `subject`'s referrers,
    /// unverified, within `limits` as [`Self::referred_evidence`] reads them; a blob that is no bundle is
    /// passed over.
    pub async fn bundles(
        &self,
        repo: &Repository,
        subject: &Digest,
        limits: &EvidenceLimits,
    ) -> Result<Gathered<Bundle>, OciError> {
        Ok(self.referred_evidence(repo, subject, limits).await?.bundles)
    }

    /// Every signature among `subject`'s referrers, unverified, from one listing and one manifest read per
    /// referrer, within `limits`: the first `max_referrers` referrers; of each, its Sigstore bundle layers
    /// (each at most `max_bundle_bytes`) or, for a Notary Project signature manifest (artifact type
    /// `application/vnd.cncf.notary.signature`, one JWS or COSE layer), its envelope (at most
    /// `max_envelope_bytes`). What could not be read is skipped with a reason.
    pub async fn referred_evidence(
        &self,
        repo: &Repository,
        subject: &Digest,
        limits: &EvidenceLimits,
    ) -> Result<ReferredEvidence, OciError> {
        // Every referrer read is a manifest read anyway: the listing's artifact types are not resolved first.
        let referrers = self.index(repo, subject).await?.manifests;
        let mut gathered = ReferredEvidence::default();
        if referrers.len() > limits.max_referrers {
            let (count, max) = (referrers.len(), limits.max_referrers);
            gathered.bundles.skipped.push(format!("{subject} has {count} referrers; only the first {max} were read"));
        }
        let first = referrers.iter().take(limits.max_referrers);
        let reads = first.map(|r| self.referrer_evidence(repo, r, limits).boxed()).collect();
        for read in a_few_at_a_time(reads).await {
            gathered.bundles.extend(read.bundles);
            gathered.notary.extend(read.notary);
        }
        Ok(gathered)
    }

    /// What one referrer holds: its bundle layers, or its Notary Project envelope.
    async fn referrer_evidence(
        &self,
        repo: &Repository,
        referrer: &Descriptor,
        limits: &EvidenceLimits,
    ) -> ReferredEvidence {
        let (digest, parsed) = match self.referrer_manifest(repo, referrer).await {
            Ok(Some(read)) => read,
            Ok(None) => return ReferredEvidence::default(),
            Err(why) => return ReferredEvidence { bundles: Gathered::skipped(why), ..ReferredEvidence::default() },
        };
        match parsed.is_notary_signature() {
            true => ReferredEvidence {
                notary: self.notary_envelope(repo, digest, &parsed, limits).await,
                ..Default::default()
            },
            false => ReferredEvidence {
                bundles: self.bundle_layers(repo, digest, &parsed, limits).await,
                ..Default::default()
            },
        }
    }

    /// The envelope layer of a Notary Project signature manifest.
    async fn notary_envelope(
        &self,
        repo: &Repository,
        digest: Digest,
        manifest: &SignatureManifest,
        limits: &EvidenceLimits,
    ) -> Gathered<NotaryEnvelope> {
        let what = format!("notation signature referrer {digest}");
        let layer = match manifest.notary_envelope_layer() {
            Ok((_, layer)) => layer,
            Err(e) => return Gathered::skipped(format!("{what}: {e}")),
        };
        let blobs =
            read_blobs(self.registry.as_ref(), repo, vec![layer.digest.clone()], limits.max_envelope_bytes).await;
        match blobs.into_iter().next() {
            Some(Ok(envelope)) => Gathered {
                items: vec![NotaryEnvelope { envelope, media_type: layer.media_type.clone(), manifest: digest }],
                skipped: Vec::new(),
            },
            Some(Err(e)) => Gathered::skipped(skip_reason(&format!("the envelope of {what}"), &e)),
            None => Gathered::default(),
        }
    }

    /// The manifest behind `referrer` (`None` when it is no image manifest), or why it was skipped.
    async fn referrer_manifest(
        &self,
        repo: &Repository,
        referrer: &Descriptor,
    ) -> Result<Option<(Digest, SignatureManifest)>, String> {
        let Ok(digest) = Digest::parse(&referrer.digest) else {
            return Err("a referrer with a malformed digest".to_owned());
        };
        let what = format!("referrer {digest}");
        let manifest = match self.registry.get_manifest(repo, digest.as_str()).await {
            Ok(Some(manifest)) => manifest,
            Ok(None) => return Err(format!("{what}: manifest not found")),
            Err(e) => return Err(skip_reason(&what, &e)),
        };
        Ok(SignatureManifest::parse(&manifest.bytes).ok().map(|parsed| (digest, parsed)))
    }

    /// The bundle layers of one referrer manifest.
    async fn bundle_layers(
        &self,
        repo: &Repository,
        digest: Digest,
        manifest: &SignatureManifest,
        limits: &EvidenceLimits,
    ) -> Gathered<Bundle> {
        let what = format!("referrer {digest}");
        let bundles: Vec<_> = manifest.bundle_layers().collect();
        let digests = bundles.iter().map(|l| l.digest.clone()).collect();
        let blobs = read_blobs(self.registry.as_ref(), repo, digests, limits.max_bundle_bytes).await;
        let mut gathered = Gathered::default();
        for (layer, blob) in bundles.iter().zip(blobs) {
            match blob {
                Ok(blob) => gathered.items.extend(Bundle::parse(&blob).ok()),
                Err(e) => {
                    let layer =
                        Digest::parse(&layer.digest).map_or("a bundle layer".to_owned(), |d| format!("bundle {d}"));
                    gathered.skipped.push(skip_reason(&format!("{layer} of {what}"), &e));
                }
            }
        }
        gathered
    }

    /// Lists `manifest_bytes` in `subject`'s fallback index, with whatever other attaches left waiting.
    /// `put`, the manifest's own PUT when it is still to be made, runs while the index's lock is taken and the
    /// index read; the manifest is left waiting for other writers to list only once it landed (the registry
    /// refuses an index naming a manifest it does not hold), and our index write waits for it too. Returns
    /// the PUT's answer, or for a manifest put before, one made of its digest.
    async fn list_in_fallback(
        &self,
        repo: &Repository,
        subject: &Digest,
        manifest_bytes: &[u8],
        put: Option<BoxFuture<'_, Result<PutManifest, OciError>>>,
        held: Option<HeldIndex>,
    ) -> Result<PutManifest, OciError> {
        let key = (repo.clone(), subject.clone());
        let offer = || {
            let mut waiting = self.waiting.lock().expect("waiting referrers");
            waiting.entry(key.clone()).or_default().push(manifest_bytes.to_vec());
        };
        let (landed_tx, landed) = watch::channel(put.is_none().then_some(true));
        if put.is_none() {
            offer();
        }
        let put = async {
            let Some(put) = put else { return Ok(None) };
            let answer = put.await;
            if answer.is_ok() {
                offer();
            }
            landed_tx.send_replace(Some(answer.is_ok()));
            answer.map(Some)
        };
        let tag = referrers_tag(subject);
        // Ours stays in the batch even if an earlier writer took it from `waiting` and then failed.
        let batch = Mutex::new(vec![manifest_bytes.to_vec()]);
        let (tag_ref, key, batch, landed) = (&tag, &key, &batch, &landed);
        let (lock, mut read) = match held {
            Some(HeldIndex { lock, read, .. }) => (Some(lock), read),
            None => (None, None),
        };
        let attempt = || {
            let read = read.take();
            async move {
                let manifests = self.take_waiting(key, batch);
                self.merge_once(repo, tag_ref, &manifests, landed.clone(), read).await
            }
        };
        let listing = async {
            match lock {
                Some(lock) => SubjectTags::update_held(lock, repo, tag_ref, attempt).await,
                None => self.tags.update(repo, tag_ref, attempt).await,
            }
        };
        let (put, listed) = tokio::join!(put, listing);
        let put = put?;
        listed?;
        Ok(put.unwrap_or_else(|| PutManifest { digest: Digest::of(manifest_bytes), subject_indexed: false }))
    }

    /// Moves the manifests waiting for `key` into `batch`; returns the whole batch.
    fn take_waiting(&self, key: &(Repository, Digest), batch: &Mutex<Vec<Vec<u8>>>) -> Vec<Vec<u8>> {
        let waiting = self.waiting.lock().expect("waiting referrers").remove(key).unwrap_or_default();
        let mut batch = batch.lock().expect("referrer batch");
        batch.extend(waiting);
        batch.clone()
    }

    /// One read-merge-write of the fallback index, the read (unless it was made already: `read`) made while
    /// our manifest's PUT may still be on its way (`landed` says when it is, and whether it landed: if not,
    /// nothing is written); `None` if any of `manifests` is missing afterwards.
    async fn merge_once(
        &self,
        repo: &Repository,
        tag: &str,
        manifests: &[Vec<u8>],
        mut landed: watch::Receiver<Option<bool>>,
        read: Option<Result<ReferrersIndex, OciError>>,
    ) -> Result<Option<()>, OciError> {
        let landed = async move { matches!(landed.wait_for(Option::is_some).await.as_deref(), Ok(Some(true))) };
        let index = async {
            match read {
                Some(read) => read,
                None => self.fallback_index(repo, tag).await,
            }
        };
        let (index, landed) = tokio::join!(index, landed);
        if !landed {
            return Ok(Some(()));
        }
        let mut index = index?;
        let mut changed = false;
        for manifest in manifests {
            changed |= index.merge(manifest)?;
        }
        if !changed {
            return Ok(Some(()));
        }
        self.registry.put_manifest(repo, tag, OCI_INDEX, &index.to_json()).await?;
        // Registries offer no compare-and-swap on tags. notarium's writers wait for the tag's lock, but a writer
        // outside notarium (cosign) can overwrite the index: look again, so we merge again if it already did.
        let now = self.fallback_index(repo, tag).await?;
        let listed = |m: &Vec<u8>| now.manifests.iter().any(|e| e.digest == Digest::of(m).as_str());
        Ok(manifests.iter().all(listed).then_some(()))
    }

    /// The index behind a fallback tag; a missing tag is an empty index.
    async fn fallback_index(&self, repo: &Repository, tag: &str) -> Result<ReferrersIndex, OciError> {
        match self.registry.get_manifest(repo, tag).await? {
            Some(manifest) => Ok(ReferrersIndex::parse(&manifest.bytes)?),
            None => Ok(ReferrersIndex::empty()),
        }
    }
}

/// `bytes` parsed as a manifest about `subject`.
fn referrer_of(subject: &Digest, bytes: &[u8]) -> Result<SignatureManifest, OciError> {
    let manifest = SignatureManifest::parse(bytes)?;
    let about = manifest.subject.as_ref().map(|s| s.digest.as_str());
    if about != Some(subject.as_str()) {
        let reason = format!("its subject is {about:?}, not {subject}");
        return Err(FormatError::malformed("referrer manifest", reason).into());
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::formats::bundle::CONTENT_MESSAGE_SIGNATURE;
    use crate::formats::referrer::OCI_EMPTY;
    use crate::formats::signature_manifest::OCI_MANIFEST;
    use crate::oci::fake_registry::{FakeRegistry, HostileServer, http_response, repo, subject};
    use crate::store::TagLock;

    fn referrer(bundle: &[u8]) -> Vec<u8> {
        let image = Descriptor::new(OCI_MANIFEST, &subject(), 14);
        SignatureManifest::for_bundle(image, bundle, CONTENT_MESSAGE_SIGNATURE, None).to_json()
    }

    /// An index with one entry the way cosign writes it: empty-config artifact type, no annotations.
    fn cosign_index() -> (Vec<u8>, Descriptor) {
        let mut entry = Descriptor::for_blob(OCI_MANIFEST, &referrer(b"cosign"));
        entry.artifact_type = Some(OCI_EMPTY.to_owned());
        let mut index = ReferrersIndex::empty();
        index.manifests.push(entry.clone());
        (index.to_json(), entry)
    }

    fn local_locks() -> Arc<dyn SubjectLocks> {
        Arc::new(crate::store::LocalSubjectLocks::default())
    }

    fn layout(registry: FakeRegistry) -> (Arc<FakeRegistry>, ReferrerLayout) {
        let registry = Arc::new(registry);
        (registry.clone(), ReferrerLayout::new(registry, local_locks()))
    }

    #[tokio::test]
    async fn a_registry_that_indexes_the_subject_gets_no_fallback_tag() {
        let (registry, store) = layout(FakeRegistry { referrers_api: true, ..Default::default() });
        let manifest = referrer(b"ours");
        let attached = store.attach(&repo(), &subject(), &manifest, &[b"{}"]).await.unwrap();
        assert_eq!(attached, AttachedReferrer { manifest_digest: Digest::of(&manifest), via_referrers_api: true });
        assert!(registry.stored(&referrers_tag(&subject())).is_none());
        let listed = store.list(&repo(), &subject(), 64).await.unwrap();
        assert_eq!(listed.iter().map(|d| d.digest.as_str()).collect::<Vec<_>>(), [attached.manifest_digest.as_str()]);
    }

    #[tokio::test]
    async fn a_registry_that_indexes_the_subject_without_saying_so_gets_no_fallback_tag() {
        let registry = FakeRegistry { referrers_api: true, silent_subject: true, ..Default::default() };
        let (registry, store) = layout(registry);
        let manifest = referrer(b"ours");
        let attached = store.attach(&repo(), &subject(), &manifest, &[]).await.unwrap();
        assert!(attached.via_referrers_api, "its referrers API lists the manifest");
        assert!(registry.stored(&referrers_tag(&subject())).is_none());
        assert_eq!(*registry.fallback_writes.lock().unwrap(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_registry_without_a_usable_referrers_api_is_asked_again_only_after_a_while() {
        let (registry, store) = layout(FakeRegistry::default());
        let manifest = referrer(b"ours");
        store.attach(&repo(), &subject(), &manifest, &[]).await.unwrap();
        let listed = async |store: &ReferrerLayout| store.list(&repo(), &subject(), 64).await.unwrap();
        assert_eq!(listed(&store).await[0].digest, Digest::of(&manifest).as_str());
        assert_eq!(listed(&store).await.len(), 1);
        assert_eq!(*registry.referrers_calls.lock().unwrap(), 1, "the second read went straight to the tag");
        tokio::time::advance(NO_REFERRERS_API_MEMORY).await;
        assert_eq!(listed(&store).await.len(), 1);
        assert_eq!(*registry.referrers_calls.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn while_reads_use_the_fallback_tag_an_attach_lists_there_what_the_registry_indexed() {
        let registry = FakeRegistry { referrers_api: true, referrers_unusable: true, ..Default::default() };
        let (registry, store) = layout(registry);
        assert!(store.list(&repo(), &subject(), 64).await.unwrap().is_empty());
        let manifest = referrer(b"ours");
        let attached = store.attach(&repo(), &subject(), &manifest, &[]).await.unwrap();
        assert!(attached.via_referrers_api);
        let listed = store.list(&repo(), &subject(), 64).await.unwrap();
        assert_eq!(listed.iter().map(|d| d.digest.as_str()).collect::<Vec<_>>(), [Digest::of(&manifest).as_str()]);
        assert!(registry.stored(&referrers_tag(&subject())).is_some());
    }

    #[tokio::test]
    async fn listed_entries_without_an_artifact_type_get_the_one_their_manifest_declares() {
        let (_, store) = layout(FakeRegistry { referrers_api: true, untyped_listing: true, ..Default::default() });
        let bundle = referrer(b"typed");
        let mut untyped: serde_json::Value = serde_json::from_slice(&referrer(b"untyped")).unwrap();
        untyped.as_object_mut().unwrap().remove("artifactType");
        let untyped = untyped.to_string().into_bytes();
        for manifest in [&bundle, &untyped] {
            store.attach(&repo(), &subject(), manifest, &[]).await.unwrap();
        }
        let listed = store.list(&repo(), &subject(), 64).await.unwrap();
        let type_of = |manifest: &[u8]| {
            let entry = listed.iter().find(|d| d.digest == Digest::of(manifest).as_str()).unwrap();
            entry.artifact_type.clone()
        };
        assert_eq!(type_of(&bundle).as_deref(), Some(crate::formats::bundle::BUNDLE_V0_3));
        assert_eq!(type_of(&untyped).as_deref(), Some(OCI_EMPTY), "the config's media type");

        let listed = store.list(&repo(), &subject(), 1).await.unwrap();
        let resolved = listed.iter().filter(|d| d.artifact_type.as_deref().is_some_and(|t| !t.is_empty())).count();
        assert_eq!(resolved, 1, "only the first untyped entry is read");
    }

    #[tokio::test]
    async fn a_rival_overwrite_is_merged_again_and_its_entry_kept() {
        let (rival_index, rival_entry) = cosign_index();
        let registry = FakeRegistry { rival_overwrites: Mutex::new(2), rival_index, ..Default::default() };
        let (registry, store) = layout(registry);
        let manifest = referrer(b"ours");
        let attached = store.attach(&repo(), &subject(), &manifest, &[]).await.unwrap();
        assert!(!attached.via_referrers_api);
        let index = ReferrersIndex::parse(&registry.stored(&referrers_tag(&subject())).unwrap()).unwrap();
        assert_eq!(index.manifests[0], rival_entry);
        assert_eq!(index.manifests[1].digest, Digest::of(&manifest).as_str());
        assert_eq!(store.list(&repo(), &subject(), 64).await.unwrap(), index.manifests);
    }

    #[tokio::test]
    async fn a_rival_that_keeps_overwriting_ends_in_contended() {
        let registry = FakeRegistry {
            rival_overwrites: Mutex::new(u32::MAX),
            rival_index: cosign_index().0,
            ..Default::default()
        };
        let (_, store) = layout(registry);
        let error = store.attach(&repo(), &subject(), &referrer(b"ours"), &[]).await.unwrap_err();
        assert!(matches!(error, OciError::Contended { attempts: 5, .. }), "{error}");
    }

    #[tokio::test]
    async fn attaches_that_wait_for_the_subject_lock_share_one_fallback_write() {
        let registry = Arc::new(FakeRegistry::default());
        let locks = local_locks();
        let store = ReferrerLayout::new(registry.clone(), locks.clone());
        let manifests: Vec<_> = (0..10).map(|i| referrer(format!("ours {i}").as_bytes())).collect();
        let (repo, subject) = (repo(), subject());
        let tag = referrers_tag(&subject);
        let lock = TagLock { registry: repo.registry.clone(), repository: repo.name.clone(), tag: tag.clone() };
        let held = locks.acquire(&lock, Duration::from_secs(1)).await.unwrap();
        let attaches =
            futures_util::future::try_join_all(manifests.iter().map(|m| store.attach(&repo, &subject, m, &[])));
        let another_replica_writes = async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            held.release().await;
        };
        tokio::join!(attaches, another_replica_writes).0.unwrap();
        let index = ReferrersIndex::parse(&registry.stored(&tag).unwrap()).unwrap();
        let listed: Vec<_> = index.manifests.iter().map(|d| d.digest.clone()).collect();
        assert_eq!(listed, manifests.iter().map(|m| Digest::of(m).to_string()).collect::<Vec<_>>());
        assert_eq!(*registry.fallback_writes.lock().unwrap(), 1, "every attach that waited, in one write");
    }

    #[tokio::test]
    async fn an_attach_under_the_index_lock_held_ahead_merges_the_index_read_under_it() {
        let (registry, store) = layout(FakeRegistry::default());
        assert!(store.hold_index(&repo(), &subject()).await.unwrap().is_none(), "no lock before the API is known");
        store.attach(&repo(), &subject(), &referrer(b"first"), &[]).await.unwrap();
        let mut held = store.hold_index(&repo(), &subject()).await.unwrap().expect("remembered without the API");
        store.read_held(&mut held, &repo()).await;
        let manifest = referrer(b"second");
        let attached = store.attach_if(&repo(), &subject(), &manifest, &[], async { true }, Some(held)).await.unwrap();
        assert_eq!(attached.unwrap().manifest_digest, Digest::of(&manifest));
        let index = ReferrersIndex::parse(&registry.stored(&referrers_tag(&subject())).unwrap()).unwrap();
        let listed: Vec<_> = index.manifests.iter().map(|d| d.digest.clone()).collect();
        assert_eq!(listed, [Digest::of(&referrer(b"first")).to_string(), Digest::of(&manifest).to_string()]);
        let again = store.hold_index(&repo(), &subject()).await.unwrap();
        assert!(again.is_some(), "the attach released the lock it was handed");
    }

    #[tokio::test]
    async fn a_layout_over_another_view_shares_what_was_found_about_the_referrers_api() {
        let (registry, store) = layout(FakeRegistry::default());
        let reading = store.over(registry, local_locks());
        assert!(reading.hold_index(&repo(), &subject()).await.unwrap().is_none(), "nothing known yet");
        store.attach(&repo(), &subject(), &referrer(b"first"), &[]).await.unwrap();
        let held = reading.hold_index(&repo(), &subject()).await.unwrap();
        assert!(held.is_some(), "the registry found without the API by one layout is known to the other");
    }

    #[tokio::test]
    async fn a_manifest_about_another_subject_is_refused_before_any_write() {
        let (registry, store) = layout(FakeRegistry::default());
        let error = store.attach(&repo(), &Digest::of(b"other"), &referrer(b"ours"), &[]).await.unwrap_err();
        assert!(matches!(error, OciError::Format(_)), "{error}");
        assert!(registry.manifests.lock().unwrap().is_empty());
    }

    /// A referrer of `subject()` carrying a Sigstore bundle around a DSSE envelope whose payload is `payload`,
    /// attached through the referrers API; returns the envelope's JSON.
    async fn attach_bundle(store: &ReferrerLayout, payload: &[u8]) -> Vec<u8> {
        use crate::formats::bundle::{Bundle, CONTENT_DSSE_ENVELOPE};
        use crate::formats::dsse::Envelope;
        let key = crate::keys::PublicKey::from_pem(include_str!("../../tests/fixtures/other-p256.pub")).unwrap();
        let mut envelope = Envelope::unsigned("t", payload.to_vec());
        envelope.add_signature(b"unchecked here".to_vec());
        let bundle = Bundle::dsse(&key, envelope.clone()).unwrap().to_json();
        let image = Descriptor::new(OCI_MANIFEST, &subject(), 14);
        let manifest = SignatureManifest::for_bundle(image, &bundle, CONTENT_DSSE_ENVELOPE, None).to_json();
        store.attach(&repo(), &subject(), &manifest, &[&bundle, b"{}"]).await.unwrap();
        envelope.to_json()
    }

    #[tokio::test]
    async fn bundle_envelopes_reads_the_first_referrers_up_to_the_cap_and_says_so() {
        let (_, store) = layout(FakeRegistry { referrers_api: true, ..Default::default() });
        for i in 0..5 {
            attach_bundle(&store, format!("payload {i}").as_bytes()).await;
        }
        let limits = EvidenceLimits { max_referrers: 3, ..Default::default() };
        let read = store.bundle_envelopes(&repo(), &subject(), &limits).await.unwrap();
        assert_eq!(read.items.len(), 3);
        assert_eq!(read.skipped, [format!("{} has 5 referrers; only the first 3 were read", subject())]);
    }

    #[tokio::test]
    async fn an_oversized_or_missing_bundle_is_skipped_with_a_reason_and_the_others_read() {
        let (registry, store) = layout(FakeRegistry { referrers_api: true, ..Default::default() });
        let small = attach_bundle(&store, b"small").await;
        attach_bundle(&store, &[b'x'; 4096]).await;
        let big_bundle = registry.blobs.lock().unwrap().values().find(|b| b.len() > 4096).unwrap().clone();
        let limits = EvidenceLimits { max_bundle_bytes: 2048, ..Default::default() };
        let read = store.bundle_envelopes(&repo(), &subject(), &limits).await.unwrap();
        assert_eq!(read.items, std::slice::from_ref(&small));
        let referrer = store.list(&repo(), &subject(), 64).await.unwrap().into_iter().find(|r| {
            let manifest = SignatureManifest::parse(&registry.stored(&r.digest).unwrap()).unwrap();
            manifest.layers[0].digest == Digest::of(&big_bundle).as_str()
        });
        let (bundle, referrer) = (Digest::of(&big_bundle), referrer.unwrap().digest);
        let why = format!("bundle {bundle} of referrer {referrer}: larger than the limit of 2048 bytes");
        assert_eq!(read.skipped, [why]);

        registry.blobs.lock().unwrap().remove(bundle.as_str());
        let read = store.bundle_envelopes(&repo(), &subject(), &EvidenceLimits::default()).await.unwrap();
        assert_eq!(read.items, [small]);
        assert_eq!(read.skipped, [format!("bundle {bundle} of referrer {referrer}: blob not found")]);
    }

    /// A distribution client for `server`'s plain-HTTP registry, and its repository `demo/app`.
    fn client_of(servers: &[&HostileServer]) -> (Arc<dyn Registry>, Repository) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = crate::oci::DistributionRegistry::with_insecure(servers.iter().map(|s| s.host.clone()));
        (Arc::new(registry), Repository { registry: servers[0].host.clone(), name: "demo/app".into() })
    }

    /// An index listing one referrer (typed, so that listing it reads nothing more) of `subject()`.
    fn index_with(name: &[u8]) -> String {
        let mut entry = Descriptor::for_blob(OCI_MANIFEST, &referrer(name));
        entry.artifact_type = Some(OCI_EMPTY.to_owned());
        let mut index = ReferrersIndex::empty();
        index.manifests.push(entry);
        String::from_utf8(index.to_json()).unwrap()
    }

    /// Answers the referrers API with `quirk`, the fallback tag with an index of one referrer, and 404 else.
    fn registry_answering(quirk: String) -> impl Fn(&str) -> String + Send + Sync + 'static {
        let fallback = format!("/manifests/{}", referrers_tag(&subject()));
        move |path: &str| {
            if path.contains("/referrers/") {
                quirk.clone()
            } else if path.ends_with(&fallback) {
                http_response("200 OK", &[("Content-Type", OCI_INDEX)], &index_with(b"in the fallback tag"))
            } else {
                http_response("404 Not Found", &[], "")
            }
        }
    }

    #[tokio::test]
    async fn referrers_apis_that_redirect_elsewhere_throttle_or_answer_no_index_give_way_to_the_fallback_tag() {
        let elsewhere = HostileServer::start(|_| {
            http_response("200 OK", &[("Content-Type", OCI_INDEX)], &index_with(b"from another host"))
        })
        .await;
        let redirect = format!("http://{}/v2/demo/app/referrers/{}", elsewhere.host, subject());
        let quirks = [
            ("a redirect to another host", http_response("302 Found", &[("Location", &redirect)], "")),
            ("429", http_response("429 Too Many Requests", &[("Retry-After", "60")], "slow down")),
            ("an HTML page", http_response("200 OK", &[("Content-Type", "text/html")], "<html>referrers</html>")),
            (
                "a manifest",
                http_response("200 OK", &[("Content-Type", OCI_INDEX)], "{\"schemaVersion\":2,\"config\":{}}"),
            ),
        ];
        let expected = Digest::of(&referrer(b"in the fallback tag")).to_string();
        for (quirk, answer) in quirks {
            let server = HostileServer::start(registry_answering(answer)).await;
            let (client, repo) = client_of(&[&server, &elsewhere]);
            let store = ReferrerLayout::new(client, local_locks());
            for _ in 0..2 {
                let listed = store.list(&repo, &subject(), 64).await.unwrap();
                assert_eq!(
                    listed.iter().map(|d| d.digest.as_str()).collect::<Vec<_>>(),
                    [expected.as_str()],
                    "{quirk}"
                );
            }
            assert_eq!(server.asked_for("/referrers/"), 1, "{quirk}: remembered after the first answer");
        }
    }

    #[tokio::test]
    async fn a_referrers_api_answering_an_index_is_used_and_the_fallback_tag_left_alone() {
        let index = http_response("200 OK", &[("Content-Type", OCI_INDEX)], &index_with(b"from the API"));
        let server = HostileServer::start(registry_answering(index)).await;
        let (client, repo) = client_of(&[&server]);
        let listed = ReferrerLayout::new(client, local_locks()).list(&repo, &subject(), 64).await.unwrap();
        assert_eq!(listed[0].digest, Digest::of(&referrer(b"from the API")).as_str());
        assert_eq!(server.asked_for("/manifests/"), 0);
    }
}
