//! oras 1.3.3 (Debian sid build under `.tools/`) listing an image's referrers as any OCI client sees them.
//! Owns nothing: read-only registry calls over plain HTTP, with its own HOME.

use std::process::Command;

use super::{run, tool};

/// One referrer as `oras discover --format json` lists it.
#[derive(Debug, Clone)]
pub(crate) struct Referrer {
    pub(crate) digest: String,
    pub(crate) artifact_type: String,
    pub(crate) media_type: String,
    pub(crate) annotations: serde_json::Map<String, serde_json::Value>,
}

/// `oras discover --format json --plain-http IMAGE`: the image's referrers (first level), or panics with
/// oras's output.
pub(crate) fn oras_discover(image: &str) -> Vec<Referrer> {
    let home = tempfile::tempdir().unwrap();
    let out = run(Command::new(tool("oras"))
        .args(["discover", "--format", "json", "--plain-http", "--depth", "1", image])
        .env("HOME", home.path()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "oras discover {image} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    parse_discover(&stdout)
}

fn parse_discover(json: &str) -> Vec<Referrer> {
    let document: serde_json::Value = serde_json::from_str(json).unwrap();
    let text = |value: &serde_json::Value, key: &str| value[key].as_str().unwrap_or_default().to_owned();
    document["referrers"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|r| Referrer {
                    digest: text(r, "digest"),
                    artifact_type: text(r, "artifactType"),
                    media_type: text(r, "mediaType"),
                    annotations: r["annotations"].as_object().cloned().unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}
