//! Real components for the integration tests: a CNCF distribution registry, skopeo 1.18 and cosign 2.5
//! (installed under `.tools/` by `scripts/install-test-deps.sh`), and the `notarium` binary itself.
//! Every process is started on a free loopback port in a temporary directory and killed on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

mod postgres;
pub use postgres::*;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub fn tool(name: &str) -> PathBuf {
    let path = Path::new(ROOT).join(".tools/bin").join(name);
    assert!(path.exists(), "{} is missing: run scripts/install-test-deps.sh", path.display());
    path
}

/// A blocking HTTP client (installs the TLS crypto provider the crate is built with).
pub fn client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::new()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "{what} did not come up within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// A running CNCF distribution registry (apt `docker-registry`).
pub struct Registry {
    pub host: String,
    child: Child,
    dir: TempDir,
}

/// Where a registry started with [`Registry::start_logging`] writes its log: one line per request.
const ACCESS_LOG: &str = "access.log";

impl Registry {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Starts with `extra` YAML before the `http` section (top-level blocks such as `notifications`).
    pub fn start_with(extra: &str) -> Self {
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
    pub fn restart(&mut self, storage_extra: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.dir, &self.host, storage_extra, false).expect("registry restarts on its port");
    }

    /// Starts with every request logged (distribution's `info` level), for counting round trips.
    pub fn start_logging() -> Self {
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
    pub fn requests(&self) -> Vec<String> {
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
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<Vec<u8>> {
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
    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: Vec<u8>) {
        let response = client()
            .put(format!("http://{}/v2/{repo}/manifests/{reference}", self.host))
            .header("Content-Type", media_type)
            .body(bytes)
            .send()
            .unwrap();
        assert!(response.status().is_success(), "PUT manifest {reference}: {}", response.status());
    }

    /// Uploads `bytes` as a blob of `repo` (monolithic upload) and returns its digest.
    pub fn put_blob(&self, repo: &str, bytes: Vec<u8>) -> String {
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

    pub fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
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

pub fn sha256_digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Builds a one-layer OCI image layout whose content includes `content`, and pushes it with skopeo as
/// `registry/repo:tag`. Returns the manifest digest.
pub fn push_image(registry: &Registry, repo: &str, tag: &str, content: &str) -> String {
    let layout = OciLayout::new();
    let (manifest_digest, manifest_size) = layout.image("amd64", content);
    layout.finish(tag, OCI_MANIFEST_TYPE, &manifest_digest, manifest_size);
    layout.push(registry, repo, tag, false);
    let pushed = registry.manifest(repo, tag).expect("pushed manifest is there");
    sha256_digest(&pushed)
}

/// Pushes `count` distinct images straight through the registry API (one shared layer and config, each
/// manifest made unique by an annotation); returns their digests. Much faster than `push_image` in bulk.
pub fn push_many(registry: &Registry, repo: &str, count: usize) -> Vec<String> {
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
pub fn push_index(registry: &Registry, repo: &str, tag: &str, architectures: &[&str]) -> (String, Vec<String>) {
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

/// Pulls `image` with skopeo into a temporary directory (no signature policy).
pub fn skopeo_pull(image: &str) {
    let dir = tempfile::tempdir().unwrap();
    skopeo_copy_unverified(&format!("docker://{image}"), &format!("dir:{}", dir.path().join("out").display()), false);
}

/// `skopeo copy SOURCE DESTINATION` over plain HTTP with a policy that accepts anything.
fn skopeo_copy_unverified(source: &str, destination: &str, all: bool) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("accept.json");
    std::fs::write(&policy, br#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    let mut args = vec!["copy", "--src-tls-verify=false", "--dest-tls-verify=false"];
    args.extend(all.then_some("--all"));
    let out = run(Command::new(tool("skopeo")).arg("--policy").arg(&policy).args(args).args([source, destination]));
    assert!(out.status.success(), "skopeo copy {source} {destination}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A running `notarium serve` on a free port with its own data directory; its log is captured.
pub struct Notarium {
    pub url: String,
    pub data_dir: TempDir,
    database_url: String,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Notarium {
    /// Starts the server on embedded defaults, allowing `insecure` registries over plain HTTP.
    pub fn start(insecure: &[&str]) -> Self {
        Self::start_with(insecure, &[])
    }

    pub fn start_with(insecure: &[&str], env: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        Self::start_in(data_dir, insecure, env)
    }

    /// Starts on an existing data directory (a restart keeps the database) and the test database for it,
    /// unless `env` names a database itself.
    pub fn start_in(data_dir: TempDir, insecure: &[&str], env: &[(&str, &str)]) -> Self {
        let database_url = env
            .iter()
            .find(|(name, _)| *name == "NOTARIUM_DATABASE_URL")
            .map_or_else(|| test_database_url(data_dir.path()), |(_, url)| url.to_string());
        let mut child = Command::new(env!("CARGO_BIN_EXE_notarium"))
            .arg("serve")
            .current_dir(ROOT)
            .env("NOTARIUM_LISTEN", "127.0.0.1:0")
            .env("NOTARIUM_DATA_DIR", data_dir.path())
            .env("NOTARIUM_INSECURE_REGISTRIES", insecure.join(","))
            .env("NOTARIUM_LOG", "info,tower_http=debug")
            .env("NOTARIUM_DATABASE_URL", &database_url)
            // No trust policies unless a test gives some: the shipped examples would add register entries.
            .env("NOTARIUM_POLICIES_DIR", data_dir.path().join("no-policies"))
            .env_remove("NOTARIUM_CONFIG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("notarium listening on ") {
                    let _ = tx.send(url.to_owned());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("notarium did not start: {}", log.lock().unwrap()));
        Self { url, data_dir, database_url, child, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone()
    }

    /// POSTs `body` to `/v1/sign`; returns status, content type and the JSON answer.
    pub fn post(&self, path: &str, body: impl Into<reqwest::blocking::Body>) -> (u16, String, serde_json::Value) {
        let response = client()
            .post(format!("{}{path}", self.url))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let text = response.text().unwrap();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, content_type, json)
    }

    pub fn sign(&self, image: &str, key: &str) -> (u16, serde_json::Value) {
        let (status, _, body) = self.post("/v1/sign", serde_json::json!({"image": image, "key": key}).to_string());
        (status, body)
    }

    pub fn get_text(&self, path: &str) -> (u16, String) {
        let response = client().get(format!("{}{path}", self.url)).send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    }

    /// Writes `GET /v1/keys/{id}/public.pem` to a file in `dir`.
    pub fn public_key_file(&self, id: &str, dir: &Path) -> PathBuf {
        let (status, pem) = self.get_text(&format!("/v1/keys/{id}/public.pem"));
        assert_eq!(status, 200, "{pem}");
        let path = dir.join(format!("{id}.pub"));
        std::fs::write(&path, pem).unwrap();
        path
    }

    /// `notarium token ARGS --output json` against the server's database.
    pub fn token_cli(&self, args: &[&str]) -> serde_json::Value {
        let out = run(Command::new(env!("CARGO_BIN_EXE_notarium"))
            .arg("token")
            .args(args)
            .args(["--output", "json"])
            .current_dir(ROOT)
            .env("NOTARIUM_DATABASE_URL", &self.database_url)
            .env_remove("NOTARIUM_CONFIG"));
        assert!(out.status.success(), "notarium token {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A new token (`notarium token create ARGS`) and its id.
    pub fn create_token(&self, args: &[&str]) -> (String, String) {
        let made = self.token_cli(&[&["create"], args].concat());
        (made["token"].as_str().unwrap().to_owned(), made["record"]["id"].as_str().unwrap().to_owned())
    }

    /// Sends SIGTERM, as an orchestrator stopping the pod would.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit on its own; its exit status.
    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < timeout, "notarium did not exit within {timeout:?}: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Notarium {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `method path` with `token` as bearer (none when empty); status and JSON (or text) answer.
pub fn call(
    server: &Notarium,
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let url = format!("{}{path}", server.url);
    let mut request = match method {
        "GET" => client().get(url),
        "DELETE" => client().delete(url),
        _ => client().post(url),
    };
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

/// `notarium token ARGS --output json` against `server`'s database, as it ran.
pub fn token_command(server: &Notarium, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notarium"))
        .arg("token")
        .args(args)
        .args(["--output", "json"])
        .current_dir(ROOT)
        .env("NOTARIUM_DATABASE_URL", server.database_url())
        .env_remove("NOTARIUM_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Number of rows in the signatures table of a notarium database.
pub fn signature_rows(database_url: &str) -> i64 {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { TestDatabase::connect(database_url).await.scalar("SELECT COUNT(*) FROM signatures").await })
}

/// skopeo 1.18 pulling `image` under a `sigstoreSigned` policy trusting `public_key`. True if accepted.
pub fn skopeo_accepts(registry: &Registry, image: &str, public_key: &Path, signed_identity: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let policy = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {registry.host.clone(): [{
            "type": "sigstoreSigned",
            "keyPath": public_key,
            "signedIdentity": {"type": signed_identity},
        }]}},
    });
    std::fs::write(dir.path().join("policy.json"), policy.to_string()).unwrap();
    let registries_d = dir.path().join("registries.d");
    std::fs::create_dir(&registries_d).unwrap();
    std::fs::write(registries_d.join("default.yaml"), "default-docker:\n  use-sigstore-attachments: true\n").unwrap();
    let out = run(Command::new(tool("skopeo"))
        .arg("--policy")
        .arg(dir.path().join("policy.json"))
        .arg("--registries.d")
        .arg(&registries_d)
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{image}"))
        .arg(format!("dir:{}", dir.path().join("out").display())));
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A cosign 2.5 invocation with its own HOME and TUF root, so it writes nothing outside a temp dir.
pub struct Cosign {
    home: TempDir,
}

impl Cosign {
    pub fn new() -> Self {
        Self { home: tempfile::tempdir().unwrap() }
    }

    pub fn dir(&self) -> &Path {
        self.home.path()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run(Command::new(tool("cosign"))
            .args(args)
            .current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env("TUF_ROOT", self.home.path().join("tuf"))
            .env("COSIGN_PASSWORD", "")
            .env("COSIGN_YES", "true"))
    }

    /// `cosign verify --new-bundle-format` or `cosign verify-attestation --new-bundle-format` (`command`):
    /// reads only the OCI 1.1 referrer (Sigstore bundle) layout, with a trusted root that lists no log, CA
    /// or timestamp authority, as a plain key needs none. True if accepted; stdout and stderr.
    pub fn verify_bundle(&self, command: &str, image: &str, public_key: &Path, extra: &[&str]) -> (bool, String) {
        let root = self.dir().join("empty-trusted-root.json");
        let empty = serde_json::json!({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [], "certificateAuthorities": [], "ctlogs": [], "timestampAuthorities": []});
        std::fs::write(&root, empty.to_string()).unwrap();
        let (key, root) = (public_key.to_str().unwrap(), root.to_str().unwrap());
        let args = [command, "--new-bundle-format", "--trusted-root", root, "--key", key, "--insecure-ignore-tlog"];
        let out = self.run(&[&args[..], extra, &["--allow-http-registry", image]].concat());
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    /// `cosign verify --key` offline, without a transparency log. True if accepted.
    pub fn verify(&self, image: &str, public_key: &Path) -> (bool, String) {
        let key = public_key.to_str().unwrap();
        let out =
            self.run(&["verify", "--key", key, "--insecure-ignore-tlog", "--allow-http-registry", "--offline", image]);
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// skopeo 1.18 signing `image` with a fresh sigstore key while copying it onto itself. Returns the
/// public key file.
pub fn skopeo_sign(registry: &Registry, repo: &str, tag: &str, dir: &Path) -> PathBuf {
    let prefix = dir.join("skopeo-key");
    let passphrase = dir.join("passphrase");
    std::fs::write(&passphrase, "notarium-test\n").unwrap();
    let out = run(Command::new(tool("skopeo"))
        .args(["generate-sigstore-key", "--output-prefix"])
        .arg(&prefix)
        .arg("--passphrase-file")
        .arg(&passphrase));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let policy = dir.join("accept.json");
    std::fs::write(&policy, br#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    let registries_d = dir.join("registries.d");
    std::fs::create_dir_all(&registries_d).unwrap();
    std::fs::write(registries_d.join("default.yaml"), "default-docker:\n  use-sigstore-attachments: true\n").unwrap();
    let image = format!("docker://{}/{repo}:{tag}", registry.host);
    let out = run(Command::new(tool("skopeo"))
        .arg("--policy")
        .arg(&policy)
        .arg("--registries.d")
        .arg(&registries_d)
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--sign-by-sigstore-private-key"])
        .arg(prefix.with_extension("private"))
        .arg("--sign-passphrase-file")
        .arg(&passphrase)
        .arg(&image)
        .arg(&image));
    assert!(out.status.success(), "skopeo sign failed: {}", String::from_utf8_lossy(&out.stderr));
    prefix.with_extension("pub")
}

/// The common start of a signing test: a registry, a notarium allowed to reach it, and one pushed image.
/// Returns the image's digest too.
pub fn registry_notarium_and_image(repo: &str, tag: &str, content: &str) -> (Registry, Notarium, String) {
    let registry = Registry::start();
    let notarium = Notarium::start(&[&registry.host]);
    let digest = push_image(&registry, repo, tag, content);
    (registry, notarium, digest)
}

pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A fresh SoftHSM2 token in a temporary `SOFTHSM2_CONF`, with keys generated on it by pkcs11-tool
/// (sensitive, not extractable).
pub struct SoftHsm {
    pub dir: TempDir,
    pub conf: PathBuf,
    pub token_label: String,
    pub pin: String,
}

impl SoftHsm {
    pub fn new(token_label: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let hsm = Self { dir, conf, token_label: token_label.to_owned(), pin: "4711-notarium-pin".to_owned() };
        let out = hsm.command(
            "softhsm2-util",
            &["--init-token", "--free", "--label", token_label, "--so-pin", "so-pin-0815", "--pin", &hsm.pin],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        hsm
    }

    /// Another token in the same SoftHSM2 configuration, with its own PIN.
    pub fn add_token(&self, token_label: &str) -> SoftHsmToken {
        let pin = format!("{token_label}-pin-31337");
        let out = self.command(
            "softhsm2-util",
            &["--init-token", "--free", "--label", token_label, "--so-pin", "so-pin-0815", "--pin", &pin],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        SoftHsmToken { conf: self.conf.clone(), token_label: token_label.to_owned(), pin }
    }

    fn token(&self) -> SoftHsmToken {
        SoftHsmToken { conf: self.conf.clone(), token_label: self.token_label.clone(), pin: self.pin.clone() }
    }

    pub fn generate(&self, key_type: &str, label: &str, id_hex: &str) {
        self.token().generate(key_type, label, id_hex);
    }

    pub fn public_key_pem(&self, label: &str, id_hex: &str) -> String {
        self.token().public_key_pem(label, id_hex, self.dir.path())
    }

    pub fn key_config(&self, id: &str, key_label: &str, pin_env: &str) -> String {
        self.token().key_config(id, key_label, pin_env)
    }

    pub fn command(&self, program: &str, args: &[&str]) -> Output {
        run(Command::new(program).args(args).env("SOFTHSM2_CONF", &self.conf))
    }

    /// pkcs11-tool's description of the private keys on the main token (labels, ids, access flags).
    pub fn private_keys(&self) -> String {
        let out = self.token().pkcs11_tool(&["--list-objects", "--type", "privkey"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// One token of a [`SoftHsm`].
pub struct SoftHsmToken {
    pub conf: PathBuf,
    pub token_label: String,
    pub pin: String,
}

impl SoftHsmToken {
    /// pkcs11-tool logged in to this token, with `args` after the module, token and PIN.
    fn pkcs11_tool(&self, args: &[&str]) -> Output {
        run(Command::new("pkcs11-tool")
            .args(["--module", SOFTHSM_MODULE, "--token-label", &self.token_label, "--login", "--pin", &self.pin])
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf))
    }

    /// Generates a key pair on the token. `key_type` is pkcs11-tool's (`EC:prime256v1`, `EC:edwards25519`).
    pub fn generate(&self, key_type: &str, label: &str, id_hex: &str) {
        let out = self.pkcs11_tool(&[
            "--keypairgen",
            "--key-type",
            key_type,
            "--label",
            label,
            "--id",
            id_hex,
            "--usage-sign",
            "--private",
        ]);
        assert!(out.status.success(), "keypairgen: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The public key of `label`/`id` as pkcs11-tool reads it from the token, as a PEM SubjectPublicKeyInfo
    /// (pkcs11-tool writes DER for EC keys and PEM for EdDSA keys).
    pub fn public_key_pem(&self, label: &str, id_hex: &str, dir: &Path) -> String {
        let path = dir.join(format!("{}-{label}-{id_hex}.out", self.token_label));
        let output = path.to_str().unwrap();
        let out = self.pkcs11_tool(&[
            "--read-object",
            "--type",
            "pubkey",
            "--label",
            label,
            "--id",
            id_hex,
            "--output-file",
            output,
        ]);
        assert!(out.status.success(), "read-object: {}", String::from_utf8_lossy(&out.stderr));
        let bytes = std::fs::read(path).unwrap();
        if bytes.starts_with(b"-----BEGIN") {
            return String::from_utf8(bytes).unwrap();
        }
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
    }

    /// A `[[keys]]` entry for a key on this token.
    pub fn key_config(&self, id: &str, key_label: &str, pin_env: &str) -> String {
        format!(
            "[[keys]]\nid = \"{id}\"\nbackend = \"pkcs11\"\nmodule = \"{SOFTHSM_MODULE}\"\ntoken_label = \"{}\"\nkey_label = \"{key_label}\"\npin_env = \"{pin_env}\"\nrefresh_secs = 0\n\n",
            self.token_label
        )
    }
}

/// An OpenBao dev server (the Vault API) on a free loopback port, with the Transit engine enabled.
pub struct OpenBao {
    pub address: String,
    pub root_token: String,
    child: Child,
    dir: TempDir,
}

impl OpenBao {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root_token = "notarium-root-9f2c41d7".to_owned();
        for _ in 0..5 {
            let address = format!("127.0.0.1:{}", free_port());
            let mut child = Command::new(tool("bao"))
                .args(["server", "-dev", "-dev-no-store-token"])
                .arg(format!("-dev-root-token-id={root_token}"))
                .arg(format!("-dev-listen-address={address}"))
                .env("HOME", dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let health = format!("http://{address}/v1/sys/health");
            let mut exited = false;
            wait_until("openbao", Duration::from_secs(30), || {
                exited = child.try_wait().unwrap().is_some();
                exited || client().get(&health).send().is_ok_and(|r| r.status().is_success())
            });
            if exited {
                continue;
            }
            let bao = Self { address: format!("http://{address}"), root_token, child, dir };
            bao.ok(&["secrets", "enable", "transit"]);
            return bao;
        }
        panic!("openbao could not bind a free port five times");
    }

    /// Runs the `bao` CLI against this server with the root token.
    pub fn run(&self, args: &[&str]) -> Output {
        run(Command::new(tool("bao"))
            .args(args)
            .env("BAO_ADDR", &self.address)
            .env("BAO_TOKEN", &self.root_token)
            .env("HOME", self.dir.path()))
    }

    /// Runs the CLI and returns its trimmed stdout, failing the test if it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "bao {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A `[[keys]]` entry for a Transit key, authenticating with the token in `token_env`.
    pub fn key_config(&self, id: &str, transit_key: &str, token_env: &str) -> String {
        format!(
            "[[keys]]\nid = \"{id}\"\nbackend = \"vault\"\naddress = \"{}\"\nkey = \"{transit_key}\"\ntoken_env = \"{token_env}\"\ntimeout_secs = 3\nrefresh_secs = 0\n\n",
            self.address
        )
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The embedded defaults' keys, for configurations that need more than the defaults (absolute paths: a
/// config file's relative paths mean its own folder).
pub const EXAMPLE_KEYS: &str = concat!(
    "\n[[keys]]\nid = \"dev-ecdsa\"\nbackend = \"file\"\npath = \"",
    env!("CARGO_MANIFEST_DIR"),
    "/keys.example/dev-ecdsa.pem\"\n\n[[keys]]\nid = \"dev-ed25519\"\nbackend = \"file\"\npath = \"",
    env!("CARGO_MANIFEST_DIR"),
    "/keys.example/dev-ed25519.pem\"\n\n[[keys]]\nid = \"dev-log\"\nbackend = \"file\"\npath = \"",
    env!("CARGO_MANIFEST_DIR"),
    "/keys.example/dev-log.pem\"\n"
);

/// Put first in a configuration: serve the open API although HSM or Vault keys are configured, for tests
/// that sign with them without a token.
pub const OPEN_WITH_BACKEND_KEYS: &str = "[auth]\nopen = true\n\n";

impl Notarium {
    /// Starts with `config` (TOML) as its configuration file.
    pub fn start_with_config(config: &str, insecure: &[&str], env: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let path = data_dir.path().join("notarium.toml");
        std::fs::write(&path, config).unwrap();
        let path = path.to_str().unwrap().to_owned();
        let mut env = env.to_vec();
        env.push(("NOTARIUM_CONFIG", &path));
        Self::start_in(data_dir, insecure, &env)
    }
}

/// An ES256 signing key from a fixed seed (for ID tokens of a test issuer), and its public JWK under `kid`.
pub fn ec_key(seed: u8, kid: &str) -> (jsonwebtoken::EncodingKey, serde_json::Value) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use p256::elliptic_curve::sec1::ToSec1Point;
    use p256::pkcs8::EncodePrivateKey;
    let secret = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
    let pem = secret.to_pkcs8_pem(Default::default()).unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let point = secret.public_key().to_sec1_point(false);
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()), "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())});
    (key, jwk)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}
