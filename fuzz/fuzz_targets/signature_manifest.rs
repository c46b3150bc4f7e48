//! Signature manifests come from any registry, pushed by anyone with push rights:
//! `berth_trust::manifest::envelope_layer` must never panic, and the layer it accepts is a
//! JWS or COSE envelope of a valid digest within the size limit.
#![no_main]

use berth_trust::EnvelopeFormat;
use berth_trust::envelope::MAX_ENVELOPE_SIZE;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(layer) = berth_trust::manifest::envelope_layer(data) {
        assert!(EnvelopeFormat::from_media_type(layer.media_type().as_ref()).is_ok());
        assert!(berth_oci::descriptor_digest(&layer).is_ok());
        assert!(layer.size() <= MAX_ENVELOPE_SIZE as u64);
    }
});
