//! Sigstore `TrustedRoot` documents: parsing is bounded in allocation by the input's size and gives the same
//! root twice, every log key it returns re-reads from its DER to itself, and every validity window it keeps
//! ends no earlier than it starts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notarium::pki::TrustedRoot;
use notarium::pki::key::VerifyingKey;

fuzz_target!(|input: &[u8]| {
    let parsed = notarium_fuzz::bounded("TrustedRoot::parse", input.len(), 64, 1 << 20, || TrustedRoot::parse(input));
    let Ok(root) = parsed else { return };
    let again = TrustedRoot::parse(input).expect("a root that parsed once parses again");
    assert_eq!(format!("{again:?}"), format!("{root:?}"), "parsing the same bytes twice gave two roots");
    for log in root.tlogs.iter().chain(&root.ctlogs) {
        let key = VerifyingKey::from_spki_der(log.key.spki_der()).expect("a log key re-reads from its own DER");
        assert_eq!(key.spki_der(), log.key.spki_der());
        assert_window(log.validity);
    }
    for authority in root.certificate_authorities.iter().chain(&root.timestamp_authorities) {
        assert_window(authority.validity);
    }
});

fn assert_window(validity: notarium::pki::trusted_root::Validity) {
    if let Some(end) = validity.end {
        assert!(validity.start <= end, "a validity window ends before it starts: {validity:?}");
    }
}
