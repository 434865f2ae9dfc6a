//! `[sign]`: what `POST /v1/sign` puts into the signatures it writes beside the registry's choice of formats
//! (that is `[registries.formats]`).

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignConfig {
    /// Days after signing at which a Notary Project signature expires (`io.cncf.notary.expiry`, a critical
    /// claim `notation verify` enforces); absent: no expiry, as `notation sign` writes by default.
    pub notation_expiry_days: Option<u32>,
}
