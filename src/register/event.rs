//! Register entries: one canonical JSON object per event, `{kind, time, actor, subject, details}`.

use serde_json::json;

use crate::formats::canonical::canonical_json;
use crate::store::NewSignature;

/// The entry recording that `signature` is stored in its registry in manifest `manifest_digest`. A
/// function of the database row alone, so start-up reconciliation writes the same entry the sign would.
pub fn sign_entry(signature: &NewSignature, manifest_digest: &str) -> Vec<u8> {
    let s = signature;
    canonical_json(&json!({
        "kind": "sign",
        "time": s.created_at,
        "actor": {"name": s.actor, "addr": s.source_addr},
        "subject": {"registry": s.registry, "repository": s.repository, "digest": s.digest},
        "details": {
            "identity": s.identity,
            "key": s.key_id,
            "key_version": s.key_version,
            "algorithm": s.algorithm,
            "signature_tag": s.signature_tag,
            "manifest_digest": manifest_digest,
            "payload_digest": s.payload_digest,
            "signature": s.signature_b64,
        },
    }))
}
