//! Signed checkpoints of the register: a C2SP tlog-checkpoint body in a signed note, signed through the
//! key backends like any signature, at most once per tree size.
//!
//! Owns: the checkpoint cache. The public `GET /v1/log/checkpoint` and every answer that carries a
//! checkpoint (sign, attest, verify, export) read through it, so a flood of requests costs the key backend
//! one signature per register commit, never one per request.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::{Service, ServiceError, timed_sign};
use crate::formats::checkpoint::{Checkpoint, NoteSignature, ed25519_key_id, format_note};
use crate::keys::KeyRef;

/// The checkpoint's origin line and the key (`id` or `id@N`, Ed25519) that signs checkpoints.
#[derive(Debug, Clone)]
pub struct RegisterSettings {
    pub origin: String,
    pub key: Option<String>,
}

/// How many tree sizes keep their signed note; the oldest go first (the current size is what is asked for).
const KEPT_SIZES: usize = 64;

/// Signed notes by tree size. Each size has one cell: concurrent requests for a new size wait on the one
/// signing under way instead of starting their own; a failed signing leaves the cell empty for a retry.
#[derive(Default)]
pub(super) struct CheckpointCache {
    notes: Mutex<BTreeMap<u64, Arc<OnceCell<String>>>>,
}

impl CheckpointCache {
    fn cell(&self, size: u64) -> Arc<OnceCell<String>> {
        let mut notes = self.notes.lock().expect("checkpoint cache lock is never poisoned");
        let cell = notes.entry(size).or_default().clone();
        while notes.len() > KEPT_SIZES {
            notes.pop_first();
        }
        cell
    }
}

impl Service {
    /// The signed checkpoint of the tree of `size` entries (the current tree when `None`).
    pub async fn checkpoint(&self, size: Option<u64>) -> Result<String, ServiceError> {
        let size = match size {
            Some(size) => size,
            None => self.log.size().await?,
        };
        let cell = self.checkpoints.cell(size);
        cell.get_or_try_init(|| self.sign_checkpoint(size)).await.cloned()
    }

    async fn sign_checkpoint(&self, size: u64) -> Result<String, ServiceError> {
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
        let signer = self.keys.get(&key_ref.id)?;
        let signature = timed_sign(&key_ref.id, signer.as_ref(), key_ref.version, body.as_bytes()).await?;
        let origin = &self.register.origin;
        Ok(format_note(
            &body,
            &[NoteSignature { name: origin.clone(), key_id: ed25519_key_id(origin, &raw), signature: signature.bytes }],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_keeps_its_cell_and_only_the_newest_sizes_are_kept() {
        let cache = CheckpointCache::default();
        let first = cache.cell(1);
        assert!(Arc::ptr_eq(&first, &cache.cell(1)));
        for size in 2..=(KEPT_SIZES as u64 + 1) {
            cache.cell(size);
        }
        assert!(!Arc::ptr_eq(&first, &cache.cell(1)), "the oldest size was not let go");
        assert!(cache.notes.lock().unwrap().len() <= KEPT_SIZES);
    }
}
