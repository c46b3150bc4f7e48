//! Maven's version order: `org.apache.maven.artifact.versioning.ComparableVersion` as in
//! maven-artifact 3.8 (Debian 12's `libmaven3-core-java`).
//!
//! Parsing (lowercased first): `.` and `-` separate items, and so does every switch between
//! digits and non-digits; an empty item is `0`. A `-`, and a switch between digits and
//! letters, opens a nested list that holds the rest, so `1-1` is `[1, [1]]` and `1a1` is
//! `[1, [a, [1]]]`; a qualifier that does not start its list (`1.x1`, or a trailing `1.0.x`)
//! opens one too, so `.x` reads as `-x`. Numbers are numbers (any length). Strings are qualifiers: `a`, `b`, `m`
//! directly followed by a digit mean `alpha`, `beta`, `milestone`; `ga`, `final` and
//! `release` mean the release (the empty qualifier) and `cr` means `rc`. Each list then
//! drops trailing "null" items (`0`, the release qualifier, empty lists), from the end back
//! to the first item that is neither null nor a list: `1.0.0` is `[1]`, `1-ga` is `[1]`.
//!
//! Comparing, item by item, a missing item against:
//! - a number: `0` is equal, others are greater;
//! - a qualifier: `alpha < beta < milestone < rc < snapshot < "" < sp < others` (others by
//!   text), compared with the release `""`: so `1-rc` < `1` < `1-sp`;
//! - a list: its items in turn against nothing.
//!
//! Across kinds: number > list > qualifier (`1.1` > `1-1` > `1-sp`).
//!
//! Maven's order is not transitive: a qualifier sorts below a list but above a missing item,
//! and a list starting with a pre-release qualifier below a missing item, so `1-alpha-1` <
//! `1` < `1.sp-1` < `1-alpha-1` (`ComparableVersion.main` says so too). This type keeps
//! Maven's answers, which is what matching a version against a range's events needs; but
//! sorting Maven versions that mix such qualifiers has no right answer, and `slice::sort`
//! may panic on an order that is not total: sort with a key of your own, or not at all.
//!
//! Maven orders any text; nothing is invalid. Java's `Character.isDigit` is Unicode's; here
//! only ASCII digits are digits (other scripts' digits are letters).

use std::cmp::Ordering;

use super::{Num, ord_by_order};

/// The known qualifiers, in order; the release is `""` at index 5.
const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE_INDEX: usize = 5;

#[derive(Debug, Clone)]
enum Item {
    Int(Num),
    /// A qualifier after aliasing.
    Str(Box<str>),
    List(Vec<Item>),
}

/// A Maven version.
#[derive(Debug, Clone)]
pub struct MavenVersion {
    text: Box<str>,
    items: Vec<Item>,
}

ord_by_order!(MavenVersion);

impl MavenVersion {
    /// `ComparableVersion.parseVersion`; every string is a version.
    pub fn parse(text: &str) -> MavenVersion {
        let version = text.to_lowercase();
        // The open lists, outermost first; each is appended to its parent when closed.
        let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
        let mut is_digit = false;
        let mut start = 0;
        for (i, c) in version.char_indices() {
            let top = stack.len() - 1;
            if c == '.' || c == '-' {
                let item = if i == start {
                    Item::Int(Num::from_digits("0"))
                } else {
                    parse_item(is_digit, &version[start..i], false)
                };
                stack[top].push(item);
                start = i + 1;
                if c == '-' {
                    stack.push(Vec::new());
                }
            } else if c.is_ascii_digit() {
                if !is_digit && i > start {
                    // A qualifier followed by a number opens a list of its own unless it
                    // starts one (`1.x1` is `[1, [x, [1]]]`).
                    if !stack[top].is_empty() {
                        stack.push(Vec::new());
                    }
                    let top = stack.len() - 1;
                    stack[top].push(Item::Str(qualifier(&version[start..i], true)));
                    start = i;
                    stack.push(Vec::new());
                }
                is_digit = true;
            } else {
                if is_digit && i > start {
                    stack[top].push(parse_item(true, &version[start..i], false));
                    start = i;
                    stack.push(Vec::new());
                }
                is_digit = false;
            }
        }
        if version.len() > start {
            // A trailing qualifier after other items is a list of its own: `.X` as `-X`
            // (`1.0.0.x1` < `1.0.0-x2`).
            if !is_digit && stack.last().is_some_and(|l| !l.is_empty()) {
                stack.push(Vec::new());
            }
            let top = stack.len() - 1;
            stack[top].push(parse_item(is_digit, &version[start..], false));
        }
        // Close the lists innermost first (Java normalises each as it pops its stack).
        let items = loop {
            let Some(mut list) = stack.pop() else {
                break Vec::new();
            };
            normalize(&mut list);
            match stack.last_mut() {
                Some(parent) => parent.push(Item::List(list)),
                None => break list,
            }
        };
        MavenVersion {
            text: text.into(),
            items,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The canonical form, as `ComparableVersion.getCanonical()` writes it.
    pub fn canonical(&self) -> String {
        list_string(&self.items)
    }

    fn order(&self, other: &MavenVersion) -> Ordering {
        cmp_lists(&self.items, &other.items)
    }
}

fn parse_item(is_digit: bool, text: &str, followed_by_digit: bool) -> Item {
    if is_digit {
        Item::Int(Num::from_digits(text))
    } else {
        Item::Str(qualifier(text, followed_by_digit))
    }
}

/// `StringItem`'s constructor: the one-letter shorthands and the aliases.
fn qualifier(text: &str, followed_by_digit: bool) -> Box<str> {
    let text = match (followed_by_digit, text) {
        (true, "a") => "alpha",
        (true, "b") => "beta",
        (true, "m") => "milestone",
        (_, t) => t,
    };
    match text {
        "ga" | "final" | "release" => "",
        "cr" => "rc",
        t => t,
    }
    .into()
}

/// `StringItem.comparableQualifier`: a known qualifier's index, others after all of them.
fn qualifier_rank(q: &str) -> (usize, &str) {
    match QUALIFIERS.iter().position(|k| *k == q) {
        Some(i) => (i, ""),
        None => (QUALIFIERS.len(), q),
    }
}

fn is_null(item: &Item) -> bool {
    match item {
        Item::Int(n) => n.is_zero(),
        Item::Str(s) => qualifier_rank(s).0 == RELEASE_INDEX,
        Item::List(l) => l.is_empty(),
    }
}

/// `ListItem.normalize`.
fn normalize(list: &mut Vec<Item>) {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        if is_null(&list[i]) {
            list.remove(i);
        } else if !matches!(list[i], Item::List(_)) {
            break;
        }
    }
}

/// `Item.compareTo(null)`.
fn cmp_missing(item: &Item) -> Ordering {
    match item {
        Item::Int(n) => {
            if n.is_zero() {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        Item::Str(s) => qualifier_rank(s).cmp(&(RELEASE_INDEX, "")),
        Item::List(l) => l
            .iter()
            .map(cmp_missing)
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal),
    }
}

/// `Item.compareTo(item)`.
fn cmp_items(a: &Item, b: &Item) -> Ordering {
    match (a, b) {
        (Item::Int(x), Item::Int(y)) => x.cmp(y),
        (Item::Int(_), _) => Ordering::Greater,
        (Item::Str(x), Item::Str(y)) => qualifier_rank(x).cmp(&qualifier_rank(y)),
        (Item::Str(_), _) => Ordering::Less,
        (Item::List(x), Item::List(y)) => cmp_lists(x, y),
        (Item::List(_), Item::Int(_)) => Ordering::Less,
        (Item::List(_), Item::Str(_)) => Ordering::Greater,
    }
}

fn cmp_lists(a: &[Item], b: &[Item]) -> Ordering {
    for k in 0..a.len().max(b.len()) {
        let r = match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) => cmp_items(x, y),
            (Some(x), None) => cmp_missing(x),
            (None, Some(y)) => cmp_missing(y).reverse(),
            (None, None) => Ordering::Equal,
        };
        if r.is_ne() {
            return r;
        }
    }
    Ordering::Equal
}

/// `ListItem.toString()` (3.8): items joined by `.`, a list item preceded by `-` (no
/// separator while the text is still empty).
fn list_string(items: &[Item]) -> String {
    let mut out = String::new();
    for item in items {
        if !out.is_empty() {
            out.push(if matches!(item, Item::List(_)) {
                '-'
            } else {
                '.'
            });
        }
        match item {
            Item::Int(n) => out.push_str(&n.0),
            Item::Str(s) => out.push_str(s),
            Item::List(l) => out.push_str(&list_string(l)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> MavenVersion {
        MavenVersion::parse(s)
    }

    #[test]
    fn qualifier_order() {
        let chain = [
            "1-alpha",
            "1-beta",
            "1-milestone",
            "1-rc",
            "1-snapshot",
            "1",
            "1-sp",
            "1-abc",
            "1-1",
            "1.1",
        ];
        for w in chain.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{w:?}");
        }
        assert_eq!(v("1.0.0"), v("1"));
        assert_eq!(v("1-ga"), v("1-final"));
        assert_eq!(v("1-cr1"), v("1-rc1"));
        assert_eq!(v("1a1"), v("1-alpha-1"));
        assert_eq!(v("1.0-alpha1").canonical(), "1-alpha-1");
    }
}
