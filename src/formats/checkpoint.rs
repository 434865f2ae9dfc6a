//! C2SP tlog-checkpoint bodies inside C2SP signed notes (docs/FORMATS.md §13).
//!
//! A checkpoint body is `<origin>\n<tree size>\n<base64 root hash>\n`; a signed note is the body, a blank
//! line, then one line `— <key name> <base64(4-byte key id || signature)>` per signature (U+2014 dash).
//! Ed25519 note key ids are the first four bytes of SHA-256(`name` || 0x0A || 0x01 || public key).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha256};

use super::FormatError;

const DASH: &str = "\u{2014} ";
/// The signature type byte of Ed25519 note signatures (the log's checkpoint signature).
pub const ED25519_ALGORITHM: u8 = 0x01;

/// A tree head: which log, how many leaves, which root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root_hash: [u8; 32],
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: [u8; 4],
    pub signature: Vec<u8>,
}

fn invalid(what: &'static str, reason: impl Into<String>) -> FormatError {
    FormatError::MalformedDocument { what, reason: reason.into() }
}

impl Checkpoint {
    /// The exact bytes that are signed.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, BASE64.encode(self.root_hash))
    }

    /// Reads a body (extension lines after the third are allowed and ignored).
    pub fn parse_body(text: &str) -> Result<Self, FormatError> {
        let mut lines = text.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(invalid("checkpoint", "fewer than three lines"));
        };
        if origin.is_empty() || !text.ends_with('\n') {
            return Err(invalid("checkpoint", "empty origin or missing final newline"));
        }
        let size = size.parse().map_err(|_| invalid("checkpoint", format!("tree size {size:?} is not a number")))?;
        let root_hash = BASE64
            .decode(root)
            .ok()
            .and_then(|r| <[u8; 32]>::try_from(r).ok())
            .ok_or_else(|| invalid("checkpoint", "root hash is not 32 base64 bytes"))?;
        Ok(Self { origin: origin.to_owned(), size, root_hash })
    }
}

/// The note key id of an Ed25519 key named `name`.
pub fn ed25519_key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519_ALGORITHM]);
    h.update(public_key);
    h.finalize()[..4].try_into().expect("four bytes")
}

/// The verifier key string `name+hexid+base64(0x01||key)` that note tools (Go's sumdb/note) read.
pub fn ed25519_verifier_key(name: &str, public_key: &[u8; 32]) -> String {
    let mut typed = vec![ED25519_ALGORITHM];
    typed.extend_from_slice(public_key);
    format!("{name}+{}+{}", super::digest::hex_lower(&ed25519_key_id(name, public_key)), BASE64.encode(typed))
}

/// A signed note: `text` (which ends in a newline), a blank line, the signature lines.
pub fn format_note(text: &str, signatures: &[NoteSignature]) -> String {
    let mut note = format!("{text}\n");
    for s in signatures {
        let mut blob = s.key_id.to_vec();
        blob.extend_from_slice(&s.signature);
        note.push_str(&format!("{DASH}{} {}\n", s.name, BASE64.encode(blob)));
    }
    note
}

/// Splits a signed note into its text and signature lines.
pub fn parse_note(note: &str) -> Result<(String, Vec<NoteSignature>), FormatError> {
    let split = note.rfind("\n\n").ok_or_else(|| invalid("signed note", "no blank line before the signatures"))?;
    let (text, rest) = (&note[..=split], &note[split + 2..]);
    if !rest.ends_with('\n') {
        return Err(invalid("signed note", "signature block does not end in a newline"));
    }
    let mut signatures = Vec::new();
    for line in rest.lines() {
        let line =
            line.strip_prefix(DASH).ok_or_else(|| invalid("signed note", "a signature line must start with '— '"))?;
        let (name, blob) =
            line.split_once(' ').ok_or_else(|| invalid("signed note", "signature line without a space"))?;
        let blob = BASE64.decode(blob).map_err(|_| invalid("signed note", "signature is not base64"))?;
        if blob.len() < 5 {
            return Err(invalid("signed note", "signature shorter than a key id"));
        }
        let key_id = blob[..4].try_into().expect("four bytes");
        signatures.push(NoteSignature { name: name.to_owned(), key_id, signature: blob[4..].to_vec() });
    }
    if signatures.is_empty() {
        return Err(invalid("signed note", "no signatures"));
    }
    Ok((text.to_owned(), signatures))
}

/// Returns the note's text if a signature by the Ed25519 key `name` verifies over it.
pub fn verify_ed25519_note(note: &str, name: &str, public_key: &[u8; 32]) -> Result<String, FormatError> {
    let (text, signatures) = parse_note(note)?;
    let key_id = ed25519_key_id(name, public_key);
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(public_key).map_err(|e| invalid("note verifier key", e.to_string()))?;
    let verified = signatures.iter().filter(|s| s.name == name && s.key_id == key_id).any(|s| {
        ed25519_dalek::Signature::from_slice(&s.signature)
            .is_ok_and(|sig| key.verify_strict(text.as_bytes(), &sig).is_ok())
    });
    if verified { Ok(text) } else { Err(invalid("signed note", format!("no valid signature by {name}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reference note of Go's golang.org/x/mod/sumdb/note documentation and tests, read here as data:
    // an independent implementation's bytes that ours must verify and reproduce.
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const PETER_SIG: &str =
        "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=";

    fn peter_public_key() -> [u8; 32] {
        let typed = BASE64.decode(PETER_VKEY.rsplit('+').next().unwrap()).unwrap();
        assert_eq!(typed[0], ED25519_ALGORITHM);
        typed[1..].try_into().unwrap()
    }

    #[test]
    fn verifies_and_reproduces_the_go_sumdb_note_reference() {
        let key = peter_public_key();
        assert_eq!(ed25519_verifier_key("PeterNeumann", &key), PETER_VKEY);
        let note = format!("{PETER_TEXT}\n\u{2014} PeterNeumann {PETER_SIG}\n");
        assert_eq!(verify_ed25519_note(&note, "PeterNeumann", &key).unwrap(), PETER_TEXT);
        let (text, sigs) = parse_note(&note).unwrap();
        assert_eq!(format_note(&text, &sigs), note);
        let tampered = note.replacen("cryptography", "cryptographY", 1);
        assert!(verify_ed25519_note(&tampered, "PeterNeumann", &key).is_err());
        assert!(verify_ed25519_note(&note, "SomeoneElse", &key).is_err());
    }

    #[test]
    fn checkpoint_bodies_round_trip() {
        let cp = Checkpoint { origin: "notarium.example/log".into(), size: 42, root_hash: [7; 32] };
        let body = cp.body();
        assert_eq!(body, format!("notarium.example/log\n42\n{}\n", BASE64.encode([7u8; 32])));
        assert_eq!(Checkpoint::parse_body(&body).unwrap(), cp);
        for bad in ["notarium\n42\n", "notarium\nx\nAAAA\n", "notarium\n1\nAAAA\n", "\n1\nAAAA\n"] {
            assert!(Checkpoint::parse_body(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_checkpoint_signed_with_a_fresh_key_verifies_only_with_that_key() {
        use ed25519_dalek::Signer as _;
        let signing = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let public = signing.verifying_key().to_bytes();
        let body = Checkpoint { origin: "o".into(), size: 1, root_hash: [1; 32] }.body();
        let sig = NoteSignature {
            name: "o".into(),
            key_id: ed25519_key_id("o", &public),
            signature: signing.sign(body.as_bytes()).to_bytes().to_vec(),
        };
        let note = format_note(&body, &[sig]);
        assert_eq!(verify_ed25519_note(&note, "o", &public).unwrap(), body);
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        assert!(verify_ed25519_note(&note, "o", &other).is_err());
    }
}
