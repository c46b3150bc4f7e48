//! The probe's command line: each argument is one step, `name` or `name:arg:arg…`.
//!
//! Parsing never panics: a bad step is a [`UsageError`] naming the argument.

use std::fmt;

/// One step of a probe run, as written on the command line (`mount-tmpfs:/mnt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The argument exactly as given: the key of this step's result in the JSON output.
    pub key: String,
    /// The part before the first `:`.
    pub name: String,
    /// The parts after it, split on `:`.
    pub args: Vec<String>,
}

/// A step the probe does not understand; the probe exits 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    pub step: String,
    pub reason: String,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad step {:?}: {}", self.step, self.reason)
    }
}

impl Step {
    pub fn parse(arg: &str) -> Step {
        let mut parts = arg.split(':');
        let name = parts.next().unwrap_or_default().to_owned();
        Step {
            key: arg.to_owned(),
            name,
            args: parts.map(str::to_owned).collect(),
        }
    }

    pub fn usage(&self, reason: impl Into<String>) -> UsageError {
        UsageError {
            step: self.key.clone(),
            reason: reason.into(),
        }
    }

    /// Fail unless the step has between `min` and `max` arguments.
    pub fn arity(&self, min: usize, max: usize) -> Result<(), UsageError> {
        let n = self.args.len();
        if n < min || n > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(self.usage(format!("takes {want} argument(s), got {n}")));
        }
        Ok(())
    }

    /// Argument `i` as a string, or `default` when absent.
    pub fn str_arg<'a>(&'a self, i: usize, default: &'a str) -> &'a str {
        self.args.get(i).map_or(default, String::as_str)
    }

    /// Argument `i` as an unsigned number in `0..=max`, or `default` when absent.
    pub fn u64_arg(&self, i: usize, default: u64, max: u64) -> Result<u64, UsageError> {
        let Some(s) = self.args.get(i) else {
            return Ok(default);
        };
        let v = parse_int(s).ok_or_else(|| self.usage(format!("{s:?} is not a number")))?;
        u64::try_from(v)
            .ok()
            .filter(|v| *v <= max)
            .ok_or_else(|| self.usage(format!("{s} is not in 0..={max}")))
    }

    /// Argument `i` as a signed number (decimal, or hex with `0x`).
    pub fn i64_arg(&self, i: usize) -> Result<i64, UsageError> {
        let s = self.args.get(i).map_or("", String::as_str);
        parse_int(s).ok_or_else(|| self.usage(format!("{s:?} is not a number")))
    }
}

/// A decimal or `0x` hexadecimal integer, optionally negative; `None` for anything else.
pub fn parse_int(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let magnitude: i128 = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        if hex.is_empty() {
            return None;
        }
        // up to u64::MAX, so that an argument register can be given as any 64-bit pattern
        i128::from(u64::from_str_radix(hex, 16).ok()?)
    } else {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        i128::from(digits.parse::<u64>().ok()?)
    };
    let v = if neg { -magnitude } else { magnitude };
    // hex patterns above i64::MAX wrap to their two's-complement value (a register's bits)
    let v = if v > i128::from(i64::MAX) {
        v - (1i128 << 64)
    } else {
        v
    };
    i64::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_splits_name_and_arguments_and_keeps_the_key() {
        let s = Step::parse("syscall:258:-100:0");
        assert_eq!(s.key, "syscall:258:-100:0");
        assert_eq!(s.name, "syscall");
        assert_eq!(s.args, ["258", "-100", "0"]);
        let s = Step::parse("identity");
        assert_eq!(s.name, "identity");
        assert!(s.args.is_empty());
        let s = Step::parse("");
        assert_eq!(s.name, "");
    }

    #[test]
    fn numbers_parse_decimal_hex_and_negative_and_reject_junk() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("-100"), Some(-100));
        assert_eq!(parse_int("0x10"), Some(16));
        assert_eq!(parse_int("0xffffffffffffffff"), Some(-1));
        assert_eq!(parse_int(""), None);
        assert_eq!(parse_int("-"), None);
        assert_eq!(parse_int("0x"), None);
        assert_eq!(parse_int("1e3"), None);
        assert_eq!(parse_int("+1"), None);
        assert_eq!(parse_int("99999999999999999999999"), None);
    }

    #[test]
    fn arguments_out_of_range_are_usage_errors() {
        let s = Step::parse("fork:100000000");
        assert!(s.u64_arg(0, 1, 1000).is_err());
        let s = Step::parse("fork:-1");
        assert!(s.u64_arg(0, 1, 1000).is_err());
        let s = Step::parse("fork");
        assert_eq!(s.u64_arg(0, 7, 1000), Ok(7));
        assert!(Step::parse("a:b:c").arity(0, 1).is_err());
        assert!(Step::parse("a:b").arity(0, 1).is_ok());
    }
}
