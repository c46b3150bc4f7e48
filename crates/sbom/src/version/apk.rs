//! apk's version order, as apk-tools implements it (v3, `src/version.c`:
//! `apk_version_validate`, `apk_version_compare`; read at alpinelinux/apk-tools 90b974f).
//!
//! A version is `digits{.digits}[letter]{_suffix[digits]}[~hash][-rdigits]`, read as tokens:
//!
//! - the initial number; then `.number`s (a "digit" token); at most one lowercase letter,
//!   directly after a number; then `_suffix` tokens, each optionally numbered, where the suffix
//!   is one of `alpha beta pre rc` (pre-releases) or `cvs svn git hg p` (post-releases); then
//!   one `~` and lowercase hex digits (a commit); then one `-r` and digits (the revision).
//!   Anything else, or anything out of that sequence, is invalid (`apk_version_validate`).
//! - Two versions compare token by token while both have a token of the same kind. Numbers
//!   compare as numbers (64-bit, wrapping as apk-tools' `apk_blob_pull_uint` does), except a
//!   `.digits` token where either side has a leading zero: then both compare as strings
//!   (Gentoo's rule, so `1.01` < `1.1`). Letters by ASCII, suffixes in the order above, commit
//!   hashes as strings.
//! - When the kinds differ or one version ends: equal if both ended; else the side at a
//!   pre-release suffix is less; else the side whose next token kind comes later in the list
//!   above (the end being last) is less. So `1.0` < `1.0.1`, `1.0_rc1` < `1.0` < `1.0_p1`,
//!   `1.0_p1` > `1.0-r1`, `1.0` < `1.0a`.

use std::cmp::Ordering;

use super::ord_by_order;

/// The token kinds, in apk-tools' order (`enum PARTS`); the order matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
}

/// Suffixes in apk-tools' order; `NONE` (the release) sits between `rc` and `cvs`.
const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
const FIRST_POST_SUFFIX: u8 = 4;

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    /// Numbers: the value; letters: the byte; suffixes: the index in [`SUFFIXES`].
    number: u64,
    /// The token's text (digits, hash) in the version string.
    start: u32,
    end: u32,
}

/// An apk version.
#[derive(Debug, Clone)]
pub struct ApkVersion {
    text: Box<str>,
    tokens: Vec<Token>,
}

ord_by_order!(ApkVersion);

impl ApkVersion {
    /// Parse, refusing what `apk_version_validate` refuses.
    pub fn parse(text: &str) -> Result<ApkVersion, String> {
        if u32::try_from(text.len()).is_err() {
            return Err("it is longer than 4 GiB".into());
        }
        let b = text.as_bytes();
        let mut tokens = Vec::new();
        let mut pos = 0usize;
        let digits = |pos: usize| -> (u64, usize) {
            let mut n: u64 = 0;
            let mut end = pos;
            while let Some(d) = b.get(end).filter(|c| c.is_ascii_digit()) {
                n = n.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                end += 1;
            }
            (n, end)
        };
        let token = |kind, number, start: usize, end: usize| Token {
            kind,
            number,
            // Lengths were checked to fit in u32 above.
            start: start as u32,
            end: end as u32,
        };
        let (n, end) = digits(0);
        if end == 0 {
            return Err("it does not start with a digit".into());
        }
        tokens.push(token(Kind::InitialDigit, n, 0, end));
        pos = pos.max(end);
        let mut kind = Kind::InitialDigit;
        let invalid = |pos: usize, what: &str| Err(format!("{what} at byte {pos}"));
        while pos < b.len() {
            match b[pos] {
                c @ b'a'..=b'z' => {
                    if kind > Kind::Digit {
                        return invalid(pos, "a letter not directly after a number");
                    }
                    tokens.push(token(Kind::Letter, u64::from(c), pos, pos + 1));
                    kind = Kind::Letter;
                    pos += 1;
                }
                b'.' | b'0'..=b'9' => {
                    if b[pos] == b'.' {
                        if kind > Kind::Digit {
                            return invalid(pos, "a '.' after a letter or suffix");
                        }
                        pos += 1;
                    }
                    kind = match kind {
                        Kind::InitialDigit | Kind::Digit => Kind::Digit,
                        Kind::Suffix => Kind::SuffixNo,
                        _ => return invalid(pos, "a number out of place"),
                    };
                    let (n, end) = digits(pos);
                    if end == pos {
                        return invalid(pos, "a '.' not followed by digits");
                    }
                    tokens.push(token(kind, n, pos, end));
                    pos = end;
                }
                b'_' => {
                    if kind > Kind::SuffixNo {
                        return invalid(pos, "a '_' suffix after the commit hash or revision");
                    }
                    let start = pos + 1;
                    let end = start
                        + b[start..]
                            .iter()
                            .take_while(|c| c.is_ascii_lowercase())
                            .count();
                    let name = &text[start..end];
                    let Some(i) = SUFFIXES.iter().position(|s| *s == name) else {
                        return invalid(
                            pos,
                            &format!(
                                "an unknown suffix {name:?} (known: {})",
                                SUFFIXES.join(", ")
                            ),
                        );
                    };
                    tokens.push(token(Kind::Suffix, i as u64, start, end));
                    kind = Kind::Suffix;
                    pos = end;
                }
                b'~' => {
                    if kind >= Kind::CommitHash {
                        return invalid(pos, "a second '~' or one after the revision");
                    }
                    let start = pos + 1;
                    let end = start
                        + b[start..]
                            .iter()
                            .take_while(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
                            .count();
                    if end == start {
                        return invalid(pos, "a '~' not followed by a lowercase hex commit hash");
                    }
                    tokens.push(token(Kind::CommitHash, 0, start, end));
                    kind = Kind::CommitHash;
                    pos = end;
                }
                b'-' => {
                    if kind >= Kind::RevisionNo || b.get(pos + 1) != Some(&b'r') {
                        return invalid(pos, "a '-' that does not start the one '-rN' revision");
                    }
                    let (n, end) = digits(pos + 2);
                    if end == pos + 2 {
                        return invalid(pos, "a '-r' revision without digits");
                    }
                    tokens.push(token(Kind::RevisionNo, n, pos + 2, end));
                    kind = Kind::RevisionNo;
                    pos = end;
                }
                _ => return invalid(pos, "a character outside apk's version grammar"),
            }
        }
        Ok(ApkVersion {
            text: text.into(),
            tokens,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn value(&self, t: &Token) -> &[u8] {
        self.text
            .as_bytes()
            .get(t.start as usize..t.end as usize)
            .unwrap_or_default()
    }

    /// `apk_version_compare`.
    fn order(&self, other: &ApkVersion) -> Ordering {
        let end = Token {
            kind: Kind::End,
            number: 0,
            start: 0,
            end: 0,
        };
        let mut i = 0;
        loop {
            let ta = self.tokens.get(i).copied().unwrap_or(end);
            let tb = other.tokens.get(i).copied().unwrap_or(end);
            if ta.kind != tb.kind || ta.kind == Kind::End {
                return tail(ta, tb);
            }
            let r = match ta.kind {
                Kind::Digit
                    if self.value(&ta).first() == Some(&b'0')
                        || other.value(&tb).first() == Some(&b'0') =>
                {
                    self.value(&ta).cmp(other.value(&tb))
                }
                Kind::CommitHash => self.value(&ta).cmp(other.value(&tb)),
                _ => ta.number.cmp(&tb.number),
            };
            if r != Ordering::Equal {
                return r;
            }
            i += 1;
        }
    }
}

/// The end of `apk_version_compare_fuzzy` (not fuzzy): the first tokens of different kinds.
fn tail(ta: Token, tb: Token) -> Ordering {
    let pre = |t: Token| t.kind == Kind::Suffix && t.number < u64::from(FIRST_POST_SUFFIX);
    if ta.kind == tb.kind {
        Ordering::Equal
    } else if pre(ta) {
        Ordering::Less
    } else if pre(tb) {
        Ordering::Greater
    } else {
        tb.kind.cmp(&ta.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ApkVersion {
        ApkVersion::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn suffixes_and_revisions() {
        assert!(v("1.0_alpha") < v("1.0_alpha1"));
        assert!(v("1.0_rc9") < v("1.0"));
        assert!(v("1.0") < v("1.0_p1"));
        assert!(v("1.0_p1") > v("1.0-r1"));
        assert!(v("1.0-r1") < v("1.0-r10"));
        assert!(v("1.01") < v("1.1"));
        assert!(v("1.0") < v("1.0a"));
        assert!(v("1.0~abc") < v("1.0~abd"));
    }

    #[test]
    fn what_validate_refuses() {
        for bad in [
            "", "a", "1.", "1..2", "1.0a1", "1.0ab", "1_foo", "1-r", "1-1", "1~", "1~A",
        ] {
            assert!(ApkVersion::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
