//! Where a secret (PIN, token, secret id, password, shared secret) comes from: an environment variable or
//! a file, never inline. Every `<name>_env` / `<name>_file` pair of the configuration becomes one
//! [`SecretRef`] by one rule ([`SecretRef::from_pair`]). The value is read when it is needed, held in a buffer overwritten on drop, and never formatted
//! into a message.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// The name of a secret's home; `Debug` and errors show the name, not the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
}

impl SecretRef {
    /// The one rule for a secret named in `table` by a `<name>_env` / `<name>_file` pair of settings:
    /// neither names no secret, one names it, and both is a configuration error naming the table.
    pub fn from_pair(table: &str, name: &str, env: Option<&str>, file: Option<&Path>) -> Result<Option<Self>, String> {
        match (env, file) {
            (None, None) => Ok(None),
            (Some(var), None) => Ok(Some(Self::Env(var.to_owned()))),
            (None, Some(path)) => Ok(Some(Self::File(path.to_owned()))),
            (Some(_), Some(_)) => Err(format!("{table}: set {name}_env or {name}_file, not both")),
        }
    }

    /// Why a secret that must be given is missing: neither `<name>_env` nor `<name>_file` is set.
    pub fn missing(name: &str) -> String {
        format!("{name}: set {name}_env or {name}_file (secrets are never inline)")
    }

    /// Reads the secret once, without its trailing newlines (`\n`, `\r`). The error names where it
    /// looked, never what it found.
    pub fn read(&self) -> Result<Zeroizing<String>, String> {
        let mut secret = match self {
            Self::Env(var) => {
                Zeroizing::new(std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?)
            }
            Self::File(path) => {
                let unreadable = |reason: String| format!("cannot read secret file {}: {reason}", path.display());
                let mut bytes = Zeroizing::new(Vec::new());
                crate::local_file::read_capped_into(path, crate::local_file::SMALL_FILE_BYTES, &mut bytes)
                    .map_err(|e| unreadable(e.reason()))?;
                // The buffer moves into the String (no copy); a non-UTF-8 one is zeroed as `bytes` drops.
                match String::from_utf8(std::mem::take(&mut *bytes)) {
                    Ok(text) => Zeroizing::new(text),
                    Err(e) => {
                        *bytes = e.into_bytes();
                        return Err(unreadable("not UTF-8 text".into()));
                    }
                }
            }
        };
        // Truncating in place: no trimmed copy is left behind unzeroized.
        let kept = secret.trim_end_matches(['\r', '\n']).len();
        secret.truncate(kept);
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_secret_is_read_without_its_newline_and_errors_never_show_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "1234\n").unwrap();
        assert_eq!(SecretRef::File(path).read().unwrap().as_str(), "1234");
        let missing = SecretRef::Env("NOTARIUM_TEST_SURELY_UNSET".into()).read().unwrap_err();
        assert!(missing.contains("NOTARIUM_TEST_SURELY_UNSET"));
    }

    #[test]
    fn a_secret_file_past_the_small_file_limit_is_refused_naming_it() {
        let (_dir, path) = crate::local_file::sparse_file("pin", crate::local_file::SMALL_FILE_BYTES + 1);
        let error = SecretRef::File(path.clone()).read().unwrap_err();
        assert!(error.contains(&path.display().to_string()) && error.contains("larger than the limit"), "{error}");
    }

    #[test]
    fn trailing_newlines_are_trimmed_and_other_whitespace_kept() {
        let dir = tempfile::tempdir().unwrap();
        for (written, read) in
            [("s3cret", "s3cret"), ("s3cret\r\n", "s3cret"), ("s3cret\n\n", "s3cret"), (" s \n", " s ")]
        {
            let path = dir.path().join("secret");
            std::fs::write(&path, written).unwrap();
            assert_eq!(SecretRef::File(path).read().unwrap().as_str(), read, "{written:?}");
        }
    }

    #[test]
    fn a_pair_names_one_secret_at_most_and_both_is_an_error_naming_the_table() {
        let path = Path::new("/run/pin");
        assert_eq!(SecretRef::from_pair("[events]", "pin", None, None), Ok(None));
        assert_eq!(SecretRef::from_pair("[events]", "pin", Some("PIN"), None), Ok(Some(SecretRef::Env("PIN".into()))));
        assert_eq!(SecretRef::from_pair("[events]", "pin", None, Some(path)), Ok(Some(SecretRef::File(path.into()))));
        let both = SecretRef::from_pair("[[keys]] \"hsm\"", "pin", Some("PIN"), Some(path)).unwrap_err();
        assert_eq!(both, "[[keys]] \"hsm\": set pin_env or pin_file, not both");
        assert!(SecretRef::missing("pin").contains("pin_env or pin_file"));
    }
}
