//! Policies into the register: each version of each policy is logged once, the first time any server puts
//! it in force (at start-up or on reload), so an auditor can tell which rules decided when; the entry
//! carries the file's text (`content`, whose SHA-256 is the version), so an evidence pack holds the rules.

use serde_json::json;

use super::{Service, ServiceError, now_rfc3339};
use crate::formats::canonical::canonical_json;
use crate::policy::{Mode, Policy};
use crate::store::{Append, Effect};

impl Service {
    /// Logs every policy version in force that the register does not hold yet; returns how many were new.
    pub async fn record_policies(&self) -> Result<usize, ServiceError> {
        let set = self.policies();
        let appends: Vec<Append> = set
            .policies
            .iter()
            .map(|policy| Append {
                entry: policy_entry(policy),
                effect: Effect::Once { key: format!("policy:{}:{}", policy.name, policy.version) },
            })
            .collect();
        let (placed, _) = self.log.append_all(&appends).await?;
        Ok(placed.iter().filter(|p| p.new).count())
    }
}

fn policy_entry(policy: &Policy) -> Vec<u8> {
    let authorities: Vec<String> = policy.authorities.iter().map(|a| a.label()).collect();
    let attestations: Vec<&str> = policy.attestations.iter().map(|a| a.predicate_type.as_str()).collect();
    canonical_json(&json!({
        "kind": "policy-loaded",
        "time": now_rfc3339(),
        "actor": {"name": "notarium"},
        "subject": {"policy": policy.name, "version": policy.version},
        "details": {
            "file": policy.file,
            "images": policy.images,
            "authorities": authorities,
            "threshold": policy.threshold,
            "attestations": attestations,
            "mode": if policy.mode == Mode::Warn { "warn" } else { "enforce" },
            "content": policy.text,
        },
    }))
}
