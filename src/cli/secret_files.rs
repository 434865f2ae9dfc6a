//! The start-up check of the files that hold secrets: a private key, PIN, token or password file that the
//! group or others may read is named in a warning (the server still starts: the operator may have reasons,
//! such as a group-readable mount).
//!
//! Owns: that warning. Must not touch: the files' contents (never read here) or their modes.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::config::Config;

/// Logs a warning for each secret file the configuration names that is readable by group or others.
pub(super) fn warn_about_readable_secret_files(config: &Config) {
    for (what, path) in config.secret_files() {
        if let Some(mode) = loose_mode(&path) {
            tracing::warn!(
                file = %path.display(),
                "{what} {} is open to group or others (mode {mode:o}): chmod 600 it",
                path.display()
            );
        }
    }
}

/// The permission bits of `path` when group or others may read or write it; `None` otherwise, or when it
/// cannot be read (using it reports that).
fn loose_mode(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o066 != 0).then_some(mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::Permissions;

    #[test]
    fn only_files_that_group_or_others_may_read_or_write_are_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.pem");
        std::fs::write(&file, "x").unwrap();
        for (mode, flagged) in
            [(0o600, false), (0o400, false), (0o700, false), (0o640, true), (0o604, true), (0o620, true)]
        {
            std::fs::set_permissions(&file, Permissions::from_mode(mode)).unwrap();
            assert_eq!(loose_mode(&file), flagged.then_some(mode), "{mode:o}");
        }
        assert_eq!(loose_mode(&dir.path().join("missing")), None);
    }
}
