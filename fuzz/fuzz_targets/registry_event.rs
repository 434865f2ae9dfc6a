//! Distribution notification envelopes: every accepted event makes an entry that is canonical JSON (it
//! reads back and is written again to the same bytes, so it hashes the same after a round trip).
#![no_main]

use libfuzzer_sys::fuzz_target;
use notarium::formats::canonical::canonical_json;
use notarium::register::event::{RegistryEnvelope, registry_entry};

fuzz_target!(|input: &[u8]| {
    let Ok(envelope) = serde_json::from_slice::<RegistryEnvelope>(input) else { return };
    for event in &envelope.events {
        let entry = registry_entry(event);
        let read: serde_json::Value = serde_json::from_slice(&entry).expect("an entry is JSON");
        let again = canonical_json(&read);
        assert_eq!(String::from_utf8_lossy(&again), String::from_utf8_lossy(&entry), "an entry is not canonical");
    }
});
