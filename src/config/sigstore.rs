//! `[sigstore]`: the Sigstore trusted roots keyless signatures and transparency-logged bundles are judged
//! against (`trusted_roots = [{name, path}]`, several instances allowed), loaded once at start-up. Without
//! the table, the public-good production root that ships with notarium is the only one, named
//! `public-good`.
//!
//! Owns: the table, the roots' names and the errors naming a root's file. Must not touch: what a root
//! means (that is `pki::trusted_root`) or which identities a policy allows.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;
use crate::pki::TrustedRoot;

/// The name of the shipped public-good production root.
pub const PUBLIC_GOOD: &str = "public-good";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigstoreConfig {
    #[serde(default = "default_trusted_roots")]
    pub trusted_roots: Vec<TrustedRootConfig>,
}

/// One trusted root: a `trusted_root.json` file, or (no path, named `public-good`) the shipped one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedRootConfig {
    pub name: String,
    pub path: Option<PathBuf>,
}

impl Default for SigstoreConfig {
    fn default() -> Self {
        Self { trusted_roots: default_trusted_roots() }
    }
}

fn default_trusted_roots() -> Vec<TrustedRootConfig> {
    vec![TrustedRootConfig { name: PUBLIC_GOOD.into(), path: None }]
}

/// The trusted roots in force, each under its configured name, in configuration order.
#[derive(Debug, Clone, Default)]
pub struct TrustedRoots {
    pub roots: Vec<NamedTrustedRoot>,
}

#[derive(Debug, Clone)]
pub struct NamedTrustedRoot {
    pub name: String,
    pub root: TrustedRoot,
}

impl TrustedRoots {
    pub fn names(&self) -> Vec<&str> {
        self.roots.iter().map(|r| r.name.as_str()).collect()
    }
}

impl SigstoreConfig {
    /// The configured names, for `policy check` without loading the files.
    pub fn names(&self) -> Vec<&str> {
        self.trusted_roots.iter().map(|r| r.name.as_str()).collect()
    }

    /// Names unique and not empty; a path everywhere but on the shipped root.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for root in &self.trusted_roots {
            if root.name.trim().is_empty() {
                return Err(ConfigError::Invalid("[sigstore] trusted_roots: every root needs a name".into()));
            }
            if !seen.insert(root.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "[sigstore] trusted_roots: {:?} is configured twice",
                    root.name
                )));
            }
            if root.path.is_none() && root.name != PUBLIC_GOOD {
                return Err(ConfigError::Invalid(format!(
                    "[sigstore] trusted_roots: {:?} needs a path (only {PUBLIC_GOOD:?} may omit it: the shipped root)",
                    root.name
                )));
            }
        }
        Ok(())
    }

    /// Reads and parses every root; an error names the root and its file.
    pub fn load(&self) -> Result<TrustedRoots, ConfigError> {
        let roots = self
            .trusted_roots
            .iter()
            .map(|r| Ok(NamedTrustedRoot { name: r.name.clone(), root: load_root(r)? }))
            .collect::<Result<_, ConfigError>>()?;
        Ok(TrustedRoots { roots })
    }
}

fn load_root(config: &TrustedRootConfig) -> Result<TrustedRoot, ConfigError> {
    let Some(path) = &config.path else {
        return Ok(TrustedRoot::production());
    };
    let shown = path.display().to_string();
    // TrustedRoot::parse refuses more anyway: the cap keeps a huge file from being read whole first.
    let limit = crate::pki::trusted_root::MAX_DOCUMENT_BYTES as u64;
    let bytes = crate::local_file::read_capped(path, limit)
        .map_err(|e| ConfigError::Read { path: shown.clone(), reason: e.reason() })?;
    TrustedRoot::parse(&bytes).map_err(|e| ConfigError::Parse {
        path: shown,
        reason: format!("[sigstore] trusted root {:?}: {e}", config.name),
    })
}
