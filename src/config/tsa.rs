//! `[tsa]`: the RFC 3161 timestamp authority notarium asks to countersign the Notary Project signatures it
//! writes (`url`), the PEM files whose certificates its answers must chain to (`roots`), and how long one
//! request may take (`timeout_secs`). Optional: without the table, signatures carry no timestamp.
//!
//! Owns: the table, its checks (naming the field) and reading the roots at start-up (naming the file). Must
//! not touch: the request or what an answer means (`pki::timestamp`), how the host is reached (the
//! `[registries]` egress rules, through `oci::Outbound`).

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use super::ConfigError;
use crate::formats::cosign_layer::pem_certificates;
use crate::pki::trusted_root::{CertificateAuthority, Validity};

/// The longest `timeout_secs` accepted: a sign waits for the TSA.
const MAX_TIMEOUT_SECS: u64 = 60;
/// A `[tsa] roots` file is read up to this size (certificates in PEM).
const MAX_ROOTS_FILE_BYTES: u64 = crate::local_file::MIB;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsaConfig {
    /// The TSA's URL (`http` or `https`); requests are `POST`ed to it as `application/timestamp-query`.
    pub url: String,
    /// PEM files of the certificates a timestamp must chain to (the TSA's root, or an intermediate).
    pub roots: Vec<PathBuf>,
    /// How long one request, answer included, may take.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    10
}

/// `[tsa]` ready to use: the URL, the roots as timestamp authorities, the request deadline.
#[derive(Debug, Clone)]
pub struct Tsa {
    pub url: Url,
    pub authorities: Vec<CertificateAuthority>,
    pub timeout: Duration,
}

impl TsaConfig {
    /// The URL, parsed: `http` or `https`, with a host, without credentials.
    pub fn url(&self) -> Result<Url, ConfigError> {
        let invalid = |why: &str| ConfigError::Invalid(format!("[tsa] url {:?}: {why}", self.url));
        let url = Url::parse(&self.url).map_err(|_| invalid("not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("write an http:// or https:// URL"));
        }
        if url.host_str().is_none() {
            return Err(invalid("the URL names no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("credentials do not belong in the URL"));
        }
        Ok(url)
    }

    pub(super) fn check(&self) -> Result<(), ConfigError> {
        self.url()?;
        if self.roots.is_empty() {
            return Err(ConfigError::Invalid(
                "[tsa] roots is empty: name the PEM file(s) of the TSA's root certificate".into(),
            ));
        }
        if !(1..=MAX_TIMEOUT_SECS).contains(&self.timeout_secs) {
            return Err(ConfigError::Invalid(format!(
                "[tsa] timeout_secs {} must be from 1 to {MAX_TIMEOUT_SECS}",
                self.timeout_secs
            )));
        }
        Ok(())
    }

    /// Reads the roots: each certificate of each file is an authority named after its file. An unreadable
    /// file, or one without a certificate that parses, is an error naming it.
    pub fn load(&self) -> Result<Tsa, ConfigError> {
        let mut authorities = Vec::new();
        for file in &self.roots {
            let named = |why: String| ConfigError::Invalid(format!("[tsa] roots {}: {why}", file.display()));
            let text = crate::local_file::read_text_capped(file, MAX_ROOTS_FILE_BYTES)
                .map_err(|e| named(format!("cannot be read ({})", e.reason())))?;
            let certificates = pem_certificates(&text).map_err(|_| named("holds no PEM certificate".into()))?;
            for (i, der) in certificates.into_iter().enumerate() {
                crate::pki::certificate::parse(&der, &format!("certificate {}", i + 1))
                    .map_err(|e| named(e.to_string()))?;
                let always = Validity { start: time::OffsetDateTime::UNIX_EPOCH, end: None };
                let name = format!("tsa:{}", file.display());
                authorities.push(CertificateAuthority { name, certificates: vec![der], validity: always });
            }
        }
        Ok(Tsa { url: self.url()?, authorities, timeout: Duration::from_secs(self.timeout_secs) })
    }
}
