//! The RFC 3161 countersignature of the Notary Project signatures notarium writes, from the `[tsa]`
//! timestamp authority: a request over the signature value with a fresh nonce, sent through `oci::Outbound`
//! (egress rules, deadline, capped answer), and the answer checked by `pki::timestamp` (granted, imprint,
//! nonce, chain to `[tsa] roots` for time stamping, near the present) before it is attached. Any failure
//! fails the sign before anything is written. Must not touch: the envelope (`formats::notary`), HTTP.

use super::{Service, ServiceError};
use crate::config::Tsa;
use crate::oci::{EgressRules, Outbound};
use crate::pki::timestamp::{MAX_TOKEN_BYTES, timestamp_request, verify_timestamp_reply};

/// `[tsa]` and the client that reaches it.
pub(super) struct TsaClient {
    tsa: Tsa,
    outbound: Outbound,
}

impl TsaClient {
    /// The TSA's `host[:port]`, as problems name it.
    fn host(&self) -> String {
        let url = &self.tsa.url;
        let host = url.host_str().unwrap_or_default();
        url.port().map_or_else(|| host.to_owned(), |port| format!("{host}:{port}"))
    }

    fn failed(&self, reason: String) -> ServiceError {
        tracing::warn!(tsa = %self.host(), %reason, "no timestamp");
        ServiceError::Timestamp { tsa: self.host(), reason }
    }
}

impl Service {
    /// Countersigns with `tsa`, reached under `rules` (`[registries]` egress rules).
    pub fn with_tsa(self, tsa: Tsa, rules: EgressRules) -> Self {
        let outbound = Outbound::new(rules, tsa.timeout);
        Self { tsa: Some(std::sync::Arc::new(TsaClient { tsa, outbound })), ..self }
    }

    /// The `TimeStampToken` (DER) over `signature` from `[tsa]`, verified; `None` without `[tsa]`.
    pub(super) async fn timestamp(&self, signature: &[u8]) -> Result<Option<Vec<u8>>, ServiceError> {
        let Some(client) = &self.tsa else {
            return Ok(None);
        };
        let nonce = fresh_nonce().map_err(|reason| client.failed(reason))?;
        let request = timestamp_request(signature, nonce).map_err(|e| client.failed(e.to_string()))?;
        let reply = client
            .outbound
            .post(&client.tsa.url, "application/timestamp-query", request, MAX_TOKEN_BYTES)
            .await
            .map_err(|e| client.failed(e.to_string()))?;
        let now = time::OffsetDateTime::now_utc();
        let (stamped, token) = verify_timestamp_reply(&reply, signature, nonce, &client.tsa.authorities, now)
            .map_err(|e| client.failed(e.to_string()))?;
        tracing::debug!(tsa = %client.host(), authority = %stamped.authority, time = %stamped.time, "timestamped");
        Ok(Some(token))
    }
}

/// 63 random bits (a positive INTEGER of at most eight bytes).
fn fresh_nonce() -> Result<u64, String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|_| "no randomness for the nonce".to_owned())?;
    Ok(u64::from_be_bytes(bytes) >> 1)
}
