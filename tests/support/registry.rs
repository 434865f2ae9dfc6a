//! A CNCF distribution registry (apt `docker-registry`) on a free loopback port, with the raw registry API
//! calls tests make as any other client would. Owns: the registry process and its storage; must not touch
//! images beyond what a test asks.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::{client, free_port, sha256_digest, wait_until};

/// A running CNCF distribution registry (apt `docker-registry`).
pub(crate) struct Registry {
    pub(crate) host: String,
    child: Child,
    dir: TempDir,
}

/// Where a registry started with [`Registry::start_logging`] writes its log: one line per request.
const ACCESS_LOG: &str = "access.log";

impl Registry {
    pub(crate) fn start() -> Self {
        Self::start_with("")
    }

    /// Starts with `extra` YAML before the `http` section (top-level blocks such as `notifications`).
    pub(crate) fn start_with(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Another test may take the free port between probing and binding: try a few.
        for _ in 0..5 {
            let host = format!("127.0.0.1:{}", free_port());
            if let Some(child) = Self::spawn(&dir, &host, extra, false) {
                return Self { host, child, dir };
            }
        }
        panic!("the registry could not bind a free port five times");
    }

    /// Restarts on the same storage and port with `extra` YAML inside the `storage` section
    /// (e.g. read-only maintenance mode).
    pub(crate) fn restart(&mut self, storage_extra: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.dir, &self.host, storage_extra, false).expect("registry restarts on its port");
    }

    /// Starts with every request logged (distribution's `info` level), for counting round trips.
    pub(crate) fn start_logging() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            let host = format!("127.0.0.1:{}", free_port());
            if let Some(child) = Self::spawn(&dir, &host, "", true) {
                return Self { host, child, dir };
            }
        }
        panic!("the registry could not bind a free port five times");
    }

    /// The requests a logging registry has answered so far, as `METHOD URI` lines.
    pub(crate) fn requests(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join(ACCESS_LOG)).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("response completed"))
            .filter_map(|l| Some(format!("{} {}", field(l, "http.request.method")?, field(l, "http.request.uri")?)))
            .collect()
    }

    /// Starts the registry and waits until it answers; `None` if it exited (port taken).
    fn spawn(dir: &TempDir, host: &str, storage_extra: &str, logging: bool) -> Option<Child> {
        let level = if logging { "info" } else { "warn" };
        let config = format!(
            "version: 0.1\nlog:\n  level: {level}\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n{storage_extra}http:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(match logging {
                true => std::fs::File::create(dir.path().join(ACCESS_LOG)).unwrap().into(),
                false => Stdio::null(),
            })
            .spawn()
            .expect("docker-registry is installed (scripts/install-test-deps.sh)");
        let url = format!("http://{host}/v2/");
        let mut exited = false;
        wait_until("registry", Duration::from_secs(20), || {
            exited = child.try_wait().unwrap().is_some();
            // A registry with `auth:` answers 401 once it is up.
            exited || client().get(&url).send().is_ok_and(|r| r.status().is_success() || r.status() == 401)
        });
        (!exited).then_some(child)
    }

    /// Fetches a manifest's raw bytes, or `None` on 404.
    pub(crate) fn manifest(&self, repo: &str, reference: &str) -> Option<Vec<u8>> {
        let response = client()
            .get(format!("http://{}/v2/{repo}/manifests/{reference}", self.host))
            .header("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")
            .send()
            .unwrap();
        if response.status() == 404 {
            return None;
        }
        assert!(response.status().is_success(), "GET manifest {reference}: {}", response.status());
        Some(response.bytes().unwrap().to_vec())
    }

    /// Puts `bytes` as the manifest `reference` of `repo` with `media_type`, as any registry client could.
    pub(crate) fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: Vec<u8>) {
        let response = client()
            .put(format!("http://{}/v2/{repo}/manifests/{reference}", self.host))
            .header("Content-Type", media_type)
            .body(bytes)
            .send()
            .unwrap();
        assert!(response.status().is_success(), "PUT manifest {reference}: {}", response.status());
    }

    /// Uploads `bytes` as a blob of `repo` (monolithic upload) and returns its digest.
    pub(crate) fn put_blob(&self, repo: &str, bytes: Vec<u8>) -> String {
        let digest = sha256_digest(&bytes);
        let started = client().post(format!("http://{}/v2/{repo}/blobs/uploads/", self.host)).send().unwrap();
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        let location = if location.starts_with("http") { location } else { format!("http://{}{location}", self.host) };
        let separator = if location.contains('?') { '&' } else { '?' };
        let response = client()
            .put(format!("{location}{separator}digest={digest}"))
            .header("Content-Type", "application/octet-stream")
            .body(bytes)
            .send()
            .unwrap();
        assert!(response.status().is_success(), "blob upload: {}", response.status());
        digest
    }

    pub(crate) fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        let response = client().get(format!("http://{}/v2/{repo}/blobs/{digest}", self.host)).send().unwrap();
        assert!(response.status().is_success());
        response.bytes().unwrap().to_vec()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `name=value` (or `name="value"`) in a logfmt line.
fn field(line: &str, name: &str) -> Option<String> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    let rest = &line[start..];
    Some(match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next()?.to_owned(),
        None => rest.split_whitespace().next()?.to_owned(),
    })
}
