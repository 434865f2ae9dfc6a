//! The evidence pack (docs/FORMATS.md §23): its member names and limits, the lines notarium writes into it,
//! and the offline verifier behind `notarium evidence verify`, which trusts nothing but the log's public key
//! (and an earlier checkpoint the auditor saved): the period's entries are proved as an export is (`verify`),
//! the key and policy entries they rest on are proved into the same signed tree, the checkpoint at the
//! period's start is proved a prefix of the one at its end, and every recorded signature is checked again over
//! the bytes it signed with the public key the register logged for its key version.
//!
//! Owns: the pack's layout and its verification. Must not touch: how members are stored (a directory or a
//! zip archive is the caller's, behind [`PackFiles`]), the store, HTTP.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::verify::{
    Header, TrustedCheckpoint, Verified, VerifyFailure, check_entry_line, next_line, parse_hash, read_header,
    signed_checkpoint, verify_export_with,
};
use crate::formats::Digest;
use crate::formats::cosignature::{WitnessKey, check_witnesses as check_witnesses_of};
use crate::formats::dsse::Envelope;
use crate::keys::PublicKey;
use crate::merkle::{Hash, verify_consistency};

/// `manifest.json`: what the pack covers.
pub const MANIFEST: &str = "manifest.json";
/// `entries.jsonl`: the period's entries, an export (FORMATS §14) with its signed checkpoint.
pub const ENTRIES: &str = "entries.jsonl";
/// `context.jsonl`: the `key-added`, `key-rotated` and `policy-loaded` entries up to the period's end, each
/// with its inclusion proof into the same checkpoint.
pub const CONTEXT: &str = "context.jsonl";
/// `signed-payloads.jsonl`: the bytes each recorded signature of the period is over.
pub const PAYLOADS: &str = "signed-payloads.jsonl";
/// `checkpoint-start.txt`: the signed checkpoint of the tree just before the period's first entry.
pub const START_CHECKPOINT: &str = "checkpoint-start.txt";
/// `checkpoint.txt`: the signed checkpoint at the period's end (the one `entries.jsonl` is proved into).
pub const END_CHECKPOINT: &str = "checkpoint.txt";
/// `witness-cosignatures.txt`: the end checkpoint with the cosignatures of the log's witnesses (FORMATS §21).
pub const WITNESSES: &str = "witness-cosignatures.txt";
/// `report.html`: the human report of the period (FORMATS §24).
pub const REPORT_HTML: &str = "report.html";
/// `report.pdf`: the same report printed.
pub const REPORT_PDF: &str = "report.pdf";

/// Every member a pack may hold, with the most bytes a reader takes from it: anything else in an archive is
/// refused, and a member past its limit stops the read (a zip bomb costs at most these bytes, streamed).
pub const MEMBERS: [(&str, u64); 9] = [
    (MANIFEST, 1 << 20),
    (ENTRIES, 1 << 40),
    (CONTEXT, 1 << 30),
    (PAYLOADS, 4 << 30),
    (START_CHECKPOINT, 64 << 10),
    (END_CHECKPOINT, 64 << 10),
    (WITNESSES, 1 << 20),
    (REPORT_HTML, 1 << 32),
    (REPORT_PDF, 1 << 32),
];

/// The most bytes of signed payloads a verifier keeps in memory at once.
pub const MAX_PAYLOAD_BYTES_IN_MEMORY: usize = 1 << 30;

/// The limit of `name`, or `None` when it is no member of a pack.
pub fn member_limit(name: &str) -> Option<u64> {
    MEMBERS.iter().find(|(member, _)| *member == name).map(|(_, limit)| *limit)
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `notarium-evidence-pack`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The layout's version: 1.
    pub version: u32,
    pub origin: String,
    /// The period asked for (RFC 3339; `None` for an open end).
    pub from: Option<String>,
    pub to: Option<String>,
    /// The tree of the end checkpoint, and the range of the period's entries in it.
    pub tree_size: u64,
    pub first_index: u64,
    pub count: u64,
    /// The start checkpoint's size and the consistency proof from it to `tree_size` (hex hashes).
    pub start_size: u64,
    pub start_consistency: Vec<String>,
    /// The members present, in the order written.
    pub members: Vec<String>,
    /// How many sign and attest entries of the period have no signed bytes in the pack (recorded before
    /// notarium kept them), as the server counted them.
    pub signatures_without_payload: u64,
}

/// The `type` of a manifest.
pub const PACK_TYPE: &str = "notarium-evidence-pack";

/// One line of `signed-payloads.jsonl`.
pub fn payload_line(digest: &str, bytes: &[u8]) -> String {
    format!("{}\n", serde_json::json!({"digest": digest, "payload": BASE64.encode(bytes)}))
}

/// Which digest of a `sign` or `attest` entry names the bytes it signed, or `None` for other entries.
pub fn signed_digest(entry: &Value) -> Option<&str> {
    let field = match entry["kind"].as_str()? {
        "sign" => "payload_digest",
        "attest" => "envelope_digest",
        _ => return None,
    };
    entry["details"][field].as_str()
}

/// Whether an entry belongs in `context.jsonl`.
pub fn is_context(entry: &Value) -> bool {
    matches!(entry["kind"].as_str(), Some("key-added" | "key-rotated" | "policy-loaded"))
}

/// What a pack's reader offers: each member, read through `visit` within its limit.
pub trait PackFiles {
    /// Calls `visit` with the member `name`; `Ok(false)` (and no call) when the pack has no such member.
    fn read(
        &mut self,
        name: &str,
        visit: &mut dyn FnMut(&mut (dyn BufRead + Send)) -> Result<(), PackFailure>,
    ) -> Result<bool, PackFailure>;
}

/// The first thing wrong with a pack: the member, its line (0: the member as a whole) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct PackFailure {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

impl PackFailure {
    pub fn new(file: &str, line: usize, reason: impl Into<String>) -> Self {
        Self { file: file.to_owned(), line, reason: reason.into() }
    }

    fn describe(&self) -> String {
        match self.line {
            0 => format!("{}: {}", self.file, self.reason),
            line => format!("{} line {line}: {}", self.file, self.reason),
        }
    }

    fn at(file: &str, failure: VerifyFailure) -> Self {
        Self::new(file, failure.line, failure.reason)
    }
}

/// Which witnesses must have cosigned the end checkpoint: `required` of `keys` (C2SP vkeys, FORMATS §21).
#[derive(Debug, Clone, Default)]
pub struct WitnessPolicy {
    pub keys: Vec<String>,
    pub required: usize,
}

/// What a verified pack proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackVerified {
    pub export: Verified,
    pub start_size: u64,
    pub key_versions: usize,
    pub policy_versions: usize,
    /// `policy-loaded` entries logged before they carried the policy's text.
    pub policies_without_content: usize,
    /// Sign and attest entries whose signature was checked again over its signed bytes.
    pub signatures_checked: u64,
    /// Sign and attest entries without signed bytes in the pack: not re-checkable.
    pub signatures_not_recheckable: u64,
    /// How many of the given witnesses validly cosigned the end checkpoint (`None`: no witness policy).
    pub witnesses_cosigned: Option<usize>,
}

/// The key versions and policy versions `context.jsonl` proves, and what it could not.
#[derive(Default)]
struct Context {
    keys: HashMap<(String, u64), PublicKey>,
    policies: HashSet<(String, String)>,
    policies_without_content: usize,
}

/// The signatures checked again, and those without signed bytes, counted from every core.
#[derive(Default)]
struct Counts {
    checked: AtomicU64,
    not_recheckable: AtomicU64,
}

/// Signed bytes by the digest they are filed under, with their line in `signed-payloads.jsonl`.
type Payloads = HashMap<String, (usize, Vec<u8>)>;

/// Verifies a pack offline (see the module's comment); the first failure names its member and line.
pub fn verify_pack(
    files: &mut impl PackFiles,
    log_key: &[u8; 32],
    since: Option<TrustedCheckpoint<'_>>,
    witnesses: &WitnessPolicy,
) -> Result<PackVerified, PackFailure> {
    let manifest = read_manifest(files)?;
    let header =
        read_member(files, ENTRIES, |r| read_header(r, log_key, since).map_err(|e| PackFailure::at(ENTRIES, e)))?;
    check_manifest_against(&manifest, &header)?;
    check_end_checkpoint(files, log_key, &header)?;
    check_start(files, log_key, &manifest, &header)?;
    let context = read_context(files, &header)?;
    let payloads = read_payloads(files)?;
    let counts = Counts::default();
    let export = read_member(files, ENTRIES, |reader| {
        let visit = |line: usize, index: u64, entry: &Value| {
            check_recorded(entry, &context, &payloads, &counts)
                .map_err(|reason| VerifyFailure { line, reason: format!("entry {index}: {reason}") })
        };
        verify_export_with(reader, log_key, since, Some(&visit)).map_err(|e| PackFailure::at(ENTRIES, e))
    })?;
    let witnesses_cosigned = check_witnesses(files, log_key, &header, witnesses)?;
    Ok(PackVerified {
        export,
        start_size: manifest.start_size,
        key_versions: context.keys.len(),
        policy_versions: context.policies.len(),
        policies_without_content: context.policies_without_content,
        signatures_checked: counts.checked.into_inner(),
        signatures_not_recheckable: counts.not_recheckable.into_inner(),
        witnesses_cosigned,
    })
}

/// Reads the member `name` through `read`, failing when the pack lacks it.
fn read_member<T>(
    files: &mut impl PackFiles,
    name: &str,
    mut read: impl FnMut(&mut (dyn BufRead + Send)) -> Result<T, PackFailure>,
) -> Result<T, PackFailure> {
    let mut result = None;
    let present = files.read(name, &mut |reader| {
        result = Some(read(reader)?);
        Ok(())
    })?;
    match result {
        Some(value) if present => Ok(value),
        _ => Err(PackFailure::new(name, 0, "missing from the pack")),
    }
}

fn read_to_string(files: &mut impl PackFiles, name: &str) -> Result<String, PackFailure> {
    read_member(files, name, |reader| {
        let mut text = String::new();
        reader.read_to_string(&mut text).map_err(|e| PackFailure::new(name, 0, format!("cannot read: {e}")))?;
        Ok(text)
    })
}

fn read_manifest(files: &mut impl PackFiles) -> Result<Manifest, PackFailure> {
    let text = read_to_string(files, MANIFEST)?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| PackFailure::new(MANIFEST, 1, format!("not a pack manifest: {e}")))?;
    if manifest.kind != PACK_TYPE || manifest.version != 1 {
        return Err(PackFailure::new(MANIFEST, 1, format!("not a version 1 {PACK_TYPE}")));
    }
    Ok(manifest)
}

/// The manifest must say what the signed export says.
fn check_manifest_against(manifest: &Manifest, header: &Header) -> Result<(), PackFailure> {
    let stated = (manifest.tree_size, manifest.first_index, manifest.count);
    let signed = (header.checkpoint.size, header.first, header.count);
    if stated != signed {
        return Err(PackFailure::new(
            MANIFEST,
            1,
            format!(
                "it states tree size {}, entries from {} ({}), {ENTRIES} proves tree size {}, entries from {} ({})",
                stated.0, stated.1, stated.2, signed.0, signed.1, signed.2
            ),
        ));
    }
    Ok(())
}

fn check_end_checkpoint(files: &mut impl PackFiles, log_key: &[u8; 32], header: &Header) -> Result<(), PackFailure> {
    let note = read_to_string(files, END_CHECKPOINT)?;
    let end = signed_checkpoint(&note, log_key, 1).map_err(|e| PackFailure::at(END_CHECKPOINT, e))?;
    if end != header.checkpoint {
        return Err(PackFailure::new(END_CHECKPOINT, 1, format!("it is not the checkpoint {ENTRIES} is proved into")));
    }
    Ok(())
}

/// The start checkpoint is signed, sits at the period's first index, and the end tree extends it.
fn check_start(
    files: &mut impl PackFiles,
    log_key: &[u8; 32],
    manifest: &Manifest,
    header: &Header,
) -> Result<(), PackFailure> {
    let note = read_to_string(files, START_CHECKPOINT)?;
    let start = signed_checkpoint(&note, log_key, 1).map_err(|e| PackFailure::at(START_CHECKPOINT, e))?;
    if start.size != manifest.start_size || start.size > header.first {
        return Err(PackFailure::new(
            START_CHECKPOINT,
            1,
            format!("its tree size {} is not the period's start ({})", start.size, header.first),
        ));
    }
    let hashes: Option<Vec<Hash>> =
        manifest.start_consistency.iter().map(|h| parse_hash(&Value::String(h.clone()))).collect();
    let hashes = hashes.ok_or_else(|| PackFailure::new(MANIFEST, 1, "malformed start_consistency"))?;
    let end = &header.checkpoint;
    let consistent = match start.size {
        0 => true,
        size if size == end.size => start.root_hash == end.root_hash,
        size => verify_consistency(size, end.size, &start.root_hash, &end.root_hash, &hashes).is_ok(),
    };
    if !consistent {
        return Err(PackFailure::new(
            START_CHECKPOINT,
            1,
            format!(
                "the tree at the period's end (size {}) does not extend the one at its start (size {})",
                end.size, start.size
            ),
        ));
    }
    Ok(())
}

/// Proves each key and policy entry into the end checkpoint and keeps what it states.
fn read_context(files: &mut impl PackFiles, header: &Header) -> Result<Context, PackFailure> {
    let mut context = Context::default();
    let (size, root) = (header.checkpoint.size, header.checkpoint.root_hash);
    read_member(files, CONTEXT, |reader| {
        let (mut number, mut line) = (0, Vec::new());
        let mut reader = reader;
        while next_line(&mut reader, &mut line, number + 1).map_err(|e| PackFailure::at(CONTEXT, e))? {
            number += 1;
            let (index, entry) =
                check_entry_line(&line, number, size, &root).map_err(|e| PackFailure::at(CONTEXT, e))?;
            context
                .add(&entry)
                .map_err(|reason| PackFailure::new(CONTEXT, number, format!("entry {index}: {reason}")))?;
        }
        Ok(())
    })?;
    Ok(context)
}

impl Context {
    fn add(&mut self, entry: &Value) -> Result<(), String> {
        let (subject, details) = (&entry["subject"], &entry["details"]);
        match entry["kind"].as_str() {
            Some("key-added" | "key-rotated") => {
                let key = subject["key"].as_str().ok_or("a key entry without a key")?;
                let version = subject["version"].as_u64().ok_or("a key entry without a version")?;
                let pem = details["public_key"].as_str().ok_or("a key entry without a public key")?;
                let public = PublicKey::from_pem(pem).map_err(|e| format!("key {key} version {version}: {e}"))?;
                self.keys.insert((key.to_owned(), version), public);
            }
            Some("policy-loaded") => {
                let name = subject["policy"].as_str().ok_or("a policy entry without a policy")?;
                let version = subject["version"].as_str().ok_or("a policy entry without a version")?;
                match details["content"].as_str() {
                    Some(text) if Digest::of(text.as_bytes()).as_str() != version => {
                        return Err(format!("policy {name}: its content does not hash to its version {version}"));
                    }
                    Some(_) => {}
                    None => self.policies_without_content += 1,
                }
                self.policies.insert((name.to_owned(), version.to_owned()));
            }
            _ => return Err("not a key or policy entry".into()),
        }
        Ok(())
    }
}

/// Reads `signed-payloads.jsonl` (an absent member holds none) within [`MAX_PAYLOAD_BYTES_IN_MEMORY`].
fn read_payloads(files: &mut impl PackFiles) -> Result<Payloads, PackFailure> {
    let mut payloads = Payloads::new();
    let mut kept = 0usize;
    files.read(PAYLOADS, &mut |reader| {
        let (mut number, mut line) = (0, Vec::new());
        let mut reader = reader;
        while next_line(&mut reader, &mut line, number + 1).map_err(|e| PackFailure::at(PAYLOADS, e))? {
            number += 1;
            let malformed = || PackFailure::new(PAYLOADS, number, "not a {\"digest\", \"payload\"} line");
            let record: Value = serde_json::from_slice(&line).map_err(|_| malformed())?;
            let digest = record["digest"].as_str().ok_or_else(malformed)?;
            let bytes = record["payload"].as_str().and_then(|p| BASE64.decode(p).ok()).ok_or_else(malformed)?;
            kept += bytes.len();
            if kept > MAX_PAYLOAD_BYTES_IN_MEMORY {
                let limit = MAX_PAYLOAD_BYTES_IN_MEMORY;
                return Err(PackFailure::new(
                    PAYLOADS,
                    number,
                    format!("the payloads pass the limit of {limit} bytes"),
                ));
            }
            payloads.insert(digest.to_owned(), (number, bytes));
        }
        Ok(())
    })?;
    Ok(payloads)
}

/// For a `sign` or `attest` entry: its key version is logged, and its signature verifies over the bytes it
/// signed (whose digest it names); for a `verify` entry: the policy version that decided is logged.
fn check_recorded(entry: &Value, context: &Context, payloads: &Payloads, counts: &Counts) -> Result<(), String> {
    let details = &entry["details"];
    if entry["kind"] == "verify" {
        if let (Some(policy), Some(version)) = (details["policy"].as_str(), details["policy_version"].as_str()) {
            if !context.policies.contains(&(policy.to_owned(), version.to_owned())) {
                return Err(format!(
                    "policy {policy} version {version} decided it, and {CONTEXT} has no such policy entry"
                ));
            }
        }
        return Ok(());
    }
    let Some(digest) = signed_digest(entry) else { return Ok(()) };
    let key = details["key"].as_str().ok_or("no key")?;
    let version = details["key_version"].as_u64().ok_or("no key_version")?;
    let public = context
        .keys
        .get(&(key.to_owned(), version))
        .ok_or_else(|| format!("key {key} version {version} signed it, and {CONTEXT} has no entry for that version"))?;
    let signature = details["signature"].as_str().and_then(|s| BASE64.decode(s).ok()).ok_or("no base64 signature")?;
    let Some((line, bytes)) = payloads.get(digest) else {
        counts.not_recheckable.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    };
    if Digest::of(bytes).as_str() != digest {
        return Err(format!("the signed bytes ({PAYLOADS} line {line}) do not hash to {digest}, the digest it names"));
    }
    let message = match entry["kind"].as_str() {
        Some("attest") => Envelope::parse_bounded(bytes, 16)
            .map_err(|e| format!("the signed envelope ({PAYLOADS} line {line}): {e}"))?
            .pae(),
        _ => bytes.clone(),
    };
    public.verify(&message, &signature).map_err(|_| {
        format!("its signature does not verify over the signed bytes ({PAYLOADS} line {line}) with key {key} version {version}")
    })?;
    counts.checked.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// With a witness policy, `required` of its witnesses cosigned the end checkpoint (`witness-cosignatures.txt`,
/// which must also carry the log's signature of that very checkpoint). Returns how many did.
fn check_witnesses(
    files: &mut impl PackFiles,
    log_key: &[u8; 32],
    header: &Header,
    witnesses: &WitnessPolicy,
) -> Result<Option<usize>, PackFailure> {
    if witnesses.required == 0 && witnesses.keys.is_empty() {
        return Ok(None);
    }
    let keys: Vec<WitnessKey> = witnesses
        .keys
        .iter()
        .map(|vkey| WitnessKey::parse_vkey(vkey))
        .collect::<Result<_, _>>()
        .map_err(|e| PackFailure::new("--witness", 0, e.to_string()))?;
    let mut note = None;
    files.read(WITNESSES, &mut |reader| {
        let mut text = String::new();
        reader.read_to_string(&mut text).map_err(|e| PackFailure::new(WITNESSES, 0, format!("cannot read: {e}")))?;
        note = Some(text);
        Ok(())
    })?;
    let Some(note) = note else {
        let reason = format!("missing: {} of the given witnesses must have cosigned", witnesses.required);
        return Err(PackFailure::new(WITNESSES, 0, reason));
    };
    let signed = signed_checkpoint(&note, log_key, 1).map_err(|e| PackFailure::at(WITNESSES, e))?;
    if signed != header.checkpoint {
        return Err(PackFailure::new(WITNESSES, 1, format!("it is not the checkpoint {ENTRIES} is proved into")));
    }
    let report = check_witnesses_of(&note, &keys, witnesses.required)
        .map_err(|e| PackFailure::new(WITNESSES, 0, e.to_string()))?;
    if !report.satisfied {
        let reason = format!(
            "{} of the {} required witnesses cosigned (missing: {}; invalid: {})",
            report.cosigned.len(),
            witnesses.required,
            report.missing.join(", "),
            report.invalid.join(", ")
        );
        return Err(PackFailure::new(WITNESSES, 0, reason));
    }
    Ok(Some(report.cosigned.len()))
}
