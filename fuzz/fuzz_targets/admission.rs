//! Kubernetes AdmissionReviews: every image found is at the pointers given for it in the object, and the
//! mutating answer patches exactly those pointers.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use notarium::formats::Digest;
use notarium::formats::admission::{AdmissionRequest, AdmissionReview, ImageVerdict};
use serde_json::Value;

fuzz_target!(|input: &[u8]| {
    let Ok(review) = serde_json::from_slice::<Value>(input) else { return };
    let Ok(request) = AdmissionRequest::from_review(review) else { return };
    let object = request.object.clone().unwrap_or_default();
    let Ok(images) = request.images() else { return };
    for image in &images {
        assert_eq!(image.containers.len(), image.pointers.len());
        for pointer in &image.pointers {
            assert_eq!(object.pointer(pointer).and_then(Value::as_str), Some(image.image.as_str()), "{pointer}");
        }
    }
    let _ = AdmissionReview::answer(&request.uid, &verdicts(&images, false));
    let Ok(to_pin) = request.images_to_pin() else { return };
    let pin = AdmissionReview::pin(&request.uid, &verdicts(&to_pin, true));
    let Some(patch) = pin.response.patch else { return };
    let patch = base64::engine::general_purpose::STANDARD.decode(patch).expect("the patch is base64");
    let operations: Vec<Value> = serde_json::from_slice(&patch).expect("the patch is JSON");
    for operation in operations {
        let path = operation["path"].as_str().expect("each operation has a path");
        assert!(to_pin.iter().any(|i| i.pointers.iter().any(|p| p == path)), "patched {path}, no image there");
    }
});

fn verdicts(images: &[notarium::formats::admission::ImageUse], allowed: bool) -> Vec<ImageVerdict> {
    let digest = Digest::of(b"fuzz");
    images
        .iter()
        .map(|image| ImageVerdict { image: image.clone(), digest: Some(digest.clone()), allowed, reasons: vec![] })
        .collect()
}
