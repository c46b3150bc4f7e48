//! Repository names and tags as distribution-spec v1.1 defines them
//! ("Pulling manifests": `<name>` and `<reference>`).
//!
//! The name grammar is
//! `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`,
//! checked here by a hand-written single pass (no regex engine on the hot
//! path of every registry request); the unit tests cross-check it against the
//! `regex` crate.

/// Maximum length of a repository name, in bytes (distribution-spec: "many
/// clients impose a limit of 255 characters").
pub const MAX_NAME_LEN: usize = 255;

/// Maximum length of a tag (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`).
pub const MAX_TAG_LEN: usize = 128;

/// Why a repository name or tag was rejected.
///
/// The same variants serve names and tags; the caller knows which it asked
/// about and adds that context (e.g. [`crate::ReferenceError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name or tag is the empty string.
    #[error("name or tag is empty")]
    Empty,
    /// Longer than the limit (255 for repository names, 128 for tags).
    #[error("name or tag is {len} bytes long, over the limit of {max}")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
        /// The limit that applies.
        max: usize,
    },
    /// Does not match the grammar.
    #[error("invalid name or tag {name:?}: {reason}")]
    Invalid {
        /// The rejected input.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Checks a repository name against the distribution-spec grammar and the
/// 255-byte limit.
pub fn validate_repository_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            len: name.len(),
            max: MAX_NAME_LEN,
        });
    }
    repository_name_error(name.as_bytes()).map_or(Ok(()), |reason| {
        Err(NameError::Invalid {
            name: name.to_owned(),
            reason,
        })
    })
}

/// Checks a tag against `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), NameError> {
    let bytes = tag.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(NameError::Empty);
    };
    if bytes.len() > MAX_TAG_LEN {
        return Err(NameError::TooLong {
            len: bytes.len(),
            max: MAX_TAG_LEN,
        });
    }
    let invalid = |reason| NameError::Invalid {
        name: tag.to_owned(),
        reason,
    };
    if !(first.is_ascii_alphanumeric() || first == b'_') {
        return Err(invalid("tag must start with an ASCII letter, digit or '_'"));
    }
    if !bytes
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(invalid(
            "tag may only contain ASCII letters, digits, '_', '.' and '-'",
        ));
    }
    Ok(())
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_separator_byte(b: u8) -> bool {
    matches!(b, b'.' | b'_' | b'-')
}

/// `None` if `name` (already known non-empty and short enough) matches the
/// grammar, otherwise why not.
fn repository_name_error(name: &[u8]) -> Option<&'static str> {
    // Character set first, so the message names the real problem.
    if name.iter().any(u8::is_ascii_uppercase) {
        return Some("repository name must be lowercase");
    }
    if !name
        .iter()
        .all(|&b| is_alnum(b) || is_separator_byte(b) || b == b'/')
    {
        return Some(
            "repository name may only contain lowercase letters, digits, '.', '_', '-' and '/'",
        );
    }
    for component in name.split(|&b| b == b'/') {
        if let Some(reason) = component_error(component) {
            return Some(reason);
        }
    }
    None
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, given that it
/// only contains `[a-z0-9._-]`.
fn component_error(component: &[u8]) -> Option<&'static str> {
    if component.is_empty() {
        return Some(
            "repository name has an empty path component (leading, trailing or doubled '/')",
        );
    }
    let mut i = 0;
    loop {
        let run_start = i;
        while component.get(i).is_some_and(|&b| is_alnum(b)) {
            i += 1;
        }
        if i == run_start {
            // Only possible at the very start: a separator run always ends
            // at an alphanumeric or at the end, both handled below.
            return Some("each path component must start with a lowercase letter or digit");
        }
        if i == component.len() {
            return None;
        }
        let sep_start = i;
        while component.get(i).is_some_and(|&b| is_separator_byte(b)) {
            i += 1;
        }
        let separator = component.get(sep_start..i).unwrap_or_default();
        let valid =
            matches!(separator, b"." | b"_" | b"__") || separator.iter().all(|&b| b == b'-');
        if !valid {
            return Some(
                "separators between letters and digits must be '.', '_', '__' or a run of '-'",
            );
        }
        if i == component.len() {
            return Some("each path component must end with a lowercase letter or digit");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    const NAME_RE: &str =
        r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$";
    const TAG_RE: &str = r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$";

    fn regex_name_ok(re: &Regex, s: &str) -> bool {
        s.len() <= MAX_NAME_LEN && re.is_match(s)
    }

    /// Tiny deterministic PRNG so the generated cases are the same every run.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn edge_names() -> Vec<String> {
        let mut v: Vec<String> = [
            "",
            "a",
            "0",
            "library/busybox",
            "a/b/c/d/e",
            "..",
            ".",
            "a/../b",
            "a/./b",
            "%2e%2e",
            "a%2fb",
            "A",
            "aB",
            "Library/busybox",
            "a//b",
            "/a",
            "a/",
            "/",
            "//",
            "a_b",
            "a__b",
            "a___b",
            "a-b",
            "a--b",
            "a----------b",
            "a.b",
            "a..b",
            "a._b",
            "a_.b",
            "a-.b",
            "a.-b",
            "a-_b",
            "a_-b",
            "_a",
            "a_",
            "-a",
            "a-",
            ".a",
            "a.",
            "a b",
            " a",
            "a\n",
            "a\0b",
            "a:b",
            "a@b",
            "a+b",
            "a\\b",
            "ä",
            "a/ä",
            "ａ",
            "a/😀",
            "İ",
            "docker.io/library/busybox",
            "localhost:5000/a",
            "ubuntu-12.04-base",
            "dock__er/docker",
            "docker---rules/docker",
            "____/____",
            "_docker/_docker",
            "dock..er/docker",
            "dock_.er/docker",
            "dock-.er/docker",
            "docker/",
            "-docker/docker",
            "docker-/docker",
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for len in [254, 255, 256, 300] {
            v.push("a".repeat(len));
            let mut slashed = "a/".repeat(len / 2);
            slashed.truncate(len);
            v.push(slashed.trim_end_matches('/').to_owned());
            v.push(slashed);
        }
        v
    }

    #[test]
    fn edge_cases_agree_with_regex() {
        let re = Regex::new(NAME_RE).unwrap();
        for name in edge_names() {
            assert_eq!(
                validate_repository_name(&name).is_ok(),
                regex_name_ok(&re, &name),
                "disagreement on {name:?}: {:?}",
                validate_repository_name(&name)
            );
        }
    }

    #[test]
    fn exhaustive_short_names_agree_with_regex() {
        // Every string of up to 6 symbols over an alphabet covering each
        // character class the grammar distinguishes.
        let alphabet = ['a', '0', '.', '_', '-', '/', 'A', '%'];
        let re = Regex::new(NAME_RE).unwrap();
        let mut checked = 0usize;
        let mut accepted = 0usize;
        for len in 0..=6u32 {
            for mut n in 0..alphabet.len().pow(len) {
                let s: String = (0..len)
                    .map(|_| {
                        let c = alphabet[n % alphabet.len()];
                        n /= alphabet.len();
                        c
                    })
                    .collect();
                let ours = validate_repository_name(&s).is_ok();
                assert_eq!(ours, regex_name_ok(&re, &s), "disagreement on {s:?}");
                checked += 1;
                accepted += usize::from(ours);
            }
        }
        assert!(checked > 290_000, "checked {checked}");
        assert!(accepted > 1_000, "accepted {accepted}");
    }

    #[test]
    fn random_long_names_agree_with_regex() {
        // Biased towards valid-looking names so both outcomes are common,
        // with lengths straddling the 255 limit.
        let re = Regex::new(NAME_RE).unwrap();
        let pieces = [
            "a", "b", "z", "0", "9", "ab", "x1", ".", "_", "__", "-", "--", "/", "A", "é", "..",
        ];
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let target = rng.below(300);
            let mut s = String::new();
            while s.len() < target {
                let p = if rng.below(3) == 0 {
                    pieces[rng.below(pieces.len())]
                } else {
                    pieces[rng.below(5)]
                };
                s.push_str(p);
            }
            let ours = validate_repository_name(&s).is_ok();
            assert_eq!(ours, regex_name_ok(&re, &s), "disagreement on {s:?}");
            accepted += usize::from(ours);
        }
        assert!(accepted > 100, "accepted {accepted}");
    }

    #[test]
    fn length_limit_is_255_bytes() {
        assert_eq!(validate_repository_name(&"a".repeat(255)), Ok(()));
        let err = validate_repository_name(&"a".repeat(256)).unwrap_err();
        assert_eq!(err, NameError::TooLong { len: 256, max: 255 });
        assert!(err.to_string().contains("255"), "{err}");
        // Multi-byte characters count in bytes, and are invalid anyway.
        assert!(validate_repository_name(&"é".repeat(128)).is_err());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let reason = |s: &str| match validate_repository_name(s) {
            Err(NameError::Invalid { reason, .. }) => reason,
            other => panic!("expected Invalid for {s:?}, got {other:?}"),
        };
        assert_eq!(validate_repository_name(""), Err(NameError::Empty));
        assert_eq!(reason("Busybox"), "repository name must be lowercase");
        assert_eq!(
            reason("library/Busybox"),
            "repository name must be lowercase"
        );
        assert!(reason("a//b").contains("empty path component"));
        assert!(reason("/a").contains("empty path component"));
        assert!(reason("a/").contains("empty path component"));
        assert!(reason("..").contains("start with"));
        assert!(reason("a/../b").contains("start with"));
        assert!(reason("a-").contains("end with"));
        assert!(reason("a___b").contains("separators"));
        assert!(reason("a._b").contains("separators"));
        assert!(reason("%2e%2e").contains("may only contain"));
        assert!(reason("a b").contains("may only contain"));
        let err = validate_repository_name("a b").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid name or tag \"a b\": repository name may only contain lowercase letters, digits, '.', '_', '-' and '/'"
        );
    }

    #[test]
    fn valid_names() {
        for name in [
            "a",
            "library/busybox",
            "a__b",
            "a--b",
            "a-b-c/d.e_f",
            "0/1/2",
            "docker---rules/docker",
            "ubuntu-12.04-base",
        ] {
            assert_eq!(validate_repository_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn tags_agree_with_regex() {
        let re = Regex::new(TAG_RE).unwrap();
        let mut cases: Vec<String> = [
            "",
            "latest",
            "v1.0.0",
            "_",
            "_a",
            ".a",
            "-a",
            "a-",
            "a.",
            "A",
            "Z9",
            "a:b",
            "a/b",
            "a b",
            "é",
            "a@b",
            "1.2.3-rc.1_build",
            "a+b",
            "sha256-abc.sig",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for len in [127, 128, 129, 200] {
            cases.push("a".repeat(len));
            cases.push(format!("_{}", "-".repeat(len - 1)));
        }
        let alphabet = ['a', 'Z', '0', '_', '.', '-', ':', 'é'];
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        for _ in 0..20_000 {
            let len = rng.below(10);
            cases.push(
                (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect(),
            );
        }
        for tag in cases {
            assert_eq!(
                validate_tag(&tag).is_ok(),
                re.is_match(&tag),
                "disagreement on tag {tag:?}: {:?}",
                validate_tag(&tag)
            );
        }
    }

    #[test]
    fn tag_errors() {
        assert_eq!(validate_tag(""), Err(NameError::Empty));
        assert_eq!(
            validate_tag(&"a".repeat(129)),
            Err(NameError::TooLong { len: 129, max: 128 })
        );
        assert!(matches!(
            validate_tag("-x"),
            Err(NameError::Invalid { reason, .. }) if reason.contains("start")
        ));
        assert!(matches!(
            validate_tag("a:b"),
            Err(NameError::Invalid { reason, .. }) if reason.contains("only contain")
        ));
    }
}
