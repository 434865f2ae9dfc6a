//! Key-compromise response (docs/FORMATS.md §25): revoking a key version (`key-revoked` entry, then the
//! `key_revocations` row), and what verification is told about revoked versions for one digest: which of
//! their signatures on it the register proves were made before the compromise.
//!
//! Owns: the revocation's checks and its proof of "earlier". Must not touch: what a revocation refuses
//! (`policy::engine` judges) or SQL (`store`).

use std::future::Future;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::OnceCell;

use super::{Service, ServiceError, now_rfc3339};
use crate::entry_fields::time_ms;
use crate::formats::Digest;
use crate::keys::KeyRef;
use crate::policy::engine::RevokedKey;
use crate::register::event::{KeyRevokedEvent, key_revoked_entry};
use crate::store::{Append, Effect, KeyRevocation, SearchFilter, Store, StoreError};

/// The longest `reason` a revocation takes.
const MAX_REASON: usize = 1024;
/// At most this many `sign`/`attest` entries of one revoked version on one digest are read as proof.
const MAX_PROOF_ENTRIES: u32 = 1000;

/// A revocation as the admin asked for it.
pub struct RevokeRequest<'a> {
    pub key: &'a str,
    pub version: u32,
    pub compromised_at: Option<&'a str>,
    pub reason: &'a str,
    pub actor: &'a str,
    pub source_addr: Option<&'a str>,
}

impl Service {
    /// Revokes a key version: checks the request, appends the `key-revoked` entry (once per version), then
    /// stores the revocation. A second revocation of one version is refused (`AlreadyRevoked`), whatever it
    /// says; a revocation whose entry was appended but whose row was not (a crash between) is completed
    /// from the entry.
    pub async fn revoke_key_version(&self, request: &RevokeRequest<'_>) -> Result<KeyRevocation, ServiceError> {
        let label = format!("{}@{}", request.key, request.version);
        self.keys.public_key(&KeyRef { id: request.key.to_owned(), version: Some(request.version) }).await?;
        let compromised_at_ms = request.compromised_at.map(compromise_time).transpose()?;
        if request.reason.trim().is_empty() || request.reason.len() > MAX_REASON {
            return Err(invalid(format!("reason: expected 1 to {MAX_REASON} bytes")));
        }
        if request.reason.chars().any(|c| c.is_control() && c != '\n') {
            return Err(invalid("reason: control characters are not allowed".into()));
        }
        let time = now_rfc3339();
        let event = KeyRevokedEvent {
            time: &time,
            actor: request.actor,
            addr: request.source_addr,
            key: request.key,
            version: request.version,
            compromised_at: request.compromised_at,
            reason: request.reason,
        };
        let once = format!("key-revoked:{label}");
        let placed =
            self.log.append(Append { entry: key_revoked_entry(&event), effect: Effect::Once { key: once } }).await?;
        let revocation = if placed.new {
            KeyRevocation {
                key_id: request.key.to_owned(),
                key_version: request.version,
                compromised_at: request.compromised_at.map(str::to_owned),
                compromised_at_ms,
                reason: request.reason.to_owned(),
                revoked_at: time,
                actor: request.actor.to_owned(),
                log_index: placed.index,
            }
        } else {
            self.revocation_from_entry(placed.index).await?
        };
        self.store.insert_key_revocation(&revocation).await?;
        if !placed.new {
            return Err(ServiceError::AlreadyRevoked(format!(
                "key {label} was already revoked (register entry {})",
                placed.index
            )));
        }
        Ok(revocation)
    }

    /// Every key version revoked, oldest first.
    pub async fn key_revocations(&self) -> Result<Vec<KeyRevocation>, ServiceError> {
        Ok(self.store.key_revocations().await?)
    }

    /// The revocation the `key-revoked` entry at `index` records.
    async fn revocation_from_entry(&self, index: u64) -> Result<KeyRevocation, ServiceError> {
        let entries = self.log.entries(index, index + 1).await?;
        let entry: Value = entries.first().and_then(|(_, e)| serde_json::from_slice(e).ok()).unwrap_or(Value::Null);
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let compromised_at = text(&entry["details"]["compromised_at"]);
        Ok(KeyRevocation {
            key_id: text(&entry["subject"]["key"]).unwrap_or_default(),
            key_version: entry["subject"]["version"].as_u64().and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
            compromised_at_ms: compromised_at.as_deref().and_then(time_ms),
            compromised_at,
            reason: text(&entry["details"]["reason"]).unwrap_or_default(),
            revoked_at: text(&entry["time"]).unwrap_or_default(),
            actor: text(&entry["actor"]["name"]).unwrap_or_default(),
            log_index: index,
        })
    }

    /// The revoked key versions (as read from the database by a read that started after this call, so a
    /// revocation made on any replica counts here at once), each with the signatures on `digest` the
    /// register proves earlier than its compromise. A revoked version this server's key ring no longer has
    /// is left out: no authority can name it.
    pub(super) async fn revoked_keys(&self, digest: &Digest) -> Result<Vec<RevokedKey>, ServiceError> {
        let mut revoked = Vec::new();
        for r in self.revocation_reads.read(self.store.as_ref()).await?.iter().cloned() {
            let reference = KeyRef { id: r.key_id.clone(), version: Some(r.key_version) };
            let Ok(version) = self.keys.public_key(&reference).await else { continue };
            let earlier = match r.compromised_at_ms {
                Some(ms) => self.provably_earlier(&r, ms, digest).await?,
                None => Vec::new(),
            };
            revoked.push(RevokedKey {
                key: version.public_key,
                label: format!("{}@{}", r.key_id, r.key_version),
                reason: r.reason,
                compromised_at: r.compromised_at,
                earlier,
            });
        }
        Ok(revoked)
    }

    /// SHA-256 (hex) of each signature (envelope, for attestations) by `r`'s version on `digest` whose
    /// `sign`/`attest` entry has a time before the compromise, comes before the `key-revoked` entry, and is
    /// proven included (RFC 9162) in the tree that entry closes: the tree whose signed checkpoint
    /// (`GET /v1/log/checkpoint?size=`) an auditor checks it against.
    async fn provably_earlier(
        &self,
        r: &KeyRevocation,
        compromised_ms: i64,
        digest: &Digest,
    ) -> Result<Vec<String>, ServiceError> {
        let size = r.log_index + 1;
        let root = self.log.root(size).await?;
        let mut earlier = Vec::new();
        for kind in ["sign", "attest"] {
            let filter = SearchFilter {
                kind: Some(kind.to_owned()),
                digest: Some(digest.to_string()),
                key: Some(r.key_id.clone()),
                key_version: Some(i64::from(r.key_version)),
                to_ms: Some(compromised_ms),
                ..SearchFilter::default()
            };
            for found in self.log.search(&filter, Some(r.log_index), MAX_PROOF_ENTRIES).await? {
                let Some(sha256) = signed_sha256(kind, &found.entry, compromised_ms) else { continue };
                let proof = self.log.inclusion_proof(found.index, size).await?;
                let leaf = crate::merkle::leaf_hash(&found.entry);
                if crate::merkle::verify_inclusion(&leaf, found.index, size, &proof, &root).is_ok() {
                    earlier.push(sha256);
                }
            }
        }
        Ok(earlier)
    }
}

/// What a `sign` (the signature bytes) or `attest` (the envelope) entry identifies, when its own time is
/// before `compromised_ms` (checked again here, on the entry's bytes, not only the index).
fn signed_sha256(kind: &str, entry: &[u8], compromised_ms: i64) -> Option<String> {
    let entry: Value = serde_json::from_slice(entry).ok()?;
    if entry["time"].as_str().and_then(time_ms)? >= compromised_ms {
        return None;
    }
    let details = &entry["details"];
    match kind {
        "sign" => {
            let signature = STANDARD.decode(details["signature"].as_str()?).ok()?;
            Some(Digest::of(&signature).hex().to_owned())
        }
        _ => Some(Digest::parse(details["envelope_digest"].as_str()?).ok()?.hex().to_owned()),
    }
}

/// `compromised_at` as Unix milliseconds: RFC 3339, not in the future.
fn compromise_time(value: &str) -> Result<i64, ServiceError> {
    let parsed = OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|_| invalid("compromised_at: expected an RFC 3339 time (2026-01-02T03:04:05Z)".into()))?;
    if parsed > OffsetDateTime::now_utc() {
        return Err(invalid("compromised_at: is in the future".into()));
    }
    time_ms(value).ok_or_else(|| invalid("compromised_at: out of range".into()))
}

fn invalid(message: String) -> ServiceError {
    ServiceError::InvalidRevocation(message)
}

/// The revocations in force, read from the database by concurrent verifies together: a caller joins the
/// next read that has not started yet (starting one if none is waiting), and a read starts only once the
/// one before it has finished, so every caller gets a read that started after it asked, and under load one
/// read answers all the verifies that arrived while the previous one ran.
#[derive(Default)]
pub(super) struct RevocationReads {
    /// The read that has not started yet, which new callers join.
    next: std::sync::Mutex<Option<SharedRead>>,
    /// Held while a read runs: the next one waits for it, gathering callers meanwhile.
    running: tokio::sync::Mutex<()>,
}

type SharedRead = Arc<OnceCell<Result<Arc<[KeyRevocation]>, StoreError>>>;

impl RevocationReads {
    /// Every revocation, oldest first, as a read that started after this call found them.
    pub(super) async fn read(&self, store: &dyn Store) -> Result<Arc<[KeyRevocation]>, StoreError> {
        self.shared(|| async { store.key_revocations().await.map(Arc::from) }).await
    }

    /// What `fetch` answers, run by the caller that starts the read the others joined.
    async fn shared<F, Fut>(&self, fetch: F) -> Result<Arc<[KeyRevocation]>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Arc<[KeyRevocation]>, StoreError>>,
    {
        let read = self.next.lock().expect("revocation reads lock is never poisoned").get_or_insert_default().clone();
        let found = read
            .get_or_init(|| async {
                let _turn = self.running.lock().await;
                // Started: whoever asks from now on joins the read after this one.
                self.next.lock().expect("revocation reads lock is never poisoned").take_if(|n| Arc::ptr_eq(n, &read));
                fetch().await
            })
            .await;
        found.clone()
    }
}

/// Binds a decision's cache key to the revocations in force, so a revocation made on any replica makes
/// every kept allowance on every replica stale at its next verify.
pub(super) fn with_revocations(policy: Digest, revoked: &[RevokedKey]) -> Digest {
    if revoked.is_empty() {
        return policy;
    }
    let labels: Vec<&str> = revoked.iter().map(|r| r.label.as_str()).collect();
    Digest::of(format!("{policy} revoked {}", labels.join(",")).as_bytes())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn revocations(count: usize) -> Arc<[KeyRevocation]> {
        let one = KeyRevocation {
            key_id: "k".into(),
            key_version: 1,
            compromised_at: None,
            compromised_at_ms: None,
            reason: "r".into(),
            revoked_at: "t".into(),
            actor: "a".into(),
            log_index: 0,
        };
        vec![one; count].into()
    }

    /// A read under way when callers arrive does not answer them: they share the next one, which sees
    /// what was revoked after they asked.
    #[tokio::test]
    async fn callers_share_the_next_read_and_never_one_that_started_before_them() {
        let reads = RevocationReads::default();
        let (in_force, started) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let release = tokio::sync::Notify::new();
        let fetch = || async {
            let seen = in_force.load(Ordering::SeqCst);
            if started.fetch_add(1, Ordering::SeqCst) == 0 {
                release.notified().await;
            }
            Ok(revocations(seen))
        };
        let first = reads.shared(fetch);
        let later = async {
            while started.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
            in_force.store(1, Ordering::SeqCst); // a revocation commits while the first read runs
            let both = futures_util::future::join(reads.shared(fetch), reads.shared(fetch));
            let (wait, _) = futures_util::future::join(both, async {
                tokio::task::yield_now().await;
                release.notify_one();
            })
            .await;
            wait
        };
        let (first, (a, b)) = futures_util::future::join(first, later).await;
        assert_eq!(first.unwrap().len(), 0);
        assert_eq!((a.unwrap().len(), b.unwrap().len()), (1, 1), "the later callers see the revocation");
        assert_eq!(started.load(Ordering::SeqCst), 2, "the two later callers shared one read");
    }
}
