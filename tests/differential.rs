//! Differential tests: notarium's formats against implementations nobody here wrote, on random inputs from
//! a seeded generator (the seed is printed, and `NOTARIUM_DIFFERENTIAL_SEED=<seed>` replays a run).
//! RFC 8785 canonical JSON against Trail of Bits' `rfc8785` (PyPI), and DSSE PAE and envelopes against
//! securesystemslib (PyPI), both installed under .tools/ by scripts/install-test-deps.sh; Merkle trees,
//! checkpoints and signed notes against the `tlog_tiles` and `signed_note` crates (dev-dependencies); image
//! references against the distribution reference grammar's published regular expressions.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use notarium::formats::ImageReference;
use notarium::formats::canonical::{canonical_json, is_exact_integer};
use notarium::formats::checkpoint::{
    Checkpoint, NoteSignature, ed25519_key_id, ed25519_verifier_key, format_note, parse_note, verify_ed25519_note,
};
use notarium::formats::digest::hex_decode;
use notarium::formats::dsse::{Envelope, pae};
use notarium::keys::{FileSigner, PublicKey, Signer as _};
use notarium::merkle;
use serde_json::{Number, Value, json};

use crate::support;

/// splitmix64: small, fast and fully determined by its seed.
struct Rng {
    state: u64,
    seed: u64,
}

impl Rng {
    /// The seed of `NOTARIUM_DIFFERENTIAL_SEED`, or a fresh one from the clock; printed either way.
    fn seeded(test: &str) -> Self {
        let seed = std::env::var("NOTARIUM_DIFFERENTIAL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
        eprintln!("{test}: seed {seed} (replay with NOTARIUM_DIFFERENTIAL_SEED={seed})");
        Self { state: seed, seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Runs a Python script of tests/tools with `tools` (folders of .tools/) on its path, `input` as its stdin,
/// and returns its stdout as JSON.
fn python(script: &str, tools: &[&str], input: &Value) -> Value {
    let root = Path::new(support::ROOT);
    let path = std::env::join_paths(tools.iter().map(|t| root.join(".tools").join(t))).unwrap();
    let mut child = Command::new("python3")
        .env("PYTHONPATH", path)
        .arg(root.join("tests/tools").join(script))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let request = serde_json::to_vec(input).unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&request).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

// ---- RFC 8785 canonical JSON (docs/FORMATS.md §11) against rfc8785 ----

/// Characters where JSON escaping, UTF-8 and UTF-16 ordering differ: controls, quotes, DEL, the line
/// separators, the last BMP characters before and after the surrogate range, and astral characters
/// (surrogate pairs in UTF-16, which sort below U+E000..U+FFFF there but above them in UTF-8).
const SPECIAL_CHARS: &[char] = &[
    '\0',
    '\u{1}',
    '\u{8}',
    '\t',
    '\n',
    '\u{b}',
    '\u{c}',
    '\r',
    '\u{1f}',
    '"',
    '\\',
    '/',
    '\u{7f}',
    '\u{80}',
    '\u{e9}',
    '\u{ff}',
    '\u{2028}',
    '\u{2029}',
    '\u{d7ff}',
    '\u{e000}',
    '\u{feff}',
    '\u{ff61}',
    '\u{fffd}',
    '\u{ffff}',
    '\u{10000}',
    '\u{1f600}',
    '\u{10ffff}',
    'a',
    'A',
    'z',
    '0',
];

fn random_char(rng: &mut Rng) -> char {
    match rng.below(4) {
        0 => *rng.pick(SPECIAL_CHARS),
        1 => char::from(b' ' + rng.below(95) as u8),
        2 => char::from_u32(rng.below(0x10000) as u32).unwrap_or('\u{e001}'),
        _ => char::from_u32(0x10000 + rng.below(0x100000) as u32).unwrap(),
    }
}

fn random_string(rng: &mut Rng) -> String {
    let longest = if rng.one_in(8) { 40 } else { 6 };
    let len = rng.below(longest);
    (0..len).map(|_| random_char(rng)).collect()
}

/// Doubles RFC 8785's number serialization has edges at, and integers around 2^53.
fn special_number(rng: &mut Rng) -> Number {
    const DOUBLES: &[f64] = &[
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        1e21,
        1e20,
        999999999999999900000.0,
        1e-6,
        1e-7,
        9.999999999999997e-7,
        5e-324,
        -5e-324,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        f64::from_bits(0x000f_ffff_ffff_ffff), // the largest subnormal
        1e23,
        9.999999999999997e22,
        9007199254740992.0,
        9007199254740994.0,
        0.1,
        0.3,
        333333333.33333325,
        1e300,
        1.7976931348623157e308,
        4.35,
        2.5e-5,
    ];
    let two_53 = 1_i64 << 53;
    match rng.below(3) {
        0 => Number::from_f64(*rng.pick(DOUBLES)).unwrap(),
        1 => Number::from(rng.pick(&[1, -1]) * (two_53 + rng.below(7) as i64 - 3)),
        _ => {
            rng.pick(&[Number::from(u64::MAX), Number::from(i64::MIN), Number::from(i64::MAX), Number::from(0)]).clone()
        }
    }
}

fn random_number(rng: &mut Rng) -> Number {
    match rng.below(5) {
        0 => special_number(rng),
        // Any finite double, by its bits: the full range, subnormals included.
        1 => loop {
            if let Some(n) = Number::from_f64(f64::from_bits(rng.next())) {
                break n;
            }
        },
        // Short decimals: where shortest-digit ties and the plain/scientific boundaries are.
        2 => {
            let magnitude = 10_u64.pow(rng.below(17) as u32 + 1);
            let digits = rng.below(magnitude) as f64;
            let scaled = digits * 10_f64.powi(rng.below(60) as i32 - 30);
            Number::from_f64(if rng.one_in(2) { -scaled } else { scaled }).unwrap()
        }
        3 => Number::from(rng.next() as i64 >> rng.below(64)),
        _ => Number::from(rng.below(1000)),
    }
}

fn random_json(rng: &mut Rng, depth: u32) -> Value {
    let kinds = if depth == 0 { 4 } else { 6 };
    match rng.below(kinds) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => Value::Number(random_number(rng)),
        3 => Value::String(random_string(rng)),
        4 => Value::Array((0..rng.below(5)).map(|_| random_json(rng, depth - 1)).collect()),
        _ => Value::Object((0..rng.below(6)).map(|_| (random_string(rng), random_json(rng, depth - 1))).collect()),
    }
}

/// `value` as JSON text with some characters of its strings written as `\uXXXX` escapes (surrogate pairs
/// for astral characters) and numbers as serde_json writes them: the text both implementations parse.
fn write_with_escapes(rng: &mut Rng, value: &Value, out: &mut String) {
    match value {
        Value::String(s) => write_string_with_escapes(rng, s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i > 0 { ", " } else { "" });
                write_with_escapes(rng, item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("{ ");
            for (i, (key, item)) in map.iter().enumerate() {
                out.push_str(if i > 0 { ",\n" } else { "" });
                write_string_with_escapes(rng, key, out);
                out.push_str(" : ");
                write_with_escapes(rng, item, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_string_with_escapes(rng: &mut Rng, s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        if rng.one_in(3) {
            let mut units = [0_u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&if rng.one_in(2) { format!("\\u{unit:04x}") } else { format!("\\u{unit:04X}") });
            }
        } else {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

/// Whether `value` holds a number whose canonical form is not its exact digits: an integer past 2^53 − 1,
/// which rfc8785 refuses (IntegerDomainError) and notarium writes as the nearest double (RFC 8785 §3.2.2.3;
/// the register refuses such events before they are canonicalized, docs/FORMATS.md §11).
fn has_inexact_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => (n.is_u64() || n.is_i64()) && !is_exact_integer(n),
        Value::Array(items) => items.iter().any(has_inexact_integer),
        Value::Object(map) => map.values().any(has_inexact_integer),
        _ => false,
    }
}

#[test]
fn canonical_json_matches_rfc8785_byte_for_byte() {
    let mut rng = Rng::seeded("canonical_json");
    let values: Vec<Value> = (0..2000).map(|_| random_json(&mut rng, 4)).collect();
    let texts: Vec<String> = values
        .iter()
        .map(|v| {
            let mut text = String::new();
            write_with_escapes(&mut rng, v, &mut text);
            text
        })
        .collect();
    let theirs = python("jcs_rfc8785.py", &["rfc8785"], &json!(texts));
    let mut refused = 0;
    for ((text, value), their) in texts.iter().zip(&values).zip(theirs.as_array().unwrap()) {
        let parsed: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("seed {}: {e}: {text}", rng.seed));
        assert_eq!(&parsed, value, "seed {}: {text}", rng.seed);
        let ours = canonical_json(&parsed);
        let expected = hex_decode(their["bytes"].as_str().unwrap()).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&expected),
            "seed {}: canonical forms differ for {text}",
            rng.seed
        );
        if let Some(name) = their.get("refused") {
            assert_eq!(name, "IntegerDomainError", "seed {}: {text}", rng.seed);
            assert!(has_inexact_integer(&parsed), "seed {}: rfc8785 refused {text}", rng.seed);
            refused += 1;
        } else {
            assert!(!has_inexact_integer(&parsed), "seed {}: rfc8785 took {text}", rng.seed);
        }
    }
    assert!(refused > 0 && refused < values.len(), "seed {}: {refused} refused", rng.seed);
}

/// A lone surrogate escape is not a Unicode string: serde_json refuses the text (so notarium never
/// canonicalizes it), and rfc8785 refuses to write it (Python's json reads it into a str). For a lone
/// surrogate in a key rfc8785 fails with a UnicodeEncodeError rather than its own CanonicalizationError: a
/// refusal all the same.
#[test]
fn lone_surrogates_are_refused_on_both_sides() {
    let texts = [r#""\ud800""#, r#""\udc00x""#, r#"["\ud83d"]"#, r#"{"\ud83d": 1}"#];
    let theirs = python("jcs_rfc8785.py", &["rfc8785"], &json!(texts));
    for (text, their) in texts.iter().zip(theirs.as_array().unwrap()) {
        assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
        assert!(their.get("refused").is_some() && their.get("bytes").is_none(), "{text}: {their}");
    }
}

// ---- DSSE PAE and envelopes (docs/FORMATS.md §4) against securesystemslib ----

fn random_payload_type(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => String::new(),
        1 => "application/vnd.in-toto+json".to_owned(),
        2 => random_string(rng),
        _ => (0..rng.below(300)).map(|_| random_char(rng)).collect(),
    }
}

fn random_payload(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(4) {
        0 => 0,
        1 => rng.below(64),
        2 => rng.below(4096),
        _ => 100_000 + rng.below(200_000),
    };
    if rng.one_in(2) { rng.bytes(len as usize) } else { (0..len).map(|_| random_char(rng)).collect::<String>().into() }
}

#[test]
fn dsse_pae_matches_securesystemslib_and_envelopes_verify_both_ways() {
    let mut rng = Rng::seeded("dsse");
    let pae_cases: Vec<(String, Vec<u8>)> =
        (0..300).map(|_| (random_payload_type(&mut rng), random_payload(&mut rng))).collect();
    let keys = Path::new(support::ROOT).join("keys.example");
    let signers = [
        (FileSigner::load("ecdsa", &keys.join("dev-ecdsa.pem")).unwrap(), "ecdsa-sha2-nistp256"),
        (FileSigner::load("ed25519", &keys.join("dev-ed25519.pem")).unwrap(), "ed25519"),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut ours = Vec::new();
    let mut verify_requests = Vec::new();
    for (i, (payload_type, payload)) in pae_cases.iter().enumerate().take(100) {
        let (signer, scheme) = &signers[i % 2];
        let mut envelope = Envelope::unsigned(payload_type, payload.clone());
        let signature = runtime.block_on(signer.sign(None, &envelope.pae())).unwrap();
        envelope.add_signature(signature.bytes);
        let key = runtime.block_on(signer.versions()).unwrap().remove(0).public_key;
        let wire: Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        verify_requests.push(json!({"envelope": wire, "key": key.to_pem(), "scheme": scheme}));
        // The same envelope with its payload changed must be refused by them too.
        let mut tampered = envelope.clone();
        tampered.payload.push(b'!');
        let wire: Value = serde_json::from_slice(&tampered.to_json()).unwrap();
        verify_requests.push(json!({"envelope": wire, "key": key.to_pem(), "scheme": scheme}));
        ours.push(envelope);
    }
    let sign_requests: Vec<Value> = pae_cases[100..200]
        .iter()
        .enumerate()
        .map(|(i, (t, p))| {
            let scheme = ["ecdsa-sha2-nistp256", "ed25519"][i % 2];
            json!({"type": t, "payload": BASE64.encode(p), "scheme": scheme})
        })
        .collect();
    let request = json!({
        "pae": pae_cases.iter().map(|(t, p)| json!({"type": t, "payload": BASE64.encode(p)})).collect::<Vec<_>>(),
        "verify": verify_requests,
        "sign": sign_requests,
    });
    let theirs = python("dsse_differential.py", &["python"], &request);

    for ((payload_type, payload), their_pae) in pae_cases.iter().zip(theirs["pae"].as_array().unwrap()) {
        assert!(
            pae(payload_type, payload) == hex_decode(their_pae.as_str().unwrap()).unwrap(),
            "seed {}: PAE differs for type {payload_type:?} and a payload of {} bytes",
            rng.seed,
            payload.len()
        );
    }
    for (i, verdict) in theirs["verify"].as_array().unwrap().iter().enumerate() {
        let envelope = &ours[i / 2];
        let what = format!("type {:?}, {} bytes", envelope.payload_type, envelope.payload.len());
        if i % 2 == 0 {
            assert_eq!(
                verdict,
                &json!(true),
                "seed {}: securesystemslib refused notarium's envelope ({what})",
                rng.seed
            );
        } else {
            assert_ne!(verdict, &json!(true), "seed {}: securesystemslib took a tampered envelope ({what})", rng.seed);
        }
    }
    for (signed, (payload_type, payload)) in theirs["sign"].as_array().unwrap().iter().zip(&pae_cases[100..200]) {
        let envelope = Envelope::parse(&serde_json::to_vec(&signed["envelope"]).unwrap()).unwrap();
        assert_eq!((&envelope.payload_type, &envelope.payload), (payload_type, payload), "seed {}", rng.seed);
        let key = PublicKey::from_pem(signed["key"].as_str().unwrap()).unwrap();
        assert_eq!(envelope.verify(&key).unwrap(), payload.as_slice(), "seed {}: {payload_type:?}", rng.seed);
        let mut tampered = envelope.clone();
        tampered.payload_type.push('x');
        assert!(tampered.verify(&key).is_err(), "seed {}: {payload_type:?}", rng.seed);
    }
}

// ---- Merkle trees (docs/FORMATS.md §12) and checkpoints in signed notes (§13) against tlog_tiles and
// signed_note (Cloudflare's Rust ports of Go's golang.org/x/mod/sumdb/tlog and sumdb/note) ----

/// A tlog_tiles hash store: the hashes `stored_hashes` returned, at their stored-hash indexes.
struct TlogStore(Vec<tlog_tiles::Hash>);

impl tlog_tiles::HashReader for TlogStore {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::tlog::Error> {
        Ok(indexes.iter().map(|&i| self.0[i as usize]).collect())
    }
}

/// notarium's tree as the register stores it: the nodes [`merkle::append`] writes, appended in batches.
struct NotariumTree(HashMap<merkle::NodeId, merkle::Hash>);

impl NotariumTree {
    fn range_hash(&self, (start, end): (u64, u64)) -> merkle::Hash {
        let pieces: Vec<merkle::Hash> =
            merkle::perfect_pieces(start, end).iter().map(|&(s, e)| self.0[&merkle::node_of(s, e)]).collect();
        merkle::fold_pieces(&pieces)
    }

    fn root(&self, size: u64) -> merkle::Hash {
        if size == 0 { merkle::empty_root() } else { self.range_hash((0, size)) }
    }
}

fn build_both_trees(rng: &mut Rng, entries: &[Vec<u8>]) -> (NotariumTree, TlogStore) {
    let mut ours = NotariumTree(HashMap::new());
    let mut size = 0;
    while (size as usize) < entries.len() {
        let batch = (1 + rng.below(40) as usize).min(entries.len() - size as usize);
        let frontier: Vec<merkle::Hash> = merkle::frontier(size).iter().map(|id| ours.0[id]).collect();
        let slices: Vec<&[u8]> = entries[size as usize..size as usize + batch].iter().map(Vec::as_slice).collect();
        ours.0.extend(merkle::append(size, &frontier, &slices).nodes);
        size += batch as u64;
    }
    let mut theirs = TlogStore(Vec::new());
    for (n, entry) in entries.iter().enumerate() {
        let hashes = tlog_tiles::stored_hashes(n as u64, entry, &theirs).unwrap();
        theirs.0.extend(hashes);
    }
    (ours, theirs)
}

/// Leaf `index` of the tree of `size` (root `root`): the same inclusion proof from both, verified by both,
/// and refused by both for another leaf.
fn compare_inclusion(ours: &NotariumTree, theirs: &TlogStore, entry: &[u8], index: u64, size: u64, root: merkle::Hash) {
    let leaf = merkle::leaf_hash(entry);
    assert_eq!(tlog_tiles::record_hash(entry).0, leaf);
    let proof: Vec<merkle::Hash> =
        merkle::inclusion_ranges(index, size).into_iter().map(|r| ours.range_hash(r)).collect();
    let their_proof: Vec<merkle::Hash> =
        tlog_tiles::prove_record(size, index, theirs).unwrap().iter().map(|h| h.0).collect();
    assert_eq!(their_proof, proof, "inclusion proof of leaf {index} in {size}");
    let as_theirs: Vec<tlog_tiles::Hash> = proof.iter().copied().map(tlog_tiles::Hash).collect();
    for (candidate, holds) in [(leaf, true), (merkle::leaf_hash(b"another entry"), false)] {
        let theirs_hold =
            tlog_tiles::check_record(&as_theirs, size, tlog_tiles::Hash(root), index, tlog_tiles::Hash(candidate));
        assert_eq!(theirs_hold.is_ok(), holds, "tlog_tiles on leaf {index} in {size}");
        let ours_hold = merkle::verify_inclusion(&candidate, index, size, &proof, &root);
        assert_eq!(ours_hold.is_ok(), holds, "notarium on leaf {index} in {size}");
    }
}

/// The tree of `first` leaves against the tree of `size` (root `root`): the same consistency proof from
/// both, verified by both, and refused by both for a rewritten history.
fn compare_consistency(ours: &NotariumTree, theirs: &TlogStore, first: u64, size: u64, root: merkle::Hash) {
    let first_root = ours.root(first);
    let proof: Vec<merkle::Hash> =
        merkle::consistency_ranges(first, size).into_iter().map(|r| ours.range_hash(r)).collect();
    let their_proof: Vec<merkle::Hash> =
        tlog_tiles::prove_tree(size, first, theirs).unwrap().iter().map(|h| h.0).collect();
    assert_eq!(their_proof, proof, "consistency proof {first} -> {size}");
    let as_theirs: Vec<tlog_tiles::Hash> = proof.iter().copied().map(tlog_tiles::Hash).collect();
    let forged = merkle::leaf_hash(b"rewritten history");
    for (old_root, holds) in [(first_root, true), (forged, first == size && forged == root)] {
        let theirs_hold =
            tlog_tiles::check_tree(&as_theirs, size, tlog_tiles::Hash(root), first, tlog_tiles::Hash(old_root));
        assert_eq!(theirs_hold.is_ok(), holds, "tlog_tiles on {first} -> {size}");
        let ours_hold = merkle::verify_consistency(first, size, &old_root, &root, &proof);
        assert_eq!(ours_hold.is_ok(), holds, "notarium on {first} -> {size}");
    }
}

#[test]
fn merkle_roots_and_proofs_match_tlog_tiles_and_verify_both_ways() {
    let mut rng = Rng::seeded("merkle");
    let entries: Vec<Vec<u8>> = (0..1500)
        .map(|_| {
            let len = rng.below(80) as usize;
            rng.bytes(len)
        })
        .collect();
    let (ours, theirs) = build_both_trees(&mut rng, &entries);
    eprintln!("(a failure below is for seed {})", rng.seed);
    for _ in 0..1000 {
        let size = 1 + rng.below(entries.len() as u64);
        let root = ours.root(size);
        assert_eq!(tlog_tiles::tree_hash(size, &theirs).unwrap().0, root, "seed {}: root of {size}", rng.seed);
        let index = rng.below(size);
        compare_inclusion(&ours, &theirs, &entries[index as usize], index, size, root);
        compare_consistency(&ours, &theirs, 1 + rng.below(size), size, root);
    }
}

/// A key name as note tools accept it: no spaces, no '+'.
fn random_key_name(rng: &mut Rng) -> String {
    let len = 1 + rng.below(30);
    let name: String = (0..len)
        .map(|_| random_char(rng))
        .filter(|c| !c.is_whitespace() && !c.is_control() && *c != '+' && *c != '\u{feff}')
        .collect();
    if name.is_empty() { "log.example/a".to_owned() } else { name }
}

fn random_checkpoint(rng: &mut Rng) -> Checkpoint {
    let mut root_hash = [0; 32];
    root_hash.copy_from_slice(&rng.bytes(32));
    let size = if rng.one_in(4) { rng.next() } else { rng.below(100_000) };
    Checkpoint { origin: random_key_name(rng), size, root_hash }
}

#[test]
fn checkpoints_and_signed_notes_match_signed_note_and_verify_both_ways() {
    let mut rng = Rng::seeded("signed_note");
    let seed = rng.seed;
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let log_key = FileSigner::load("log", &Path::new(support::ROOT).join("keys.example/dev-log.pem")).unwrap();
    let public = runtime.block_on(log_key.versions()).unwrap().remove(0).public_key.ed25519_bytes().unwrap();
    for _ in 0..300 {
        let checkpoint = random_checkpoint(&mut rng);
        let body = checkpoint.body();
        let theirs = tlog_tiles::Checkpoint::new(
            &checkpoint.origin,
            checkpoint.size,
            tlog_tiles::Hash(checkpoint.root_hash),
            "",
        )
        .unwrap();
        assert_eq!(theirs.to_bytes(), body.as_bytes(), "seed {seed}");
        let parsed = tlog_tiles::Checkpoint::from_bytes(body.as_bytes()).unwrap();
        assert_eq!(
            (parsed.origin(), parsed.size(), parsed.hash().0),
            (checkpoint.origin.as_str(), checkpoint.size, checkpoint.root_hash)
        );
        assert_eq!(Checkpoint::parse_body(&body).unwrap(), checkpoint, "seed {seed}");

        // notarium signs, as service::checkpoint does; signed_note verifies.
        let name = checkpoint.origin.as_str();
        let vkey = ed25519_verifier_key(name, &public);
        let their_id = signed_note::key_id(name, &[&[1], public.as_slice()].concat());
        assert_eq!(u32::from_be_bytes(ed25519_key_id(name, &public)), their_id, "seed {seed}");
        let signature = runtime.block_on(log_key.sign(None, body.as_bytes())).unwrap().bytes;
        let note = format_note(
            &body,
            &[NoteSignature { name: name.to_owned(), key_id: ed25519_key_id(name, &public), signature }],
        );
        let verifiers =
            signed_note::VerifierList::new(vec![Box::new(signed_note::StandardVerifier::new(&vkey).unwrap())]);
        let opened =
            signed_note::Note::from_bytes(note.as_bytes()).unwrap_or_else(|e| panic!("seed {seed}: {e}: {note}"));
        let (verified, unverified) = opened.verify(&verifiers).unwrap_or_else(|e| panic!("seed {seed}: {e}: {note}"));
        assert_eq!((verified.len(), unverified.len()), (1, 0), "seed {seed}");
        assert_eq!(opened.text(), body.as_bytes());
        assert_eq!(verify_ed25519_note(&note, name, &public).unwrap(), body);

        // signed_note signs with a fresh key; notarium verifies.
        let secret: [u8; 32] = rng.bytes(32).try_into().unwrap();
        let their_public = ed25519_dalek::SigningKey::from_bytes(&secret).verifying_key().to_bytes();
        let mut typed = vec![1];
        typed.extend_from_slice(&secret);
        let id = signed_note::key_id(name, &[&[1], their_public.as_slice()].concat());
        let signer =
            signed_note::StandardSigner::new(&format!("PRIVATE+KEY+{name}+{id:08x}+{}", BASE64.encode(&typed)))
                .unwrap();
        let mut their_note = signed_note::Note::new(body.as_bytes(), &[]).unwrap();
        their_note.add_sigs(&[&signer]).unwrap();
        let their_note = String::from_utf8(their_note.to_bytes()).unwrap();
        assert_eq!(u32::from_be_bytes(ed25519_key_id(name, &their_public)), id, "seed {seed}");
        assert_eq!(verify_ed25519_note(&their_note, name, &their_public).unwrap(), body, "seed {seed}: {their_note}");
        assert!(verify_ed25519_note(&their_note, name, &public).is_err(), "seed {seed}");
        let (text, signatures) = parse_note(&their_note).unwrap();
        assert_eq!(format_note(&text, &signatures), their_note, "seed {seed}");
    }
}

// ---- Image references (docs/FORMATS.md §1) against the distribution reference grammar ----

/// The grammar of github.com/distribution/reference (regexp.go, v0.6: `ReferenceRegexp` and
/// `anchoredNameRegexp`), spelled out from its published expressions. Go's `\w` is ASCII, so it is written
/// `[0-9A-Za-z_]` here (Rust's `\w` is Unicode).
struct DistributionGrammar {
    reference: regex::Regex,
    name: regex::Regex,
}

/// distribution's NameTotalLengthMax: `reference.Parse` refuses a longer name (domain and path as written).
const NAME_TOTAL_LENGTH_MAX: usize = 255;

impl DistributionGrammar {
    fn new() -> Self {
        let alphanumeric = "[a-z0-9]+";
        let separator = "(?:[._]|__|[-]+)";
        let domain_name_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
        let optional_port = "(?::[0-9]+)?";
        let tag = "[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}";
        let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}";
        let ipv6address = r"\[(?:[a-fA-F0-9:]+)\]";
        let domain_name = format!(r"{domain_name_component}(?:\.{domain_name_component})*");
        let host = format!("(?:{domain_name}|{ipv6address})");
        let domain_and_port = format!("{host}{optional_port}");
        let path_component = format!("{alphanumeric}(?:{separator}{alphanumeric})*");
        let remote_name = format!("{path_component}(?:/{path_component})*");
        let name = format!("(?:{domain_and_port}/)?{remote_name}");
        Self {
            reference: regex::Regex::new(&format!("^({name})(?::({tag}))?(?:@({digest}))?$")).unwrap(),
            name: regex::Regex::new(&format!("^(?:({domain_and_port})/)?({remote_name})$")).unwrap(),
        }
    }

    /// The reference notarium should make of `input` if distribution accepts it: the name split into domain
    /// and path, then the canonicalization docs/FORMATS.md §1 documents (host lowercase, `:443` dropped where
    /// the host still reads as one, Docker Hub's aliases `docker.io` with `library/` before a single segment,
    /// tag `latest` by default).
    fn canonical(&self, input: &str) -> Option<(String, String, Option<String>, Option<String>)> {
        let parts = self.reference.captures(input)?;
        let name = parts.get(1)?.as_str();
        if name.len() > NAME_TOTAL_LENGTH_MAX {
            return None;
        }
        let split = self.name.captures(name)?;
        let domain = split.get(1).map_or("", |d| d.as_str()).to_ascii_lowercase();
        // A dotless host other than localhost keeps `:443`: `mirror/app` would read as a Docker Hub path.
        let domain = match domain.strip_suffix(":443") {
            Some(host) if host.contains('.') || host == "localhost" => host,
            _ => &domain,
        };
        let registry = if ["index.docker.io", "registry-1.docker.io"].contains(&domain) { "docker.io" } else { domain };
        let path = &split[2];
        let repository =
            if registry == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path.to_owned() };
        let digest = parts.get(3).map(|d| d.as_str().to_owned());
        let tag = parts.get(2).map(|t| t.as_str().to_owned()).or_else(|| digest.is_none().then(|| "latest".to_owned()));
        Some((registry.to_owned(), repository, tag, digest))
    }
}

fn random_from(rng: &mut Rng, alphabet: &str, max_len: u64) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    let len = 1 + rng.below(max_len);
    (0..len).map(|_| *rng.pick(&chars)).collect()
}

fn random_host(rng: &mut Rng) -> String {
    let name = match rng.below(6) {
        0 => rng
            .pick(&["localhost", "LocalHost", "docker.io", "index.docker.io", "registry-1.docker.io", "[::1]"])
            .to_string(),
        1 => format!("{}.{}.{}.{}", rng.below(300), rng.below(256), rng.below(256), rng.below(256)),
        _ => (0..1 + rng.below(4))
            .map(|_| {
                let alphabet = if rng.one_in(4) { "abcXYZ019-" } else { "abcxyz019" };
                random_from(rng, alphabet, 12)
            })
            .collect::<Vec<_>>()
            .join("."),
    };
    let port = match rng.below(6) {
        0 => ":443".to_owned(),
        1 => format!(":{}", rng.below(70_000)),
        2 => rng.pick(&[":80", ":0", ":05000", ":", ":5000"]).to_string(),
        _ => String::new(),
    };
    format!("{name}{port}")
}

fn random_path_component(rng: &mut Rng) -> String {
    // The grammar's separators, then ones it refuses.
    const SEPARATORS: &[&str] = &[".", "_", "__", "-", "--", "---", ".", "_", "-", "___", "..", "._", "-_", ".-"];
    let mut component = random_from(rng, "abz019", 6);
    for _ in 0..rng.below(3) {
        let separator: &&str = rng.pick(SEPARATORS);
        component.push_str(separator);
        component.push_str(&random_from(rng, "abz019", 6));
    }
    component
}

fn random_reference(rng: &mut Rng) -> String {
    let mut reference = random_host(rng);
    for _ in 0..1 + rng.below(3) {
        reference.push('/');
        reference.push_str(&random_path_component(rng));
    }
    if rng.one_in(8) {
        let long = "a".repeat(200 + rng.below(80) as usize);
        reference.push('/');
        reference.push_str(&long);
    }
    if rng.one_in(2) {
        reference.push(':');
        let longest = if rng.one_in(10) { 140 } else { 12 };
        reference.push_str(&random_from(rng, "aZ09_.-", longest));
    }
    if rng.one_in(3) {
        let hex: String = (0..64).map(|_| *rng.pick(&['0', '9', 'a', 'f'])).collect();
        reference.push_str(&format!("@sha256:{hex}"));
    }
    reference
}

/// `reference` with a few characters inserted, removed or replaced by ones the grammar cares about.
fn mutate(rng: &mut Rng, reference: &str) -> String {
    const INTERESTING: &[char] = &['/', ':', '@', '.', '-', '_', 'A', 'a', '0', ' ', '\u{e9}', '[', ']', '%', '+'];
    let mut chars: Vec<char> = reference.chars().collect();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(chars.len() as u64 + 1) as usize;
        match rng.below(3) {
            0 => chars.insert(at, *rng.pick(INTERESTING)),
            1 if at < chars.len() => {
                chars.remove(at);
            }
            _ if at < chars.len() => chars[at] = *rng.pick(INTERESTING),
            _ => chars.push(*rng.pick(INTERESTING)),
        }
    }
    chars.into_iter().collect()
}

#[test]
fn image_references_are_a_subset_of_the_distribution_grammar_with_the_documented_canonical_forms() {
    let mut rng = Rng::seeded("reference");
    let grammar = DistributionGrammar::new();
    let (mut accepted, mut refused_by_both) = (0, 0);
    for _ in 0..5000 {
        let generated = random_reference(&mut rng);
        let input = if rng.one_in(2) { mutate(&mut rng, &generated) } else { generated };
        let theirs = grammar.canonical(&input);
        match ImageReference::parse(&input) {
            Ok(ours) => {
                let theirs = theirs.unwrap_or_else(|| {
                    panic!("seed {}: notarium accepts {input:?}, which distribution's grammar refuses", rng.seed)
                });
                let ours = (ours.registry, ours.repository, ours.tag, ours.digest.map(|d| d.to_string()));
                assert_eq!(ours, theirs, "seed {}: {input:?}", rng.seed);
                accepted += 1;
            }
            Err(_) => refused_by_both += usize::from(theirs.is_none()),
        }
    }
    assert!(
        accepted > 500 && refused_by_both > 500,
        "seed {}: {accepted} accepted, {refused_by_both} refused",
        rng.seed
    );
}
