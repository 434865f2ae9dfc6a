//! `verdict_attachments` on both databases: of two stores (two replicas) claiming the same verdicts at once,
//! exactly one wins each; a claim stands until it is given back or goes stale, and an attached verdict is
//! never claimed again.

use crate::support;

use notarium::store::VerdictKey;
use support::test_database_url;

fn key(n: usize, allowed: bool) -> VerdictKey {
    VerdictKey {
        registry: "registry.example".into(),
        repository: format!("team/app{n}"),
        digest: format!("sha256:{n:064x}"),
        policy_version: "sha256:policy".into(),
        allowed,
    }
}

const NOW: i64 = 1_800_000_000_000;
const STALE: i64 = NOW - 300_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_verdict_is_claimed_by_one_replica_until_given_back_or_stale_and_never_after_it_is_attached() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_database_url(dir.path());
    let replicas = [notarium::store::open(&url).await.unwrap(), notarium::store::open(&url).await.unwrap()];

    let claims = (0..20).flat_map(|n| [0, 1].map(|r| (n, replicas[r].clone())));
    let claims =
        claims.map(|(n, store)| tokio::spawn(async move { (n, store.claim_verdict(&key(n, true), NOW, STALE).await) }));
    let mut won = [0; 20];
    for claim in claims.collect::<Vec<_>>() {
        let (n, claimed) = claim.await.unwrap();
        won[n] += usize::from(claimed.unwrap());
    }
    assert_eq!(won, [1; 20], "one claim of each verdict wins");

    let (a, b) = (&replicas[0], &replicas[1]);
    assert!(a.claim_verdict(&key(0, false), NOW, STALE).await.unwrap(), "the other result is another verdict");
    assert!(!b.claim_verdict(&key(0, true), NOW + 1, STALE + 1).await.unwrap(), "a fresh claim stands");
    b.release_verdict(&key(0, true)).await.unwrap();
    assert!(b.claim_verdict(&key(0, true), NOW + 1, STALE + 1).await.unwrap(), "a claim given back is free");

    let later = NOW + 600_000;
    assert!(a.claim_verdict(&key(1, true), later, later - 300_000).await.unwrap(), "a stale claim is taken over");
    b.verdict_attached(&key(2, true)).await.unwrap();
    b.release_verdict(&key(2, true)).await.unwrap();
    for store in [a, b] {
        assert!(!store.claim_verdict(&key(2, true), later, later - 300_000).await.unwrap(), "attached: never again");
    }
}
