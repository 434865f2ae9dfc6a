//! The OCI 1.1 referrer store (formats.md §3): attaches a referrer manifest to a subject and lists a
//! subject's referrers, through the registry's referrers API where it has one and through the fallback tag
//! `sha256-<hex>` where it has not, never dropping another writer's index entry.
//!
//! Owns: uploading referrer manifests and the read-merge-write of the fallback index. Must not touch: what
//! the manifests and index entries say (`formats::referrer` builds them), the `.sig` tag (`signatures.rs`),
//! keys or the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::subject_tags::SubjectTags;
use super::{OciError, Registry, Repository};
use crate::formats::referrer::{ReferrersIndex, referrers_tag};
use crate::formats::signature_manifest::{Descriptor, OCI_INDEX, SignatureManifest};
use crate::formats::{Digest, FormatError};

/// The shortest wait before checking that a fallback index write is still there.
const MIN_SETTLE: Duration = Duration::from_millis(20);

/// Where an attached referrer is now found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedReferrer {
    pub manifest_digest: Digest,
    /// True when the registry indexed the subject itself (`OCI-Subject`); false when the fallback tag lists it.
    pub via_referrers_api: bool,
}

/// Manifests whose attach waits to list them in a subject's fallback index.
type Waiting = Mutex<HashMap<(Repository, Digest), Vec<Vec<u8>>>>;

/// Attaches and lists referrers. Fallback index updates for one subject are serialized inside this process,
/// and each lists every manifest waiting for that subject, so concurrent attaches share writes.
pub struct ReferrerStore {
    registry: Arc<dyn Registry>,
    tags: SubjectTags,
    waiting: Waiting,
}

impl ReferrerStore {
    pub fn new(registry: Arc<dyn Registry>) -> Self {
        Self { registry, tags: SubjectTags::default(), waiting: Waiting::default() }
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
        let manifest = referrer_of(subject, manifest_bytes)?;
        futures_util::future::try_join_all(blobs.iter().map(|blob| self.registry.put_blob(repo, blob))).await?;
        let by_digest = Digest::of(manifest_bytes);
        let put = self.registry.put_manifest(repo, by_digest.as_str(), &manifest.media_type, manifest_bytes).await?;
        if !put.subject_indexed {
            self.list_in_fallback(repo, subject, manifest_bytes).await?;
        }
        Ok(AttachedReferrer { manifest_digest: put.digest, via_referrers_api: put.subject_indexed })
    }

    /// Every referrer of `subject` as its index lists it, other writers' entries (such as cosign's, listed
    /// under the empty config's media type) as they are. Unverified: callers read and check the manifests.
    pub async fn list(&self, repo: &Repository, subject: &Digest) -> Result<Vec<Descriptor>, OciError> {
        let index = match self.registry.get_referrers(repo, subject).await? {
            Some(index) => index,
            None => self.fallback_index(repo, &referrers_tag(subject)).await?,
        };
        Ok(index.manifests)
    }

    /// Lists `manifest_bytes` in `subject`'s fallback index, with whatever other attaches left waiting.
    async fn list_in_fallback(
        &self,
        repo: &Repository,
        subject: &Digest,
        manifest_bytes: &[u8],
    ) -> Result<(), OciError> {
        let key = (repo.clone(), subject.clone());
        self.waiting.lock().expect("waiting referrers").entry(key.clone()).or_default().push(manifest_bytes.to_vec());
        let tag = referrers_tag(subject);
        // Ours stays in the batch even if an earlier writer took it from `waiting` and then failed.
        let batch = Mutex::new(vec![manifest_bytes.to_vec()]);
        let (tag_ref, key, batch) = (&tag, &key, &batch);
        self.tags
            .update(repo, subject, &tag, || async move {
                let manifests = self.take_waiting(key, batch);
                self.merge_once(repo, tag_ref, &manifests).await
            })
            .await
    }

    /// Moves the manifests waiting for `key` into `batch`; returns the whole batch.
    fn take_waiting(&self, key: &(Repository, Digest), batch: &Mutex<Vec<Vec<u8>>>) -> Vec<Vec<u8>> {
        let waiting = self.waiting.lock().expect("waiting referrers").remove(key).unwrap_or_default();
        let mut batch = batch.lock().expect("referrer batch");
        batch.extend(waiting);
        batch.clone()
    }

    /// One read-merge-write of the fallback index; `None` if any of `manifests` is missing afterwards.
    async fn merge_once(&self, repo: &Repository, tag: &str, manifests: &[Vec<u8>]) -> Result<Option<()>, OciError> {
        let started = Instant::now();
        let mut index = self.fallback_index(repo, tag).await?;
        let mut changed = false;
        for manifest in manifests {
            changed |= index.merge(manifest)?;
        }
        if !changed {
            return Ok(Some(()));
        }
        self.registry.put_manifest(repo, tag, OCI_INDEX, &index.to_json()).await?;
        // Registries offer no compare-and-swap on tags: a writer that read the index before our PUT can still
        // overwrite it, within about one read-write cycle. Look again after one, so we merge again if it did.
        tokio::time::sleep(started.elapsed().max(MIN_SETTLE)).await;
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
    use std::collections::HashMap;
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::formats::bundle::CONTENT_MESSAGE_SIGNATURE;
    use crate::formats::referrer::OCI_EMPTY;
    use crate::formats::signature_manifest::OCI_MANIFEST;
    use crate::oci::{Manifest, PutManifest};

    /// An in-memory registry. With `referrers_api` it indexes subjects itself; otherwise each of the first
    /// `rival_overwrites` writes of a fallback tag is replaced by `rival_index`, as a writer that read the
    /// tag before us would replace it.
    #[derive(Default)]
    struct FakeRegistry {
        referrers_api: bool,
        manifests: Mutex<HashMap<String, Vec<u8>>>,
        rival_overwrites: Mutex<u32>,
        rival_index: Vec<u8>,
        fallback_writes: Mutex<u32>,
    }

    impl FakeRegistry {
        fn stored(&self, reference: &str) -> Option<Vec<u8>> {
            self.manifests.lock().unwrap().get(reference).cloned()
        }

        fn referrers(&self, subject: &Digest) -> ReferrersIndex {
            let mut index = ReferrersIndex::empty();
            for bytes in self.manifests.lock().unwrap().values() {
                if SignatureManifest::parse(bytes)
                    .is_ok_and(|m| m.subject.is_some_and(|s| s.digest == subject.as_str()))
                {
                    index.merge(bytes).unwrap();
                }
            }
            index
        }
    }

    #[async_trait]
    impl Registry for FakeRegistry {
        async fn get_manifest(&self, _: &Repository, reference: &str) -> Result<Option<Manifest>, OciError> {
            let bytes = self.stored(reference);
            Ok(bytes.map(|bytes| Manifest { digest: Digest::of(&bytes), media_type: OCI_INDEX.into(), bytes }))
        }

        async fn put_manifest(
            &self,
            _: &Repository,
            reference: &str,
            _: &str,
            bytes: &[u8],
        ) -> Result<PutManifest, OciError> {
            let mut rival = self.rival_overwrites.lock().unwrap();
            let fallback = reference.starts_with("sha256-");
            *self.fallback_writes.lock().unwrap() += u32::from(fallback);
            let replaced = fallback && *rival > 0;
            let stored = if replaced { self.rival_index.clone() } else { bytes.to_vec() };
            *rival -= u32::from(replaced);
            self.manifests.lock().unwrap().insert(reference.to_owned(), stored);
            let subject_indexed = self.referrers_api && !fallback;
            Ok(PutManifest { digest: Digest::of(bytes), subject_indexed })
        }

        async fn get_referrers(&self, _: &Repository, subject: &Digest) -> Result<Option<ReferrersIndex>, OciError> {
            Ok(self.referrers_api.then(|| self.referrers(subject)))
        }

        async fn get_blob(&self, _: &Repository, digest: &Digest) -> Result<Vec<u8>, OciError> {
            Err(OciError::BlobNotFound { registry: "fake".into(), digest: digest.to_string() })
        }

        async fn put_blob(&self, _: &Repository, bytes: &[u8]) -> Result<Digest, OciError> {
            Ok(Digest::of(bytes))
        }
    }

    fn repo() -> Repository {
        Repository { registry: "fake".into(), name: "demo/app".into() }
    }

    fn subject() -> Digest {
        Digest::of(b"image manifest")
    }

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

    fn store(registry: FakeRegistry) -> (Arc<FakeRegistry>, ReferrerStore) {
        let registry = Arc::new(registry);
        (registry.clone(), ReferrerStore::new(registry))
    }

    #[tokio::test]
    async fn a_registry_that_indexes_the_subject_gets_no_fallback_tag() {
        let (registry, store) = store(FakeRegistry { referrers_api: true, ..Default::default() });
        let manifest = referrer(b"ours");
        let attached = store.attach(&repo(), &subject(), &manifest, &[b"{}"]).await.unwrap();
        assert_eq!(attached, AttachedReferrer { manifest_digest: Digest::of(&manifest), via_referrers_api: true });
        assert!(registry.stored(&referrers_tag(&subject())).is_none());
        let listed = store.list(&repo(), &subject()).await.unwrap();
        assert_eq!(listed.iter().map(|d| d.digest.as_str()).collect::<Vec<_>>(), [attached.manifest_digest.as_str()]);
    }

    #[tokio::test]
    async fn a_rival_overwrite_is_merged_again_and_its_entry_kept() {
        let (rival_index, rival_entry) = cosign_index();
        let registry = FakeRegistry { rival_overwrites: Mutex::new(2), rival_index, ..Default::default() };
        let (registry, store) = store(registry);
        let manifest = referrer(b"ours");
        let attached = store.attach(&repo(), &subject(), &manifest, &[]).await.unwrap();
        assert!(!attached.via_referrers_api);
        let index = ReferrersIndex::parse(&registry.stored(&referrers_tag(&subject())).unwrap()).unwrap();
        assert_eq!(index.manifests[0], rival_entry);
        assert_eq!(index.manifests[1].digest, Digest::of(&manifest).as_str());
        assert_eq!(store.list(&repo(), &subject()).await.unwrap(), index.manifests);
    }

    #[tokio::test]
    async fn a_rival_that_keeps_overwriting_ends_in_contended() {
        let registry = FakeRegistry {
            rival_overwrites: Mutex::new(u32::MAX),
            rival_index: cosign_index().0,
            ..Default::default()
        };
        let (_, store) = store(registry);
        let error = store.attach(&repo(), &subject(), &referrer(b"ours"), &[]).await.unwrap_err();
        assert!(matches!(error, OciError::Contended { attempts: 5, .. }), "{error}");
    }

    #[tokio::test]
    async fn concurrent_attaches_to_one_subject_share_fallback_writes() {
        let (registry, store) = store(FakeRegistry::default());
        let manifests: Vec<_> = (0..10).map(|i| referrer(format!("ours {i}").as_bytes())).collect();
        let (repo, subject) = (repo(), subject());
        let attaches = manifests.iter().map(|m| store.attach(&repo, &subject, m, &[]));
        futures_util::future::try_join_all(attaches).await.unwrap();
        let index = ReferrersIndex::parse(&registry.stored(&referrers_tag(&subject)).unwrap()).unwrap();
        let listed: Vec<_> = index.manifests.iter().map(|d| d.digest.clone()).collect();
        assert_eq!(listed, manifests.iter().map(|m| Digest::of(m).to_string()).collect::<Vec<_>>());
        assert_eq!(*registry.fallback_writes.lock().unwrap(), 2, "the first attach alone, then all the others");
    }

    #[tokio::test]
    async fn a_manifest_about_another_subject_is_refused_before_any_write() {
        let (registry, store) = store(FakeRegistry::default());
        let error = store.attach(&repo(), &Digest::of(b"other"), &referrer(b"ours"), &[]).await.unwrap_err();
        assert!(matches!(error, OciError::Format(_)), "{error}");
        assert!(registry.manifests.lock().unwrap().is_empty());
    }
}
