//! Image references and digests: what parses prints back to itself, and parses again to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notarium::formats::{Digest, ImageReference, canonical_pattern, canonical_registry};

fuzz_target!(|input: &str| {
    if let Ok(reference) = ImageReference::parse(input) {
        let printed = reference.to_string();
        let again = ImageReference::parse(&printed).expect("a printed reference parses");
        assert_eq!(again, reference, "{input:?} printed as {printed:?}");
        assert_eq!(again.to_string(), printed);
        let _ = reference.repository_name();
    }
    if let Ok(digest) = Digest::parse(input) {
        assert_eq!(digest.to_string(), input);
        assert_eq!(Digest::parse(digest.as_str()), Ok(digest));
    }
    if let Ok(host) = canonical_registry(input) {
        assert_eq!(canonical_registry(&host).as_ref(), Ok(&host), "canonical form of {input:?} is not canonical");
    }
    let pattern = canonical_pattern(input);
    assert_eq!(canonical_pattern(&pattern), pattern);
});
