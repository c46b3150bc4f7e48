//! RFC 3339 timestamps in UTC, without a date-time dependency: with nanoseconds as Go's
//! `time.Time` marshals them (runtime state, logs), or to the second (image configs, tokens,
//! reports); and Go's duration syntax (`5s`, `1m30s`), as `time.ParseDuration` reads it
//! (runc's `events --interval`, the Kubernetes API server's `?timeout=`).

use std::time::{SystemTime, UNIX_EPOCH};

/// `2006-01-02T15:04:05.999999999Z` for `t` (trailing zeros of the fraction trimmed, as Go).
pub fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, dd) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// `2006-01-02T15:04:05Z` for `t`, to the second.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The time `s` names, for the UTC forms this module writes (`2006-01-02T15:04:05Z`, with an
/// optional fraction of up to nine digits); `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let num = |t: &str, len: usize| -> Option<u64> {
        (t.len() == len && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let mut d = date.splitn(3, '-');
    let (y, m, dd) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':');
    let (h, mi, se) = (num(t.next()?, 2)?, num(t.next()?, 2)?, num(t.next()?, 2)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&dd) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32)
    };
    let days = u64::try_from(days_from_civil(i64::try_from(y).ok()?, m as u32, dd as u32)).ok()?;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    Some(UNIX_EPOCH + std::time::Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm, the
/// inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A Go duration: a sequence of decimal numbers, each with a unit (`ns`, `us`/`µs`, `ms`, `s`,
/// `m`, `h`): `5s`, `100ms`, `1m30s`, `1.5h`. No sign; a number without a unit is refused.
pub fn parse_go_duration(s: &str) -> Result<std::time::Duration, String> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(format!("invalid duration {s:?}"));
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
        let (num, tail) = rest.split_at(n);
        let value: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        let u = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(u);
        let mult = match unit {
            "ns" => 1e-9,
            "us" | "\u{b5}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("unknown unit {unit:?} in duration {s:?}")),
        };
        total += value * mult;
        rest = tail;
    }
    std::time::Duration::try_from_secs_f64(total)
        .map_err(|_| format!("duration {s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_like_go() {
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_709_251_199, 120_000_000);
        assert_eq!(rfc3339_nano(t), "2024-02-29T23:59:59.12Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400, 5);
        assert_eq!(rfc3339_nano(t), "2000-02-29T00:00:00.000000005Z");
    }

    #[test]
    fn formats_to_the_second() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_709_251_199, 999_999_999);
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59Z");
    }

    #[test]
    fn parse_rfc3339_reads_what_this_module_writes() {
        for secs in [0u64, 951_782_400, 1_700_000_000, 4_102_444_799] {
            for nanos in [0u32, 1, 500_000_000, 999_999_999] {
                let t = UNIX_EPOCH + std::time::Duration::new(secs, nanos);
                assert_eq!(parse_rfc3339(&rfc3339_nano(t)), Some(t), "{secs}.{nanos}");
            }
            let t = UNIX_EPOCH + std::time::Duration::from_secs(secs);
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        }
        for bad in [
            "",
            "2026-12-04",
            "2026-12-04T10:30:56",
            "2026-13-04T10:30:56Z",
            "2026-12-04T24:00:00Z",
            "2026-12-04T10:30:56.1234567890Z",
            "2026-12-4T10:30:56Z",
            "2026-12-04T10:30:56.x1Z",
            "+026-12-04T10:30:56Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_go_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "5", "s", "10x", "1e400s", "-1s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }
}
