//! A registry on a free loopback port — CNCF distribution 2.8 (apt `docker-registry`, no referrers API) or
//! go-containerregistry's registry with the OCI referrers API (`.tools/bin/referrers-registry`, in memory) —
//! with the raw registry API calls tests make as any other client would. Owns: the registry process and its
//! storage; must not touch images beyond what a test asks.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::{client, free_port, sha256_digest, wait_until};

/// Which registry a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegistryKind {
    /// CNCF distribution 2.8: no referrers API, referrers live under the fallback tag.
    Distribution,
    /// go-containerregistry's registry with the referrers API on (scripts/install-referrers-registry.sh). Its
    /// quirks: in memory only, no `OCI-Subject` header on a PUT with `subject`, listings without annotations
    /// and typed by the config's media type, `?artifactType=` ignored, 404 NAME_UNKNOWN for an unknown
    /// repository's referrers.
    Referrers,
}

impl RegistryKind {
    /// Both kinds, for tests whose behaviour must hold against either registry.
    pub(crate) const ALL: [Self; 2] = [Self::Distribution, Self::Referrers];

    pub(crate) fn has_referrers_api(self) -> bool {
        self == Self::Referrers
    }
}

/// A running registry of some [`RegistryKind`].
pub(crate) struct Registry {
    pub(crate) host: String,
    pub(crate) kind: RegistryKind,
    child: Child,
    dir: TempDir,
}

/// Where a registry started with [`Registry::start_logging`] writes its log: one line per request.
const ACCESS_LOG: &str = "access.log";

impl Registry {
    pub(crate) fn start() -> Self {
        Self::start_with("")
    }

    /// Starts a registry of `kind` (distribution without request logging; go-containerregistry's logs every
    /// request).
    pub(crate) fn start_kind(kind: RegistryKind) -> Self {
        Self::start_on_free_port(kind, "", false)
    }

    /// Starts with `extra` YAML before the `http` section (top-level blocks such as `notifications`).
    pub(crate) fn start_with(extra: &str) -> Self {
        Self::start_on_free_port(RegistryKind::Distribution, extra, false)
    }

    /// Starts a distribution registry that reports every push and pull to the notarium listening on
    /// `127.0.0.1:port`, authenticating with `secret` (`[events] registry_secret_env`).
    pub(crate) fn start_notifying(port: u16, secret: &str) -> Self {
        Self::start_with(&format!(
            "notifications:\n  endpoints:\n    - name: notarium\n      url: http://127.0.0.1:{port}/v1/events/registry\n      headers:\n        Authorization: [\"Bearer {secret}\"]\n      timeout: 2s\n      threshold: 3\n      backoff: 1s\n"
        ))
    }

    /// Restarts on the same storage and port with `extra` YAML inside the `storage` section
    /// (e.g. read-only maintenance mode).
    pub(crate) fn restart(&mut self, storage_extra: &str) {
        assert_eq!(self.kind, RegistryKind::Distribution, "only distribution keeps its storage over a restart");
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child =
            Self::spawn(self.kind, &self.dir, &self.host, storage_extra, false).expect("registry restarts on its port");
    }

    /// Starts with every request logged (distribution's `info` level), for counting round trips.
    pub(crate) fn start_logging() -> Self {
        Self::start_on_free_port(RegistryKind::Distribution, "", true)
    }

    fn start_on_free_port(kind: RegistryKind, extra: &str, logging: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Another test may take the free port between probing and binding: try a few.
        for _ in 0..5 {
            let host = format!("127.0.0.1:{}", free_port());
            if let Some(child) = Self::spawn(kind, &dir, &host, extra, logging) {
                return Self { host, kind, child, dir };
            }
        }
        panic!("the registry could not bind a free port five times");
    }

    /// The requests a logging registry has answered so far, as `METHOD URI` lines (go-containerregistry's
    /// registry always logs).
    pub(crate) fn requests(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join(ACCESS_LOG)).unwrap_or_default();
        match self.kind {
            RegistryKind::Distribution => log
                .lines()
                .filter(|l| l.contains("response completed"))
                .filter_map(|l| Some(format!("{} {}", field(l, "http.request.method")?, field(l, "http.request.uri")?)))
                .collect(),
            // `METHOD URL` or `METHOD URL STATUS CODE MESSAGE`.
            RegistryKind::Referrers => {
                log.lines().map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" ")).collect()
            }
        }
    }

    /// Starts the registry and waits until it answers; `None` if it exited (port taken).
    fn spawn(kind: RegistryKind, dir: &TempDir, host: &str, storage_extra: &str, logging: bool) -> Option<Child> {
        let log = || std::fs::File::create(dir.path().join(ACCESS_LOG)).unwrap().into();
        let mut command = match kind {
            RegistryKind::Distribution => Self::distribution_command(dir, host, storage_extra, logging),
            RegistryKind::Referrers => {
                let mut command = Command::new(super::tool("referrers-registry"));
                command.arg(host);
                command
            }
        };
        let logged = logging || kind == RegistryKind::Referrers;
        let mut child = command
            .stdout(Stdio::null())
            .stderr(if logged { log() } else { Stdio::null() })
            .spawn()
            .expect("the registry is installed (scripts/install-test-deps.sh)");
        let url = format!("http://{host}/v2/");
        let mut exited = false;
        wait_until("registry", Duration::from_secs(20), || {
            exited = child.try_wait().unwrap().is_some();
            // A registry with `auth:` answers 401 once it is up.
            exited || client().get(&url).send().is_ok_and(|r| r.status().is_success() || r.status() == 401)
        });
        (!exited).then_some(child)
    }

    fn distribution_command(dir: &TempDir, host: &str, storage_extra: &str, logging: bool) -> Command {
        let level = if logging { "info" } else { "warn" };
        let config = format!(
            "version: 0.1\nlog:\n  level: {level}\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n{storage_extra}http:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut command = Command::new("docker-registry");
        command.arg("serve").arg(&config_path);
        command
    }

    /// `digest`'s referrers as the registry's referrers API lists them; `None` where it has none (404).
    pub(crate) fn referrers(&self, repo: &str, digest: &str) -> Option<serde_json::Value> {
        let response = client().get(format!("http://{}/v2/{repo}/referrers/{digest}", self.host)).send().unwrap();
        if response.status() == 404 {
            return None;
        }
        assert!(response.status().is_success(), "GET referrers {digest}: {}", response.status());
        Some(response.json().unwrap())
    }

    /// `digest`'s referrers as a reader finds them: the referrers API's listing on a registry with one, else
    /// the entries of the fallback index (none without it).
    pub(crate) fn referrer_entries(&self, repo: &str, digest: &str) -> Vec<serde_json::Value> {
        let index = match self.kind {
            RegistryKind::Referrers => self.referrers(repo, digest).expect("the referrers API answers"),
            RegistryKind::Distribution => match self.manifest(repo, &digest.replace(':', "-")) {
                Some(raw) => serde_json::from_slice(&raw).unwrap(),
                None => return Vec::new(),
            },
        };
        index["manifests"].as_array().unwrap().clone()
    }

    /// Deletes the manifest `reference` of `repo`.
    pub(crate) fn delete_manifest(&self, repo: &str, reference: &str) {
        let response = client().delete(format!("http://{}/v2/{repo}/manifests/{reference}", self.host)).send().unwrap();
        assert!(response.status().is_success(), "DELETE manifest {reference}: {}", response.status());
    }

    /// Asserts that the requests logged since the first `before` found referrers through the referrers API and
    /// never read or wrote a fallback tag (`sha256-<hex>`; `.sig`/`.att` tags are no fallback tags).
    pub(crate) fn assert_referrers_api_only(&self, before: usize) {
        let requests = self.requests();
        let since = &requests[before..];
        assert!(since.iter().any(|r| r.starts_with("GET ") && r.contains("/referrers/")), "{since:?}");
        let fallback = |r: &&String| {
            r.split('?')
                .next()
                .and_then(|p| p.rsplit_once("/manifests/"))
                .is_some_and(|(_, tag)| tag.starts_with("sha256-") && !tag.contains('.'))
        };
        assert!(!since.iter().any(|r| fallback(&r)), "a fallback tag was used: {since:?}");
    }

    /// Whether `digest`'s fallback referrers tag (`sha256-<hex>`) exists in `repo`.
    pub(crate) fn has_fallback_tag(&self, repo: &str, digest: &str) -> bool {
        self.manifest(repo, &digest.replace(':', "-")).is_some()
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
