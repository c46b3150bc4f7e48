//! dpkg's version order (Debian policy §5.6.12; dpkg `lib/dpkg/version.c` and
//! `lib/dpkg/parsehelp.c`), which Ubuntu uses too.
//!
//! A version is `[epoch:]upstream[-revision]`: the epoch is the text before the first `:`, the
//! revision the text after the last `-`. Epochs compare as numbers; upstream and revision
//! compare with `verrevcmp`: alternately a run of non-digits, compared character by character
//! with `~` before the end of the run, the end before letters, letters (by ASCII) before
//! everything else; and a run of digits, compared as a number (so `1.0` = `1.00`).
//!
//! What `parseversion` refuses is refused here: an empty string, embedded blanks, an epoch
//! that is not a number in `0..=2147483647`, nothing after the colon, an empty upstream or
//! revision (`dpkg --compare-versions` reads an empty argument as the lowest version; no
//! package has one, so it is refused here). What it only warns about (an upstream not starting with a digit, characters
//! outside policy) `dpkg --compare-versions` still compares, and so does this.

use std::cmp::Ordering;

use super::ord_by_order;

/// A dpkg version.
#[derive(Debug, Clone)]
pub struct DpkgVersion {
    text: Box<str>,
    epoch: u32,
    upstream: Box<str>,
    revision: Box<str>,
}

ord_by_order!(DpkgVersion);

impl DpkgVersion {
    /// Parse as dpkg's `parseversion` does.
    pub fn parse(text: &str) -> Result<DpkgVersion, String> {
        // c_isblank: space and tab. Leading and trailing blanks are trimmed.
        let is_blank = |c: char| c == ' ' || c == '\t';
        let s = text.trim_matches(is_blank);
        if s.is_empty() {
            return Err("the version string is empty".into());
        }
        if s.contains(is_blank) {
            return Err("the version string has embedded spaces".into());
        }
        let (epoch, rest) = match s.split_once(':') {
            Some((epoch, rest)) => {
                let epoch = parse_epoch(epoch)?;
                if rest.is_empty() {
                    return Err("nothing after the colon in the version number".into());
                }
                (epoch, rest)
            }
            None => (0, s),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((_, "")) => return Err("the revision number is empty".into()),
            Some((upstream, revision)) => (upstream, revision),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err("the version number is empty".into());
        }
        Ok(DpkgVersion {
            text: text.into(),
            epoch,
            upstream: upstream.into(),
            revision: revision.into(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The Debian revision, empty for a native package.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    fn order(&self, other: &DpkgVersion) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream.as_bytes(), other.upstream.as_bytes()))
            .then_with(|| verrevcmp(self.revision.as_bytes(), other.revision.as_bytes()))
    }
}

/// The epoch as `strtol(…, 10)` reads it, and the checks `parseversion` makes on it.
fn parse_epoch(epoch: &str) -> Result<u32, String> {
    let (negative, digits) = match epoch.as_bytes().first() {
        Some(b'-') => (true, &epoch[1..]),
        Some(b'+') => (false, &epoch[1..]),
        _ => (false, epoch),
    };
    let number_len = digits.bytes().take_while(u8::is_ascii_digit).count();
    if number_len == 0 {
        return Err("the epoch is empty".into());
    }
    if number_len != digits.len() {
        return Err(format!("the epoch {epoch:?} is not a number"));
    }
    let value = digits.trim_start_matches('0');
    if negative && !value.is_empty() {
        return Err(format!("the epoch {epoch:?} is negative"));
    }
    if value.is_empty() {
        return Ok(0);
    }
    match value.parse::<u32>() {
        Ok(v) if v <= i32::MAX as u32 => Ok(v),
        _ => Err(format!(
            "the epoch {epoch:?} is too big (at most 2147483647)"
        )),
    }
}

/// dpkg's `order()`: the weight of a character in a non-digit run. `0` is the end of the
/// run (and a digit). A byte above 0x7f is a negative `char` in dpkg on amd64 (the
/// reference), whose weight `c + 256` is the byte's value: after letters, before the other
/// ASCII characters.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) if c >= 0x80 => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`.
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> DpkgVersion {
        DpkgVersion::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn policy_examples() {
        assert!(v("1.0~rc1") < v("1.0"));
        assert!(v("1.0~~") < v("1.0~"));
        assert!(v("1.0") < v("1.0a"));
        assert!(v("1.0a") < v("1.0+"));
        assert!(v("1:0.1") > v("9.9"));
        assert_eq!(v("1.0"), v("1.00"));
        assert_eq!(v("0:1.0-0"), v("1.0-0"));
        assert!(v("1.0-1") < v("1.0-1.1"));
    }

    #[test]
    fn what_parseversion_refuses() {
        for bad in [
            "",
            "  ",
            "1 2",
            ":1",
            "a:1",
            "-1:1",
            "1:",
            "1.0-",
            "-1",
            "2147483648:1",
        ] {
            assert!(DpkgVersion::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(v("-0:1").epoch(), 0);
        assert_eq!(v("+2:1").epoch(), 2);
        assert_eq!(v(" 1.0\t").upstream(), "1.0");
        assert_eq!(v("1:2:3-4-5").upstream(), "2:3-4");
    }
}
