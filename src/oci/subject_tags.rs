//! The read-modify-write loop behind every tag notarium keeps per subject (`.sig`, the referrers fallback
//! tag): one writer per subject inside this process, a bounded number of attempts against writers outside it.
//!
//! Owns: the per-subject lock table and the attempt bound. Must not touch: what a tag holds or how it is
//! merged (the caller's attempt does that) or the network itself.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{OciError, Repository};
use crate::formats::Digest;

const MAX_WRITE_ATTEMPTS: u32 = 5;
/// The first retry waits up to this long, each further one up to twice as long as the one before.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);

/// Serializes updates of one subject's tags inside this process.
type SubjectLock = Arc<tokio::sync::Mutex<()>>;

#[derive(Default)]
pub(super) struct SubjectTags {
    locks: Mutex<HashMap<(Repository, Digest), SubjectLock>>,
}

impl SubjectTags {
    /// Runs `attempt` under `subject`'s lock until it returns `Some` (its write landed), at most
    /// [`MAX_WRITE_ATTEMPTS`] times; `None` means another writer changed `tag` in between.
    pub(super) async fn update<T, F>(
        &self,
        repo: &Repository,
        subject: &Digest,
        tag: &str,
        mut attempt: impl FnMut() -> F,
    ) -> Result<T, OciError>
    where
        F: Future<Output = Result<Option<T>, OciError>>,
    {
        let lock = self.lock(repo, subject);
        let _guard = lock.lock().await;
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

    fn lock(&self, repo: &Repository, subject: &Digest) -> SubjectLock {
        let mut locks = self.locks.lock().expect("subject lock table");
        if locks.len() > 10_000 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry((repo.clone(), subject.clone())).or_default().clone()
    }
}

/// A random wait below `FIRST_BACKOFF * 2^(retry - 1)`: two writers that lost to each other would otherwise
/// read and write in lockstep again and again.
fn jittered_backoff(retry: u32) -> Duration {
    let ceiling = FIRST_BACKOFF * 2u32.pow(retry.saturating_sub(1).min(6));
    let random = RandomState::new().hash_one(retry);
    ceiling.mul_f64(random as f64 / u64::MAX as f64)
}
