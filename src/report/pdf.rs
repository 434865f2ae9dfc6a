//! The report printed to PDF by Debian's `chromium` in headless mode: a throwaway profile in a private
//! temporary directory, every network path closed (no proxy reachable, no name resolves, background
//! services off), killed when it runs past [`PDF_TIMEOUT`].
//!
//! Blocking: call it from `spawn_blocking` in async code.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::ReportError;

/// How long chromium may take to print one report.
pub const PDF_TIMEOUT: Duration = Duration::from_secs(60);

/// The PDF of `html` (a page from [`render_html`](super::render_html)), printed by the chromium binary at
/// `chromium`.
pub fn render_pdf(html: &str, chromium: &Path) -> Result<Vec<u8>, ReportError> {
    render_pdf_within(html, chromium, PDF_TIMEOUT)
}

pub(super) fn render_pdf_within(html: &str, chromium: &Path, timeout: Duration) -> Result<Vec<u8>, ReportError> {
    let dir = WorkDir::create()?;
    let page = dir.0.join("report.html");
    let pdf = dir.0.join("report.pdf");
    std::fs::write(&page, html).map_err(ReportError::WorkDir)?;
    let mut command = Command::new(chromium);
    command
        .args(CHROMIUM_ARGS)
        .arg(format!("--user-data-dir={}", dir.0.join("profile").display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", page.display()))
        .env("HOME", &dir.0)
        .env("XDG_CONFIG_HOME", dir.0.join("config"))
        .env("XDG_CACHE_HOME", dir.0.join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if running_as_root() {
        // Chromium's sandbox refuses to start as root; the page it renders has no script and loads nothing.
        command.arg("--no-sandbox");
    }
    let mut child =
        command.spawn().map_err(|source| ReportError::Start { path: chromium.display().to_string(), source })?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(ReportError::WorkDir)? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ReportError::Timeout(timeout));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let bytes = std::fs::read(&pdf).ok().filter(|b| b.starts_with(b"%PDF-"));
    match bytes {
        Some(bytes) => Ok(bytes),
        None if !status.success() => Err(ReportError::Failed { status: status.to_string() }),
        None => Err(ReportError::NoPdf),
    }
}

const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-pdf-header-footer",
    // No connection leaves: every host name fails to resolve and every proxied request goes nowhere.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
];

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A private temporary directory, removed with everything in it when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> Result<Self, ReportError> {
        let mut random = [0u8; 12];
        getrandom::fill(&mut random).map_err(|e| ReportError::WorkDir(std::io::Error::other(e.to_string())))?;
        let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let path = std::env::temp_dir().join(format!("notarium-report-{name}"));
        std::fs::DirBuilder::new().mode(0o700).create(&path).map_err(ReportError::WorkDir)?;
        Ok(Self(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_renderer_is_named() {
        let error = render_pdf("<p>x</p>", Path::new("/nonexistent/chromium")).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/chromium"), "{error}");
    }

    #[test]
    fn a_renderer_that_hangs_is_killed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("chromium");
        std::fs::write(&script, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let error = render_pdf_within("<p>x</p>", &script, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(error, ReportError::Timeout(_)), "{error}");
    }

    #[test]
    fn a_renderer_that_writes_no_pdf_is_an_error() {
        let error = render_pdf("<p>x</p>", Path::new("/bin/true")).unwrap_err();
        assert!(matches!(error, ReportError::NoPdf), "{error}");
    }
}
