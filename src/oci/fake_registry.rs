//! An in-memory [`Registry`] for the unit tests of the stores: manifests and blobs in maps, a referrers
//! API on demand, a rival writer of fallback tags, and a count of blob reads.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Manifest, OciError, PutManifest, Registry, Repository};
use crate::formats::Digest;
use crate::formats::referrer::ReferrersIndex;
use crate::formats::signature_manifest::{OCI_INDEX, SignatureManifest};

/// The repository the tests use.
pub(super) fn repo() -> Repository {
    Repository { registry: "fake".into(), name: "demo/app".into() }
}

/// The image the tests sign and attach to.
pub(super) fn subject() -> Digest {
    Digest::of(b"image manifest")
}

/// With `referrers_api` it indexes subjects itself; otherwise each of the first `rival_overwrites` writes
/// of a fallback tag is replaced by `rival_index`, as a writer that read the tag before us would replace it.
#[derive(Default)]
pub(super) struct FakeRegistry {
    pub referrers_api: bool,
    pub manifests: Mutex<HashMap<String, Vec<u8>>>,
    pub blobs: Mutex<HashMap<String, Vec<u8>>>,
    pub rival_overwrites: Mutex<u32>,
    pub rival_index: Vec<u8>,
    pub fallback_writes: Mutex<u32>,
    pub blob_reads: Mutex<u32>,
}

impl FakeRegistry {
    pub fn stored(&self, reference: &str) -> Option<Vec<u8>> {
        self.manifests.lock().unwrap().get(reference).cloned()
    }

    /// Stores `bytes` as the manifest `reference` without any check, as a hostile registry serves it.
    pub fn serve_manifest(&self, reference: &str, bytes: Vec<u8>) {
        self.manifests.lock().unwrap().insert(reference.to_owned(), bytes);
    }

    /// Stores `bytes` as a blob; returns its digest.
    pub fn serve_blob(&self, bytes: &[u8]) -> Digest {
        let digest = Digest::of(bytes);
        self.blobs.lock().unwrap().insert(digest.to_string(), bytes.to_vec());
        digest
    }

    fn referrers(&self, subject: &Digest) -> ReferrersIndex {
        let mut index = ReferrersIndex::empty();
        for bytes in self.manifests.lock().unwrap().values() {
            if SignatureManifest::parse(bytes).is_ok_and(|m| m.subject.is_some_and(|s| s.digest == subject.as_str())) {
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
        let fallback = reference.starts_with("sha256-") && !reference.contains('.');
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

    async fn get_blob(&self, _: &Repository, digest: &Digest, max_bytes: usize) -> Result<Vec<u8>, OciError> {
        *self.blob_reads.lock().unwrap() += 1;
        let registry = "fake".to_owned();
        match self.blobs.lock().unwrap().get(digest.as_str()) {
            None => Err(OciError::BlobNotFound { registry, digest: digest.to_string() }),
            Some(blob) if blob.len() > max_bytes => {
                Err(OciError::TooLarge { registry, what: format!("blob {digest}"), limit: max_bytes })
            }
            Some(blob) => Ok(blob.clone()),
        }
    }

    async fn put_blob(&self, _: &Repository, bytes: &[u8]) -> Result<Digest, OciError> {
        Ok(self.serve_blob(bytes))
    }
}
