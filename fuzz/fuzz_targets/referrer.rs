//! OCI referrers indexes and referrer manifests: a parsed index serializes and parses back to itself, and
//! merging a manifest lists it once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notarium::formats::referrer::ReferrersIndex;

fuzz_target!(|input: &[u8]| {
    if let Ok(index) = ReferrersIndex::parse(input) {
        let again = ReferrersIndex::parse(&index.to_json()).expect("a serialized index parses");
        assert_eq!(again, index);
        let _ = index.bundle_candidates().count();
    }
    let mut index = ReferrersIndex::empty();
    if let Ok(changed) = index.merge(input) {
        assert!(changed, "the empty index did not list a new manifest");
        assert_eq!(index.merge(input), Ok(false), "a manifest was listed twice");
        let again = ReferrersIndex::parse(&index.to_json()).expect("a merged index parses");
        assert_eq!(again, index);
    }
});
