//! X.509 chains through `pki::verify_chain` on arbitrary DER, against the public-good production root's
//! Fulcio authorities at a fixed time: never a panic, allocation bounded by the input's size, and a chain that
//! verifies names an authority of the root and a leaf valid at that time.
//!
//! Input: one byte `n` (the number of intermediates, modulo 4), then the leaf and each intermediate as a
//! 2-byte big-endian length and that many bytes; what is left over is ignored.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use notarium::pki::TrustedRoot;
use notarium::pki::certificate::verify_chain;
use time::OffsetDateTime;

static ROOT: LazyLock<TrustedRoot> = LazyLock::new(|| {
    TrustedRoot::parse(include_bytes!(
        "../../tests/fixtures/third-party/sigstore-conformance/production-trusted_root.json"
    ))
    .expect("the production root parses")
});

/// Splits `input` into the leaf and its intermediates (see the module's doc).
fn certificates(input: &[u8]) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let (&count, mut rest) = input.split_first()?;
    let mut next = || {
        let (length, tail) = rest.split_at_checked(2)?;
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        let (der, tail) = tail.split_at_checked(length)?;
        rest = tail;
        Some(der.to_vec())
    };
    let leaf = next()?;
    let intermediates = (0..count % 4).map(|_| next()).collect::<Option<Vec<_>>>()?;
    Some((leaf, intermediates))
}

fuzz_target!(|input: &[u8]| {
    let Some((leaf, intermediates)) = certificates(input) else { return };
    // 2024-03-19T17:26:26Z: the moment the conformance suite's happy-path leaf was issued.
    let at = OffsetDateTime::from_unix_timestamp(1_710_869_186).expect("a valid time");
    let authorities = &ROOT.certificate_authorities;
    let verified = notarium_fuzz::bounded("verify_chain", input.len(), 64, 1 << 20, || {
        verify_chain(&leaf, &intermediates, authorities, at)
    });
    let Ok(verified) = verified else { return };
    assert!(authorities.iter().any(|a| a.name == verified.authority), "verified under an authority the root lacks");
    assert!(verified.identity.not_before <= at && at <= verified.identity.not_after, "the leaf was not valid then");
});
