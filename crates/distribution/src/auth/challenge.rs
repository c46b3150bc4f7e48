//! `WWW-Authenticate` parsing (RFC 7235 §4.1, §2.1; RFC 7230 §3.2.6).
//!
//! ```text
//! WWW-Authenticate = 1#challenge
//! challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param       = token BWS "=" BWS ( token / quoted-string )
//! ```
//!
//! A comma separates both challenges and parameters; what follows a comma is a parameter
//! when it is `token =`, else the scheme of the next challenge. The parser is total: any
//! input gives a (possibly empty) list, in linear time, and never panics (fuzzed).

/// At most this many challenges are kept from one header.
const MAX_CHALLENGES: usize = 16;
/// At most this many parameters are kept per challenge.
const MAX_PARAMS: usize = 32;

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge {
    /// The scheme, lowercased: `basic`, `bearer`, …
    pub scheme: String,
    /// Parameters in order, names lowercased, values unquoted and unescaped.
    pub params: Vec<(String, String)>,
    /// A token68 in place of parameters (`Negotiate abc==`).
    pub token68: Option<String>,
}

impl Challenge {
    /// The first parameter called `name` (compared case-insensitively).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the scheme is `scheme` (case-insensitive).
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        // Only ASCII bytes are ever taken, so both ends are char boundaries.
        self.s.get(start..self.pos).unwrap_or("")
    }

    /// `"…"` with `\x` escapes; an unterminated string runs to the end of the input.
    fn quoted(&mut self) -> String {
        self.pos += 1; // opening quote
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.pos += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Skip to the next comma (not inside a quoted string), for garbage.
    fn skip_garbage(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b',' => return,
                b'"' => {
                    self.quoted();
                }
                _ => self.pos += 1,
            }
        }
    }

    /// At `token BWS "="` (not `==`, which ends a token68)? Consumes it and returns the name.
    fn param_name(&mut self) -> Option<String> {
        let save = self.pos;
        let name = self.take_while(is_tchar);
        self.skip_ws();
        if !name.is_empty() && self.peek() == Some(b'=') {
            self.pos += 1;
            self.skip_ws();
            // `abc==` or `abc=` followed by nothing or a comma is a token68, not a parameter.
            if !matches!(self.peek(), Some(b'=' | b',') | None) {
                return Some(name.to_ascii_lowercase());
            }
        }
        self.pos = save;
        None
    }

    fn param_value(&mut self) -> String {
        match self.peek() {
            Some(b'"') => self.quoted(),
            _ => self.take_while(is_tchar).to_owned(),
        }
    }

    fn challenge(&mut self) -> Option<Challenge> {
        let scheme = self.take_while(is_tchar);
        if scheme.is_empty() {
            // Not a token where a scheme should be: skip it.
            self.pos += 1;
            self.skip_garbage();
            return None;
        }
        let mut c = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            ..Challenge::default()
        };
        self.skip_ws();
        let mut first = true;
        loop {
            if let Some(name) = self.param_name() {
                let value = self.param_value();
                if c.params.len() < MAX_PARAMS {
                    c.params.push((name, value));
                }
            } else if first && self.peek().is_some_and(is_token68_char) {
                let start = self.pos;
                self.take_while(is_token68_char);
                self.take_while(|b| b == b'=');
                c.token68 = self.s.get(start..self.pos).map(str::to_owned);
            } else {
                // The next challenge's scheme, or the end.
                return Some(c);
            }
            first = false;
            self.skip_ws();
            match self.peek() {
                None => return Some(c),
                Some(b',') => {
                    self.skip_ws_and_commas();
                    if c.token68.is_some() {
                        return Some(c);
                    }
                }
                Some(_) => {
                    self.skip_garbage();
                    self.skip_ws_and_commas();
                }
            }
        }
    }
}

/// All challenges in a `WWW-Authenticate` header value (or several values joined by commas).
///
/// ```
/// use berth_distribution::parse_challenges;
/// let c = parse_challenges(r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull", Basic realm="x""#);
/// assert_eq!(c.len(), 2);
/// assert_eq!(c[0].scheme, "bearer");
/// assert_eq!(c[0].param("realm"), Some("https://auth.example/token"));
/// assert_eq!(c[1].param("Realm"), Some("x"));
/// ```
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut p = Parser {
        s: header,
        b: header.as_bytes(),
        pos: 0,
    };
    let mut out = Vec::new();
    loop {
        p.skip_ws_and_commas();
        if p.peek().is_none() || out.len() >= MAX_CHALLENGES {
            return out;
        }
        let before = p.pos;
        if let Some(c) = p.challenge() {
            out.push(c);
        }
        if p.pos == before {
            // Cannot happen (every branch consumes), but never loop forever on input.
            p.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn table() {
        type Expected<'a> = &'a [(&'a str, &'a [(&'a str, &'a str)])];
        let cases: &[(&str, Expected)] = &[
            ("Basic realm=\"x\"", &[("basic", &[("realm", "x")])]),
            ("basic", &[("basic", &[])]),
            (
                r#"Bearer realm="https://a/token",service="reg.example",scope="repository:a/b:pull,push""#,
                &[(
                    "bearer",
                    &[
                        ("realm", "https://a/token"),
                        ("service", "reg.example"),
                        ("scope", "repository:a/b:pull,push"),
                    ],
                )],
            ),
            (
                r#"BEARER Realm = "r" , Service=svc, Basic realm="b""#,
                &[
                    ("bearer", &[("realm", "r"), ("service", "svc")]),
                    ("basic", &[("realm", "b")]),
                ],
            ),
            (
                r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
                &[
                    (
                        "newauth",
                        &[
                            ("realm", "apps"),
                            ("type", "1"),
                            ("title", "Login to \"apps\""),
                        ],
                    ),
                    ("basic", &[("realm", "simple")]),
                ],
            ),
            (
                r#"Bearer realm="r",error="insufficient_scope",scope="repository:x:pull repository:y:push""#,
                &[(
                    "bearer",
                    &[
                        ("realm", "r"),
                        ("error", "insufficient_scope"),
                        ("scope", "repository:x:pull repository:y:push"),
                    ],
                )],
            ),
            // empty list elements are allowed
            (", ,Basic realm=x,, ,", &[("basic", &[("realm", "x")])]),
            // unterminated quoted string runs to the end
            (
                "Basic realm=\"unterminated",
                &[("basic", &[("realm", "unterminated")])],
            ),
            // backslash at the very end
            ("Basic realm=\"a\\", &[("basic", &[("realm", "a")])]),
            ("Basic realm=\"é\\ü\"", &[("basic", &[("realm", "éü")])]),
            ("", &[]),
            ("   ", &[]),
            ("=,=,\"", &[]),
        ];
        for (input, want) in cases {
            let got = parse_challenges(input);
            let got: Vec<(&str, Vec<(&str, &str)>)> =
                got.iter().map(|c| (c.scheme.as_str(), params(c))).collect();
            let want: Vec<(&str, Vec<(&str, &str)>)> =
                want.iter().map(|(s, p)| (*s, p.to_vec())).collect();
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn token68() {
        let c = parse_challenges("Negotiate YIIGhgYJKoZIhvcS==, Basic realm=\"x\"");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].token68.as_deref(), Some("YIIGhgYJKoZIhvcS=="));
        assert!(c[0].params.is_empty());
        assert_eq!(c[1].param("realm"), Some("x"));
        let c = parse_challenges("Negotiate abc=");
        assert_eq!(c[0].token68.as_deref(), Some("abc="));
    }

    #[test]
    fn hostile_inputs_do_not_panic_and_stay_bounded() {
        let long_quote = format!("Basic realm=\"{}", "\\".repeat(10_001));
        let many = "Basic, ".repeat(1000);
        let params = format!("Bearer {}", "a=b,".repeat(1000));
        let inputs = [
            "\"\"\"\"",
            "\\",
            "Basic realm=\"\\\"",
            "Bearer realm=\"x\" garbage \"quoted, with comma\", Basic realm=y",
            "Bearer ===",
            "Bearer a==b",
            "\u{0}\u{7f}\u{ff}",
            "Basic\trealm\t=\t\"t\"",
            "日本語 realm=\"x\"",
            &long_quote,
            &many,
            &params,
        ];
        for i in inputs {
            let c = parse_challenges(i);
            assert!(c.len() <= MAX_CHALLENGES, "{i:?}");
            assert!(c.iter().all(|c| c.params.len() <= MAX_PARAMS), "{i:?}");
        }
        let c =
            parse_challenges("Bearer realm=\"x\" garbage \"quoted, with comma\", Basic realm=y");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].param("realm"), Some("x"));
        assert_eq!(c[1].param("realm"), Some("y"));
        // random strings over the characters that matter never panic
        let alphabet = b"Bb =,\"\\\t;:/aeZ=~+x\xc3\xa9";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut bytes = Vec::new();
            for _ in 0..(state % 40) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let _ = parse_challenges(&String::from_utf8_lossy(&bytes));
        }
        // every byte prefix of a real header parses
        let real = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;
        for i in 0..=real.len() {
            let _ = parse_challenges(&real[..i]);
        }
    }
}
