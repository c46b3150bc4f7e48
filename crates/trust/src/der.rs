//! A strict reader of the DER subset X.509 certificates use: single-byte tags, definite
//! lengths in their shortest form, no trailing bytes where a structure ends.

/// What is wrong with a DER encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DerError {
    #[error("truncated DER: expected {expected}")]
    Truncated { expected: &'static str },
    #[error("unexpected DER tag 0x{found:02x} where {expected} was expected")]
    UnexpectedTag { expected: &'static str, found: u8 },
    #[error("non-canonical or unsupported DER length")]
    BadLength,
    #[error("multi-byte DER tags are not supported")]
    HighTag,
    #[error("trailing bytes after {after}")]
    Trailing { after: &'static str },
    #[error("invalid DER {what}")]
    Invalid { what: &'static str },
}

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const OID: u8 = 0x06;
pub(crate) const BOOLEAN: u8 = 0x01;
pub(crate) const UTC_TIME: u8 = 0x17;
pub(crate) const GENERALIZED_TIME: u8 = 0x18;

/// A cursor over DER bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

/// One element: its tag, its contents, and its whole encoding (tag + length + contents).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    pub fn read_any(&mut self) -> Result<Tlv<'a>, DerError> {
        let start = self.data;
        let (&tag, rest) = start
            .split_first()
            .ok_or(DerError::Truncated { expected: "a tag" })?;
        if tag & 0x1f == 0x1f {
            return Err(DerError::HighTag);
        }
        let (&first, mut rest) = rest.split_first().ok_or(DerError::Truncated {
            expected: "a length",
        })?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(DerError::BadLength);
            }
            let (bytes, r) = rest.split_at(n);
            rest = r;
            if bytes[0] == 0 {
                return Err(DerError::BadLength);
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return Err(DerError::BadLength);
            }
            len
        };
        if rest.len() < len {
            return Err(DerError::Truncated {
                expected: "element contents",
            });
        }
        let (value, after) = rest.split_at(len);
        let header = start.len() - rest.len();
        let raw = &start[..header + len];
        self.data = after;
        Ok(Tlv { tag, value, raw })
    }

    pub fn read(&mut self, tag: u8, expected: &'static str) -> Result<Tlv<'a>, DerError> {
        match self.peek_tag() {
            Some(t) if t == tag => self.read_any(),
            Some(found) => Err(DerError::UnexpectedTag { expected, found }),
            None => Err(DerError::Truncated { expected }),
        }
    }

    /// Reads an element only if its tag is `tag`.
    pub fn read_optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read_any().map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn finish(&self, after: &'static str) -> Result<(), DerError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(DerError::Trailing { after })
        }
    }
}

/// Reads exactly one element of `tag` from `data`, with nothing after it.
pub(crate) fn parse_single<'a>(
    data: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<Tlv<'a>, DerError> {
    let mut r = Reader::new(data);
    let tlv = r.read(tag, what)?;
    r.finish(what)?;
    Ok(tlv)
}

/// The contents of a BIT STRING with no unused bits.
pub(crate) fn bit_string_bytes(value: &[u8]) -> Result<&[u8], DerError> {
    match value.split_first() {
        Some((0, rest)) => Ok(rest),
        _ => Err(DerError::Invalid {
            what: "bit string (unused bits)",
        }),
    }
}

/// A DER BOOLEAN's value (0x00 or 0xff only).
pub(crate) fn boolean(value: &[u8]) -> Result<bool, DerError> {
    match value {
        [0x00] => Ok(false),
        [0xff] => Ok(true),
        _ => Err(DerError::Invalid { what: "boolean" }),
    }
}

/// A small non-negative INTEGER.
pub(crate) fn small_uint(value: &[u8]) -> Result<u64, DerError> {
    if value.is_empty() || value.len() > 8 || value[0] & 0x80 != 0 {
        return Err(DerError::Invalid { what: "integer" });
    }
    if value.len() > 1 && value[0] == 0 && value[1] & 0x80 == 0 {
        return Err(DerError::Invalid {
            what: "integer (non-minimal)",
        });
    }
    Ok(value.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Dotted form of an OID, for messages.
pub(crate) fn oid_to_string(oid: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut acc: u64 = 0;
    let mut first = true;
    for &b in oid {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if first {
                let (a, b) = if acc < 40 {
                    (0, acc)
                } else if acc < 80 {
                    (1, acc - 40)
                } else {
                    (2, acc - 80)
                };
                parts.push(a.to_string());
                parts.push(b.to_string());
                first = false;
            } else {
                parts.push(acc.to_string());
            }
            acc = 0;
        }
    }
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_must_be_minimal() {
        assert!(Reader::new(&[0x04, 0x81, 0x01, 0xaa]).read_any().is_err());
        assert!(Reader::new(&[0x04, 0x80]).read_any().is_err());
        assert!(Reader::new(&[0x04, 0x02, 0xaa]).read_any().is_err());
        let t = Reader::new(&[0x04, 0x01, 0xaa]).read_any();
        assert_eq!(t.map(|t| t.value.to_vec()), Ok(vec![0xaa]));
        assert_eq!(
            oid_to_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]),
            "1.2.840.113549.1.1.11"
        );
    }
}
