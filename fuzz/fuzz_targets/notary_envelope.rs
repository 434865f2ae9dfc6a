//! Notary Project signature envelopes (JWS and COSE_Sign1): the first byte picks the media type, the rest is
//! the envelope. Parsing is bounded in allocation and gives the same envelope twice; verification against a
//! trust store holding only the `notation cert generate-test` certificate of the fixtures never panics, and
//! when it succeeds the envelope's chain carries that certificate and its signature input is what was parsed.
#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use notarium::formats::notary::{COSE_ENVELOPE, JWS_ENVELOPE, NotaryEnvelope};
use notarium::pki::notary::{NotaryTrust, TrustStore, TrustStoreKind, verify_notary};
use time::OffsetDateTime;

static TEST_CERTIFICATE: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let pem = include_str!("../../tests/fixtures/third-party/notation-1.3/generate-test.crt");
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).expect("the fixture is PEM")
});

fuzz_target!(|input: &[u8]| {
    let Some((&selector, envelope)) = input.split_first() else { return };
    let media_type = if selector & 1 == 0 { JWS_ENVELOPE } else { COSE_ENVELOPE };
    let parsed = notarium_fuzz::bounded("NotaryEnvelope::parse", envelope.len(), 64, 1 << 20, || {
        NotaryEnvelope::parse(media_type, envelope)
    });
    let Ok(parsed) = parsed else { return };
    let again = NotaryEnvelope::parse(media_type, envelope).expect("an envelope that parsed once parses again");
    assert_eq!(format!("{again:?}"), format!("{parsed:?}"), "parsing the same bytes twice gave two envelopes");

    let store =
        TrustStore { name: "fuzz".into(), kind: TrustStoreKind::Ca, certificates: vec![TEST_CERTIFICATE.clone()] };
    let trust = NotaryTrust { stores: std::slice::from_ref(&store), crls: &[] };
    // Inside the fixture certificate's one-day validity, so that verification can succeed.
    let now = OffsetDateTime::from_unix_timestamp(1_796_061_600).expect("a fixed time");
    if verify_notary(&parsed, trust, now).is_ok() {
        assert!(
            parsed.certificate_chain.iter().any(|der| *der == *TEST_CERTIFICATE),
            "an envelope verified under a store whose certificate its chain does not carry"
        );
    }
});
