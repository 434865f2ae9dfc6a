//! What the registry client takes to be true for a while without asking again (a registry without a
//! referrers API, one that takes no single-POST upload, a blob already uploaded): facts that expire, at most
//! a bounded number at once. Owns: the expiry and the bound. Must not touch: what the facts mean.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub(super) struct Remembered<K> {
    facts: Mutex<HashMap<K, Instant>>,
    lasting: Duration,
    most: usize,
}

impl<K: Eq + Hash> Remembered<K> {
    /// Facts kept for `lasting`, at most `most` of them (past it the memory starts over).
    pub(super) fn new(lasting: Duration, most: usize) -> Self {
        Self { facts: Mutex::default(), lasting, most }
    }

    pub(super) fn holds<Q: Eq + Hash + ?Sized>(&self, fact: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        let facts = self.facts.lock().expect("registry memory");
        facts.get(fact).is_some_and(|until| Instant::now() < *until)
    }

    pub(super) fn remember(&self, fact: K) {
        let mut facts = self.facts.lock().expect("registry memory");
        if facts.len() >= self.most {
            facts.clear();
        }
        facts.insert(fact, Instant::now() + self.lasting);
    }

    /// Forgets every fact `matches` picks.
    pub(super) fn forget(&self, matches: impl Fn(&K) -> bool) {
        self.facts.lock().expect("registry memory").retain(|fact, _| !matches(fact));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_fact_holds_until_it_expires_is_forgotten_on_demand_and_the_memory_is_bounded() {
        let memory = Remembered::new(Duration::from_secs(10), 2);
        memory.remember("a".to_owned());
        assert!(memory.holds("a") && !memory.holds("b"));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(!memory.holds("a"), "expired");
        memory.remember("a".to_owned());
        memory.forget(|fact| fact == "a");
        assert!(!memory.holds("a"), "forgotten");
        for fact in ["a", "b", "c"] {
            memory.remember(fact.to_owned());
        }
        assert!(memory.holds("c") && !memory.holds("a"), "past 2 facts the memory starts over");
    }
}
