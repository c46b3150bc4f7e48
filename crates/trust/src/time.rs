//! Instants as whole seconds since the Unix epoch, parsed from the three forms signatures and
//! certificates use: RFC 3339 with any offset (JWS), ASN.1 UTCTime / GeneralizedTime (X.509),
//! and CBOR epoch times (COSE). Sub-second parts are dropped: certificate validity is to the
//! second, and notation compares at that precision.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since 1970-01-01T00:00:00Z (negative before).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time (seconds precision).
    pub fn now() -> Timestamp {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX)),
        }
    }

    /// Parses RFC 3339 (`2023-03-14T16:10:02+08:00`, `2022-07-29T00:00:00Z`, with an optional
    /// fraction); `None` for anything else.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let y = digits(&b[0..4])?;
        let mo = digits(&b[5..7])?;
        let d = digits(&b[8..10])?;
        let h = digits(&b[11..13])?;
        let mi = digits(&b[14..16])?;
        let se = digits(&b[17..19])?;
        let mut rest = &b[19..];
        if let Some(frac) = rest.strip_prefix(b".") {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            rest = &frac[n..];
        }
        let offset = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
                let oh = digits(&[*oh1, *oh2])?;
                let om = digits(&[*om1, *om2])?;
                if oh > 23 || om > 59 {
                    return None;
                }
                let off = oh * 3600 + om * 60;
                if *sign == b'-' { -off } else { off }
            }
            _ => return None,
        };
        Some(Timestamp(civil_to_epoch(y, mo, d, h, mi, se)? - offset))
    }

    /// Parses an ASN.1 UTCTime (`YYMMDDHHMMSSZ`, RFC 5280: years 50–99 are 19xx).
    pub fn parse_utc_time(b: &[u8]) -> Option<Timestamp> {
        if b.len() != 13 || b[12] != b'Z' {
            return None;
        }
        let yy = digits(&b[0..2])?;
        let y = if yy >= 50 { 1900 + yy } else { 2000 + yy };
        civil_to_epoch(
            y,
            digits(&b[2..4])?,
            digits(&b[4..6])?,
            digits(&b[6..8])?,
            digits(&b[8..10])?,
            digits(&b[10..12])?,
        )
        .map(Timestamp)
    }

    /// Parses an ASN.1 GeneralizedTime as RFC 5280 requires it (`YYYYMMDDHHMMSSZ`); a fraction
    /// is accepted and dropped (RFC 3161 tokens carry one).
    pub fn parse_generalized_time(b: &[u8]) -> Option<Timestamp> {
        if b.len() < 15 || b.last() != Some(&b'Z') {
            return None;
        }
        let frac = &b[14..b.len() - 1];
        if !frac.is_empty() {
            let digits_part = frac.strip_prefix(b".")?;
            if digits_part.is_empty() || !digits_part.iter().all(u8::is_ascii_digit) {
                return None;
            }
        }
        civil_to_epoch(
            digits(&b[0..4])?,
            digits(&b[4..6])?,
            digits(&b[6..8])?,
            digits(&b[8..10])?,
            digits(&b[10..12])?,
            digits(&b[12..14])?,
        )
        .map(Timestamp)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0')))
}

fn civil_to_epoch(y: i64, m: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_offsets_are_applied() {
        let a = Timestamp::parse_rfc3339("2023-03-14T16:10:02+08:00");
        let b = Timestamp::parse_rfc3339("2023-03-14T08:10:02Z");
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_eq!(
            Timestamp::parse_rfc3339("2023-01-19T00:21:36-08:00"),
            Timestamp::parse_rfc3339("2023-01-19T08:21:36.000Z")
        );
        assert_eq!(Timestamp::parse_rfc3339("2023-01-19 00:21:36Z"), None);
        assert_eq!(Timestamp::parse_rfc3339("2023-01-19T00:21:36"), None);
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::parse_rfc3339("2120-11-09T07:00:00Z").map(|t| t.to_string()),
            Some("2120-11-09T07:00:00Z".to_string())
        );
    }

    #[test]
    fn asn1_times() {
        assert_eq!(
            Timestamp::parse_utc_time(b"000829135000Z"),
            Timestamp::parse_rfc3339("2000-08-29T13:50:00Z")
        );
        assert_eq!(
            Timestamp::parse_utc_time(b"500101000000Z"),
            Timestamp::parse_rfc3339("1950-01-01T00:00:00Z")
        );
        assert_eq!(
            Timestamp::parse_generalized_time(b"21230829135000Z"),
            Timestamp::parse_rfc3339("2123-08-29T13:50:00Z")
        );
        assert_eq!(Timestamp::parse_generalized_time(b"21230829135000"), None);
    }
}
