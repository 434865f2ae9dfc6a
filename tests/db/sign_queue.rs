//! The sign-on-push queue on a real database (docs/FORMATS.md §26): a job is enqueued once per repository,
//! digest and rule; a claimed job is no other worker's (on PostgreSQL, through a second store as another
//! replica opens it) until its lease runs out; a settle by a worker that lost its lease changes nothing; a
//! retry waits out its backoff; a wait gives its attempt back.

use crate::support;

use std::sync::Arc;

use notarium::store::{JobSettled, NewSignJob, Store};
use support::{test_database_url, testing_postgres};

fn job(digest: char, rule: &str) -> NewSignJob {
    NewSignJob {
        rule: rule.into(),
        registry: "registry.example".into(),
        repository: "team/app".into(),
        digest: format!("sha256:{}", digest.to_string().repeat(64)),
        tag: "v1".into(),
        key_ref: "ci".into(),
    }
}

async fn two_replicas(dir: &std::path::Path) -> (Arc<dyn Store>, Arc<dyn Store>) {
    let url = test_database_url(dir);
    let a = notarium::store::open(&url).await.unwrap();
    let b = if testing_postgres() { notarium::store::open(&url).await.unwrap() } else { a.clone() };
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_queued_once_claimed_by_one_worker_and_taken_over_only_when_the_lease_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_replicas(dir.path()).await;
    let now = 1_000_000;
    assert_eq!(a.enqueue_sign_jobs(&[job('a', "team"), job('a', "all")], now).await.unwrap(), 2);
    // The same push again, through the other replica: nothing new.
    assert_eq!(b.enqueue_sign_jobs(&[job('a', "team")], now + 1).await.unwrap(), 0);

    let first = a.claim_sign_job("a-0", now, now + 60_000).await.unwrap().unwrap();
    let second = b.claim_sign_job("b-0", now, now + 10_000).await.unwrap().unwrap();
    assert_ne!(first.id, second.id, "two workers hold one job");
    assert_eq!((first.state.as_str(), first.attempts), ("running", 1));
    assert!(a.claim_sign_job("a-1", now + 1, now + 10_000).await.unwrap().is_none(), "a held job was claimed");

    // The lease of `second` runs out (its worker died): another worker takes it; the first one's settle is void.
    let taken = a.claim_sign_job("a-1", now + 10_001, now + 20_000).await.unwrap().unwrap();
    assert_eq!((taken.id, taken.attempts), (second.id, 2));
    let signed = JobSettled::Signed { log_index: Some(7) };
    assert!(!b.settle_sign_job(second.id, "b-0", &signed, now + 10_002).await.unwrap());
    assert!(a.settle_sign_job(taken.id, "a-1", &signed, now + 10_002).await.unwrap());

    // A retry waits out its backoff; a wait for an attestation gives its attempt back.
    let retry = JobSettled::Retry { not_before_ms: now + 5_000, reason: "registry down".into(), counts: true };
    assert!(a.settle_sign_job(first.id, "a-0", &retry, now + 2).await.unwrap());
    assert!(b.claim_sign_job("b-1", now + 4_999, now + 60_000).await.unwrap().is_none());
    let again = b.claim_sign_job("b-1", now + 5_000, now + 60_000).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts, again.reason.as_deref()), (first.id, 2, Some("registry down")));
    let wait = JobSettled::Retry { not_before_ms: now + 6_000, reason: "waiting".into(), counts: false };
    assert!(b.settle_sign_job(again.id, "b-1", &wait, now + 5_001).await.unwrap());
    let jobs = a.sign_jobs_of("registry.example", "team/app", &job('a', "x").digest).await.unwrap();
    let states: Vec<(&str, &str, i64)> =
        jobs.iter().map(|j| (j.job.rule.as_str(), j.state.as_str(), j.attempts)).collect();
    assert_eq!(states, [("team", "pending", 1), ("all", "signed", 2)]);
    assert_eq!(jobs[1].log_index, Some(7));

    let failed = JobSettled::Failed { reason: "key unknown".into() };
    let last = a.claim_sign_job("a-2", now + 6_000, now + 60_000).await.unwrap().unwrap();
    assert!(a.settle_sign_job(last.id, "a-2", &failed, now + 6_001).await.unwrap());
    let (depth, oldest) = b.sign_queue_depth().await.unwrap();
    assert_eq!(depth, [("failed".to_owned(), 1), ("signed".to_owned(), 1)]);
    assert_eq!(oldest, None);
}
