//! Checkpoints and signed notes: a parsed body or note is written back by the writer to text that parses
//! to the same value, and a note verifies under a key only with a signature that key made.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use notarium::formats::checkpoint::{Checkpoint, format_note, parse_note, verify_ed25519_note};

/// No input carries a signature by this key (its secret is all zeros and no seed holds one).
static KEY: LazyLock<[u8; 32]> =
    LazyLock::new(|| ed25519_dalek::SigningKey::from_bytes(&[0; 32]).verifying_key().to_bytes());

fuzz_target!(|input: &str| {
    if let Ok(checkpoint) = Checkpoint::parse_body(input) {
        let body = checkpoint.body();
        assert_eq!(Checkpoint::parse_body(&body).as_ref(), Ok(&checkpoint), "{input:?} written as {body:?}");
    }
    if let Ok((text, signatures)) = parse_note(input) {
        let note = format_note(&text, &signatures);
        assert_eq!(parse_note(&note), Ok((text, signatures)), "{input:?} written as {note:?}");
    }
    assert!(verify_ed25519_note(input, "fuzz.example/log", &KEY).is_err(), "an unsigned note verified");
});
