//! A small DER writer (X.690) for what berth produces: certificates, public keys and PKCS#8
//! wrappers. Every function returns one complete element; lengths are always in their
//! shortest form, so the output reads back through [`crate::der::Reader`].

use crate::der;

/// One element: `tag`, its length in the shortest form, `content`.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already-encoded elements.
pub(crate) fn sequence(items: &[&[u8]]) -> Vec<u8> {
    tlv(der::SEQUENCE, &items.concat())
}

/// A SET of one already-encoded element (names use one attribute per RDN).
pub(crate) fn set_of_one(item: &[u8]) -> Vec<u8> {
    tlv(der::SET, item)
}

/// An OBJECT IDENTIFIER from its encoded contents.
pub(crate) fn oid(contents: &[u8]) -> Vec<u8> {
    tlv(der::OID, contents)
}

/// A non-negative INTEGER from big-endian magnitude bytes (leading zeros dropped, a zero
/// byte added when the top bit is set).
pub(crate) fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let skip = magnitude.iter().take_while(|b| **b == 0).count();
    let m = &magnitude[skip..];
    let mut content = Vec::with_capacity(m.len() + 1);
    if m.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(m);
    tlv(der::INTEGER, &content)
}

/// A small non-negative INTEGER.
pub(crate) fn small_integer(n: u64) -> Vec<u8> {
    unsigned_integer(&n.to_be_bytes())
}

/// A BOOLEAN.
pub(crate) fn boolean(b: bool) -> Vec<u8> {
    tlv(der::BOOLEAN, &[if b { 0xff } else { 0x00 }])
}

/// NULL.
pub(crate) fn null() -> Vec<u8> {
    vec![0x05, 0x00]
}

/// A BIT STRING of whole bytes (no unused bits).
pub(crate) fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    tlv(der::BIT_STRING, &content)
}

/// A named-bit BIT STRING (keyUsage): bit 0 is the most significant bit of the first byte;
/// trailing zero bits are dropped, as DER requires.
pub(crate) fn named_bits(bits: u16) -> Vec<u8> {
    if bits == 0 {
        return tlv(der::BIT_STRING, &[0]);
    }
    // reverse into MSB-first order over two bytes
    let mut v: u16 = 0;
    for i in 0..16 {
        if bits & (1 << i) != 0 {
            v |= 1 << (15 - i);
        }
    }
    let bytes = v.to_be_bytes();
    let used = if bytes[1] == 0 { 1 } else { 2 };
    let last = bytes[used - 1];
    let unused = last.trailing_zeros() as u8;
    let mut content = vec![unused];
    content.extend_from_slice(&bytes[..used]);
    tlv(der::BIT_STRING, &content)
}

/// An OCTET STRING.
pub(crate) fn octet_string(bytes: &[u8]) -> Vec<u8> {
    tlv(der::OCTET_STRING, bytes)
}

/// A context-specific constructed (EXPLICIT) tag `[n]` around one element.
pub(crate) fn explicit(n: u8, inner: &[u8]) -> Vec<u8> {
    tlv(0xa0 | n, inner)
}

/// A directory string: PrintableString when every character allows it, else UTF8String.
pub(crate) fn directory_string(s: &str) -> Vec<u8> {
    let printable = s.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b'=' | b'?'
            )
    });
    tlv(if printable { 0x13 } else { 0x0c }, s.as_bytes())
}

/// A certificate validity time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280
/// 4.1.2.5).
pub(crate) fn time(t: crate::time::Timestamp) -> Vec<u8> {
    // Display is YYYY-MM-DDTHH:MM:SSZ
    let s = t.to_string();
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let year: i64 = digits.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0);
    if (1950..2050).contains(&year) {
        tlv(der::UTC_TIME, format!("{}Z", &digits[2..]).as_bytes())
    } else {
        tlv(der::GENERALIZED_TIME, format!("{digits}Z").as_bytes())
    }
}

/// An ECDSA signature in the fixed-width r||s form → `ECDSA-Sig-Value` DER.
pub(crate) fn ecdsa_fixed_to_der(sig: &[u8]) -> Vec<u8> {
    let (r, s) = sig.split_at(sig.len() / 2);
    sequence(&[&unsigned_integer(r), &unsigned_integer(s)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der::Reader;

    #[test]
    fn round_trips_through_the_reader() {
        let long = vec![7u8; 300];
        let enc = octet_string(&long);
        assert_eq!(&enc[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let t = Reader::new(&enc).read_any().map(|t| t.value.len());
        assert_eq!(t, Ok(300));
        assert_eq!(
            unsigned_integer(&[0, 0, 0x80]),
            vec![0x02, 0x02, 0x00, 0x80]
        );
        assert_eq!(unsigned_integer(&[0, 0]), vec![0x02, 0x01, 0x00]);
        assert_eq!(small_integer(1), vec![0x02, 0x01, 0x01]);
        // digitalSignature only: 03 02 07 80
        assert_eq!(named_bits(1), vec![0x03, 0x02, 0x07, 0x80]);
        // keyCertSign (bit 5): 03 02 02 04
        assert_eq!(named_bits(1 << 5), vec![0x03, 0x02, 0x02, 0x04]);
        // digitalSignature + keyCertSign: 03 02 02 84
        assert_eq!(named_bits(1 | 1 << 5), vec![0x03, 0x02, 0x02, 0x84]);
        assert_eq!(time(crate::time::Timestamp(0)), tlv(0x17, b"700101000000Z"));
        assert_eq!(
            time(
                crate::Timestamp::parse_rfc3339("2123-08-29T13:50:00Z")
                    .unwrap_or(crate::Timestamp(0))
            ),
            tlv(0x18, b"21230829135000Z")
        );
    }
}
