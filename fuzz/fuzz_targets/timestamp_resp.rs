//! RFC 3161 `TimeStampResp` replies come from the timestamp authority named by
//! `--timestamp-url` (any server on the network): parsing one must never panic, and a token
//! in an accepted reply goes through the request/reply comparison (TSTInfo messageImprint and
//! nonce) without panicking either. Seeds: `fuzz/seeds/timestamp_resp` (a granted and a
//! rejected reply made by `openssl ts -reply`).
#![no_main]

use berth_trust::SignatureAlgorithm;
use berth_trust::tsa::{TimeStampReq, parse_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(resp) = parse_response(data) else {
        return;
    };
    let _ = resp.status.to_string();
    if let Some(token) = &resp.token
        && let Ok(req) = TimeStampReq::new(b"signature", SignatureAlgorithm::Es256)
    {
        let _ = req.check_echo(token);
    }
});
