//! C2SP tlog-witness `add-checkpoint`: the request body (`old <size>`, up to 63 base64 consistency-proof
//! lines, a blank line, the signed checkpoint), the 409 answer (`<size>\n`, `text/x.tlog.size`), and the
//! checks a witness makes before it cosigns, each with the refusal the specification gives it
//! (docs/FORMATS.md §21).
//!
//! Owns: these bytes and checks, pure (the witness's stored state is passed in). Must not touch: storage,
//! HTTP status codes (the witness server maps [`Refusal`]), private keys.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::FormatError;
use super::checkpoint::{Checkpoint, ED25519_ALGORITHM, parse_note};
use super::cosignature::{parse_ed25519_vkey, typed_key_id};
use crate::merkle::{Hash, empty_root, verify_consistency};

/// At most this many consistency proof lines (the specification's limit).
pub const MAX_PROOF_LINES: usize = 63;

/// The content type of a witness's 409 answer.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// One add-checkpoint request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub note: String,
}

fn malformed(reason: impl Into<String>) -> FormatError {
    FormatError::malformed("add-checkpoint request", reason)
}

impl AddCheckpoint {
    /// The request body.
    pub fn to_body(&self) -> String {
        let mut body = format!("old {}\n", self.old_size);
        for hash in &self.proof {
            body.push_str(&BASE64.encode(hash));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(&self.note);
        body
    }

    /// Reads a request body strictly: a canonical decimal old size, at most 63 proof lines of 32 bytes.
    pub fn parse(body: &str) -> Result<Self, FormatError> {
        let (head, note) = body.split_once("\n\n").ok_or_else(|| malformed("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines.next().and_then(|l| l.strip_prefix("old ")).ok_or_else(|| malformed("no `old` line"))?;
        let old_size = parse_decimal(old).ok_or_else(|| malformed("the old size is not a canonical decimal"))?;
        let proof = lines
            .map(|line| {
                BASE64
                    .decode(line)
                    .ok()
                    .and_then(|h| Hash::try_from(h).ok())
                    .ok_or_else(|| malformed("a proof line is not a base64 hash"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(malformed(format!("more than {MAX_PROOF_LINES} proof lines")));
        }
        Ok(Self { old_size, proof, note: note.to_owned() })
    }
}

/// ASCII decimal with no leading zeroes (`0` alone for zero).
pub fn parse_decimal(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

/// The tree size in a 409 answer (`<size>\n`).
pub fn parse_size_answer(text: &str) -> Option<u64> {
    text.strip_suffix('\n').and_then(parse_decimal)
}

/// A log as a witness trusts it: its origin and the Ed25519 key (and key name) that signs its checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedLog {
    pub origin: String,
    pub key_name: String,
    pub public_key: [u8; 32],
}

impl TrustedLog {
    /// `ORIGIN=VKEY`, the vkey an Ed25519 note key `name+hexid+base64(0x01||key)`.
    pub fn parse(spec: &str) -> Result<Self, FormatError> {
        let (origin, vkey) = spec
            .split_once('=')
            .filter(|(origin, _)| !origin.is_empty())
            .ok_or_else(|| FormatError::malformed("log", "expected ORIGIN=VKEY"))?;
        let (key_name, public_key) = parse_ed25519_vkey(vkey, ED25519_ALGORITHM, "log verifier key")?;
        Ok(Self { origin: origin.to_owned(), key_name, public_key })
    }
}

/// Why a witness does not cosign, as the specification names the cases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: the request does not parse, or the old size is above the checkpoint's.
    #[error("bad request: {0}")]
    Malformed(String),
    /// 404: no trusted log has this origin.
    #[error("unknown log origin")]
    UnknownOrigin,
    /// 403: no valid signature of the log's key, or a line of that key that does not verify.
    #[error("the checkpoint is not signed by the log's key")]
    Unsigned,
    /// 409: the old size is not the size the witness last cosigned (which it answers).
    #[error("the witness's latest size for this log is {0}")]
    OldSizeMismatch(u64),
    /// 422: the checkpoint does not extend what the witness saw (a fork, a bad proof, a bad empty tree).
    #[error("inconsistent: {0}")]
    Inconsistent(String),
}

/// The signed checkpoint of `request` if a trusted log's key signed it (`logs` are the trusted logs).
pub fn verify_signed(request: &AddCheckpoint, logs: &[TrustedLog]) -> Result<(Checkpoint, String), Refusal> {
    let (body, signatures) = parse_note(&request.note).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let checkpoint = Checkpoint::parse_body(&body).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let log = logs.iter().find(|log| log.origin == checkpoint.origin).ok_or(Refusal::UnknownOrigin)?;
    let key_id = typed_key_id(&log.key_name, ED25519_ALGORITHM, &log.public_key);
    let key = ed25519_dalek::VerifyingKey::from_bytes(&log.public_key).map_err(|_| Refusal::Unsigned)?;
    let mut lines = signatures.iter().filter(|s| s.name == log.key_name && s.key_id == key_id).peekable();
    if lines.peek().is_none() {
        return Err(Refusal::Unsigned);
    }
    for line in lines {
        let verified = ed25519_dalek::Signature::from_slice(&line.signature)
            .is_ok_and(|signature| key.verify_strict(body.as_bytes(), &signature).is_ok());
        if !verified {
            return Err(Refusal::Unsigned);
        }
    }
    Ok((checkpoint, body))
}

/// Checks `checkpoint` (from `request`) against `latest`, the checkpoint the witness last cosigned for
/// its origin (`None` if it never did): the old size must be `latest`'s, the proof must show `latest`
/// is a prefix, and an empty tree must have the empty root.
pub fn check_consistency(
    request: &AddCheckpoint,
    checkpoint: &Checkpoint,
    latest: Option<&Checkpoint>,
) -> Result<(), Refusal> {
    if request.old_size > checkpoint.size {
        return Err(Refusal::Malformed("the old size is larger than the checkpoint's".into()));
    }
    let known = latest.map_or(0, |c| c.size);
    if request.old_size != known {
        return Err(Refusal::OldSizeMismatch(known));
    }
    if checkpoint.size == 0 && checkpoint.root_hash != empty_root() {
        return Err(Refusal::Inconsistent("an empty tree with another root than the empty hash".into()));
    }
    let Some(latest) = latest.filter(|c| c.size > 0) else {
        return if request.proof.is_empty() {
            Ok(())
        } else {
            Err(Refusal::Inconsistent("a proof from the empty tree must be empty".into()))
        };
    };
    verify_consistency(latest.size, checkpoint.size, &latest.root_hash, &checkpoint.root_hash, &request.proof)
        .map_err(|e| Refusal::Inconsistent(format!("no consistency with the cosigned size {}: {e}", latest.size)))
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signer as _;

    use super::*;
    use crate::formats::checkpoint::{NoteSignature, ed25519_key_id, ed25519_verifier_key, format_note};
    use crate::merkle::{leaf_hash, node_hash};

    const ORIGIN: &str = "example.com/log";

    fn log_key() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[3; 32])
    }

    fn trusted() -> Vec<TrustedLog> {
        let vkey = ed25519_verifier_key(ORIGIN, &log_key().verifying_key().to_bytes());
        vec![TrustedLog::parse(&format!("{ORIGIN}={vkey}")).unwrap()]
    }

    fn signed(checkpoint: &Checkpoint, key: &ed25519_dalek::SigningKey) -> String {
        let body = checkpoint.body();
        let line = NoteSignature {
            name: ORIGIN.into(),
            key_id: ed25519_key_id(ORIGIN, &key.verifying_key().to_bytes()),
            signature: key.sign(body.as_bytes()).to_bytes().to_vec(),
        };
        format_note(&body, &[line])
    }

    fn leaves(n: u8) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&[i])).collect()
    }

    #[test]
    fn the_specification_example_request_round_trips() {
        let body = "old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\n\
                    example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\
                    \u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
        let request = AddCheckpoint::parse(body).unwrap();
        assert_eq!(request.old_size, 20_852_014);
        assert_eq!(request.proof.len(), 2);
        assert_eq!(request.to_body(), body);
        let no_proof = AddCheckpoint { old_size: 0, proof: vec![], note: "n\n".into() };
        assert_eq!(no_proof.to_body(), "old 0\n\nn\n");
        assert_eq!(AddCheckpoint::parse(&no_proof.to_body()).unwrap(), no_proof);
    }

    #[test]
    fn malformed_requests_are_refused() {
        let too_long = format!("old 1\n{}\nx\n", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n".repeat(64));
        for bad in ["old 01\n\nx\n", "old -1\n\nx\n", "new 1\n\nx\n", "old 1\nAAAA\n\nx\n", "old 1\nx\n", &too_long] {
            assert!(AddCheckpoint::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_size_answer("42\n"), Some(42));
        for bad in ["42", "042\n", "\n", "4 2\n"] {
            assert_eq!(parse_size_answer(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_a_trusted_logs_valid_signature_is_accepted() {
        let checkpoint = Checkpoint { origin: ORIGIN.into(), size: 1, root_hash: leaf_hash(&[0]) };
        let request = |note: String| AddCheckpoint { old_size: 0, proof: vec![], note };
        assert_eq!(verify_signed(&request(signed(&checkpoint, &log_key())), &trusted()).unwrap().0, checkpoint);
        // Signed by another key under the log's name: no line of the trusted key id.
        let other = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
        assert_eq!(verify_signed(&request(signed(&checkpoint, &other)), &trusted()), Err(Refusal::Unsigned));
        // The trusted key id with a broken signature.
        let broken = signed(&checkpoint, &log_key()).replacen(
            &checkpoint.body(),
            &Checkpoint { size: 2, ..checkpoint.clone() }.body(),
            1,
        );
        assert_eq!(verify_signed(&request(broken), &trusted()), Err(Refusal::Unsigned));
        let unknown = Checkpoint { origin: "other.example/log".into(), ..checkpoint };
        assert_eq!(verify_signed(&request(signed(&unknown, &log_key())), &trusted()), Err(Refusal::UnknownOrigin));
        assert!(matches!(verify_signed(&request(checkpoint.body()), &trusted()), Err(Refusal::Malformed(_))));
    }

    #[test]
    fn consistency_is_checked_against_the_latest_cosigned_checkpoint() {
        let l = leaves(3);
        let root2 = node_hash(&l[0], &l[1]);
        let root3 = node_hash(&root2, &l[2]);
        let at = |size, root_hash| Checkpoint { origin: ORIGIN.into(), size, root_hash };
        let request = |old_size, proof: Vec<Hash>| AddCheckpoint { old_size, proof, note: String::new() };
        // First contact: old 0, no proof.
        assert_eq!(check_consistency(&request(0, vec![]), &at(2, root2), None), Ok(()));
        assert!(matches!(
            check_consistency(&request(0, vec![l[2]]), &at(2, root2), None),
            Err(Refusal::Inconsistent(_))
        ));
        // The witness holds size 2: old 0 is a 409 naming 2.
        let latest = at(2, root2);
        assert_eq!(
            check_consistency(&request(0, vec![]), &at(3, root3), Some(&latest)),
            Err(Refusal::OldSizeMismatch(2))
        );
        // The right proof from 2 to 3 is [l2]; a wrong one, or another root (a fork), is refused.
        assert_eq!(check_consistency(&request(2, vec![l[2]]), &at(3, root3), Some(&latest)), Ok(()));
        assert!(matches!(
            check_consistency(&request(2, vec![l[1]]), &at(3, root3), Some(&latest)),
            Err(Refusal::Inconsistent(_))
        ));
        assert!(matches!(
            check_consistency(&request(2, vec![]), &at(2, root3), Some(&latest)),
            Err(Refusal::Inconsistent(_))
        ));
        assert_eq!(check_consistency(&request(2, vec![]), &at(2, root2), Some(&latest)), Ok(()));
        assert!(matches!(
            check_consistency(&request(3, vec![]), &at(2, root2), Some(&latest)),
            Err(Refusal::Malformed(_))
        ));
        assert!(matches!(check_consistency(&request(0, vec![]), &at(0, [1; 32]), None), Err(Refusal::Inconsistent(_))));
        assert_eq!(check_consistency(&request(0, vec![]), &at(0, empty_root()), None), Ok(()));
    }
}
