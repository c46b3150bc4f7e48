//! PEP 440 versions (<https://packaging.python.org/en/latest/specifications/version-specifiers/>),
//! parsed and ordered as Python's `packaging.version.Version` does.
//!
//! Parsing uses packaging's own `VERSION_PATTERN` (with its `^\s*…\s*$` anchors, case
//! insensitive), so every spelling it normalises is accepted the same way: `v1.0`, `1.0RC1`,
//! `1.0-post1`, `1.0.dev`, `1.0-1` (post-release 1), `1.0+ubuntu-1`.
//!
//! The order is packaging's `_cmpkey`: epoch; release with trailing zeros dropped (`1.0` =
//! `1.0.0`); pre-release (`a` < `b` < `rc`; `alpha`, `beta`, `c`, `pre`, `preview` are
//! spellings of those), where a version with only a dev part sorts before all pre-releases
//! and a version with none sorts after them; post-release (none first); dev release (none
//! last); local version (none first; segments compared one by one, numbers as numbers and
//! after strings, strings lowercased).

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::Regex;

use super::{Num, ord_by_order};

/// packaging's `VERSION_PATTERN` (packaging/version.py), anchored as `Version` anchors it
/// (`^\s*…\s*$`; the surrounding whitespace is trimmed before, see [`is_python_space`]).
/// Case-insensitive for ASCII only, as packaging 26 (`(?a:…)`): packaging 23 (Debian 12's)
/// let Python's Unicode case folding in, so `1.0+\u{212a}` (Kelvin sign) or `1.0prev\u{131}ew`
/// (dotless i) were versions there. packaging 26's possessive quantifiers accept the same
/// strings as this pattern: every optional separator they cannot give back is followed by a
/// letter or digit nothing else could have used.
static PATTERN: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?xi-u)
        ^
        v?
        (?:
            (?:(?P<epoch>[0-9]+)!)?                           # epoch
            (?P<release>[0-9]+(?:\.[0-9]+)*)                  # release segment
            (?P<pre>                                          # pre-release
                [-_\.]?
                (?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)
                [-_\.]?
                (?P<pre_n>[0-9]+)?
            )?
            (?P<post>                                         # post release
                (?:-(?P<post_n1>[0-9]+))
                |
                (?:
                    [-_\.]?
                    (?P<post_l>post|rev|r)
                    [-_\.]?
                    (?P<post_n2>[0-9]+)?
                )
            )?
            (?P<dev>                                          # dev release
                [-_\.]?
                (?P<dev_l>dev)
                [-_\.]?
                (?P<dev_n>[0-9]+)?
            )?
        )
        (?:\+(?P<local>[a-z0-9]+(?:[-_\.][a-z0-9]+)*))?       # local version
        $",
    )
    .ok()
});

/// What Python's `\s` matches in a `str` pattern (`str.isspace`): Unicode's White_Space
/// and the information separators U+001C..U+001F, which Rust's `\s` leaves out.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Pre-release kinds in their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pre {
    Alpha,
    Beta,
    Rc,
}

/// The pre-release part of the key: `-Infinity` for a dev-only release, then the
/// pre-releases, then `+Infinity` (no pre-release).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum PreKey {
    DevOnly,
    Pre(Pre, Num),
    None,
}

/// A local version segment: strings before numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Local {
    Text(Box<str>),
    Number(Num),
}

/// A PEP 440 version.
#[derive(Debug, Clone)]
pub struct Pep440Version {
    text: Box<str>,
    epoch: Num,
    /// Without trailing zeros.
    release: Vec<Num>,
    pre: PreKey,
    post: Option<Num>,
    dev: Option<Num>,
    local: Option<Vec<Local>>,
}

ord_by_order!(Pep440Version);

impl Pep440Version {
    pub fn parse(text: &str) -> Result<Pep440Version, String> {
        let Some(pattern) = PATTERN.as_ref() else {
            return Err("the PEP 440 pattern did not compile (a bug in berth)".into());
        };
        let Some(c) = pattern.captures(text.trim_matches(is_python_space)) else {
            return Err("it does not match PEP 440's version scheme".into());
        };
        let num = |name: &str| c.name(name).map(|m| Num::from_digits(m.as_str()));
        let epoch = num("epoch").unwrap_or_else(|| Num::from_digits("0"));
        let mut release: Vec<Num> = c
            .name("release")
            .map(|m| m.as_str().split('.').map(Num::from_digits).collect())
            .unwrap_or_default();
        while release.last().is_some_and(Num::is_zero) {
            release.pop();
        }
        let pre = c.name("pre_l").map(|l| {
            let kind = match l.as_str().to_lowercase().as_str() {
                "alpha" | "a" => Pre::Alpha,
                "beta" | "b" => Pre::Beta,
                _ => Pre::Rc,
            };
            (kind, num("pre_n").unwrap_or_else(|| Num::from_digits("0")))
        });
        let post = if c.name("post").is_some() {
            Some(
                num("post_n1")
                    .or_else(|| num("post_n2"))
                    .unwrap_or_else(|| Num::from_digits("0")),
            )
        } else {
            None
        };
        let dev = c
            .name("dev")
            .map(|_| num("dev_n").unwrap_or_else(|| Num::from_digits("0")));
        let pre = match pre {
            Some((kind, n)) => PreKey::Pre(kind, n),
            None if post.is_none() && dev.is_some() => PreKey::DevOnly,
            None => PreKey::None,
        };
        let local = c.name("local").map(|l| {
            l.as_str()
                .split(['-', '_', '.'])
                .map(|part| {
                    if part.bytes().all(|b| b.is_ascii_digit()) {
                        Local::Number(Num::from_digits(part))
                    } else {
                        Local::Text(part.to_lowercase().into())
                    }
                })
                .collect()
        });
        Ok(Pep440Version {
            text: text.into(),
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is a pre-release or a dev release.
    pub fn is_prerelease(&self) -> bool {
        matches!(self.pre, PreKey::Pre(..) | PreKey::DevOnly) || self.dev.is_some()
    }

    fn order(&self, other: &Pep440Version) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| self.release.cmp(&other.release))
            .then_with(|| self.pre.cmp(&other.pre))
            // None (-Infinity) before any post-release: Option's order.
            .then_with(|| self.post.cmp(&other.post))
            // None (+Infinity) after any dev release.
            .then_with(|| match (&self.dev, &other.dev) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(b),
            })
            .then_with(|| self.local.cmp(&other.local))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Pep440Version {
        Pep440Version::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn the_specifications_order() {
        let chain = [
            "1.dev0",
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
            "1!0.1",
        ];
        for w in chain.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{w:?}");
        }
    }

    #[test]
    fn spellings_normalise() {
        assert_eq!(v("1.0RC1"), v("1.0rc1"));
        assert_eq!(v("1.0-post1"), v("1.0.post1"));
        assert_eq!(v("1.0-1"), v("1.0.post1"));
        assert_eq!(v("v1.0"), v("1.0.0"));
        assert_eq!(v("1.0c1"), v("1.0rc1"));
        assert_eq!(v(" 1.0.dev \n"), v("1.0.dev0"));
        // Python's whitespace and case folding, as `packaging` 23 and 26 answer.
        assert_eq!(v("\u{1f}1.0\u{1c}"), v("1.0"));
        assert_eq!(v("\u{2028} 1.0\u{3000}"), v("1.0"));
        for bad in [
            "",
            "1.0.",
            "1.0-",
            "a1",
            "1.0+",
            "1.0+a..b",
            "1.0 1",
            "1.0\u{200b}",
            "1.0+\u{212a}",
        ] {
            assert!(Pep440Version::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
