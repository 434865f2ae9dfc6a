//! Start-up reconciliation of signs a crash interrupted between the registry write and its confirmation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{Service, ServiceError};
use crate::formats::Digest;
use crate::oci::Repository;

/// What reconciliation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Pending rows whose signature the registry holds: now confirmed.
    pub confirmed: usize,
    /// Pending rows whose signature never reached the registry: removed.
    pub removed: usize,
    /// Rows left pending because the registry could not be asked; retried at the next start.
    pub deferred: usize,
}

impl Service {
    /// Confirms each pending row whose signature is in the registry and removes the others.
    pub async fn reconcile_pending(&self) -> Result<Reconciled, ServiceError> {
        let mut outcome = Reconciled::default();
        for row in self.store.pending_signatures().await? {
            let s = &row.signature;
            let repo = Repository { registry: s.registry.clone(), name: s.repository.clone() };
            let read = match Digest::parse(&s.digest) {
                Ok(digest) => self.signatures.read(&repo, &digest).await,
                Err(e) => Err(e.into()),
            };
            let (manifest, stored) = match read {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(id = row.id, error = %e, "cannot reconcile pending signature yet");
                    outcome.deferred += 1;
                    continue;
                }
            };
            let present = stored.iter().any(|st| {
                Digest::of(&st.payload).as_str() == s.payload_digest && BASE64.encode(&st.signature) == s.signature_b64
            });
            match (present, manifest) {
                (true, Some(manifest)) => {
                    self.log.append(super::sign::confirm_signature(row.id, row.signature, &manifest)).await?;
                    outcome.confirmed += 1;
                }
                _ => {
                    self.store.abandon_signature(row.id).await?;
                    outcome.removed += 1;
                }
            }
        }
        Ok(outcome)
    }
}
