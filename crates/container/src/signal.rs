//! Signal names and numbers as `runc kill` accepts them: `9`, `KILL`, `SIGKILL`, `kill`.

/// Linux signal names (without `SIG`) and numbers.
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Parse a signal given by number or name; `None` when unknown.
pub fn parse_signal(raw: &str) -> Option<i32> {
    if let Ok(n) = raw.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = SIGNALS.iter().find(|(s, _)| *s == name) {
        return Some(n);
    }
    // RTMIN, RTMIN+n, RTMAX-n
    let rtmin = 34;
    let rtmax = 64;
    if name == "RTMIN" {
        return Some(rtmin);
    }
    if name == "RTMAX" {
        return Some(rtmax);
    }
    if let Some(n) = name
        .strip_prefix("RTMIN+")
        .and_then(|n| n.parse::<i32>().ok())
    {
        return (rtmin + n <= rtmax).then_some(rtmin + n);
    }
    if let Some(n) = name
        .strip_prefix("RTMAX-")
        .and_then(|n| n.parse::<i32>().ok())
    {
        return (rtmax - n >= rtmin).then_some(rtmax - n);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("KILL"), Some(9));
        assert_eq!(parse_signal("SIGKILL"), Some(9));
        assert_eq!(parse_signal("term"), Some(15));
        assert_eq!(parse_signal("SIGRTMIN+2"), Some(36));
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(parse_signal("0"), None);
    }
}
