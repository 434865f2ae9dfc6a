//! What a registry holds by digest never changes: a [`Registry`] in front of another that remembers the
//! manifests and blobs of each repository by their digest (those this process wrote, and those it read and
//! checked against their digest), so that verification does not read them again. Tags are never
//! remembered: a tag may move, and every read by tag goes to the registry.
//!
//! Two views share one memory: the writing view (signing) only remembers, and always asks the registry, so a
//! write's own checks are never answered from memory; the reading view (verification's evidence reads)
//! answers a read by digest from memory when it can.
//!
//! Owns: the memory, its bound (bytes in all and per item, least recently used first) and the digest check
//! of what it keeps. Must not touch: what the content means (callers parse and verify it).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Manifest, OciError, PutManifest, Registry, Repository};
use crate::formats::Digest;
use crate::formats::referrer::ReferrersIndex;

/// At most this many bytes of content are kept in all.
const MOST_BYTES: usize = 8 << 20;
/// Content larger than this is not kept (signature payloads, bundles and their manifests are a few KiB).
const MOST_ITEM_BYTES: usize = 64 << 10;

/// A manifest (with the media type it was served or written with) or a blob.
#[derive(Clone)]
enum Content {
    Manifest { media_type: String, bytes: Arc<[u8]> },
    Blob(Arc<[u8]>),
}

impl Content {
    fn len(&self) -> usize {
        match self {
            Self::Manifest { bytes, .. } | Self::Blob(bytes) => bytes.len(),
        }
    }
}

type Key = (Repository, Digest);

#[derive(Default)]
struct Kept {
    by_key: HashMap<Key, (Content, u64)>,
    /// Last use → key: the first is the least recently used.
    by_use: BTreeMap<u64, Key>,
    clock: u64,
    bytes: usize,
}

/// Manifests and blobs by repository and digest, bounded.
pub struct ImmutableContent {
    kept: Mutex<Kept>,
    most_bytes: usize,
}

impl Default for ImmutableContent {
    fn default() -> Self {
        Self::with_bound(MOST_BYTES)
    }
}

impl ImmutableContent {
    fn with_bound(most_bytes: usize) -> Self {
        Self { kept: Mutex::default(), most_bytes }
    }

    /// Keeps `content`, whose digest the caller checked, unless it is too large.
    fn keep(&self, key: Key, content: Content) {
        if content.len() > MOST_ITEM_BYTES {
            return;
        }
        let mut kept = self.kept.lock().expect("content memory lock is never poisoned");
        let kept = &mut *kept;
        kept.clock += 1;
        let used = kept.clock;
        kept.bytes += content.len();
        if let Some((old, old_use)) = kept.by_key.insert(key.clone(), (content, used)) {
            kept.bytes -= old.len();
            kept.by_use.remove(&old_use);
        }
        kept.by_use.insert(used, key);
        while kept.bytes > self.most_bytes {
            let Some((_, oldest)) = kept.by_use.pop_first() else { break };
            if let Some((content, _)) = kept.by_key.remove(&oldest) {
                kept.bytes -= content.len();
            }
        }
    }

    fn get(&self, key: &Key) -> Option<Content> {
        let mut kept = self.kept.lock().expect("content memory lock is never poisoned");
        let kept = &mut *kept;
        kept.clock += 1;
        let clock = kept.clock;
        let (content, used) = kept.by_key.get_mut(key)?;
        kept.by_use.remove(used);
        *used = clock;
        kept.by_use.insert(clock, key.clone());
        Some(content.clone())
    }

    fn keep_manifest(&self, repo: &Repository, media_type: &str, bytes: &[u8]) {
        let content = Content::Manifest { media_type: media_type.to_owned(), bytes: Arc::from(bytes) };
        self.keep((repo.clone(), Digest::of(bytes)), content);
    }

    fn keep_blob(&self, repo: &Repository, digest: &Digest, bytes: &[u8]) {
        if bytes.len() <= MOST_ITEM_BYTES && Digest::of(bytes) == *digest {
            self.keep((repo.clone(), digest.clone()), Content::Blob(Arc::from(bytes)));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.kept.lock().unwrap().by_key.len()
    }
}

/// `inner` with `memory`: see the module documentation for the two views.
pub struct RememberingRegistry {
    inner: Arc<dyn Registry>,
    memory: Arc<ImmutableContent>,
    answers_from_memory: bool,
}

impl RememberingRegistry {
    /// The writing view: remembers what is written and read, always asks `inner`.
    pub fn writing(inner: Arc<dyn Registry>, memory: Arc<ImmutableContent>) -> Self {
        Self { inner, memory, answers_from_memory: false }
    }

    /// The reading view: answers reads by digest from `memory` when it holds them.
    pub fn reading(inner: Arc<dyn Registry>, memory: Arc<ImmutableContent>) -> Self {
        Self { inner, memory, answers_from_memory: true }
    }

    fn remembered(&self, repo: &Repository, digest: &Digest) -> Option<Content> {
        if !self.answers_from_memory {
            return None;
        }
        self.memory.get(&(repo.clone(), digest.clone()))
    }
}

#[async_trait]
impl Registry for RememberingRegistry {
    async fn get_manifest(&self, repo: &Repository, reference: &str) -> Result<Option<Manifest>, OciError> {
        let by_digest = Digest::parse(reference).ok();
        if let Some(Content::Manifest { media_type, bytes }) =
            by_digest.as_ref().and_then(|digest| self.remembered(repo, digest))
        {
            let digest = by_digest.expect("a remembered manifest was asked for by digest");
            return Ok(Some(Manifest { bytes: bytes.to_vec(), media_type, digest }));
        }
        let manifest = self.inner.get_manifest(repo, reference).await?;
        if let Some(m) = &manifest {
            self.memory.keep_manifest(repo, &m.media_type, &m.bytes);
        }
        Ok(manifest)
    }

    async fn put_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<PutManifest, OciError> {
        let put = self.inner.put_manifest(repo, reference, media_type, bytes).await?;
        self.memory.keep_manifest(repo, media_type, bytes);
        Ok(put)
    }

    async fn get_referrers(&self, repo: &Repository, subject: &Digest) -> Result<Option<ReferrersIndex>, OciError> {
        self.inner.get_referrers(repo, subject).await
    }

    async fn get_blob(&self, repo: &Repository, digest: &Digest, max_bytes: usize) -> Result<Vec<u8>, OciError> {
        if let Some(Content::Blob(bytes)) = self.remembered(repo, digest)
            && bytes.len() <= max_bytes
        {
            return Ok(bytes.to_vec());
        }
        let blob = self.inner.get_blob(repo, digest, max_bytes).await?;
        self.memory.keep_blob(repo, digest, &blob);
        Ok(blob)
    }

    async fn put_blob(&self, repo: &Repository, bytes: &[u8]) -> Result<Digest, OciError> {
        let digest = self.inner.put_blob(repo, bytes).await?;
        self.memory.keep_blob(repo, &digest, bytes);
        Ok(digest)
    }

    async fn open_uploads(&self, repo: &Repository, new: usize, maybe_known: &[Digest]) -> usize {
        self.inner.open_uploads(repo, new, maybe_known).await
    }

    async fn cancel_uploads(&self, repo: &Repository, count: usize) {
        self.inner.cancel_uploads(repo, count).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::fake_registry::{FakeRegistry, repo};

    fn views() -> (Arc<FakeRegistry>, RememberingRegistry, RememberingRegistry) {
        let fake = Arc::new(FakeRegistry::default());
        let memory = Arc::new(ImmutableContent::default());
        let inner = fake.clone() as Arc<dyn Registry>;
        (fake, RememberingRegistry::writing(inner.clone(), memory.clone()), RememberingRegistry::reading(inner, memory))
    }

    fn blob_reads(fake: &FakeRegistry) -> u32 {
        *fake.blob_reads.lock().unwrap()
    }

    #[tokio::test]
    async fn what_was_written_is_read_by_digest_from_memory_and_only_by_the_reading_view() {
        let (fake, writing, reading) = views();
        let digest = writing.put_blob(&repo(), b"payload").await.unwrap();
        let manifest = b"{\"layers\":[]}".to_vec();
        let manifest_digest = Digest::of(&manifest);
        writing.put_manifest(&repo(), manifest_digest.as_str(), "application/x", &manifest).await.unwrap();
        fake.blobs.lock().unwrap().clear();
        fake.manifests.lock().unwrap().clear();

        assert_eq!(reading.get_blob(&repo(), &digest, 100).await.unwrap(), b"payload");
        assert_eq!(blob_reads(&fake), 0, "the registry was not asked");
        let read = reading.get_manifest(&repo(), manifest_digest.as_str()).await.unwrap().unwrap();
        assert_eq!(
            (read.bytes, read.digest, read.media_type.as_str()),
            (manifest, manifest_digest.clone(), "application/x")
        );

        assert!(writing.get_blob(&repo(), &digest, 100).await.is_err(), "the writing view always asks");
        assert!(writing.get_manifest(&repo(), manifest_digest.as_str()).await.unwrap().is_none());
        let other = Repository { registry: "fake".into(), name: "other/app".into() };
        assert!(reading.get_blob(&other, &digest, 100).await.is_err(), "another repository is asked");
        assert!(reading.get_blob(&repo(), &digest, 3).await.is_err(), "the caller's cap still holds");
    }

    #[tokio::test]
    async fn tags_are_always_read_from_the_registry() {
        let (fake, writing, reading) = views();
        writing.put_manifest(&repo(), "sha256-abc.sig", "application/x", b"first").await.unwrap();
        fake.serve_manifest("sha256-abc.sig", b"moved".to_vec());
        let read = reading.get_manifest(&repo(), "sha256-abc.sig").await.unwrap().unwrap();
        assert_eq!(read.bytes, b"moved");
        fake.manifests.lock().unwrap().clear();
        assert!(reading.get_manifest(&repo(), "sha256-abc.sig").await.unwrap().is_none());
        let by_digest = reading.get_manifest(&repo(), Digest::of(b"moved").as_str()).await.unwrap();
        assert_eq!(by_digest.unwrap().bytes, b"moved", "what a tag served is remembered by its own digest");
    }

    #[tokio::test]
    async fn content_that_does_not_match_its_digest_is_not_remembered() {
        let (fake, _, reading) = views();
        let claimed = Digest::of(b"what was asked for");
        fake.blobs.lock().unwrap().insert(claimed.to_string(), b"something else".to_vec());
        for _ in 0..2 {
            assert_eq!(reading.get_blob(&repo(), &claimed, 100).await.unwrap(), b"something else");
        }
        assert_eq!(blob_reads(&fake), 2, "read from the registry each time");
        let served = Digest::of(b"right");
        fake.serve_blob(b"right");
        for _ in 0..2 {
            reading.get_blob(&repo(), &served, 100).await.unwrap();
        }
        assert_eq!(blob_reads(&fake), 3, "a blob that matches its digest is read once");
    }

    #[test]
    fn the_least_recently_used_content_goes_first_past_the_bound() {
        let memory = ImmutableContent::with_bound(10);
        let blob = |bytes: &'static [u8]| (Digest::of(bytes), bytes);
        let (a, b, c) = (blob(b"aaaa"), blob(b"bbbb"), blob(b"cccc"));
        for (digest, bytes) in [&a, &b] {
            memory.keep_blob(&repo(), digest, bytes);
        }
        assert!(memory.get(&(repo(), a.0)).is_some());
        memory.keep_blob(&repo(), &c.0, c.1);
        assert_eq!(memory.len(), 2);
        assert!(memory.get(&(repo(), b.0)).is_none(), "b was the least recently used");
        memory.keep_blob(&repo(), &Digest::of(&[0; MOST_ITEM_BYTES + 1]), &[0; MOST_ITEM_BYTES + 1]);
        assert_eq!(memory.len(), 2, "an item over the per-item bound is not kept");
    }
}
