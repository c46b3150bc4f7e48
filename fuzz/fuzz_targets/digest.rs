//! `Digest::parse` on arbitrary UTF-8: never panics, and an accepted digest
//! prints back to exactly the input. The bytes are also hashed one-shot,
//! streamed in two pieces, and read through a `VerifyingReader`, which must
//! all agree.
#![no_main]

use std::io::Read;

use berth_oci::{Algorithm, Digest, Digester, VerifyingReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = std::str::from_utf8(data) {
        if let Ok(digest) = Digest::parse(input) {
            assert_eq!(digest.to_string(), input);
            assert_eq!(digest.as_str(), input);
            assert_eq!(digest.hex().len(), digest.algorithm().hex_len());
            assert_eq!(Digest::parse(&digest.to_string()).as_ref(), Ok(&digest));
        }
    }

    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    for alg in [Algorithm::Sha256, Algorithm::Sha512] {
        let one_shot = Digest::of(alg, data);
        let mut streamed = Digester::new(alg);
        streamed.update(&data[..split]);
        streamed.update(&data[split..]);
        assert_eq!(streamed.bytes_hashed(), data.len() as u64);
        assert_eq!(streamed.finalize(), one_shot);

        let mut reader = VerifyingReader::new(data, one_shot, Some(data.len() as u64));
        let mut out = Vec::new();
        reader
            .read_to_end(&mut out)
            .expect("matching content verifies");
        assert!(reader.is_verified());
        assert_eq!(out, data);
    }
});
