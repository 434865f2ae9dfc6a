//! C2SP tlog-cosignature/v1 (Ed25519): witness cosignatures on checkpoints, their verifier keys, and the
//! k-of-n check an auditor applies to a cosigned checkpoint (docs/FORMATS.md §21).
//!
//! A cosignature is a signed-note signature line whose key id is the first four bytes of
//! SHA-256(`name` || 0x0A || 0x04 || public key) and whose signature is `u64 timestamp (big endian) ||
//! Ed25519 signature`, the signature taken over `cosignature/v1\ntime <timestamp>\n` followed by the
//! checkpoint body. A witness's verifier key is `name+hex(key id)+base64(0x04 || public key)`.
//!
//! Owns: these bytes, pure. Must not touch: private keys (the witness signs the [`message`] itself and
//! hands the signature to [`cosignature_line`]), the network, the clock (timestamps are passed in).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha256};

use super::FormatError;
use super::checkpoint::{Checkpoint, NoteSignature, parse_note};
use super::digest::{hex_decode, hex_lower};

/// The signature type byte of timestamped Ed25519 checkpoint cosignatures (C2SP signed-note).
pub const COSIGNATURE_V1_ALGORITHM: u8 = 0x04;

/// The largest timestamp a cosignature may carry (2^63 - 1).
const MAX_TIMESTAMP: u64 = i64::MAX as u64;

fn invalid(what: &'static str, reason: impl Into<String>) -> FormatError {
    FormatError::malformed(what, reason)
}

/// A witness as a verifier knows it: its name and Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessKey {
    pub name: String,
    pub public_key: [u8; 32],
}

impl WitnessKey {
    /// Reads a verifier key `name+hexid+base64(0x04||key)`; the key id must match the name and key.
    pub fn parse_vkey(vkey: &str) -> Result<Self, FormatError> {
        let (name, public_key) = parse_ed25519_vkey(vkey, COSIGNATURE_V1_ALGORITHM, "witness verifier key")?;
        Ok(Self { name, public_key })
    }

    /// The note key id: SHA-256(name || 0x0A || 0x04 || key)[:4].
    pub fn key_id(&self) -> [u8; 4] {
        typed_key_id(&self.name, COSIGNATURE_V1_ALGORITHM, &self.public_key)
    }

    /// The verifier key string.
    pub fn vkey(&self) -> String {
        let mut typed = vec![COSIGNATURE_V1_ALGORITHM];
        typed.extend_from_slice(&self.public_key);
        format!("{}+{}+{}", self.name, hex_lower(&self.key_id()), BASE64.encode(typed))
    }

    /// The timestamp of `signature` if it is this witness's valid cosignature on checkpoint `body`.
    pub fn verify(&self, body: &str, signature: &NoteSignature) -> Result<u64, FormatError> {
        if signature.name != self.name || signature.key_id != self.key_id() {
            return Err(invalid("cosignature", format!("not a signature line of witness {}", self.name)));
        }
        let (timestamp, ed25519) = split_timestamped(&signature.signature)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&self.public_key)
            .map_err(|_| invalid("witness verifier key", "not an Ed25519 point"))?;
        let ed25519 = ed25519_dalek::Signature::from_bytes(&ed25519);
        key.verify_strict(message(body, timestamp).as_bytes(), &ed25519)
            .map_err(|_| invalid("cosignature", format!("the signature of witness {} does not verify", self.name)))?;
        Ok(timestamp)
    }
}

/// SHA-256(name || 0x0A || algorithm || key)[:4], the key id of signed notes.
pub fn typed_key_id(name: &str, algorithm: u8, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', algorithm]);
    h.update(public_key);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Reads a verifier key `name+hexid+base64(algorithm||key)` of a 32-byte key of signature type
/// `algorithm`; the key id must match the name and key.
pub fn parse_ed25519_vkey(vkey: &str, algorithm: u8, what: &'static str) -> Result<(String, [u8; 32]), FormatError> {
    // Names hold no '+' and ids are hex, but base64 may hold '+': split from the left.
    let mut parts = vkey.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid(what, "expected name+keyid+base64key"));
    };
    if !is_key_name(name) {
        return Err(invalid(what, "the name is empty or holds a space or '+'"));
    }
    let typed = BASE64.decode(key).map_err(|_| invalid(what, "the key is not base64"))?;
    let [found, rest @ ..] = typed.as_slice() else {
        return Err(invalid(what, "the key is empty"));
    };
    if *found != algorithm {
        return Err(invalid(what, format!("signature type 0x{found:02x} is not 0x{algorithm:02x}")));
    }
    let public_key: [u8; 32] = rest.try_into().map_err(|_| invalid(what, "an Ed25519 key is 32 bytes"))?;
    if hex_decode(id).as_deref() != Some(typed_key_id(name, algorithm, &public_key).as_slice()) {
        return Err(invalid(what, "the key id does not match the name and key"));
    }
    Ok((name.to_owned(), public_key))
}

/// Key names of signed notes: non-empty, no Unicode spaces, no '+'.
pub fn is_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The bytes a witness signs for checkpoint `body` at `timestamp` (Unix seconds).
pub fn message(body: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{body}")
}

/// The note signature a witness named by `witness` adds: key id, then `timestamp || signature`.
pub fn cosignature_line(witness: &WitnessKey, timestamp: u64, signature: &[u8; 64]) -> NoteSignature {
    let mut blob = timestamp.to_be_bytes().to_vec();
    blob.extend_from_slice(signature);
    NoteSignature { name: witness.name.clone(), key_id: witness.key_id(), signature: blob }
}

fn split_timestamped(blob: &[u8]) -> Result<(u64, [u8; 64]), FormatError> {
    let (Some(time), Some(signature)) = (blob.get(..8), blob.get(8..)) else {
        return Err(invalid("cosignature", "shorter than a timestamp"));
    };
    let signature: [u8; 64] =
        signature.try_into().map_err(|_| invalid("cosignature", "not a timestamp and a 64-byte Ed25519 signature"))?;
    let mut be = [0; 8];
    be.copy_from_slice(time);
    let timestamp = u64::from_be_bytes(be);
    if timestamp > MAX_TIMESTAMP {
        return Err(invalid("cosignature", "timestamp above 2^63 - 1"));
    }
    Ok((timestamp, signature))
}

/// One witness that validly cosigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    pub name: String,
    pub vkey: String,
    /// When the witness cosigned (Unix seconds, the witness's clock).
    pub timestamp: u64,
}

/// Which trusted witnesses cosigned a checkpoint, and whether `required` of them did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessReport {
    /// The checkpoint that was cosigned.
    pub checkpoint: Checkpoint,
    pub cosigned: Vec<Cosigned>,
    /// Trusted witnesses with no valid cosignature (their names).
    pub missing: Vec<String>,
    /// Trusted witnesses whose name and key id are on a line that does not verify (a malformed note).
    pub invalid: Vec<String>,
    pub required: usize,
    /// At least `required` distinct trusted witnesses cosigned, and no line of a trusted witness is invalid.
    pub satisfied: bool,
}

/// Checks a cosigned checkpoint note against the trusted `witnesses`, `required` of which must have
/// cosigned (k of n). Lines of other keys (the log's own signature among them) are ignored; the log's
/// signature is the caller's to check (`checkpoint::verify_ed25519_note`). A witness listed twice counts
/// once.
pub fn check_witnesses(note: &str, witnesses: &[WitnessKey], required: usize) -> Result<WitnessReport, FormatError> {
    let (body, signatures) = parse_note(note)?;
    let checkpoint = Checkpoint::parse_body(&body)?;
    let mut report = WitnessReport {
        checkpoint,
        cosigned: Vec::new(),
        missing: Vec::new(),
        invalid: Vec::new(),
        required,
        satisfied: false,
    };
    let mut seen = Vec::new();
    for witness in witnesses {
        if seen.contains(&witness) {
            continue;
        }
        seen.push(witness);
        let key_id = witness.key_id();
        let lines: Vec<_> = signatures.iter().filter(|s| s.name == witness.name && s.key_id == key_id).collect();
        let verified: Vec<_> = lines.iter().map(|line| witness.verify(&body, line)).collect();
        if verified.iter().any(Result::is_err) {
            report.invalid.push(witness.name.clone());
        }
        match verified.into_iter().filter_map(Result::ok).max() {
            Some(timestamp) => {
                report.cosigned.push(Cosigned { name: witness.name.clone(), vkey: witness.vkey(), timestamp });
            }
            None => report.missing.push(witness.name.clone()),
        }
    }
    report.satisfied = report.cosigned.len() >= required && report.invalid.is_empty();
    Ok(report)
}

/// The cosignature lines of `answer` (a witness's add-checkpoint answer: signature lines only) that are
/// `witness`'s valid cosignatures on `body`, formatted as note lines; other keys' lines are dropped.
pub fn verified_lines(body: &str, answer: &str, witness: &WitnessKey) -> Result<Vec<(u64, String)>, FormatError> {
    let (_, signatures) = parse_note(&format!("{body}\n{answer}"))?;
    let key_id = witness.key_id();
    let mut lines = Vec::new();
    for signature in signatures.iter().filter(|s| s.name == witness.name && s.key_id == key_id) {
        let timestamp = witness.verify(body, signature)?;
        lines.push((timestamp, signature_line(signature)));
    }
    Ok(lines)
}

/// One note signature as its line (with the final newline).
pub fn signature_line(signature: &NoteSignature) -> String {
    let mut blob = signature.key_id.to_vec();
    blob.extend_from_slice(&signature.signature);
    format!("\u{2014} {} {}\n", signature.name, BASE64.encode(blob))
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signer as _;

    use super::*;
    use crate::formats::checkpoint::{ed25519_key_id, format_note};

    fn witness(seed: u8, name: &str) -> (ed25519_dalek::SigningKey, WitnessKey) {
        let signing = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let key = WitnessKey { name: name.into(), public_key: signing.verifying_key().to_bytes() };
        (signing, key)
    }

    fn cosign(signing: &ed25519_dalek::SigningKey, key: &WitnessKey, body: &str, timestamp: u64) -> NoteSignature {
        let signature = signing.sign(message(body, timestamp).as_bytes()).to_bytes();
        cosignature_line(key, timestamp, &signature)
    }

    fn log_signed(body: &str) -> NoteSignature {
        let log = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        NoteSignature {
            name: "example.com/log".into(),
            key_id: ed25519_key_id("example.com/log", &log.verifying_key().to_bytes()),
            signature: log.sign(body.as_bytes()).to_bytes().to_vec(),
        }
    }

    fn body(size: u64) -> String {
        Checkpoint { origin: "example.com/log".into(), size, root_hash: [size as u8; 32] }.body()
    }

    #[test]
    fn the_signed_message_is_the_header_the_time_line_and_the_body() {
        // The example of C2SP tlog-cosignature, "Ed25519 signed message".
        let body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        assert_eq!(
            message(body, 1_679_315_147),
            "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n\
             CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
    }

    #[test]
    fn the_specification_example_line_carries_its_timestamp_after_the_key_id() {
        // The cosigned checkpoint of C2SP tlog-cosignature: its witness line holds key id, then the
        // big-endian timestamp of the example message (1679315147), then 64 signature bytes.
        let blob = BASE64
            .decode(
                "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==",
            )
            .unwrap();
        assert_eq!(blob.len(), 4 + 8 + 64);
        let (timestamp, _) = split_timestamped(&blob[4..]).unwrap();
        assert_eq!(timestamp, 1_679_315_147);
    }

    #[test]
    fn key_ids_and_vkeys_agree_with_the_signed_note_crate() {
        let (_, key) = witness(7, "witness.example/w1");
        let mut typed = vec![COSIGNATURE_V1_ALGORITHM];
        typed.extend_from_slice(&key.public_key);
        assert_eq!(signed_note::key_id(&key.name, &typed).to_be_bytes(), key.key_id());
        assert_eq!(WitnessKey::parse_vkey(&key.vkey()).unwrap(), key);
        // The log's own algorithm (0x01) gives another id: a log key cannot pose as a witness key.
        assert_ne!(ed25519_key_id(&key.name, &key.public_key), key.key_id());
    }

    #[test]
    fn a_vkey_whose_base64_holds_a_plus_parses() {
        let key = (0u8..=255)
            .map(|seed| witness(seed, "w").1)
            .find(|key| key.vkey().splitn(3, '+').nth(2).is_some_and(|k| k.contains('+')))
            .unwrap();
        assert_eq!(WitnessKey::parse_vkey(&key.vkey()).unwrap(), key);
    }

    #[test]
    fn bad_vkeys_are_refused() {
        let (_, key) = witness(7, "w");
        let good = key.vkey();
        let ed25519_vkey = crate::formats::checkpoint::ed25519_verifier_key("w", &key.public_key);
        let wrong_id = format!("w+00000000+{}", good.splitn(3, '+').nth(2).unwrap());
        let renamed = good.replacen("w+", "v+", 1);
        for bad in [ed25519_vkey.as_str(), &wrong_id, &renamed, "w+abc", "", "a b+00000000+BA=="] {
            assert!(WitnessKey::parse_vkey(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_cosigned_note_stays_a_signed_note_the_signed_note_crate_reads() {
        let (signing, key) = witness(7, "witness.example/w1");
        let body = body(5);
        let note = format_note(&body, &[log_signed(&body), cosign(&signing, &key, &body, 1_700_000_000)]);
        let parsed = signed_note::Note::from_bytes(note.as_bytes()).unwrap();
        assert_eq!(parsed.text(), body.as_bytes());
        assert_eq!(parsed.to_bytes(), note.as_bytes());
    }

    #[test]
    fn k_of_n_counts_only_valid_cosignatures_of_trusted_witnesses() {
        let (s1, w1) = witness(7, "w1");
        let (s2, w2) = witness(8, "w2");
        let (_, w3) = witness(9, "w3");
        let (hostile, _) = witness(10, "w1");
        let body = body(5);
        let mut lines = vec![log_signed(&body), cosign(&s1, &w1, &body, 10), cosign(&s2, &w2, &body, 11)];
        let note = format_note(&body, &lines);
        let trusted = [w1.clone(), w2.clone(), w3, w1.clone()];
        let report = check_witnesses(&note, &trusted, 2).unwrap();
        assert!(report.satisfied);
        assert_eq!(
            report.cosigned.iter().map(|c| (c.name.as_str(), c.timestamp)).collect::<Vec<_>>(),
            [("w1", 10), ("w2", 11)]
        );
        assert_eq!(report.missing, ["w3"]);
        assert!(!check_witnesses(&note, &trusted, 3).unwrap().satisfied);

        // A line under w2's name and id signed by another key: named invalid, the report unsatisfied.
        let mut forged = cosign(&hostile, &w1, &body, 12);
        forged.name = "w2".into();
        forged.key_id = w2.key_id();
        lines[2] = forged;
        let report = check_witnesses(&format_note(&body, &lines), &trusted, 1).unwrap();
        assert_eq!(report.invalid, ["w2"]);
        assert!(!report.satisfied);

        // A cosignature over another checkpoint does not count for this one.
        let other = cosign(&s1, &w1, &self::body(6), 10);
        let report = check_witnesses(&format_note(&body, &[log_signed(&body), other]), &[w1], 1).unwrap();
        assert_eq!(report.invalid, ["w1"]);
        assert!(report.cosigned.is_empty());
    }

    #[test]
    fn a_changed_timestamp_breaks_the_cosignature() {
        let (signing, key) = witness(7, "w1");
        let body = body(3);
        let mut line = cosign(&signing, &key, &body, 100);
        assert_eq!(key.verify(&body, &line).unwrap(), 100);
        line.signature[7] ^= 1;
        assert!(key.verify(&body, &line).is_err());
    }

    #[test]
    fn only_the_configured_witnesses_lines_are_kept_from_an_answer() {
        let (signing, key) = witness(7, "w1");
        let (other_signing, other) = witness(8, "w2");
        let body = body(3);
        let mine = signature_line(&cosign(&signing, &key, &body, 100));
        let theirs = signature_line(&cosign(&other_signing, &other, &body, 100));
        let kept = verified_lines(&body, &format!("{theirs}{mine}"), &key).unwrap();
        assert_eq!(kept, [(100, mine.clone())]);
        // A line under the witness's name and id that does not verify fails the whole answer.
        let (hostile, _) = witness(9, "w1");
        let forged = signature_line(&cosign(&hostile, &key, &body, 100));
        assert!(verified_lines(&body, &format!("{mine}{forged}"), &key).is_err());
        assert!(verified_lines(&body, "not a note line\n", &key).is_err());
    }
}
