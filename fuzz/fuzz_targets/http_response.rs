//! The revocation client (`berth_trust::revocation`, a small blocking HTTP/1.1 client) reads
//! whatever a CRL distribution point or OCSP responder named in a certificate sends back:
//! parsing it (status line, headers, Content-Length, chunked bodies, redirects) must never
//! panic, and a body it returns is never over the limit. The first byte picks the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&l, raw)) = data.split_first() else {
        return;
    };
    let limit = usize::from(l) * 16;
    if let Ok(Some(body)) = berth_trust::revocation::fuzz_http_response(raw, limit) {
        assert!(body.len() <= limit, "a body over the limit");
    }
});
