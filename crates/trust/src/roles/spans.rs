//! Where each value of a JSON document starts, by JSON pointer (RFC 6901), so that the
//! semantic checks after `serde_json` can say `LINE:COL` too; and the duplicate object keys
//! `serde_json` silently merges.
//!
//! Runs only on text `serde_json` has already accepted, so it can be a small scanner; on
//! anything unexpected it stops and the positions it has are still right.

use std::collections::HashMap;

/// A 1-based line and column (columns count characters, as editors do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Value positions of one document.
#[derive(Debug, Default)]
pub(crate) struct Spans {
    values: HashMap<String, Position>,
    /// (pointer of the repeated member, position of its second key, the key)
    pub duplicates: Vec<(String, Position, String)>,
}

impl Spans {
    pub fn index(text: &str) -> Spans {
        let mut s = Scanner {
            chars: text.chars().collect(),
            i: 0,
            line: 1,
            col: 1,
            spans: Spans::default(),
        };
        s.value(String::new());
        s.spans
    }

    /// The position of the value at `pointer`, or of its nearest ancestor that has one.
    pub fn at(&self, pointer: &str) -> Position {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.values.get(p) {
                return *pos;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return Position { line: 1, column: 1 },
            }
        }
    }
}

/// Escapes one pointer token (`~` → `~0`, `/` → `~1`).
pub(crate) fn token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

struct Scanner {
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
    spans: Spans,
}

impl Scanner {
    fn pos(&self) -> Position {
        Position {
            line: self.line,
            column: self.col,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.bump();
        }
    }

    /// Scans one value; false when the text is not as expected (stop scanning).
    fn value(&mut self, pointer: String) -> bool {
        self.ws();
        let start = self.pos();
        self.spans.values.insert(pointer.clone(), start);
        match self.peek() {
            Some('{') => {
                self.bump();
                let mut seen: Vec<String> = Vec::new();
                loop {
                    self.ws();
                    match self.peek() {
                        Some('}') => {
                            self.bump();
                            return true;
                        }
                        Some(',') => {
                            self.bump();
                            continue;
                        }
                        Some('"') => {}
                        _ => return false,
                    }
                    let key_pos = self.pos();
                    let Some(key) = self.string() else {
                        return false;
                    };
                    self.ws();
                    if self.bump() != Some(':') {
                        return false;
                    }
                    let child = format!("{pointer}/{}", token(&key));
                    if seen.contains(&key) {
                        self.spans
                            .duplicates
                            .push((child.clone(), key_pos, key.clone()));
                        // the first occurrence keeps its position
                        let keep = self.spans.values.get(&child).copied();
                        if !self.value(format!("{child}\u{0}dup")) {
                            return false;
                        }
                        if let Some(k) = keep {
                            self.spans.values.insert(child, k);
                        }
                        continue;
                    }
                    seen.push(key);
                    if !self.value(child) {
                        return false;
                    }
                }
            }
            Some('[') => {
                self.bump();
                let mut n = 0usize;
                loop {
                    self.ws();
                    match self.peek() {
                        Some(']') => {
                            self.bump();
                            return true;
                        }
                        Some(',') => {
                            self.bump();
                            continue;
                        }
                        Some(_) => {}
                        None => return false,
                    }
                    if !self.value(format!("{pointer}/{n}")) {
                        return false;
                    }
                    n += 1;
                }
            }
            Some('"') => self.string().is_some(),
            Some(_) => {
                // number, true, false, null
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'))
                {
                    self.bump();
                }
                true
            }
            None => false,
        }
    }

    /// A string literal, unescaped.
    fn string(&mut self) -> Option<String> {
        if self.bump() != Some('"') {
            return None;
        }
        let mut out = String::new();
        loop {
            match self.bump()? {
                '"' => return Some(out),
                '\\' => match self.bump()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let mut hex = String::new();
                        for _ in 0..4 {
                            hex.push(self.bump()?);
                        }
                        let unit = u32::from_str_radix(&hex, 16).ok()?;
                        // surrogate pairs only matter for keys with astral characters
                        out.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
                    }
                    c => out.push(c),
                },
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_by_pointer_and_duplicate_keys() {
        let text = "{\n  \"a\": [1, {\"b/c\": \"x\"}],\n  \"d\": true,\n  \"a\": 2\n}";
        let s = Spans::index(text);
        assert_eq!(s.at(""), Position { line: 1, column: 1 });
        assert_eq!(s.at("/a"), Position { line: 2, column: 8 });
        assert_eq!(
            s.at("/a/1"),
            Position {
                line: 2,
                column: 12
            }
        );
        assert_eq!(
            s.at("/a/1/b~1c"),
            Position {
                line: 2,
                column: 20
            }
        );
        assert_eq!(s.at("/d"), Position { line: 3, column: 8 });
        // unknown pointers fall back to the nearest ancestor
        assert_eq!(s.at("/d/zz/0"), Position { line: 3, column: 8 });
        assert_eq!(s.duplicates.len(), 1);
        assert_eq!(s.duplicates[0].0, "/a");
        assert_eq!(s.duplicates[0].1, Position { line: 4, column: 3 });
        // the first occurrence keeps its position
        assert_eq!(s.at("/a"), Position { line: 2, column: 8 });
    }
}
