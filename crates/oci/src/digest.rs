//! Content digests: parsing, hashing and verifying.
//!
//! image-spec "Digests": `algorithm ":" encoded`, where algorithm is
//! `[a-z0-9]+([+._-][a-z0-9]+)*` and encoded is `[a-zA-Z0-9=_-]+`. Only the
//! two registered algorithms berth can verify are accepted: `sha256` (64
//! lowercase hex characters) and `sha512` (128). A well-formed digest with any
//! other algorithm is [`DigestError::Unsupported`], distinct from
//! [`DigestError::Invalid`], so that a registry can answer `UNSUPPORTED`
//! rather than `DIGEST_INVALID` (distribution-spec "Error Codes").

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest piece of rejected input an error keeps (inputs come from clients).
const MAX_ERROR_INPUT: usize = 128;

/// A digest algorithm berth can compute and verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the algorithm of nearly all content in the wild.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The name used in digests: `"sha256"` or `"sha512"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Number of hex characters in an encoded digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            other => Err(DigestError::Unsupported {
                algorithm: truncate(other),
            }),
        }
    }
}

/// What went wrong with a digest: parsing one, or checking content against one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The string is not a digest (image-spec "Digests" grammar, or the hex
    /// part of a sha256/sha512 digest is malformed).
    #[error("invalid digest {input:?}: {reason}")]
    Invalid {
        /// The rejected input (cut to 128 characters).
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The string is a well-formed digest of an algorithm berth does not support.
    #[error("unsupported digest algorithm {algorithm:?}: only sha256 and sha512 are supported")]
    Unsupported {
        /// The algorithm named in the digest (cut to 128 characters).
        algorithm: String,
    },
    /// Content hashed to a different digest than expected.
    #[error("digest mismatch: expected {expected}, content hashes to {actual}")]
    Mismatch {
        /// The digest the content was claimed to have.
        expected: Digest,
        /// The digest the content actually has.
        actual: Digest,
    },
    /// Content has a different length than expected.
    #[error("size mismatch: expected {expected} bytes, content has {actual}")]
    SizeMismatch {
        /// The size the content was claimed to have.
        expected: u64,
        /// The number of bytes seen (when the content is longer than
        /// expected, reading stops as soon as that is known, so this can be
        /// smaller than the full length).
        actual: u64,
    },
}

/// A validated `sha256:<64 hex>` or `sha512:<128 hex>` digest.
///
/// Holds the whole string, so [`Digest::as_str`] and `Display` are free.
/// Ordering is the ordering of the strings.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    repr: String,
    algorithm: Algorithm,
}

impl Digest {
    /// Parses `alg:hex`. Only `sha256` and `sha512` are accepted, with exactly
    /// 64 or 128 lowercase hex characters.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let invalid = |reason| DigestError::Invalid {
            input: truncate(s),
            reason,
        };
        let Some((alg, encoded)) = s.split_once(':') else {
            return Err(invalid("missing ':' between algorithm and encoded digest"));
        };
        if !is_algorithm_grammar(alg) {
            return Err(invalid(
                "algorithm must be lowercase letters and digits, joined by '+', '.', '_' or '-'",
            ));
        }
        if encoded.is_empty() {
            return Err(invalid("encoded digest is empty"));
        }
        if !encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
        {
            return Err(invalid(
                "encoded digest may only contain letters, digits, '=', '_' and '-'",
            ));
        }
        let algorithm: Algorithm = alg.parse()?;
        if encoded.len() != algorithm.hex_len() {
            return Err(invalid(match algorithm {
                Algorithm::Sha256 => "a sha256 digest must have exactly 64 hex characters",
                Algorithm::Sha512 => "a sha512 digest must have exactly 128 hex characters",
            }));
        }
        if !encoded
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(invalid("hex digits must be lowercase 0-9 and a-f"));
        }
        Ok(Digest {
            repr: s.to_owned(),
            algorithm,
        })
    }

    /// The algorithm of this digest.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part, without the `alg:` prefix.
    pub fn hex(&self) -> &str {
        self.repr
            .get(self.algorithm.as_str().len() + 1..)
            .unwrap_or_default()
    }

    /// The whole digest, `"sha256:<hex>"`.
    pub fn as_str(&self) -> &str {
        &self.repr
    }

    /// Digest of `data` with `alg`.
    pub fn of(alg: Algorithm, data: &[u8]) -> Digest {
        let mut digester = Digester::new(alg);
        digester.update(data);
        digester.finalize()
    }

    /// sha256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        Digest::of(Algorithm::Sha256, data)
    }

    /// Builds a digest from raw hash output of the right length.
    fn from_raw(algorithm: Algorithm, raw: &[u8]) -> Digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut repr = String::with_capacity(algorithm.as_str().len() + 1 + raw.len() * 2);
        repr.push_str(algorithm.as_str());
        repr.push(':');
        for b in raw {
            repr.push(char::from(HEX[usize::from(b >> 4)]));
            repr.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        Digest { repr, algorithm }
    }
}

/// `algorithm-component (algorithm-separator algorithm-component)*` with
/// components `[a-z0-9]+` and separators `[+._-]` (image-spec "Digests").
fn is_algorithm_grammar(alg: &str) -> bool {
    !alg.is_empty()
        && alg.split(['+', '.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Cuts client input kept in an error to a bounded length.
pub(crate) fn truncate(s: &str) -> String {
    if s.len() <= MAX_ERROR_INPUT {
        return s.to_owned();
    }
    let mut end = MAX_ERROR_INPUT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.repr)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.repr
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.repr)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = DigestError;

    fn try_from(d: &oci_spec::image::Digest) -> Result<Self, Self::Error> {
        Digest::parse(d.as_ref())
    }
}

impl TryFrom<&Digest> for oci_spec::image::Digest {
    type Error = oci_spec::OciSpecError;

    fn try_from(d: &Digest) -> Result<Self, Self::Error> {
        oci_spec::image::Digest::try_from(d.as_str())
    }
}

/// Streaming hasher producing a [`Digest`].
///
/// The hash implementation behind it is a private choice (see
/// `docs/digest-bench.md`): today `ring::digest`, which uses SHA-NI and
/// AVX2 assembly on x86-64.
pub struct Digester {
    algorithm: Algorithm,
    context: ring::digest::Context,
    bytes_hashed: u64,
}

impl Digester {
    /// A hasher for `algorithm` that has seen no bytes yet.
    pub fn new(algorithm: Algorithm) -> Digester {
        let ring_alg = match algorithm {
            Algorithm::Sha256 => &ring::digest::SHA256,
            Algorithm::Sha512 => &ring::digest::SHA512,
        };
        Digester {
            algorithm,
            context: ring::digest::Context::new(ring_alg),
            bytes_hashed: 0,
        }
    }

    /// Feeds `data` to the hash.
    pub fn update(&mut self, data: &[u8]) {
        self.context.update(data);
        self.bytes_hashed = self
            .bytes_hashed
            .saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
    }

    /// The digest of everything fed so far.
    pub fn finalize(self) -> Digest {
        Digest::from_raw(self.algorithm, self.context.finish().as_ref())
    }

    /// Check everything fed so far against `expected` and, when given, `size`: the size
    /// first ([`DigestError::SizeMismatch`]), then the digest ([`DigestError::Mismatch`]).
    pub fn verify(self, expected: &Digest, size: Option<u64>) -> Result<(), DigestError> {
        if let Some(size) = size
            && size != self.bytes_hashed
        {
            return Err(DigestError::SizeMismatch {
                expected: size,
                actual: self.bytes_hashed,
            });
        }
        let actual = self.finalize();
        if actual == *expected {
            Ok(())
        } else {
            Err(DigestError::Mismatch {
                expected: expected.clone(),
                actual,
            })
        }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Number of bytes fed so far.
    pub fn bytes_hashed(&self) -> u64 {
        self.bytes_hashed
    }
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Digester")
            .field("algorithm", &self.algorithm)
            .field("bytes_hashed", &self.bytes_hashed)
            .finish_non_exhaustive()
    }
}

/// A `Digester` is a sink, so `std::io::copy(&mut reader, &mut digester)` works.
impl io::Write for Digester {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Wraps a reader and checks, when it reaches end of stream, that what was
/// read has the expected digest (and size, when one is given).
///
/// Bytes are handed to the caller as they are read; only the final read
/// (the one that would return `Ok(0)`) knows the verdict. On a mismatch that
/// read returns an [`io::Error`] of kind [`io::ErrorKind::InvalidData`] whose
/// inner error is a [`DigestError`] ([`DigestError::Mismatch`] or
/// [`DigestError::SizeMismatch`]), so callers must treat everything read so
/// far as untrusted until they have seen `Ok(0)`. A stream longer than an
/// expected size fails as soon as the extra byte arrives. After the verdict,
/// further reads repeat it: `Ok(0)` or the same error.
pub struct VerifyingReader<R: Read> {
    inner: R,
    expected: Digest,
    expected_size: Option<u64>,
    bytes_read: u64,
    state: VerifyState,
}

enum VerifyState {
    Reading(Digester),
    Verified,
    Failed(DigestError),
}

impl<R: Read> VerifyingReader<R> {
    /// Verifies `inner` against `expected` and, if given, `expected_size`.
    pub fn new(inner: R, expected: Digest, expected_size: Option<u64>) -> VerifyingReader<R> {
        let digester = Digester::new(expected.algorithm());
        VerifyingReader {
            inner,
            expected,
            expected_size,
            bytes_read: 0,
            state: VerifyState::Reading(digester),
        }
    }

    /// The digest the content must have.
    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// Number of bytes read from the inner reader so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Whether end of stream was reached and the content matched.
    pub fn is_verified(&self) -> bool {
        matches!(self.state, VerifyState::Verified)
    }

    /// Gives back the inner reader (whether or not verification happened).
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn fail(&mut self, err: DigestError) -> io::Error {
        self.state = VerifyState::Failed(err.clone());
        io::Error::new(io::ErrorKind::InvalidData, err)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let digester = match &mut self.state {
            VerifyState::Reading(d) => d,
            VerifyState::Verified => return Ok(0),
            VerifyState::Failed(err) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, err.clone()));
            }
        };
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n > 0 {
            let chunk = buf.get(..n).unwrap_or_default();
            digester.update(chunk);
            self.bytes_read = digester.bytes_hashed();
            if let Some(expected) = self.expected_size {
                let actual = self.bytes_read;
                if actual > expected {
                    return Err(self.fail(DigestError::SizeMismatch { expected, actual }));
                }
            }
            return Ok(n);
        }
        // End of stream: give the verdict.
        let VerifyState::Reading(digester) =
            std::mem::replace(&mut self.state, VerifyState::Verified)
        else {
            return Ok(0);
        };
        let actual_size = digester.bytes_hashed();
        if let Some(expected) = self.expected_size.filter(|&e| e != actual_size) {
            return Err(self.fail(DigestError::SizeMismatch {
                expected,
                actual: actual_size,
            }));
        }
        let actual = digester.finalize();
        if actual != self.expected {
            let expected = self.expected.clone();
            return Err(self.fail(DigestError::Mismatch { expected, actual }));
        }
        Ok(0)
    }
}

impl<R: Read> fmt::Debug for VerifyingReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            VerifyState::Reading(_) => "reading",
            VerifyState::Verified => "verified",
            VerifyState::Failed(_) => "failed",
        };
        f.debug_struct("VerifyingReader")
            .field("expected", &self.expected)
            .field("expected_size", &self.expected_size)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
