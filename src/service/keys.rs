//! Key versions into the register: each version of each key is logged once, the first time any server
//! sees it (at start-up, or when a backend starts signing with a version it rotated to).

use super::{Service, ServiceError, now_rfc3339};
use crate::formats::Digest;
use crate::keys::{KeyVersion, Signer};
use crate::register::event::{KeyEvent, key_entry};
use crate::store::{Append, Effect};

impl Service {
    /// Logs every version of every key not logged before; returns how many were new.
    pub async fn record_key_versions(&self) -> Result<usize, ServiceError> {
        let mut recorded = 0;
        for (id, signer) in self.keys.iter() {
            for version in &signer.versions().await? {
                recorded += usize::from(self.record_key_version(id, signer.as_ref(), version).await?);
            }
        }
        Ok(recorded)
    }

    /// Logs `version` of key `id` unless this process or the register already holds it.
    pub(super) async fn record_key_version(
        &self,
        id: &str,
        signer: &dyn Signer,
        version: &KeyVersion,
    ) -> Result<bool, ServiceError> {
        let fingerprint = Digest::of(version.public_key.spki_der()).to_string();
        let once = format!("key:{id}@{}:{fingerprint}", version.version);
        if self.seen_key_versions.lock().expect("not poisoned").contains(&once) {
            return Ok(false);
        }
        let first_version = signer.versions().await?.iter().map(|v| v.version).min().unwrap_or(version.version);
        let event = KeyEvent {
            key: id,
            backend: signer.backend(),
            version: version.version,
            rotated: version.version > first_version,
            algorithm: version.public_key.algorithm.as_str(),
            public_key_pem: &version.public_key.to_pem(),
            public_key_sha256: &fingerprint,
            time: &now_rfc3339(),
        };
        let placed =
            self.log.append(Append { entry: key_entry(&event), effect: Effect::Once { key: once.clone() } }).await?;
        self.seen_key_versions.lock().expect("not poisoned").insert(once);
        Ok(placed.new)
    }
}
