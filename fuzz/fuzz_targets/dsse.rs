//! DSSE envelopes: `parse_bounded` accepts exactly what `parse` accepts within the signature limit, keeps
//! its allocations bounded by the input's size, a parsed envelope round-trips, and the cosign key verifies
//! no envelope but one over the payload it signed.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use notarium::formats::dsse::Envelope;
use notarium::keys::PublicKey;

const MAX_SIGNATURES: usize = 4;

static KEY: LazyLock<PublicKey> =
    LazyLock::new(|| PublicKey::from_pem(notarium_fuzz::COSIGN_KEY_PEM).expect("the fixture key parses"));
static SIGNED: LazyLock<Envelope> =
    LazyLock::new(|| Envelope::parse(notarium_fuzz::COSIGN_ENVELOPE).expect("the fixture envelope parses"));

fuzz_target!(|input: &[u8]| {
    let bounded = notarium_fuzz::bounded("Envelope::parse_bounded", input.len(), 8, 64 << 10, || {
        Envelope::parse_bounded(input, MAX_SIGNATURES)
    });
    let Ok(envelope) = Envelope::parse(input) else {
        assert!(bounded.is_err(), "parse_bounded accepted what parse refused");
        return;
    };
    assert_eq!(bounded.is_ok(), envelope.signatures.len() <= MAX_SIGNATURES);
    let again = Envelope::parse(&envelope.to_json()).expect("a serialized envelope parses");
    assert_eq!(again, envelope);
    if let Ok(payload) = envelope.verify(&KEY) {
        assert_eq!(payload, SIGNED.payload.as_slice(), "the key verified a payload it never signed");
        assert_eq!(envelope.payload_type, SIGNED.payload_type, "the key verified a payload type it never signed");
    }
});
