//! Recent verify decisions by digest and policy version, so repeated deploys of one digest do not read the
//! registry again. Only decisions are stored (the caller keeps allowances only): a failed verify (registry,
//! key backend) never is.
//!
//! Must not touch: how a decision is made (`verify.rs`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::verify::Decision;
use crate::formats::Digest;

/// At most this many decisions are kept; a full cache first drops expired ones, then everything.
const CAPACITY: usize = 4096;

/// The digest, and which policy (name and file version, or the default) decided.
pub(crate) type DecisionKey = (Digest, String);

pub(crate) struct DecisionCache {
    ttl: Duration,
    entries: Mutex<HashMap<DecisionKey, (Instant, Decision)>>,
}

impl DecisionCache {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::default() }
    }

    pub fn get(&self, key: &DecisionKey) -> Option<Decision> {
        let entries = self.entries.lock().expect("cache lock is never poisoned");
        entries.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, d)| d.clone())
    }

    pub fn put(&self, key: DecisionKey, decision: Decision) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().expect("cache lock is never poisoned");
        if entries.len() >= CAPACITY {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), decision));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Decision {
        Decision {
            allowed: true,
            digest: Digest::of(b"image"),
            policy: Some("p".into()),
            policy_version: Some("v1".into()),
            mode: None,
            reasons: Vec::new(),
            cached: false,
            signatures: Vec::new(),
            attestations: Vec::new(),
            skipped: Vec::new(),
        }
    }

    #[test]
    fn decisions_are_kept_per_digest_and_policy_version_for_the_ttl() {
        let key = |version: &str| (Digest::of(b"image"), format!("p {version}"));
        let cache = DecisionCache::new(Duration::from_secs(60));
        cache.put(key("v1"), allowed());
        assert!(cache.get(&key("v1")).is_some());
        assert!(cache.get(&key("v2")).is_none(), "another policy version decides afresh");
        let off = DecisionCache::new(Duration::ZERO);
        off.put(key("v1"), allowed());
        assert!(off.get(&key("v1")).is_none());
        let expiring = DecisionCache::new(Duration::from_millis(1));
        expiring.put(key("v1"), allowed());
        std::thread::sleep(Duration::from_millis(5));
        assert!(expiring.get(&key("v1")).is_none());
    }
}
