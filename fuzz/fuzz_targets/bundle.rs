//! Sigstore bundles: a parsed bundle serializes and parses back to itself, and the envelope it holds is
//! one the DSSE parser accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notarium::formats::bundle::Bundle;
use notarium::formats::dsse::Envelope;

fuzz_target!(|input: &[u8]| {
    let Ok(bundle) = Bundle::parse(input) else { return };
    let again = Bundle::parse(&bundle.to_json()).expect("a serialized bundle parses");
    assert_eq!(again, bundle);
    let _ = (bundle.key_hint(), bundle.content_annotation());
    if let Some(envelope) = bundle.envelope() {
        assert_eq!(Envelope::parse(&envelope.to_json()).as_ref(), Ok(envelope));
    }
});
