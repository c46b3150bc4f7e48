//! rpm's version order: `[epoch:]version[-release]` split as rpm's `parseEVR` does
//! (`rpmio/rpmver.c`), each part compared with `rpmvercmp` (`rpmio/rpmvercmp.c`).
//!
//! `parseEVR`: the epoch is a leading run of digits followed by `:` (an empty one is `0`; a
//! missing one is `0` too); the release is the text after the last `-` of the rest.
//!
//! `rpmvercmp`: split both strings into segments — runs of ASCII digits or of ASCII letters;
//! every other character separates segments and is otherwise ignored (`1.0` = `1_0`) —
//! except `~`, which sorts before everything, even the end (`1.0~rc1` < `1.0`), and `^`, which
//! sorts after the end but before any other segment (`1.0` < `1.0^git1` < `1.0.1`). A numeric
//! segment is newer than an alphabetic one; numbers compare by value (any length), letters
//! by ASCII. When one string runs out, the longer one is newer.
//!
//! A missing release is older than any release, even an empty one (`1.0` < `1.0-` <
//! `1.0-1`): what rpm 4.18's own `rpm.vercmp` answers. (rpm's dependency matching instead
//! lets a missing release match any; an order must be total, and a scanner compares full
//! EVRs.) rpm orders any text, so the
//! only invalid version is the empty string (which `rpmverParse` refuses).

use std::cmp::Ordering;

use super::{Num, ord_by_order};

/// An rpm version (epoch, version, release).
#[derive(Debug, Clone)]
pub struct RpmVersion {
    text: Box<str>,
    epoch: Num,
    /// Byte offsets of the version part in `text`.
    version: (usize, usize),
    release: Option<(usize, usize)>,
}

ord_by_order!(RpmVersion);

impl RpmVersion {
    pub fn parse(text: &str) -> Result<RpmVersion, String> {
        if text.is_empty() {
            return Err("the version string is empty".into());
        }
        let epoch_len = text.bytes().take_while(u8::is_ascii_digit).count();
        let after_epoch = if text.as_bytes().get(epoch_len) == Some(&b':') {
            epoch_len + 1
        } else {
            0
        };
        let epoch = if after_epoch > 0 {
            Num::from_digits(&text[..epoch_len])
        } else {
            Num::from_digits("0")
        };
        // parseEVR looks for the last '-' from the end of the epoch's digits, whether or not
        // a ':' follows them; a '-' can only come after the digits anyway.
        let (version, release) = match text[epoch_len..].rfind('-') {
            Some(i) => {
                let hyphen = epoch_len + i;
                ((after_epoch, hyphen), Some((hyphen + 1, text.len())))
            }
            None => ((after_epoch, text.len()), None),
        };
        Ok(RpmVersion {
            text: text.into(),
            epoch,
            version,
            release,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The epoch (0 when missing).
    pub fn epoch(&self) -> &str {
        &self.epoch.0
    }

    pub fn version(&self) -> &str {
        self.text.get(self.version.0..self.version.1).unwrap_or("")
    }

    pub fn release(&self) -> Option<&str> {
        self.release.and_then(|(s, e)| self.text.get(s..e))
    }

    fn order(&self, other: &RpmVersion) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| rpmvercmp(self.version().as_bytes(), other.version().as_bytes()))
            .then_with(|| match (self.release(), other.release()) {
                (Some(a), Some(b)) => rpmvercmp(a.as_bytes(), b.as_bytes()),
                // A missing release is older than any, even an empty one (`1.0` < `1.0-`).
                (a, b) => a.is_some().cmp(&b.is_some()),
            })
    }
}

/// A digit run without its leading zeros.
fn strip(s: &[u8]) -> &[u8] {
    s.iter()
        .position(|&c| c != b'0')
        .map_or(&[][..], |p| &s[p..])
}

/// rpm's `rpmvercmp`.
pub(crate) fn rpmvercmp(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(ca), Some(_)) = (ca, cb) else { break };
        let numeric = ca.is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let end_a = i + a[i..].iter().take_while(|c| class(c)).count();
        let end_b = j + b[j..].iter().take_while(|c| class(c)).count();
        let (seg_a, seg_b) = (&a[i..end_a], &b[j..end_b]);
        if seg_b.is_empty() {
            // Different kinds: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let r = if numeric {
            let (na, nb) = (strip(seg_a), strip(seg_b));
            na.len().cmp(&nb.len()).then_with(|| na.cmp(nb))
        } else {
            seg_a.cmp(seg_b)
        };
        if r != Ordering::Equal {
            return r;
        }
        i = end_a;
        j = end_b;
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> RpmVersion {
        RpmVersion::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn rpmvercmp_examples_from_rpm_tests() {
        // rpm's tests/rpmvercmp.at
        let cases: &[(&str, &str, Ordering)] = &[
            ("1.0", "1.0", Ordering::Equal),
            ("1.0", "2.0", Ordering::Less),
            ("2.0.1", "2.0.1a", Ordering::Less),
            ("5.5p1", "5.5p2", Ordering::Less),
            ("5.6p1", "5.5p1", Ordering::Greater),
            ("10xyz", "10.1xyz", Ordering::Less),
            ("xyz10", "xyz10.1", Ordering::Less),
            ("1.0010", "1.9", Ordering::Greater),
            ("a", "1", Ordering::Less),
            ("1.0", "1_0", Ordering::Equal),
            ("1.0~rc1", "1.0", Ordering::Less),
            ("1.0~rc1", "1.0~rc1~git123", Ordering::Greater),
            ("1.0^", "1.0", Ordering::Greater),
            ("1.0^git1", "1.01", Ordering::Less),
            ("1.0^git1~pre", "1.0^git1", Ordering::Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(rpmvercmp(a.as_bytes(), b.as_bytes()), *want, "{a} vs {b}");
        }
    }

    #[test]
    fn epoch_version_release() {
        let x = v("2:1.0-3.el9");
        assert_eq!(
            (x.epoch(), x.version(), x.release()),
            ("2", "1.0", Some("3.el9"))
        );
        let y = v("a:1-2-3");
        assert_eq!(
            (y.epoch(), y.version(), y.release()),
            ("0", "a:1-2", Some("3"))
        );
        assert!(v("1:1.0") > v("9.0"));
        assert!(v("1.0") < v("1.0-1"));
        assert!(RpmVersion::parse("").is_err());
    }
}
