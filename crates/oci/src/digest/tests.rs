use super::*;
use std::io::{Cursor, Read, Write};

const EMPTY_SHA256: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const ABC_SHA256: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const ABC_SHA512: &str = "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

fn d(s: &str) -> Digest {
    Digest::parse(s).unwrap()
}

#[test]
fn known_vectors() {
    assert_eq!(Digest::sha256_of(b"").as_str(), EMPTY_SHA256);
    assert_eq!(Digest::sha256_of(b"abc").as_str(), ABC_SHA256);
    assert_eq!(Digest::of(Algorithm::Sha512, b"abc").as_str(), ABC_SHA512);
    // FIPS 180-2 two-block message.
    assert_eq!(
        Digest::sha256_of(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").hex(),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
}

#[test]
fn parse_valid() {
    let dg = d(ABC_SHA256);
    assert_eq!(dg.algorithm(), Algorithm::Sha256);
    assert_eq!(dg.hex(), &ABC_SHA256[7..]);
    assert_eq!(dg.as_str(), ABC_SHA256);
    assert_eq!(dg.to_string(), ABC_SHA256);
    assert_eq!(ABC_SHA256.parse::<Digest>(), Ok(dg.clone()));
    assert_eq!(format!("{dg:?}"), format!("Digest({ABC_SHA256})"));

    let dg = d(ABC_SHA512);
    assert_eq!(dg.algorithm(), Algorithm::Sha512);
    assert_eq!(dg.hex().len(), 128);
}

#[test]
fn parse_invalid() {
    let hex64 = "a".repeat(64);
    let cases = [
        String::new(),
        "sha256".to_owned(),
        "sha256:".to_owned(),
        format!(":{hex64}"),
        format!("sha256:{}", "A".repeat(64)),
        format!("sha256:{}", "a".repeat(63)),
        format!("sha256:{}", "a".repeat(65)),
        format!("sha256:{}g", "a".repeat(63)),
        format!("sha512:{hex64}"),
        format!("SHA256:{hex64}"),
        format!("sha256 :{hex64}"),
        format!(" sha256:{hex64}"),
        format!("sha256:{hex64}\n"),
        format!("sha256:{hex64} "),
        format!("sha256::{hex64}"),
        format!("sha256:{hex64}:"),
        "sha256:abc/def".to_owned(),
        "../blah:this-is-an-attack".to_owned(),
        format!("sha-:{hex64}"),
        format!("+sha256:{hex64}"),
        format!("sha256..x:{hex64}"),
        format!("sha256:{}é", "a".repeat(63)),
        format!("ſha256:{hex64}"),
    ];
    for input in cases {
        match Digest::parse(&input) {
            Err(DigestError::Invalid { .. }) => {}
            other => panic!("{input:?} should be Invalid, got {other:?}"),
        }
    }
}

#[test]
fn well_formed_other_algorithms_are_unsupported() {
    let cases = [
        ("sha384", format!("sha384:{}", "0".repeat(96))),
        ("md5", "md5:d41d8cd98f00b204e9800998ecf8427e".to_owned()),
        (
            "sha256+b64",
            "sha256+b64:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564".to_owned(),
        ),
        (
            "multihash+base58",
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8".to_owned(),
        ),
        ("blake3", format!("blake3:{}", "0".repeat(64))),
    ];
    for (alg, input) in cases {
        assert_eq!(
            Digest::parse(&input),
            Err(DigestError::Unsupported {
                algorithm: alg.to_owned()
            }),
            "{input}"
        );
    }
    let e = Digest::parse("md5:abc").unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported digest algorithm \"md5\": only sha256 and sha512 are supported"
    );
}

#[test]
fn error_messages() {
    let e = Digest::parse("sha256:abc").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid digest \"sha256:abc\": a sha256 digest must have exactly 64 hex characters"
    );
    // Client input is cut in errors.
    let long = format!("sha256:{}", "z".repeat(100_000));
    match Digest::parse(&long) {
        Err(DigestError::Invalid { input, .. }) => assert!(input.len() < 140, "{}", input.len()),
        other => panic!("{other:?}"),
    }
    // ...on a character boundary.
    let long = "é".repeat(1000);
    assert!(Digest::parse(&long).is_err());
}

#[test]
fn algorithm() {
    assert_eq!(Algorithm::Sha256.as_str(), "sha256");
    assert_eq!(Algorithm::Sha512.as_str(), "sha512");
    assert_eq!(Algorithm::Sha256.hex_len(), 64);
    assert_eq!(Algorithm::Sha512.hex_len(), 128);
    assert_eq!("sha512".parse::<Algorithm>(), Ok(Algorithm::Sha512));
    assert!(matches!(
        "sha1".parse::<Algorithm>(),
        Err(DigestError::Unsupported { algorithm }) if algorithm == "sha1"
    ));
    assert_eq!(Algorithm::Sha256.to_string(), "sha256");
}

#[test]
fn ordering_and_hashing_follow_the_string() {
    let mut v = [d(ABC_SHA512), d(EMPTY_SHA256), d(ABC_SHA256)];
    v.sort();
    let strings: Vec<&str> = v.iter().map(Digest::as_str).collect();
    assert_eq!(strings, [ABC_SHA256, EMPTY_SHA256, ABC_SHA512]);
    let set: std::collections::HashSet<Digest> = [d(ABC_SHA256), d(ABC_SHA256)].into();
    assert_eq!(set.len(), 1);
}

#[test]
fn serde_as_string() {
    let dg = d(ABC_SHA256);
    let json = serde_json::to_string(&dg).unwrap();
    assert_eq!(json, format!("\"{ABC_SHA256}\""));
    assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), dg);
    let err = serde_json::from_str::<Digest>("\"sha256:xyz\"").unwrap_err();
    assert!(err.to_string().contains("invalid digest"), "{err}");
    assert!(serde_json::from_str::<Digest>("42").is_err());
    // Escaped strings (which cannot be borrowed) work too.
    let escaped = format!("\"sha256\\u003a{}\"", &ABC_SHA256[7..]);
    assert_eq!(serde_json::from_str::<Digest>(&escaped).unwrap(), dg);
}

#[test]
fn oci_spec_conversions() {
    let ours = d(ABC_SHA256);
    let theirs = oci_spec::image::Digest::try_from(&ours).unwrap();
    assert_eq!(theirs.to_string(), ABC_SHA256);
    assert_eq!(Digest::try_from(&theirs), Ok(ours));
    let sha384: oci_spec::image::Digest = format!("sha384:{}", "0".repeat(96)).parse().unwrap();
    assert!(matches!(
        Digest::try_from(&sha384),
        Err(DigestError::Unsupported { .. })
    ));
}

#[test]
fn streaming_matches_one_shot() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    for alg in [Algorithm::Sha256, Algorithm::Sha512] {
        let expected = Digest::of(alg, &data);
        for chunk in [1, 3, 63, 64, 65, 127, 128, 129, 4096, 100_000] {
            let mut digester = Digester::new(alg);
            assert_eq!(digester.algorithm(), alg);
            for c in data.chunks(chunk) {
                digester.update(c);
            }
            assert_eq!(digester.bytes_hashed(), 100_000);
            assert_eq!(digester.finalize(), expected, "{alg} chunk {chunk}");
        }
        let mut digester = Digester::new(alg);
        std::io::copy(&mut Cursor::new(&data), &mut digester).unwrap();
        digester.flush().unwrap();
        assert_eq!(digester.finalize(), expected);
    }
    let empty = Digester::new(Algorithm::Sha256);
    assert_eq!(empty.bytes_hashed(), 0);
    assert!(format!("{empty:?}").contains("Sha256"));
    assert_eq!(empty.finalize().as_str(), EMPTY_SHA256);
}

fn digest_error(e: &std::io::Error) -> DigestError {
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<DigestError>())
        .cloned()
        .expect("io::Error carries a DigestError")
}

#[test]
fn verifying_reader_accepts_matching_content() {
    for size in [Some(3), None] {
        let mut r = VerifyingReader::new(Cursor::new(b"abc".to_vec()), d(ABC_SHA256), size);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
        assert!(r.is_verified());
        assert_eq!(r.bytes_read(), 3);
        // Reads after the verdict repeat it.
        assert_eq!(r.read(&mut [0u8; 8]).unwrap(), 0);
        assert_eq!(r.expected(), &d(ABC_SHA256));
        assert!(format!("{r:?}").contains("verified"));
        assert_eq!(r.into_inner().position(), 3);
    }
    let mut r = VerifyingReader::new(Cursor::new(Vec::new()), d(EMPTY_SHA256), Some(0));
    assert_eq!(r.read(&mut [0u8; 8]).unwrap(), 0);
    assert!(r.is_verified());
    let mut r = VerifyingReader::new(Cursor::new(b"abc".to_vec()), d(ABC_SHA512), Some(3));
    std::io::copy(&mut r, &mut std::io::sink()).unwrap();
    assert!(r.is_verified());
}

#[test]
fn verifying_reader_reports_digest_mismatch_at_eof() {
    let mut r = VerifyingReader::new(Cursor::new(b"abd".to_vec()), d(ABC_SHA256), Some(3));
    let mut buf = [0u8; 2];
    // Data flows until end of stream...
    assert_eq!(r.read(&mut buf).unwrap(), 2);
    assert_eq!(r.read(&mut buf).unwrap(), 1);
    // ...where the verdict arrives.
    let e = r.read(&mut buf).unwrap_err();
    assert_eq!(
        digest_error(&e),
        DigestError::Mismatch {
            expected: d(ABC_SHA256),
            actual: Digest::sha256_of(b"abd"),
        }
    );
    assert!(
        e.to_string()
            .starts_with("digest mismatch: expected sha256:ba78"),
        "{e}"
    );
    assert!(!r.is_verified());
    // The failure sticks.
    assert!(matches!(
        digest_error(&r.read(&mut buf).unwrap_err()),
        DigestError::Mismatch { .. }
    ));
    assert!(format!("{r:?}").contains("failed"));

    let mut r = VerifyingReader::new(Cursor::new(b"abd".to_vec()), d(ABC_SHA256), None);
    let e = r.read_to_end(&mut Vec::new()).unwrap_err();
    assert!(matches!(digest_error(&e), DigestError::Mismatch { .. }));
}

#[test]
fn verifying_reader_reports_size_mismatch() {
    // Too short: known at end of stream, before the digest is looked at.
    let mut r = VerifyingReader::new(Cursor::new(b"abc".to_vec()), d(ABC_SHA256), Some(4));
    let e = r.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(
        digest_error(&e),
        DigestError::SizeMismatch {
            expected: 4,
            actual: 3
        }
    );
    assert_eq!(
        e.to_string(),
        "size mismatch: expected 4 bytes, content has 3"
    );

    // Too long: fails as soon as the extra byte arrives, not at the end.
    let endless = std::io::repeat(b'x');
    let mut r = VerifyingReader::new(endless, d(ABC_SHA256), Some(10));
    let mut buf = [0u8; 4];
    assert_eq!(r.read(&mut buf).unwrap(), 4);
    assert_eq!(r.read(&mut buf).unwrap(), 4);
    let e = r.read(&mut buf).unwrap_err();
    assert_eq!(
        digest_error(&e),
        DigestError::SizeMismatch {
            expected: 10,
            actual: 12
        }
    );
    assert_eq!(r.bytes_read(), 12);
}

#[test]
fn verifying_reader_zero_length_reads_are_not_eof() {
    let mut r = VerifyingReader::new(Cursor::new(b"abc".to_vec()), d(ABC_SHA256), Some(3));
    assert_eq!(r.read(&mut []).unwrap(), 0);
    assert!(!r.is_verified());
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert!(r.is_verified());
}

/// Hands out one byte per read and fails once with `Interrupted`.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    interrupted: bool,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.interrupted && self.pos == 1 {
            self.interrupted = true;
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let Some(&b) = self.data.get(self.pos) else {
            return Ok(0);
        };
        buf[0] = b;
        self.pos += 1;
        Ok(1)
    }
}

#[test]
fn verifying_reader_passes_inner_errors_through() {
    let inner = Trickle {
        data: b"abc".to_vec(),
        pos: 0,
        interrupted: false,
    };
    let mut r = VerifyingReader::new(inner, d(ABC_SHA256), Some(3));
    let mut buf = [0u8; 16];
    assert_eq!(r.read(&mut buf).unwrap(), 1);
    assert_eq!(
        r.read(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::Interrupted
    );
    // read_to_end retries Interrupted; the rest verifies.
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"bc");
    assert!(r.is_verified());
}
