//! Cosign tag-scheme manifests (`.sig`, `.att`): a parsed manifest serializes and parses back to itself,
//! and reading its layers never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notarium::formats::signature_manifest::SignatureManifest;

fuzz_target!(|input: &[u8]| {
    let Ok(manifest) = SignatureManifest::parse(input) else { return };
    let again = SignatureManifest::parse(&manifest.to_json()).expect("a serialized manifest parses");
    assert_eq!(again, manifest);
    for layer in manifest.signature_layers() {
        let _ = layer.signature();
    }
    for layer in manifest.attestation_layers() {
        let _ = layer.predicate_type();
    }
});
