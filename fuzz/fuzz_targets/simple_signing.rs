//! Cosign simple-signing payloads: a parsed payload serializes and parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notarium::formats::simple_signing::SimpleSigning;

fuzz_target!(|input: &[u8]| {
    let Ok(payload) = SimpleSigning::parse(input) else { return };
    let again = SimpleSigning::parse(&payload.to_bytes()).expect("a serialized payload parses");
    assert_eq!(again, payload);
    assert_eq!(again.digest(), payload.digest());
    let _ = payload.identity();
});
