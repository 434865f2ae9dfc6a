//! Registries for the unit tests of the stores: an in-memory [`Registry`] (manifests and blobs in maps, a
//! referrers API on demand, usable or not, a rival writer of fallback tags, counts of reads), and a hostile
//! HTTP server for what only a real client meets (redirects, status codes, bodies).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

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

/// With `referrers_api` it indexes subjects itself (but answers its referrers API as if it had none when
/// `referrers_unusable`, as a registry answering 429 does, and lists entries without an artifact type when
/// `untyped_listing`, and without saying so on a manifest PUT when `silent_subject`, as
/// go-containerregistry's registry sends no `OCI-Subject` header); otherwise each of the first `rival_overwrites` writes of a fallback tag is replaced by
/// `rival_index`, as a writer that read the tag before us would replace it.
#[derive(Default)]
pub(super) struct FakeRegistry {
    pub referrers_api: bool,
    pub referrers_unusable: bool,
    pub untyped_listing: bool,
    pub silent_subject: bool,
    pub referrers_calls: Mutex<u32>,
    pub manifests: Mutex<HashMap<String, Vec<u8>>>,
    pub blobs: Mutex<HashMap<String, Vec<u8>>>,
    pub rival_overwrites: Mutex<u32>,
    pub rival_index: Vec<u8>,
    pub fallback_writes: Mutex<u32>,
    pub blob_reads: Mutex<u32>,
}

impl FakeRegistry {
    pub(super) fn stored(&self, reference: &str) -> Option<Vec<u8>> {
        self.manifests.lock().unwrap().get(reference).cloned()
    }

    /// Stores `bytes` as the manifest `reference` without any check, as a hostile registry serves it.
    pub(super) fn serve_manifest(&self, reference: &str, bytes: Vec<u8>) {
        self.manifests.lock().unwrap().insert(reference.to_owned(), bytes);
    }

    /// Stores `bytes` as a blob; returns its digest.
    pub(super) fn serve_blob(&self, bytes: &[u8]) -> Digest {
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
        let subject_indexed = self.referrers_api && !fallback && !self.silent_subject;
        Ok(PutManifest { digest: Digest::of(bytes), subject_indexed })
    }

    async fn get_referrers(&self, _: &Repository, subject: &Digest) -> Result<Option<ReferrersIndex>, OciError> {
        *self.referrers_calls.lock().unwrap() += 1;
        if !self.referrers_api || self.referrers_unusable {
            return Ok(None);
        }
        let mut index = self.referrers(subject);
        if self.untyped_listing {
            for (i, entry) in index.manifests.iter_mut().enumerate() {
                entry.artifact_type = (i % 2 == 1).then(String::new); // absent, or the empty type
            }
        }
        Ok(Some(index))
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

    /// Takes every upload whole: no session to open ahead.
    async fn open_uploads(&self, _: &Repository, _: usize, _: &[Digest]) -> usize {
        0
    }

    async fn cancel_uploads(&self, _: &Repository, _: usize) {}
}

/// A plain-HTTP server on loopback answering each request with the whole HTTP response `answer` makes of its
/// path, then closing the connection; it notes every path asked for.
pub(super) struct HostileServer {
    pub host: String,
    pub asked: Arc<Mutex<Vec<String>>>,
}

impl HostileServer {
    pub(super) async fn start(answer: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (answer, noted) = (Arc::new(answer), asked.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (answer, noted) = (answer.clone(), noted.clone());
                tokio::spawn(async move {
                    let path = request_path(&mut socket).await?;
                    noted.lock().unwrap().push(path.clone());
                    socket.write_all(answer(&path).as_bytes()).await?;
                    socket.shutdown().await
                });
            }
        });
        Self { host, asked }
    }

    /// How many requests asked for a path containing `part`.
    pub(super) fn asked_for(&self, part: &str) -> usize {
        self.asked.lock().unwrap().iter().filter(|path| path.contains(part)).count()
    }
}

/// An HTTP/1.1 response with `status` (`200 OK`), `headers` and `body`.
pub(super) fn http_response(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let headers: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    format!("HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

/// The path of the request arriving on `socket` (its head is read and dropped).
async fn request_path(socket: &mut tokio::net::TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut chunk = [0; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let read = socket.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    Ok(String::from_utf8_lossy(&head).split_whitespace().nth(1).unwrap_or_default().to_owned())
}
