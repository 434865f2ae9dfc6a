//! Recent allowances, so repeated deploys of one digest do not read the registry again, and single flight,
//! so concurrent cold verifies of one image share one set of registry reads.
//!
//! Right by construction: the key is everything a decision depends on (canonical repository, the tag and
//! whether a digest was named, the digest, the content digest of the deciding policy); an allowance is
//! forgotten when the register records something that could change it (see [`Forget`]), and an allowance
//! decided before such an entry is never stored after it (a generation counter). Bounded: least recently
//! used entries go first. Denials are shared by concurrent callers but never kept.
//!
//! Must not touch: how a decision is made (`policy::engine`) or where evidence comes from (`verify.rs`).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::verify::Decision;
use crate::formats::Digest;

/// At most this many allowances are kept.
pub(crate) const CAPACITY: usize = 4096;

/// Everything a decision depends on besides the evidence itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DecisionKey {
    /// `host/repository` in canonical form.
    pub repository: String,
    pub tag: Option<String>,
    /// Whether the request named a digest, under a policy with `require_digest` (false otherwise: then
    /// `repo:tag` and `repo:tag@digest` of one digest share a decision, as the webhooks' mutate-then-validate
    /// calls do).
    pub by_digest: bool,
    pub digest: Digest,
    /// The deciding policy's content digest, or a digest of the default when none governs.
    pub policy: Digest,
}

/// What a register entry makes stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Forget {
    /// Every allowance of this digest (a new signature or attestation on it).
    Digest(Digest),
    /// Every allowance (a key version added, rotated or revoked; a policy put in force).
    Everything,
}

struct Entry {
    at: Instant,
    used: u64,
    decision: Decision,
}

#[derive(Default)]
struct Entries {
    by_key: HashMap<DecisionKey, Entry>,
    /// Last use → key: the first is the least recently used.
    by_use: BTreeMap<u64, DecisionKey>,
    clock: u64,
    /// Bumped by every [`DecisionCache::forget`]: a decision started before it is not stored.
    generation: u64,
}

type Flight = Arc<OnceCell<Decision>>;

pub(crate) struct DecisionCache {
    ttl: Mutex<Duration>,
    capacity: usize,
    entries: Mutex<Entries>,
    in_flight: Mutex<HashMap<DecisionKey, Flight>>,
    /// Register indexes this process appended and the register follower has not passed yet.
    local: Mutex<std::collections::BTreeSet<u64>>,
}

impl DecisionCache {
    pub(super) fn new(ttl: Duration) -> Self {
        Self::with_capacity(ttl, CAPACITY)
    }

    fn with_capacity(ttl: Duration, capacity: usize) -> Self {
        let (entries, in_flight, local) = Default::default();
        Self { ttl: Mutex::new(ttl), capacity, entries, in_flight, local }
    }

    pub(super) fn set_ttl(&self, ttl: Duration) {
        *self.ttl.lock().expect("cache lock is never poisoned") = ttl;
    }

    fn ttl(&self) -> Duration {
        *self.ttl.lock().expect("cache lock is never poisoned")
    }

    /// The kept allowance for `key`, marked `cached`; else `decide` runs once for every concurrent caller
    /// with this key, and an allowance it returns is kept.
    pub(super) async fn get_or_decide<E, F, Fut>(&self, key: &DecisionKey, decide: F) -> Result<Decision, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Decision, E>>,
    {
        if let Some(mut hit) = self.get(key) {
            hit.cached = true;
            return Ok(hit);
        }
        let flight = self.flight(key);
        let generation = self.generation();
        let decided = flight.get_or_try_init(decide).await.cloned();
        self.land(key, &flight);
        let decision = decided?;
        if decision.allowed {
            self.put(key.clone(), decision.clone(), generation);
        }
        Ok(decision)
    }

    fn flight(&self, key: &DecisionKey) -> Flight {
        let mut in_flight = self.in_flight.lock().expect("cache lock is never poisoned");
        in_flight.entry(key.clone()).or_default().clone()
    }

    /// Ends `flight` for `key` unless a later one already replaced it.
    fn land(&self, key: &DecisionKey, flight: &Flight) {
        let mut in_flight = self.in_flight.lock().expect("cache lock is never poisoned");
        if in_flight.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            in_flight.remove(key);
        }
    }

    fn generation(&self) -> u64 {
        self.entries.lock().expect("cache lock is never poisoned").generation
    }

    pub(super) fn get(&self, key: &DecisionKey) -> Option<Decision> {
        let ttl = self.ttl();
        let mut entries = self.entries.lock().expect("cache lock is never poisoned");
        let entries = &mut *entries;
        entries.clock += 1;
        let entry = entries.by_key.get_mut(key).filter(|e| e.at.elapsed() < ttl)?;
        entries.by_use.remove(&entry.used);
        entry.used = entries.clock;
        entries.by_use.insert(entry.used, key.clone());
        Some(entry.decision.clone())
    }

    /// Keeps `decision` unless the cache is off or something was forgotten since `generation`.
    fn put(&self, key: DecisionKey, decision: Decision, generation: u64) {
        if self.ttl().is_zero() {
            return;
        }
        let mut entries = self.entries.lock().expect("cache lock is never poisoned");
        if entries.generation != generation {
            return;
        }
        entries.clock += 1;
        let used = entries.clock;
        if let Some(old) = entries.by_key.insert(key.clone(), Entry { at: Instant::now(), used, decision }) {
            entries.by_use.remove(&old.used);
        }
        entries.by_use.insert(used, key);
        while entries.by_key.len() > self.capacity {
            let Some((_, oldest)) = entries.by_use.pop_first() else { break };
            entries.by_key.remove(&oldest);
        }
    }

    /// Drops what `what` makes stale, and keeps decisions already under way from being stored.
    pub(super) fn forget(&self, what: &Forget) {
        let mut entries = self.entries.lock().expect("cache lock is never poisoned");
        let entries = &mut *entries;
        entries.generation += 1;
        let by_use = &mut entries.by_use;
        entries.by_key.retain(|key, entry| {
            let keep = matches!(what, Forget::Digest(d) if *d != key.digest);
            if !keep {
                by_use.remove(&entry.used);
            }
            keep
        });
    }

    /// An entry this process appended: acted on now, and skipped when the follower reads it back.
    pub(super) fn observe_local(&self, index: u64, entry: &[u8]) {
        self.local.lock().expect("cache lock is never poisoned").insert(index);
        if let Some(stale) = stale_after(entry) {
            self.forget(&stale);
        }
    }

    /// An entry read back from the register: acted on unless this process appended it.
    pub(super) fn observe_remote(&self, index: u64, entry: &[u8]) {
        if self.local.lock().expect("cache lock is never poisoned").contains(&index) {
            return;
        }
        if let Some(stale) = stale_after(entry) {
            self.forget(&stale);
        }
    }

    /// The runs of indexes in `from..to` this process did not append (as far as it has been told): all the
    /// follower needs to read, so a replica does not read back its own appends.
    pub(super) fn foreign_runs(&self, from: u64, to: u64) -> Vec<std::ops::Range<u64>> {
        let local = self.local.lock().expect("cache lock is never poisoned");
        let mut runs = Vec::new();
        let mut start = from;
        for &index in local.range(from..to) {
            if index > start {
                runs.push(start..index);
            }
            start = index + 1;
        }
        if start < to {
            runs.push(start..to);
        }
        runs
    }

    /// The follower has read every entry below `size`.
    pub(super) fn followed_to(&self, size: u64) {
        let mut local = self.local.lock().expect("cache lock is never poisoned");
        *local = local.split_off(&size);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().by_key.len()
    }
}

/// What a register entry (canonical JSON) makes stale: a sign or attest of a digest, a registry push of a
/// signature, attestation or fallback-referrers tag, or of an untagged manifest (a referrer: its subject is
/// not in the event), a key version or policy change.
pub(crate) fn stale_after(entry: &[u8]) -> Option<Forget> {
    /// The kind alone, read without building the rest (most entries are verify decisions, which change
    /// nothing).
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    let kind = serde_json::from_slice::<Kind<'_>>(entry).ok()?.kind;
    if !matches!(
        kind.as_ref(),
        "sign" | "attest" | "key-added" | "key-rotated" | "key-revoked" | "policy-loaded" | "registry-push"
    ) {
        return None;
    }
    let entry: serde_json::Value = serde_json::from_slice(entry).ok()?;
    match entry["kind"].as_str()? {
        "sign" | "attest" => Digest::parse(entry["subject"]["digest"].as_str()?).ok().map(Forget::Digest),
        "key-added" | "key-rotated" | "key-revoked" | "policy-loaded" => Some(Forget::Everything),
        "registry-push" => match entry["details"]["tag"].as_str().filter(|t| !t.is_empty()) {
            None => Some(Forget::Everything),
            Some(tag) => tag_subject(tag).map(Forget::Digest),
        },
        _ => None,
    }
}

/// The digest a `sha256-<hex>`, `sha256-<hex>.sig` or `sha256-<hex>.att` tag is about.
fn tag_subject(tag: &str) -> Option<Digest> {
    let hex = tag.strip_prefix("sha256-")?;
    let hex = hex.strip_suffix(".sig").or_else(|| hex.strip_suffix(".att")).unwrap_or(hex);
    Digest::parse(&format!("sha256:{hex}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(allowed: bool) -> Decision {
        Decision {
            allowed,
            digest: Digest::of(b"image"),
            policy: Some("p".into()),
            policy_version: Some("v1".into()),
            mode: None,
            reasons: Vec::new(),
            cached: false,
            signatures: Vec::new(),
            attestations: Vec::new(),
            skipped: Vec::new(),
            logged: Vec::new(),
        }
    }

    fn key(repository: &str, policy: &[u8]) -> DecisionKey {
        DecisionKey {
            repository: repository.into(),
            tag: None,
            by_digest: true,
            digest: Digest::of(b"image"),
            policy: Digest::of(policy),
        }
    }

    async fn decide(cache: &DecisionCache, key: &DecisionKey, allowed: bool) -> Decision {
        cache.get_or_decide(key, || async move { Ok::<_, ()>(decision(allowed)) }).await.unwrap()
    }

    #[tokio::test]
    async fn allowances_are_kept_per_repository_digest_and_policy_content() {
        let cache = DecisionCache::new(Duration::from_secs(60));
        assert!(!decide(&cache, &key("r/a", b"p1"), true).await.cached);
        assert!(decide(&cache, &key("r/a", b"p1"), true).await.cached);
        assert!(cache.get(&key("r/b", b"p1")).is_none(), "another repository decides afresh");
        assert!(cache.get(&key("r/a", b"p2")).is_none(), "another policy content decides afresh");
        assert!(!decide(&cache, &key("r/c", b"p1"), false).await.cached);
        assert!(cache.get(&key("r/c", b"p1")).is_none(), "a denial is not kept");
        let off = DecisionCache::new(Duration::ZERO);
        decide(&off, &key("r/a", b"p1"), true).await;
        assert!(off.get(&key("r/a", b"p1")).is_none());
    }

    #[tokio::test]
    async fn the_least_recently_used_allowance_goes_first() {
        let cache = DecisionCache::with_capacity(Duration::from_secs(60), 2);
        decide(&cache, &key("r/a", b"p"), true).await;
        decide(&cache, &key("r/b", b"p"), true).await;
        assert!(cache.get(&key("r/a", b"p")).is_some());
        decide(&cache, &key("r/c", b"p"), true).await;
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&key("r/b", b"p")).is_none(), "r/b was the least recently used");
        assert!(cache.get(&key("r/a", b"p")).is_some() && cache.get(&key("r/c", b"p")).is_some());
    }

    #[tokio::test]
    async fn forgetting_a_digest_drops_its_allowances_and_those_under_way() {
        let cache = DecisionCache::new(Duration::from_secs(60));
        decide(&cache, &key("r/a", b"p"), true).await;
        cache.forget(&Forget::Digest(Digest::of(b"other")));
        assert!(cache.get(&key("r/a", b"p")).is_some());
        cache.forget(&Forget::Digest(Digest::of(b"image")));
        assert!(cache.get(&key("r/a", b"p")).is_none());
        let stale = cache
            .get_or_decide(&key("r/a", b"p"), || async {
                cache.forget(&Forget::Everything);
                Ok::<_, ()>(decision(true))
            })
            .await
            .unwrap();
        assert!(stale.allowed);
        assert!(cache.get(&key("r/a", b"p")).is_none(), "decided before the forget: not stored");
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_decision() {
        let cache = DecisionCache::new(Duration::ZERO);
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let k = key("r/a", b"p");
        let one = || async {
            cache
                .get_or_decide(&k, || async {
                    runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    Ok::<_, ()>(decision(false))
                })
                .await
        };
        let answers = futures_util::future::join_all((0..20).map(|_| one())).await;
        assert_eq!(answers.len(), 20);
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn the_follower_reads_only_what_this_process_did_not_append() {
        let cache = DecisionCache::new(Duration::from_secs(60));
        assert_eq!(cache.foreign_runs(0, 5), vec![0..5]);
        for index in [2, 3, 6, 9] {
            cache.observe_local(index, b"{}");
        }
        assert_eq!(cache.foreign_runs(0, 10), vec![0..2, 4..6, 7..9]);
        assert_eq!(cache.foreign_runs(3, 4), Vec::<std::ops::Range<u64>>::new());
        cache.followed_to(10);
        assert_eq!(cache.foreign_runs(10, 12), vec![10..12]);
    }

    #[test]
    fn entries_that_can_change_a_decision_are_recognised() {
        let digest = Digest::of(b"image");
        let sign = serde_json::json!({"kind": "sign", "subject": {"digest": digest.as_str()}});
        assert_eq!(stale_after(sign.to_string().as_bytes()), Some(Forget::Digest(digest.clone())));
        let key = serde_json::json!({"kind": "key-added", "subject": {"key": "k", "version": 2}});
        assert_eq!(stale_after(key.to_string().as_bytes()), Some(Forget::Everything));
        let push = |tag: &str| serde_json::json!({"kind": "registry-push", "details": {"tag": tag}}).to_string();
        let sig_tag = format!("sha256-{}.sig", digest.hex());
        assert_eq!(stale_after(push(&sig_tag).as_bytes()), Some(Forget::Digest(digest.clone())));
        assert_eq!(stale_after(push("v1").as_bytes()), None, "a new image tag changes no decision");
        assert_eq!(stale_after(push("").as_bytes()), Some(Forget::Everything), "a referrer names no subject here");
        let verify = serde_json::json!({"kind": "verify", "subject": {"digest": digest.as_str()}});
        assert_eq!(stale_after(verify.to_string().as_bytes()), None);
    }
}
