//! `notarium serve` as a process on a free port with its own data directory and test database, its log
//! captured; the token CLI against its database; the configurations tests start it with.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{ROOT, Registry, TestDatabase, client, push_image, run, test_database_url};

/// A running `notarium serve` on a free port with its own data directory; its log is captured.
pub(crate) struct Notarium {
    pub(crate) url: String,
    pub(crate) data_dir: TempDir,
    database_url: String,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Notarium {
    /// Starts the server on embedded defaults, allowing `insecure` registries over plain HTTP.
    pub(crate) fn start(insecure: &[&str]) -> Self {
        Self::start_with(insecure, &[])
    }

    pub(crate) fn start_with(insecure: &[&str], env: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        Self::start_in(data_dir, insecure, env)
    }

    /// Starts on an existing data directory (a restart keeps the database) and the test database for it,
    /// unless `env` names a database itself.
    pub(crate) fn start_in(data_dir: TempDir, insecure: &[&str], env: &[(&str, &str)]) -> Self {
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
        let (url, log) = listening_url(&mut child, |line| line.strip_prefix("notarium listening on "));
        Self { url, data_dir, database_url, child, log }
    }

    /// Starts with `config` (TOML) as its configuration file.
    pub(crate) fn start_with_config(config: &str, insecure: &[&str], env: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let path = data_dir.path().join("notarium.toml");
        std::fs::write(&path, config).unwrap();
        let path = path.to_str().unwrap().to_owned();
        let mut env = env.to_vec();
        env.push(("NOTARIUM_CONFIG", &path));
        Self::start_in(data_dir, insecure, &env)
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub(crate) fn database_url(&self) -> String {
        self.database_url.clone()
    }

    /// `POST /v1/verify` of `image` under the loaded policies: the decision (asserting a 200).
    pub(crate) fn verify_image(&self, image: &str) -> serde_json::Value {
        let (status, _, answer) = self.post("/v1/verify", serde_json::json!({"image": image}).to_string());
        assert_eq!(status, 200, "{answer}");
        answer
    }

    /// POSTs `body` to `/v1/sign`; returns status, content type and the JSON answer.
    pub(crate) fn post(
        &self,
        path: &str,
        body: impl Into<reqwest::blocking::Body>,
    ) -> (u16, String, serde_json::Value) {
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

    pub(crate) fn sign(&self, image: &str, key: &str) -> (u16, serde_json::Value) {
        let (status, _, body) = self.post("/v1/sign", serde_json::json!({"image": image, "key": key}).to_string());
        (status, body)
    }

    pub(crate) fn get_text(&self, path: &str) -> (u16, String) {
        let response = client().get(format!("{}{path}", self.url)).send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    }

    /// Writes `GET /v1/keys/{id}/public.pem` to a file in `dir`.
    pub(crate) fn public_key_file(&self, id: &str, dir: &Path) -> PathBuf {
        let (status, pem) = self.get_text(&format!("/v1/keys/{id}/public.pem"));
        assert_eq!(status, 200, "{pem}");
        let path = dir.join(format!("{id}.pub"));
        std::fs::write(&path, pem).unwrap();
        path
    }

    /// `notarium token ARGS --output json` against the server's database.
    pub(crate) fn token_cli(&self, args: &[&str]) -> serde_json::Value {
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
    pub(crate) fn create_token(&self, args: &[&str]) -> (String, String) {
        let made = self.token_cli(&[&["create"], args].concat());
        (made["token"].as_str().unwrap().to_owned(), made["record"]["id"].as_str().unwrap().to_owned())
    }

    /// Runs the `notarium` CLI with `args` against this server (`--server`), without `NOTARIUM_TOKEN`.
    pub(crate) fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_notarium"))
            .args(args)
            .args(["--server", &self.url])
            .env_remove("NOTARIUM_TOKEN")
            .output()
            .unwrap()
    }

    /// Sends SIGTERM, as an orchestrator stopping the pod would.
    pub(crate) fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit on its own; its exit status.
    pub(crate) fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < timeout, "notarium did not exit within {timeout:?}: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Captures `child`'s stderr into a log and waits (30 s at most) for the line `listening` finds a URL in.
pub(crate) fn listening_url(child: &mut Child, listening: fn(&str) -> Option<&str>) -> (String, Arc<Mutex<String>>) {
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = listening(&line) {
                let _ = tx.send(url.to_owned());
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("the process did not start: {}", log.lock().unwrap()));
    (url, log)
}

impl Drop for Notarium {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `method path` with `token` as bearer (none when empty); status and JSON (or text) answer.
pub(crate) fn call(
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
pub(crate) fn token_command(server: &Notarium, args: &[&str]) -> Output {
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
pub(crate) fn signature_rows(database_url: &str) -> i64 {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { TestDatabase::connect(database_url).await.scalar("SELECT COUNT(*) FROM signatures").await })
}

/// The common start of a signing test: a registry, a notarium allowed to reach it, and one pushed image.
/// Returns the image's digest too.
pub(crate) fn registry_notarium_and_image(repo: &str, tag: &str, content: &str) -> (Registry, Notarium, String) {
    let registry = Registry::start();
    let notarium = Notarium::start(&[&registry.host]);
    let digest = push_image(&registry, repo, tag, content);
    (registry, notarium, digest)
}

/// The embedded defaults' keys, for configurations that need more than the defaults (absolute paths: a
/// config file's relative paths mean its own folder).
pub(crate) const EXAMPLE_KEYS: &str = concat!(
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
pub(crate) const OPEN_WITH_BACKEND_KEYS: &str = "[auth]\nopen = true\n\n";
