//! The admission webhook's reading of a request body: `berth_admission::review::decode`
//! (AdmissionReview admission.k8s.io/v1, size-bounded) then `objects::new_images` on the
//! object and old object. Never panics; a decoded request has a uid; every image found is
//! the string at its JSON pointer, and an UPDATE's new images are a subset of the object's.
#![no_main]

use berth_admission::objects::{images, new_images};
use berth_admission::review::{AdmissionResponse, ReviewResponse, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = decode(data) else { return };
    assert!(!request.uid.is_empty());
    let Some(object) = &request.object else { return };
    let Ok(all) = images(&request.kind, object) else { return };
    for f in &all {
        assert_eq!(
            object.pointer(&f.pointer).and_then(|v| v.as_str()),
            Some(f.image.as_str()),
            "{}",
            f.pointer
        );
    }
    if let Ok(new) = new_images(&request.kind, object, request.old_object.as_ref()) {
        assert!(new.iter().all(|n| all.contains(n)));
    }
    // the answer always serialises and echoes the uid
    let r = serde_json::to_value(ReviewResponse::new(AdmissionResponse::deny(&request.uid, "x")))
        .unwrap();
    assert_eq!(r["response"]["uid"], request.uid.as_str());
});
