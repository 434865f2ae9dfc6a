//! `[policies]`: where the policy files are, how often they are re-read, how long decisions are cached,
//! and `[policies.evidence]`, the caps on what one decision reads from a registry.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesConfig {
    #[serde(default = "default_policies_dir")]
    pub dir: PathBuf,
    /// How often the folder is checked for changed files (a broken change keeps the policies in force).
    #[serde(default = "default_reload_secs")]
    pub reload_secs: u64,
    /// How long a verify decision is reused for the same digest and policy version (0: never).
    #[serde(default = "default_cache_secs")]
    pub cache_secs: u64,
    /// `[policies.evidence]`: how much one decision reads from a registry.
    #[serde(default)]
    pub evidence: EvidenceLimits,
}

/// Caps on what one decision reads from a registry (documented in README and notarium.example.toml): a
/// registry is not trusted to serve evidence of reasonable size. Read as `[policies.evidence]`; the
/// registry reads in `oci` obey it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidenceLimits {
    /// Layers read per `.sig` or `.att` manifest; the others are skipped.
    pub max_layers: usize,
    /// OCI 1.1 referrers read per subject; the others are skipped.
    pub max_referrers: usize,
    /// Bytes of one simple-signing payload blob.
    pub max_payload_bytes: usize,
    /// Bytes of one DSSE envelope blob (an `.att` layer).
    pub max_envelope_bytes: usize,
    /// Bytes of one Sigstore bundle blob (a referrer's layer).
    pub max_bundle_bytes: usize,
    /// Signatures in one DSSE envelope: an envelope with more is refused before any is checked.
    pub max_envelope_signatures: usize,
}

impl Default for EvidenceLimits {
    fn default() -> Self {
        Self {
            max_layers: 64,
            max_referrers: 64,
            max_payload_bytes: 256 * 1024,
            max_envelope_bytes: 1024 * 1024,
            max_bundle_bytes: 2 * 1024 * 1024,
            max_envelope_signatures: 16,
        }
    }
}

impl EvidenceLimits {
    /// The name of the first cap that is zero (a cap of zero would skip every item), if any.
    pub fn zero_cap(&self) -> Option<&'static str> {
        let caps = [
            ("max_layers", self.max_layers),
            ("max_referrers", self.max_referrers),
            ("max_payload_bytes", self.max_payload_bytes),
            ("max_envelope_bytes", self.max_envelope_bytes),
            ("max_bundle_bytes", self.max_bundle_bytes),
            ("max_envelope_signatures", self.max_envelope_signatures),
        ];
        caps.into_iter().find(|(_, cap)| *cap == 0).map(|(name, _)| name)
    }
}

impl Default for PoliciesConfig {
    fn default() -> Self {
        Self {
            dir: default_policies_dir(),
            reload_secs: default_reload_secs(),
            cache_secs: default_cache_secs(),
            evidence: Default::default(),
        }
    }
}

fn default_policies_dir() -> PathBuf {
    "policies".into()
}
fn default_reload_secs() -> u64 {
    2
}
fn default_cache_secs() -> u64 {
    30
}
