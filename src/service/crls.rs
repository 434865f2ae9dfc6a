//! Fetching the CRLs that the certificates of a Notary Project signature name (their CRL distribution
//! points), for a verify whose `notation:` authority has no usable cached CRL file: through [`Outbound`], so
//! under the egress rules of `[registries]`, each answer capped at [`MAX_CRL_BYTES`], and kept in memory until
//! the CRL's nextUpdate (never past it; a CRL without one is not kept). Simultaneous verifies wanting one URL
//! share one fetch (its answer or its failure).
//!
//! Owns: the fetch and the in-memory CRL cache. Must not touch: what a CRL means (the fetched bytes go to
//! `pki::notary` beside the cached files and are checked exactly as they are: issuer, signature, times,
//! critical extensions), which signatures want one (`policy::notation`). A failed fetch is a note naming the
//! URL's host and what went wrong (`OutboundError` never carries the remote answer), never an error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use reqwest::Url;
use time::OffsetDateTime;

use crate::oci::{EgressRules, Outbound};
use crate::pki::notary::{MAX_CRL_BYTES, crl_next_update};

/// How long one CRL fetch (answer included) may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The most CRL bytes kept in memory at once; past it, the CRLs due soonest are dropped first.
const MAX_CACHED_BYTES: usize = 32 * 1024 * 1024;

struct Kept {
    der: Arc<Vec<u8>>,
    next_update: OffsetDateTime,
}

/// One fetch under way, which every verify wanting its URL meanwhile awaits.
type InFlight = Arc<OnceCell<Result<Arc<Vec<u8>>, String>>>;

/// The CRL fetcher of a service or a CLI verify, with its cache.
pub struct CrlFetcher {
    outbound: Outbound,
    kept: Mutex<HashMap<String, Kept>>,
    in_flight: Mutex<HashMap<String, InFlight>>,
}

impl CrlFetcher {
    pub fn new(rules: EgressRules) -> Self {
        Self { outbound: Outbound::new(rules, FETCH_TIMEOUT), kept: Mutex::default(), in_flight: Mutex::default() }
    }

    /// The CRL (DER, unverified) at each of `urls`, in order and fetched concurrently: a kept one still
    /// before its nextUpdate at `now`, else fetched; or why none (a note naming the URL's host).
    pub async fn fetch(&self, urls: &[String], now: OffsetDateTime) -> Vec<Result<Vec<u8>, String>> {
        futures_util::future::join_all(urls.iter().map(|url| self.fetch_one(url, now))).await
    }

    /// A kept CRL, else the fetch under way for `url` (joined), else a new one that others may join until
    /// it ends (when its answer is kept, or not, and the next verify starts afresh).
    async fn fetch_one(&self, url: &str, now: OffsetDateTime) -> Result<Vec<u8>, String> {
        if let Some(der) = self.kept(url, now) {
            return Ok(der.as_ref().clone());
        }
        let flight = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            in_flight.entry(url.to_owned()).or_default().clone()
        };
        let outcome = flight.get_or_init(|| self.fetch_and_keep(url, now)).await.clone();
        let mut in_flight = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if in_flight.get(url).is_some_and(|current| Arc::ptr_eq(current, &flight)) {
            in_flight.remove(url);
        }
        outcome.map(|der| der.as_ref().clone())
    }

    async fn fetch_and_keep(&self, url: &str, now: OffsetDateTime) -> Result<Arc<Vec<u8>>, String> {
        let parsed = Url::parse(url).map_err(|_| "a CRL distribution point is not a URL".to_owned())?;
        match self.outbound.get(&parsed, MAX_CRL_BYTES).await {
            Ok(der) => Ok(self.keep(url, der, now)),
            Err(e) => Err(format!("the CRL could not be fetched: {e}")),
        }
    }

    fn kept(&self, url: &str, now: OffsetDateTime) -> Option<Arc<Vec<u8>>> {
        let kept = self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.get(url).filter(|k| now < k.next_update).map(|k| k.der.clone())
    }

    /// Keeps `der` for `url` when it names a nextUpdate after `now`, within [`MAX_CACHED_BYTES`].
    fn keep(&self, url: &str, der: Vec<u8>, now: OffsetDateTime) -> Arc<Vec<u8>> {
        let der = Arc::new(der);
        let Some(next_update) = crl_next_update(&der).filter(|next| now < *next) else {
            return der;
        };
        let mut kept = self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.retain(|u, k| now < k.next_update && u != url);
        while !kept.is_empty() && kept.values().map(|k| k.der.len()).sum::<usize>() + der.len() > MAX_CACHED_BYTES {
            let soonest = kept.iter().min_by_key(|(_, k)| k.next_update).map(|(u, _)| u.clone());
            if let Some(url) = soonest {
                kept.remove(&url);
            }
        }
        kept.insert(url.to_owned(), Kept { der: der.clone(), next_update });
        der
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RegistriesConfig;

    fn fixture_crl() -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/third-party/notation-1.3/intermediate.crl"))
            .unwrap()
    }

    fn fetcher() -> CrlFetcher {
        let _ = rustls::crypto::ring::default_provider().install_default();
        CrlFetcher::new(EgressRules::from_config(&RegistriesConfig::default()))
    }

    #[tokio::test]
    async fn a_crl_is_kept_until_its_next_update_and_never_past_it() {
        let der = fixture_crl();
        let next = crl_next_update(&der).unwrap();
        let hour = time::Duration::hours(1);
        let url = "http://crl.example/intermediate.crl".to_owned();
        let kept = fetcher();
        kept.keep(&url, der.clone(), next - hour);
        // Kept: answered without a request (the host would be refused: unlisted and unresolvable).
        let fetched = kept.fetch(std::slice::from_ref(&url), next - time::Duration::seconds(1)).await;
        assert_eq!(fetched, vec![Ok(der.clone())]);
        let fetched = kept.fetch(std::slice::from_ref(&url), next).await;
        assert!(fetched[0].as_ref().is_err_and(|why| why.contains("crl.example")), "{fetched:?}");

        // Fetched after its nextUpdate, or without one: not kept at all.
        let late = fetcher();
        late.keep(&url, der, next + hour);
        assert!(late.kept(&url, next - hour).is_none());
        late.keep(&url, b"not a CRL".to_vec(), next - hour);
        assert!(late.kept(&url, next - hour).is_none());
    }
}
