//! Local files an operator names (configuration, policies, trust stores, certificate chains, keys, CLI inputs),
//! read within a cap: at most `limit + 1` bytes are ever read, and a file past the limit is refused, so a
//! mistaken path to a huge file, a device or a FIFO that never ends costs at most the cap in memory.
//!
//! Owns: opening and reading the file. Must not touch: what the file means or which limit suits it (callers
//! pick both, and name the setting in their own errors); remote answers (`http_body`).

use std::io::Read as _;
use std::path::Path;

/// One mebibyte, the unit most callers' limits are written in.
pub const MIB: u64 = 1 << 20;
/// The limit for a small file: a PEM key, a secret, a checkpoint note (each well under a kilobyte).
pub const SMALL_FILE_BYTES: u64 = 64 * 1024;

/// Why a capped read of a local file gave up; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum LocalFileError {
    #[error("cannot read {path}: {source}")]
    Unreadable { path: String, source: std::io::Error },
    #[error("{path} is larger than the limit of {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    #[error("{path} is not UTF-8 text")]
    NotText { path: String },
}

impl LocalFileError {
    /// What went wrong, without the file's name (for errors that name it already).
    pub fn reason(&self) -> String {
        match self {
            Self::Unreadable { source, .. } => source.to_string(),
            Self::TooLarge { limit, .. } => format!("larger than the limit of {limit} bytes"),
            Self::NotText { .. } => "not UTF-8 text".to_owned(),
        }
    }

    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Unreadable { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// The bytes of `path`, or [`LocalFileError::TooLarge`] when it holds more than `limit` bytes.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, LocalFileError> {
    let mut bytes = Vec::new();
    read_capped_into(path, limit, &mut bytes)?;
    Ok(bytes)
}

/// The text of `path` (UTF-8), or [`LocalFileError::TooLarge`] when it holds more than `limit` bytes.
pub fn read_text_capped(path: &Path, limit: u64) -> Result<String, LocalFileError> {
    String::from_utf8(read_capped(path, limit)?).map_err(|_| LocalFileError::NotText { path: shown(path) })
}

/// Appends the bytes of `path` to `buffer` (a caller's zeroizing buffer, for secrets); on a refusal what was
/// read stays in `buffer` for the caller to drop.
pub fn read_capped_into(path: &Path, limit: u64, buffer: &mut Vec<u8>) -> Result<(), LocalFileError> {
    let unreadable = |source| LocalFileError::Unreadable { path: shown(path), source };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let start = buffer.len();
    file.take(limit.saturating_add(1)).read_to_end(buffer).map_err(unreadable)?;
    if (buffer.len() - start) as u64 > limit {
        return Err(LocalFileError::TooLarge { path: shown(path), limit });
    }
    Ok(())
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// A sparse file of `len` bytes named `name` in a fresh directory: an oversized file for readers' tests.
#[cfg(test)]
pub(crate) fn sparse_file(name: &str, len: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join(name);
    std::fs::File::create(&path).and_then(|f| f.set_len(len)).expect("a sparse file");
    (dir, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_up_to_the_limit_is_read_whole() {
        let (_dir, path) = sparse_file("big", 64);
        assert_eq!(read_capped(&path, 64).unwrap(), vec![0; 64]);
        assert_eq!(read_text_capped(&path, 64).unwrap().len(), 64);
    }

    #[test]
    fn a_file_one_byte_over_the_limit_is_refused_naming_it_and_the_limit() {
        let (_dir, path) = sparse_file("big", 65);
        let error = read_capped(&path, 64).unwrap_err();
        assert!(matches!(error, LocalFileError::TooLarge { limit: 64, .. }), "{error}");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()) && message.contains("64 bytes"), "{message}");
        assert_eq!(error.reason(), "larger than the limit of 64 bytes");
    }

    #[test]
    fn an_endless_device_costs_at_most_the_limit() {
        let error = read_capped(Path::new("/dev/zero"), 4096).unwrap_err();
        assert!(error.to_string().contains("/dev/zero"), "{error}");
    }

    #[test]
    fn a_missing_or_binary_file_is_named() {
        let missing = read_capped(Path::new("/nonexistent/notarium"), 1).unwrap_err();
        assert!(missing.is_not_found() && missing.to_string().contains("/nonexistent/notarium"), "{missing}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("binary");
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        let error = read_text_capped(&path, 16).unwrap_err();
        assert!(matches!(error, LocalFileError::NotText { .. }) && error.to_string().contains("binary"), "{error}");
    }
}
