//! Image indexes: entries are listed only from a well-formed index, each with a valid digest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notarium::formats::image_index::index_entries;

const MEDIA_TYPES: [&str; 3] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
];

fuzz_target!(|input: &[u8]| {
    let Some((&selector, document)) = input.split_first() else { return };
    let media_type = MEDIA_TYPES[usize::from(selector) % MEDIA_TYPES.len()];
    let Ok(entries) =
        notarium_fuzz::bounded("index_entries", document.len(), 64, 1 << 20, || index_entries(media_type, document))
    else {
        return;
    };
    for entry in entries {
        assert_eq!(entry.digest.as_str(), entry.descriptor.digest);
    }
});
