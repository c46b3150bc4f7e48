//! Licence strings as packages record them, and SPDX licence expressions (SPDX 2.3 Annex D).
//!
//! A package's licences are a list of strings; both document formats carry the list as one
//! expression when it is valid SPDX, the terms joined by `AND`. [`join`] and [`split`] are
//! exact inverses on what berth writes: a term the reader would cut or unwrap is wrapped in
//! one pair of parentheses, and [`split`] removes exactly one.

use spdx::{Expression, ParseMode};

/// Strict SPDX parsing (licence list identifiers, `LicenseRef-`, `AND`/`OR`/`WITH`), with
/// the deprecated identifiers (`GPL-2.0`) still accepted: they are in the licence list and
/// in CycloneDX's `license.id` enumeration.
const MODE: ParseMode = ParseMode {
    allow_deprecated: true,
    ..ParseMode::STRICT
};

/// Whether `s` is a valid SPDX licence expression (a single identifier included).
pub(crate) fn is_expression(s: &str) -> bool {
    // An expression never has leading or trailing blanks or line breaks in berth's
    // documents; the parser would accept some of them and the reader could not keep them.
    !s.is_empty()
        && s.trim() == s
        && !s.contains(['\n', '\r', '\t'])
        && Expression::parse_mode(s, MODE).is_ok()
}

/// Whether `s` is exactly one identifier of the SPDX licence list (CycloneDX `license.id`).
pub(crate) fn is_licence_id(s: &str) -> bool {
    spdx::license_id(s).is_some_and(|id| id.name == s)
}

/// An atom: an identifier or a `LicenseRef-…`, nothing to group.
fn is_atom(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '(' || c == ')')
}

/// Whether the whole of `s` is one parenthesised group: `(A OR B)`, not `(A) AND (B)`.
fn wholly_enclosed(s: &str) -> bool {
    if !(s.starts_with('(') && s.ends_with(')')) || s.len() < 2 {
        return false;
    }
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 && i + 1 < s.len() {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

/// The parts of `s` between ` AND `s outside parentheses.
fn split_top_and(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b' ' if depth == 0 && bytes[i..].starts_with(b" AND ") => {
                parts.push(&s[start..i]);
                i += 5;
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts
}

/// One expression for a list of terms: `A`, or `(A OR B) AND C`.
pub(crate) fn join(terms: &[String]) -> String {
    match terms {
        [] => String::new(),
        [one] if split_top_and(one).len() == 1 && !wholly_enclosed(one) => one.clone(),
        [one] => format!("({one})"),
        many => many
            .iter()
            .map(|t| {
                if is_atom(t) {
                    t.clone()
                } else {
                    format!("({t})")
                }
            })
            .collect::<Vec<_>>()
            .join(" AND "),
    }
}

/// The terms of an expression [`join`] made (any other expression: its top-level `AND`
/// terms).
pub(crate) fn split(expression: &str) -> Vec<String> {
    split_top_and(expression)
        .into_iter()
        .map(|t| {
            if wholly_enclosed(t) {
                t[1..t.len() - 1].to_owned()
            } else {
                t.to_owned()
            }
        })
        .collect()
}

/// The `LicenseRef-` idstring for free text: letters, digits, `.` and `-`, the rest
/// replaced by `-` (as syft names them).
pub(crate) fn licence_ref(text: &str) -> String {
    if text.is_empty() {
        return "LicenseRef-empty".to_owned();
    }
    let mut id = String::from("LicenseRef-");
    id.extend(text.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            c
        } else {
            '-'
        }
    }));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(terms: &[&str]) {
        let terms: Vec<String> = terms.iter().map(|s| s.to_string()).collect();
        assert_eq!(split(&join(&terms)), terms, "{}", join(&terms));
    }

    #[test]
    fn join_and_split_are_inverses() {
        round(&["MIT"]);
        round(&["MIT", "Apache-2.0"]);
        round(&["MIT OR Apache-2.0"]);
        round(&["MIT AND Apache-2.0"]);
        round(&["(MIT)"]);
        round(&["((MIT))", "BSD-3-Clause"]);
        round(&[
            "GPL-2.0-only WITH Classpath-exception-2.0",
            "MIT OR (BSD-2-Clause AND ISC)",
        ]);
        round(&["(A) AND (B)"]);
        round(&["MIT "]);
        round(&[" AND X", "Y"]);
    }

    #[test]
    fn expressions_and_ids() {
        assert!(is_licence_id("MIT"));
        assert!(is_licence_id("GPL-2.0"));
        assert!(!is_licence_id("mit"));
        assert!(!is_licence_id("MIT OR Apache-2.0"));
        assert!(is_expression("MIT OR Apache-2.0"));
        assert!(is_expression("LicenseRef-foo"));
        assert!(is_expression("(MIT)"));
        assert!(!is_expression("GPLv2+"));
        assert!(!is_expression("MIT/Apache-2.0"));
        assert!(!is_expression(" MIT"));
        assert!(!is_expression(""));
        assert_eq!(licence_ref("BSD (3 clause)"), "LicenseRef-BSD--3-clause-");
    }

    #[test]
    fn syft_lists_split_into_their_terms() {
        assert_eq!(
            split("GPL-2.0-only AND GPL-2.0-or-later"),
            ["GPL-2.0-only", "GPL-2.0-or-later"]
        );
    }
}
