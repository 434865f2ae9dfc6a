//! Content digests (`sha256:<64 hex>`), the only algorithm notarium accepts for now.

use std::fmt;

use sha2::{Digest as _, Sha256};

use super::FormatError;

/// A validated `sha256:<hex>` content digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses and validates a digest string.
    pub fn parse(s: &str) -> Result<Self, FormatError> {
        let hex = s.strip_prefix("sha256:").ok_or_else(|| FormatError::MalformedDigest(s.to_owned()))?;
        let well_formed = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(FormatError::MalformedDigest(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    /// The digest of some bytes.
    pub fn of(bytes: &[u8]) -> Self {
        let mut text = String::with_capacity("sha256:".len() + 64);
        text.push_str("sha256:");
        text.push_str(&hex_lower(&Sha256::digest(bytes)));
        Self(text)
    }

    /// The 64 hex digits after `sha256:`.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lowercase hex of some bytes.
pub fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    hex
}

/// Bytes from hex (either case); `None` for odd lengths or non-hex characters.
pub fn hex_decode(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_sha256_with_64_lowercase_hex() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(Digest::parse(&good).unwrap().hex(), "a".repeat(64));
        for bad in [
            "sha256:abc".to_owned(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha512:{}", "a".repeat(64)),
            format!("sha256:{}", "g".repeat(64)),
            "a".repeat(64),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn hex_round_trips_and_refuses_odd_or_foreign_input() {
        assert_eq!(hex_lower(&[0, 0xab, 0xff, 0x10]), "00abff10");
        assert_eq!(hex_decode(&hex_lower(&[0, 0xab, 0xff])).unwrap(), [0, 0xab, 0xff]);
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(Digest::of(b"").as_str(), empty);
        assert_eq!(hex_decode("0A"), Some(vec![10]));
        for bad in ["abc", "zz", "é0"] {
            assert!(hex_decode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn digest_of_empty_json_object_is_the_oci_empty_descriptor() {
        assert_eq!(
            Digest::of(b"{}").as_str(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
