//! An OpenBao dev server (the Vault API, `.tools/bin/bao`) with the Transit engine, and the `[[keys]]`
//! entries naming its keys.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::{client, free_port, run, tool, wait_until};

/// An OpenBao dev server (the Vault API) on a free loopback port, with the Transit engine enabled.
pub(crate) struct OpenBao {
    pub(crate) address: String,
    pub(crate) root_token: String,
    child: Child,
    dir: TempDir,
}

impl OpenBao {
    pub(crate) fn start() -> Self {
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
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        run(Command::new(tool("bao"))
            .args(args)
            .env("BAO_ADDR", &self.address)
            .env("BAO_TOKEN", &self.root_token)
            .env("HOME", self.dir.path()))
    }

    /// Runs the CLI and returns its trimmed stdout, failing the test if it fails.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "bao {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A `[[keys]]` entry for a Transit key, authenticating with the token in `token_env`.
    pub(crate) fn key_config(&self, id: &str, transit_key: &str, token_env: &str) -> String {
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
