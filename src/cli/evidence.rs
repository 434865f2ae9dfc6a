//! `notarium evidence export` (through a server: `GET /v1/evidence`) and `notarium evidence verify` (offline:
//! no server, no database). A pack is a zip archive or the directory it unpacks to; either is read member by
//! member within each member's limit (docs/FORMATS.md §23), and an archive holding anything but the known
//! members (another name, a path, `..`) is refused before anything is read.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use futures_util::StreamExt;

use super::{CliError, Output};
use crate::keys::PublicKey;
use crate::register::evidence::{
    MEMBERS, PackFailure, PackFiles, PackVerified, REPORT_HTML, REPORT_PDF, WitnessPolicy, member_limit, verify_pack,
};
use crate::register::verify::TrustedCheckpoint;

/// What to export and where.
pub(super) struct ExportArgs<'a> {
    pub server: &'a str,
    pub period: super::log::Period,
    pub since: Option<&'a Path>,
    /// A `.zip` file, or a directory to unpack the pack into.
    pub target: &'a Path,
    /// The chromium binary to print `report.html` to `report.pdf` with, added to the pack.
    pub pdf_with: Option<&'a Path>,
}

fn read_small(path: &Path) -> Result<String, CliError> {
    crate::local_file::read_text_capped(path, crate::local_file::SMALL_FILE_BYTES)
        .map_err(|e| CliError::Usage(e.to_string()))
}

fn is_zip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

pub(super) async fn export(args: &ExportArgs<'_>, output: Output) -> Result<(), CliError> {
    let mut query = args.period.query();
    if let Some(since) = args.since {
        query.push(("since", super::log::checkpoint_size(since)?.to_string()));
    }
    let server = args.server;
    let unreachable = |e: reqwest::Error| CliError::Unavailable(format!("cannot reach notarium at {server}: {e}"));
    let url = format!("{}/v1/evidence", server.trim_end_matches('/'));
    let request = super::client::with_token(reqwest::Client::new().get(url).query(&query));
    let response = request.send().await.map_err(unreachable)?;
    let status = response.status().as_u16();
    if status >= 400 {
        return Err(CliError::from_problem(status, &response.text().await.map_err(unreachable)?));
    }
    let target = args.target;
    let cannot_write = |e: std::io::Error| CliError::Usage(format!("cannot write {}: {e}", target.display()));
    let mut archive = match is_zip(target) {
        true => File::options().read(true).write(true).create(true).truncate(true).open(target),
        false => tempfile::tempfile(),
    }
    .map_err(cannot_write)?;
    let mut body = response.bytes_stream();
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| CliError::Unavailable(format!("the evidence pack broke off: {e}")))?;
        archive.write_all(&chunk).map_err(cannot_write)?;
        bytes += chunk.len() as u64;
    }
    if is_zip(target) {
        if let Some(chromium) = args.pdf_with {
            add_pdf(archive, chromium)?;
        }
    } else {
        unpack(archive, target)?;
        if let Some(chromium) = args.pdf_with {
            let html = crate::local_file::read_text_capped(&target.join(REPORT_HTML), 1 << 32)
                .map_err(|e| CliError::Unavailable(format!("the pack has no report to print: {}", e.reason())))?;
            std::fs::write(target.join(REPORT_PDF), print(&html, chromium)?).map_err(cannot_write)?;
        }
    }
    let summary = serde_json::json!({"written": target, "bytes": bytes});
    output.print(&summary, || format!("wrote the evidence pack ({bytes} bytes) to {}", target.display()));
    Ok(())
}

/// `html` printed to PDF by `chromium`.
fn print(html: &str, chromium: &Path) -> Result<Vec<u8>, CliError> {
    crate::report::render_pdf(html, chromium).map_err(|e| CliError::Unavailable(format!("report.pdf: {e}")))
}

/// Adds `report.pdf`, printed from the archive's `report.html`, to the archive.
fn add_pdf(archive: File, chromium: &Path) -> Result<(), CliError> {
    let broken = |e: &dyn std::fmt::Display| CliError::Unavailable(format!("the server's pack: {e}"));
    let mut pack = ZipPack::open(archive.try_clone().map_err(|e| broken(&e))?).map_err(|e| broken(&e))?;
    let mut html = String::new();
    let present = pack.read(REPORT_HTML, &mut |reader| {
        reader.read_to_string(&mut html).map(|_| ()).map_err(|e| PackFailure::new(REPORT_HTML, 0, e.to_string()))
    });
    if !present.map_err(|e| broken(&e))? {
        return Err(CliError::Unavailable("the pack has no report.html to print".into()));
    }
    let pdf = print(&html, chromium)?;
    let mut zip = zip::ZipWriter::new_append(archive).map_err(|e| broken(&e))?;
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(REPORT_PDF, options).map_err(|e| broken(&e))?;
    zip.write_all(&pdf).map_err(|e| broken(&e))?;
    zip.finish().map_err(|e| broken(&e))?;
    Ok(())
}

/// Unpacks the archive the server sent into `dir` (created; it must not hold a pack already), member by
/// member within the limits.
fn unpack(archive: File, dir: &Path) -> Result<(), CliError> {
    let cannot = |e: std::io::Error| CliError::Usage(format!("cannot write {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(cannot)?;
    let mut pack = ZipPack::open(archive).map_err(|e| CliError::Unavailable(format!("the server's pack: {e}")))?;
    for (name, _) in MEMBERS {
        let path = dir.join(name);
        let mut copy = |reader: &mut (dyn BufRead + Send)| {
            let mut file = File::create(&path).map_err(|e| PackFailure::new(name, 0, e.to_string()))?;
            std::io::copy(reader, &mut file).map_err(|e| PackFailure::new(name, 0, e.to_string()))?;
            Ok(())
        };
        pack.read(name, &mut copy).map_err(|e| CliError::Unavailable(format!("the server's pack: {e}")))?;
    }
    Ok(())
}

/// A reader that fails once more than `left` bytes come through.
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            let message = format!("larger than its limit of {} bytes", self.limit);
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, message));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn capped<R: Read>(inner: R, limit: u64) -> BufReader<Capped<R>> {
    BufReader::with_capacity(1 << 20, Capped { inner, left: limit, limit })
}

/// A pack unpacked in a directory: only the known member names are opened, and only as regular files.
struct DirPack {
    dir: PathBuf,
}

impl PackFiles for DirPack {
    fn read(
        &mut self,
        name: &str,
        visit: &mut dyn FnMut(&mut (dyn BufRead + Send)) -> Result<(), PackFailure>,
    ) -> Result<bool, PackFailure> {
        let limit = member_limit(name).ok_or_else(|| PackFailure::new(name, 0, "not a member of a pack"))?;
        let path = self.dir.join(name);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(PackFailure::new(name, 0, format!("cannot read: {e}"))),
            Ok(meta) if !meta.is_file() => return Err(PackFailure::new(name, 0, "not a regular file")),
            Ok(_) => {}
        }
        let file = File::open(&path).map_err(|e| PackFailure::new(name, 0, format!("cannot read: {e}")))?;
        visit(&mut capped(file, limit))?;
        Ok(true)
    }
}

/// A pack as a zip archive: at most one entry per known member name, nothing else.
struct ZipPack {
    archive: zip::ZipArchive<File>,
}

impl ZipPack {
    fn open(file: File) -> Result<Self, PackFailure> {
        let archive = zip::ZipArchive::new(file).map_err(|e| PackFailure::new("the archive", 0, e.to_string()))?;
        if archive.len() > MEMBERS.len() {
            let reason = format!("{} members; a pack has at most {}", archive.len(), MEMBERS.len());
            return Err(PackFailure::new("the archive", 0, reason));
        }
        for name in archive.file_names() {
            if member_limit(name).is_none() {
                let shown: String = name.chars().take(64).collect();
                return Err(PackFailure::new("the archive", 0, format!("{shown:?} is not a member of a pack")));
            }
        }
        Ok(Self { archive })
    }
}

impl PackFiles for ZipPack {
    fn read(
        &mut self,
        name: &str,
        visit: &mut dyn FnMut(&mut (dyn BufRead + Send)) -> Result<(), PackFailure>,
    ) -> Result<bool, PackFailure> {
        let limit = member_limit(name).ok_or_else(|| PackFailure::new(name, 0, "not a member of a pack"))?;
        let member = match self.archive.by_name(name) {
            Ok(member) => member,
            Err(zip::result::ZipError::FileNotFound) => return Ok(false),
            Err(e) => return Err(PackFailure::new(name, 0, e.to_string())),
        };
        if member.size() > limit {
            return Err(PackFailure::new(
                name,
                0,
                format!("{} bytes, larger than its limit of {limit}", member.size()),
            ));
        }
        visit(&mut capped(member, limit))?;
        Ok(true)
    }
}

/// What `evidence verify` checks against.
pub(super) struct VerifyArgs<'a> {
    pub pack: &'a Path,
    pub log_key: &'a Path,
    pub since: Option<&'a Path>,
    pub witnesses: WitnessPolicy,
}

pub(super) fn verify(args: &VerifyArgs<'_>, output: Output) -> Result<(), CliError> {
    let key = PublicKey::from_pem(&read_small(args.log_key)?)
        .ok()
        .and_then(|k| k.ed25519_bytes())
        .ok_or_else(|| CliError::Usage(format!("{} is not an Ed25519 public key", args.log_key.display())))?;
    let earlier = args.since.map(read_small).transpose()?;
    let trusted = earlier.as_deref().map(|note| TrustedCheckpoint { note });
    let pack = args.pack;
    let outcome = if pack.is_dir() {
        verify_pack(&mut DirPack { dir: pack.to_owned() }, &key, trusted, &args.witnesses)
    } else {
        let file = File::open(pack).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", pack.display())))?;
        ZipPack::open(file).and_then(|mut zip| verify_pack(&mut zip, &key, trusted, &args.witnesses))
    };
    match outcome {
        Ok(v) => {
            output.print(&summary(&v), || text(&v));
            Ok(())
        }
        Err(failure) => {
            if output == Output::Json {
                let json = serde_json::json!({"verified": false, "file": failure.file, "line": failure.line, "reason": failure.reason});
                println!("{json}");
            }
            Err(CliError::Refused(format!("{}: {failure}", pack.display())))
        }
    }
}

fn summary(v: &PackVerified) -> serde_json::Value {
    let e = &v.export;
    serde_json::json!({
        "verified": true,
        "origin": e.origin,
        "tree_size": e.tree_size,
        "first_index": e.first_index,
        "entries": e.entries,
        "start_size": v.start_size,
        "consistency": match e.extends_size {
            Some(from) => serde_json::json!({"checked": true, "from_size": from}),
            None => serde_json::json!({"checked": false}),
        },
        "key_versions": v.key_versions,
        "policy_versions": v.policy_versions,
        "policies_without_content": v.policies_without_content,
        "signatures_checked": v.signatures_checked,
        "signatures_not_recheckable": v.signatures_not_recheckable,
        "witnesses_cosigned": v.witnesses_cosigned,
    })
}

fn text(v: &PackVerified) -> String {
    let e = &v.export;
    let consistency = match e.extends_size {
        Some(from) => {
            format!("consistency: checked: the log at size {} extends the saved checkpoint at size {from}", e.tree_size)
        }
        None => "consistency: NOT checked: pass --since SAVED-CHECKPOINT to prove no history was rewritten".to_owned(),
    };
    let witnesses = match v.witnesses_cosigned {
        Some(n) => format!("\nwitnesses: {n} of the given witnesses cosigned the checkpoint"),
        None => String::new(),
    };
    format!(
        "verified {} entries from index {}: each is in the tree of the checkpoint ({} at size {}, signature valid)\n\
         the period's start (size {}) is a prefix of its end\n{consistency}\n\
         {} key versions and {} policy versions proved ({} policy entries predate recorded content)\n\
         {} signatures checked again over their signed bytes; {} not re-checkable (recorded before signed bytes were kept){witnesses}",
        e.entries,
        e.first_index,
        e.origin,
        e.tree_size,
        v.start_size,
        v.key_versions,
        v.policy_versions,
        v.policies_without_content,
        v.signatures_checked,
        v.signatures_not_recheckable,
    )
}
