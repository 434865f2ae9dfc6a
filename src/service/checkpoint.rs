//! Signed checkpoints of the register: a C2SP tlog-checkpoint body in a signed note, signed through the
//! key backends like any signature.

use super::{Service, ServiceError};
use crate::formats::checkpoint::{Checkpoint, NoteSignature, ed25519_key_id, format_note};
use crate::keys::KeyRef;

/// The checkpoint's origin line and the key (`id` or `id@N`, Ed25519) that signs checkpoints.
#[derive(Debug, Clone)]
pub struct RegisterSettings {
    pub origin: String,
    pub key: Option<String>,
}

impl Service {
    /// The signed checkpoint of the tree of `size` entries (the current tree when `None`).
    pub async fn checkpoint(&self, size: Option<u64>) -> Result<String, ServiceError> {
        let size = match size {
            Some(size) => size,
            None => self.log.size().await?,
        };
        let root_hash = self.log.root(size).await?;
        let body = Checkpoint { origin: self.register.origin.clone(), size, root_hash }.body();
        let key_name = self
            .register
            .key
            .as_deref()
            .ok_or_else(|| ServiceError::CheckpointKey("no [log] key is configured (an Ed25519 key id)".into()))?;
        let key_ref = KeyRef::parse(key_name)?;
        let public_key = self.keys.public_key(&key_ref).await?.public_key;
        let raw = public_key
            .ed25519_bytes()
            .ok_or_else(|| ServiceError::CheckpointKey(format!("[log] key {key_name:?} is not an Ed25519 key")))?;
        let signature = self.keys.get(&key_ref.id)?.sign(key_ref.version, body.as_bytes()).await?;
        let origin = &self.register.origin;
        Ok(format_note(
            &body,
            &[NoteSignature { name: origin.clone(), key_id: ed25519_key_id(origin, &raw), signature: signature.bytes }],
        ))
    }
}
