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

/// A period of the register to export: entries whose `time` falls in `[from, to)`; open ends allowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Period {
    pub from: Option<time::OffsetDateTime>,
    pub to: Option<time::OffsetDateTime>,
}

impl Period {
    fn contains(&self, entry: &serde_json::Value) -> bool {
        let Some(at) = entry["time"]
            .as_str()
            .and_then(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
        else {
            return false;
        };
        self.from.is_none_or(|from| at >= from) && self.to.is_none_or(|to| at < to)
    }
}

const EXPORT_PAGE: u64 = 1000;

impl Service {
    /// The export of `period` as JSON Lines: a header carrying the signed checkpoint of the current tree and
    /// the range it covers, then every entry from the period's first to its last with its leaf hash and
    /// its inclusion proof in that checkpoint: all `notarium log verify` needs, offline.
    pub async fn export(&self, period: Period) -> Result<String, ServiceError> {
        let size = self.log.size().await?;
        let checkpoint = self.checkpoint(Some(size)).await?;
        let mut selected = Vec::new();
        let mut start = 0;
        while start < size {
            let end = (start + EXPORT_PAGE).min(size);
            for (index, bytes) in self.store.entries(start, end).await? {
                let entry: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                if period.contains(&entry) {
                    selected.push(index);
                }
            }
            start = end;
        }
        let (first, last) = match (selected.first(), selected.last()) {
            (Some(&f), Some(&l)) => (f, l + 1),
            _ => (size, size),
        };
        let header = serde_json::json!({
            "type": "notarium-register-export",
            "checkpoint": checkpoint,
            "tree_size": size,
            "first_index": first,
            "count": last - first,
        });
        let mut out = format!("{header}\n");
        for (index, bytes) in self.store.entries(first, last).await? {
            let proof = self.log.inclusion_proof(index, size).await?;
            let line = serde_json::json!({
                "index": index,
                "leaf_hash": crate::formats::digest::hex_lower(&crate::register::merkle::leaf_hash(&bytes)),
                "entry": serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default(),
                "inclusion_proof": proof.iter().map(|h| crate::formats::digest::hex_lower(h)).collect::<Vec<_>>(),
            });
            out.push_str(&format!("{line}\n"));
        }
        Ok(out)
    }
}
