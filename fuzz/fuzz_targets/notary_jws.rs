//! Notary Project JWS envelopes (`application/jose+json`) come from any registry a signature
//! manifest is fetched from: parsing must never panic, and an accepted envelope must hold what
//! the specification requires of it.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common/notary.rs"]
mod notary;

fuzz_target!(|data: &[u8]| {
    notary::check_envelope(data, berth_trust::envelope::MEDIA_TYPE_JWS);
});
