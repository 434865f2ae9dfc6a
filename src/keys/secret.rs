//! Where a secret (PIN, token, secret id, password) comes from: an environment variable or a file, never
//! inline. The value is read when it is needed, held in a buffer overwritten on drop, and never formatted
//! into a message.

use std::io::Read as _;
use std::path::PathBuf;

use zeroize::Zeroizing;

/// The name of a secret's home; `Debug` and errors show the name, not the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

impl SecretSource {
    /// From a pair of optional config fields (`*_env`, `*_file`); exactly one must be set.
    pub fn from_config(env: Option<&String>, file: Option<&PathBuf>, what: &str) -> Result<Self, String> {
        match (env, file) {
            (Some(var), None) => Ok(Self::Env(var.clone())),
            (None, Some(path)) => Ok(Self::File(path.clone())),
            (Some(_), Some(_)) => Err(format!("{what}: set either the _env or the _file field, not both")),
            (None, None) => Err(format!("{what}: set the _env or the _file field (secrets are never inline)")),
        }
    }

    /// Reads the secret, without a trailing newline. The error names where it looked, never what it found.
    pub fn read(&self) -> Result<Zeroizing<String>, String> {
        let mut secret = match self {
            Self::Env(var) => {
                Zeroizing::new(std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?)
            }
            Self::File(path) => {
                let unreadable =
                    |e: std::io::Error| format!("cannot read secret file {}: {}", path.display(), e.kind());
                let mut secret = Zeroizing::new(String::new());
                std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut secret)).map_err(unreadable)?;
                secret
            }
        };
        // Truncating in place: no trimmed copy is left behind unzeroized.
        let kept = secret.trim_end_matches(['\n', '\r']).len();
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
        assert_eq!(SecretSource::File(path.clone()).read().unwrap().as_str(), "1234");
        let missing = SecretSource::Env("NOTARIUM_TEST_SURELY_UNSET".into()).read().unwrap_err();
        assert!(missing.contains("NOTARIUM_TEST_SURELY_UNSET"));
        assert!(SecretSource::from_config(None, None, "pin").is_err());
        assert!(SecretSource::from_config(Some(&"A".into()), Some(&path), "pin").is_err());
    }
}
