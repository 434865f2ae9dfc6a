//! Build script: puts the commit the binary is built from into `NOTARIUM_COMMIT` for `notarium --version`.
//!
//! The commit is `NOTARIUM_BUILD_COMMIT` when set (a packager building outside a checkout), else
//! `git rev-parse --short=12 HEAD` with `-dirty` when tracked files differ from it, else `unknown` (a crate
//! tarball, or no git). Git is asked only when this directory is the top of its work tree, so a tarball
//! unpacked inside some other repository does not borrow that repository's commit.
//!
//! It reruns when HEAD or the branch it names moves, or when a source file changes (which rebuilds the crate
//! anyway): not on every test or document edit, and not on `git status` rewriting the index, so neither
//! forces a rebuild of the crate by itself.

use std::path::Path;
use std::process::Command;

const OVERRIDE: &str = "NOTARIUM_BUILD_COMMIT";

fn main() {
    println!("cargo:rerun-if-env-changed={OVERRIDE}");
    println!("cargo:rerun-if-changed=build.rs");
    let commit = match std::env::var(OVERRIDE) {
        Ok(commit) if !commit.trim().is_empty() => printable(commit.trim()),
        _ => commit_from_git().unwrap_or_else(|| "unknown".to_owned()),
    };
    println!("cargo:rustc-env=NOTARIUM_COMMIT={commit}");
}

/// The short commit of HEAD, `-dirty` when tracked files differ; `None` outside a checkout of this crate.
fn commit_from_git() -> Option<String> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != Path::new(&manifest_dir).canonicalize().ok()? {
        return None;
    }
    watch_head();
    for source in ["src", "migrations", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={source}");
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|changes| !changes.is_empty());
    Some(if dirty { format!("{commit}-dirty") } else { commit })
}

/// Reruns when HEAD changes (a checkout) or the branch it names moves (a commit). Only files that exist are
/// named: cargo reruns every time for a missing one.
fn watch_head() {
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
        watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    }
    for path in watched.into_iter().flatten().filter(|path| Path::new(path).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
}

/// The trimmed standard output of a successful `git args`.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `text` with anything but visible ASCII replaced, so the version stays one plain line.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_graphic() { c } else { '_' }).collect()
}
