//! The read-modify-write loop behind every tag notarium keeps per subject (`.sig`, `.att`, the referrers
//! fallback tag): one writer per tag among every notarium process on the database, through the
//! [`SubjectLocks`] the service hands in (the database is the store's business: this file only holds the
//! lock), and a bounded number of attempts against writers outside notarium (cosign), whom only a re-read
//! after the write catches.
//!
//! Owns: the lock's wait bound and the attempt bound. Must not touch: what a tag holds or how it is merged
//! (the caller's attempt does that), the network itself, or SQL.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use super::{OciError, Repository};
use crate::store::{HeldLock, StoreError, SubjectLocks, TagLock};

const MAX_WRITE_ATTEMPTS: u32 = 5;
/// The first retry waits up to this long, each further one up to twice as long as the one before.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
/// How long a writer waits for a tag's lock before its request fails (503) rather than hangs.
const LOCK_WAIT: Duration = Duration::from_secs(30);

pub(super) struct SubjectTags {
    locks: Arc<dyn SubjectLocks>,
    lock_wait: Duration,
}

impl SubjectTags {
    pub(super) fn new(locks: Arc<dyn SubjectLocks>) -> Self {
        Self { locks, lock_wait: LOCK_WAIT }
    }

    #[cfg(test)]
    pub(super) fn waiting_at_most(self, lock_wait: Duration) -> Self {
        Self { lock_wait, ..self }
    }

    /// Runs `attempt` under `tag`'s lock until it returns `Some` (its write landed), at most
    /// [`MAX_WRITE_ATTEMPTS`] times; `None` means a writer outside notarium changed `tag` in between. The
    /// lock is released whatever the outcome.
    pub(super) async fn update<T, F>(
        &self,
        repo: &Repository,
        tag: &str,
        attempt: impl FnMut() -> F,
    ) -> Result<T, OciError>
    where
        F: Future<Output = Result<Option<T>, OciError>>,
    {
        let held = self.hold(repo, tag).await?;
        Self::update_held(held, repo, tag, attempt).await
    }

    /// Takes `tag`'s lock for an [`update_held`](Self::update_held) to come (a sign takes it, and reads the
    /// tag, while it reads the image). Dropping the guard releases it.
    pub(super) async fn hold(&self, repo: &Repository, tag: &str) -> Result<HeldLock, OciError> {
        let lock = TagLock { registry: repo.registry.clone(), repository: repo.name.clone(), tag: tag.to_owned() };
        self.locks.acquire(&lock, self.lock_wait).await.map_err(|e| lock_error(repo, tag, e))
    }

    /// [`update`](Self::update) under a lock `held` on `tag` taken before; releases it whatever the outcome.
    pub(super) async fn update_held<T, F>(
        held: HeldLock,
        repo: &Repository,
        tag: &str,
        attempt: impl FnMut() -> F,
    ) -> Result<T, OciError>
    where
        F: Future<Output = Result<Option<T>, OciError>>,
    {
        let outcome = attempts(repo, tag, attempt).await;
        held.release().await;
        outcome
    }
}

async fn attempts<T, F>(repo: &Repository, tag: &str, mut attempt: impl FnMut() -> F) -> Result<T, OciError>
where
    F: Future<Output = Result<Option<T>, OciError>>,
{
    for retry in 0..MAX_WRITE_ATTEMPTS {
        if retry > 0 {
            tracing::warn!(registry = %repo.registry, %tag, retry, "tag changed under us; merging again");
            tokio::time::sleep(jittered_backoff(retry)).await;
        }
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
    }
    Err(OciError::Contended { registry: repo.registry.clone(), tag: tag.to_owned(), attempts: MAX_WRITE_ATTEMPTS })
}

fn lock_error(repo: &Repository, tag: &str, error: StoreError) -> OciError {
    let (registry, tag) = (repo.registry.clone(), tag.to_owned());
    match error {
        StoreError::LockTimeout { waited_ms, .. } => OciError::LockTimeout { registry, tag, waited_ms },
        other => OciError::LockUnavailable { registry, tag, reason: other.to_string() },
    }
}

/// A random wait below `FIRST_BACKOFF * 2^(retry - 1)`: two writers that lost to each other would otherwise
/// read and write in lockstep again and again.
fn jittered_backoff(retry: u32) -> Duration {
    let ceiling = FIRST_BACKOFF * 2u32.pow(retry.saturating_sub(1).min(6));
    let random = RandomState::new().hash_one(retry);
    ceiling.mul_f64(random as f64 / u64::MAX as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalSubjectLocks;

    fn repo() -> Repository {
        Repository { registry: "r.example".into(), name: "app".into() }
    }

    #[tokio::test]
    async fn the_lock_is_released_after_a_failed_attempt_and_a_held_lock_is_a_named_timeout() {
        let tags = SubjectTags::new(Arc::new(LocalSubjectLocks::default())).waiting_at_most(Duration::from_millis(50));
        let failed: Result<(), _> = tags
            .update(&repo(), "sha256-a.sig", || async {
                Err(OciError::BlobNotFound { registry: "r.example".into(), digest: "x".into() })
            })
            .await;
        assert!(matches!(failed, Err(OciError::BlobNotFound { .. })));
        let landed = tags.update(&repo(), "sha256-a.sig", || async { Ok(Some(7)) }).await;
        assert_eq!(landed.unwrap(), 7, "the failed attempt left the lock free");

        let lock = TagLock { registry: "r.example".into(), repository: "app".into(), tag: "sha256-a.sig".into() };
        let held = tags.locks.acquire(&lock, Duration::from_secs(1)).await.unwrap();
        let error = tags.update(&repo(), "sha256-a.sig", || async { Ok(Some(())) }).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "timed out after 50 ms waiting for the lock on tag sha256-a.sig in r.example; another writer holds it"
        );
        held.release().await;
    }
}
