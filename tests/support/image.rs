//! Test images: one-layer OCI image layouts and indexes built here blob by blob and pushed with skopeo, or
//! many manifests pushed straight through the registry API. Owns: the image bytes; must not sign anything.

use tempfile::TempDir;

use super::skopeo::skopeo_copy_unverified;
use super::{Registry, client, sha256_digest};

/// Builds a one-layer OCI image layout whose content includes `content`, and pushes it with skopeo as
/// `registry/repo:tag`. Returns the manifest digest.
pub(crate) fn push_image(registry: &Registry, repo: &str, tag: &str, content: &str) -> String {
    let layout = OciLayout::new();
    let (manifest_digest, manifest_size) = layout.image("amd64", content);
    layout.finish(tag, OCI_MANIFEST_TYPE, &manifest_digest, manifest_size);
    layout.push(registry, repo, tag, false);
    let pushed = registry.manifest(repo, tag).expect("pushed manifest is there");
    sha256_digest(&pushed)
}

/// Pushes `count` distinct images straight through the registry API (one shared layer and config, each
/// manifest made unique by an annotation); returns their digests. Much faster than `push_image` in bulk.
pub(crate) fn push_many(registry: &Registry, repo: &str, count: usize) -> Vec<String> {
    let http = client();
    let base = format!("http://{}/v2/{repo}", registry.host);
    let upload = |bytes: &[u8]| {
        let digest = sha256_digest(bytes);
        let started = http.post(format!("{base}/blobs/uploads/")).send().unwrap();
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        let location =
            if location.starts_with("http") { location } else { format!("http://{}{location}", registry.host) };
        let separator = if location.contains('?') { '&' } else { '?' };
        let done = http.put(format!("{location}{separator}digest={digest}")).body(bytes.to_vec()).send().unwrap();
        assert!(done.status().is_success(), "blob upload: {}", done.status());
        (digest, bytes.len())
    };
    let (layer, layer_size) = upload(&tar_with_one_file("hello.txt", b"many"));
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer]}});
    let (config_digest, config_size) = upload(&serde_json::to_vec(&config).unwrap());
    (0..count)
        .map(|n| {
            let manifest = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST_TYPE,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
                "annotations": {"test.n": n.to_string()},
            }))
            .unwrap();
            let response = http
                .put(format!("{base}/manifests/n{n}"))
                .header("Content-Type", OCI_MANIFEST_TYPE)
                .body(manifest.clone())
                .send()
                .unwrap();
            assert!(response.status().is_success(), "manifest push: {}", response.status());
            sha256_digest(&manifest)
        })
        .collect()
}

/// Builds an image index over one single-layer image per architecture in an OCI layout and pushes it, all
/// platforms, with `skopeo copy --all`; returns the index digest and the platform manifest digests.
pub(crate) fn push_index(registry: &Registry, repo: &str, tag: &str, architectures: &[&str]) -> (String, Vec<String>) {
    let layout = OciLayout::new();
    let platforms: Vec<(String, usize, &str)> = architectures
        .iter()
        .map(|arch| {
            let (digest, size) = layout.image(arch, &format!("{repo} on {arch}"));
            (digest, size, *arch)
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": platforms.iter().map(|(digest, size, arch)| serde_json::json!({
            "mediaType": OCI_MANIFEST_TYPE, "digest": digest, "size": size,
            "platform": {"architecture": arch, "os": "linux"},
        })).collect::<Vec<_>>(),
    });
    let (index_digest, index_size) = layout.put(&serde_json::to_vec(&index).unwrap());
    layout.finish(tag, "application/vnd.oci.image.index.v1+json", &index_digest, index_size);
    layout.push(registry, repo, tag, true);
    // skopeo may rewrite what it pushes (layer compression), so the digests are the registry's.
    let pushed = registry.manifest(repo, tag).expect("pushed index is there");
    let listed: serde_json::Value = serde_json::from_slice(&pushed).unwrap();
    let digests = listed["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap().to_owned());
    (sha256_digest(&pushed), digests.collect())
}

const OCI_MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// An OCI image layout in a temporary directory, written blob by blob.
struct OciLayout {
    dir: TempDir,
}

impl OciLayout {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        Self { dir }
    }

    fn put(&self, bytes: &[u8]) -> (String, usize) {
        let digest = sha256_digest(bytes);
        std::fs::write(self.dir.path().join("blobs/sha256").join(&digest["sha256:".len()..]), bytes).unwrap();
        (digest, bytes.len())
    }

    /// A one-layer image for `architecture` whose file holds `content`; its manifest's digest and size.
    fn image(&self, architecture: &str, content: &str) -> (String, usize) {
        let (layer, layer_size) = self.put(&tar_with_one_file("hello.txt", content.as_bytes()));
        let config = serde_json::json!({
            "architecture": architecture, "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer]},
        });
        let (config_digest, config_size) = self.put(&serde_json::to_vec(&config).unwrap());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
        });
        self.put(&serde_json::to_vec(&manifest).unwrap())
    }

    /// Writes `index.json` naming `digest` as `tag`, and the layout marker.
    fn finish(&self, tag: &str, media_type: &str, digest: &str, size: usize) {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": media_type, "digest": digest, "size": size,
                "annotations": {"org.opencontainers.image.ref.name": tag}}],
        });
        std::fs::write(self.dir.path().join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        std::fs::write(self.dir.path().join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    }

    fn push(&self, registry: &Registry, repo: &str, tag: &str, all: bool) {
        let source = format!("oci:{}:{tag}", self.dir.path().display());
        let destination = format!("docker://{}/{repo}:{tag}", registry.host);
        skopeo_copy_unverified(&source, &destination, all);
    }
}

fn tar_with_one_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..108].copy_from_slice(b"0000644\0");
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    header[124..136].copy_from_slice(format!("{:011o}\0", content.len()).as_bytes());
    header[136..148].copy_from_slice(b"00000000000\0");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let checksum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    tar
}
