//! Durations on the command line: `90s`, `15m`, `2h`, `1h30m`, `1h30m15s`, `2d`; a bare
//! number is seconds. Units are `d`, `h`, `m` and `s`, each at most once, largest first (as
//! Go's `time.ParseDuration` prints them, plus days).

use std::time::Duration;

/// The syntax, for help texts and errors.
pub const SYNTAX: &str = "a number of seconds, or <N><unit> groups with units d, h, m, s, largest first: 90s, 15m, 2h, 1h30m, 1h30m15s, 2d";

/// Parse a duration (a clap value parser: an error is a usage error).
pub fn parse(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}: expected {SYNTAX}");
    let text = s.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(Duration::from_secs).map_err(|_| bad());
    }
    const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
    let mut total: u64 = 0;
    let mut next_unit = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = rest[digits..].chars().next().ok_or_else(bad)?;
        let pos = UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(bad)?;
        let (_, secs) = UNITS[next_unit + pos];
        next_unit += pos + 1;
        total = n
            .checked_mul(secs)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    Ok(Duration::from_secs(total))
}

/// `d` as this syntax writes it: `1h`, `1h30m`, `24h`, `90s` → `1m30s` (for the tests
/// that keep the help texts' defaults true).
#[cfg(test)]
pub fn format(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [('h', 3_600), ('m', 60), ('s', 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compound_durations_parse() {
        let s = Duration::from_secs;
        assert_eq!(parse("90"), Ok(s(90)));
        assert_eq!(parse("90s"), Ok(s(90)));
        assert_eq!(parse("15m"), Ok(s(900)));
        assert_eq!(parse("2h"), Ok(s(7200)));
        assert_eq!(parse("2d"), Ok(s(172_800)));
        assert_eq!(parse("1h30m"), Ok(s(5400)));
        assert_eq!(parse("1h30m15s"), Ok(s(5415)));
        assert_eq!(parse("1d2h3m4s"), Ok(s(93_784)));
        assert_eq!(parse(" 1h "), Ok(s(3600)));
    }

    #[test]
    fn bad_durations_name_the_syntax() {
        for bad in [
            "",
            "h",
            "1x",
            "1h30",
            "30m1h",
            "1h1h",
            "-1s",
            "1.5h",
            "1 h",
            "s1",
            "99999999999999999999d",
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(
                e.contains("1h30m") && e.contains(&format!("{bad:?}")),
                "{e}"
            );
        }
    }

    #[test]
    fn durations_format_back() {
        for (secs, text) in [
            (3600, "1h"),
            (5400, "1h30m"),
            (86_400, "24h"),
            (90, "1m30s"),
            (0, "0s"),
        ] {
            assert_eq!(format(Duration::from_secs(secs)), text);
            assert_eq!(parse(text), Ok(Duration::from_secs(secs)));
        }
    }
}
