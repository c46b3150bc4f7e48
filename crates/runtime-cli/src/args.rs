//! The command-line lexer: runc's flag syntax (urfave/cli v1 over Go's `flag` package) read
//! against a table of flags, with no parser library (clap was ~200 KiB of the binary, and
//! the binary's size is its peak RSS).
//!
//! Accepted, as runc and as the clap parser this replaced:
//! - `--name value`, `--name=value`, `-name value` (Go's single-dash long form), `-n value`,
//!   `-n=value`, `-nvalue`; bool flags `--name`, `--name=true|false` (Go's `ParseBool`),
//!   clusters of short bool flags `-dt`;
//! - a value starting with `-` only as `--name=-x`, or when it is `-` or a number
//!   (`--memory -1`, `--resources -`): `--memory --pids-limit 1` is a missing value;
//! - a repeated flag: the last value wins (Go), or every value for a list (`--env`, `--cap`);
//! - `--` ends the flags; after it every argument is positional;
//! - flags anywhere among the positionals (urfave's argument reordering), except for verbs
//!   with a command after the id (`exec`, `ps`): there, as runc's `SkipArgReorder`,
//!   everything after the id belongs to the command (one leading `--` dropped).
//!
//! This file depends on nothing else in the crate, so the fuzz target includes it as is.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::str::FromStr;

/// One flag a verb (or the program) accepts.
#[derive(Debug)]
pub struct Flag {
    /// The long name, without dashes.
    pub long: &'static str,
    pub short: Option<char>,
    /// Whether the flag takes a value (else it is a bool).
    pub takes_value: bool,
    /// Whether it may be given more than once, each value kept (`--env`).
    pub list: bool,
    pub help: &'static str,
}

impl Flag {
    pub const fn bool(long: &'static str, short: Option<char>, help: &'static str) -> Flag {
        Flag {
            long,
            short,
            takes_value: false,
            list: false,
            help,
        }
    }

    pub const fn value(long: &'static str, short: Option<char>, help: &'static str) -> Flag {
        Flag {
            long,
            short,
            takes_value: true,
            list: false,
            help,
        }
    }

    pub const fn list(long: &'static str, short: Option<char>, help: &'static str) -> Flag {
        Flag {
            long,
            short,
            takes_value: true,
            list: true,
            help,
        }
    }
}

/// A command-line error: what is wrong, naming the flag, value or verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(msg: String) -> UsageError {
    UsageError(msg)
}

/// How the positional arguments are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positionals {
    /// Flags may come anywhere (urfave/cli v1 reorders them first).
    Interleaved,
    /// After this many positionals, every argument is positional (`exec ID cmd -x`).
    RawAfter(usize),
}

/// What a lexer run found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Matches {
    /// Each flag given, in order: the flag's long name and its value (`"true"`/`"false"`
    /// for a bool).
    pub flags: Vec<(&'static str, OsString)>,
    pub positionals: Vec<OsString>,
    /// `-h` or `--help` was given (among the flags).
    pub help: bool,
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &[u8]) -> Option<bool> {
    match s {
        b"1" | b"t" | b"T" | b"TRUE" | b"true" | b"True" => Some(true),
        b"0" | b"f" | b"F" | b"FALSE" | b"false" | b"False" => Some(false),
        _ => None,
    }
}

/// Whether a `-…` argument may still be the value of the flag before it: `-` (stdin) or a
/// number (`-1`).
fn is_dash_value(s: &[u8]) -> bool {
    s == b"-"
        || (s.len() > 1
            && s[1..]
                .iter()
                .all(|c| c.is_ascii_digit() || *c == b'.' || *c == b'_'))
}

fn os(b: &[u8]) -> OsString {
    OsString::from_vec(b.to_vec())
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Read `args` against `flags`. `stop_at_positional` ends the run at the first positional
/// (returned in `positionals` with everything after it): the program's flags before the verb.
pub fn lex(
    args: &[OsString],
    flags: &[&'static [Flag]],
    mode: Positionals,
    stop_at_positional: bool,
) -> Result<Matches, UsageError> {
    let find_long = |name: &[u8]| {
        flags
            .iter()
            .flat_map(|f| f.iter())
            .find(|f| f.long.as_bytes() == name)
    };
    let find_short = |c: u8| {
        flags
            .iter()
            .flat_map(|f| f.iter())
            .find(|f| f.short.is_some_and(|s| u32::from(s) == u32::from(c)))
    };
    let raw_from = |m: &Matches| match mode {
        Positionals::RawAfter(n) => m.positionals.len() >= n,
        Positionals::Interleaved => false,
    };
    let mut m = Matches::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_bytes();
        i += 1;
        if raw_from(&m) {
            // runc's SkipArgReorder: the rest is the command; `exec ID -- cmd` drops the `--`
            let start = if arg == b"--" { i } else { i - 1 };
            m.positionals.extend(args[start..].iter().cloned());
            break;
        }
        if arg == b"--" {
            m.positionals.extend(args[i..].iter().cloned());
            break;
        }
        if arg.len() < 2 || arg[0] != b'-' {
            m.positionals.push(os(arg));
            if stop_at_positional {
                m.positionals.extend(args[i..].iter().cloned());
                break;
            }
            continue;
        }
        let double = arg.starts_with(b"--");
        let body = if double { &arg[2..] } else { &arg[1..] };
        let (name, inline) = match body.iter().position(|c| *c == b'=') {
            Some(eq) => (&body[..eq], Some(&body[eq + 1..])),
            None => (body, None),
        };
        if name == b"help" || (!double && name == b"h") {
            m.help = true;
            continue;
        }
        // a long name, with two dashes or (Go) one
        let long = if double || name.len() > 1 {
            find_long(name)
        } else {
            None
        };
        if let Some(f) = long {
            let value = take_value(f, inline, args, &mut i, &arg_name(f))?;
            m.flags.push((f.long, value));
            continue;
        }
        if double {
            return Err(usage(format!(
                "flag provided but not defined: {}",
                lossy(&arg[..2 + name.len()])
            )));
        }
        // a cluster of short flags: bools, then perhaps one taking the rest as its value
        let mut k = 1;
        while k < arg.len() {
            let c = arg[k];
            let Some(f) = find_short(c) else {
                return Err(usage(format!(
                    "flag provided but not defined: -{}",
                    lossy(&arg[k..k + 1])
                )));
            };
            k += 1;
            if f.takes_value {
                let rest = &arg[k..];
                let inline = match rest {
                    [] => None,
                    [b'=', v @ ..] => Some(v),
                    v => Some(v),
                };
                let value = take_value(f, inline, args, &mut i, &arg_name(f))?;
                m.flags.push((f.long, value));
                break;
            }
            let value = match arg.get(k) {
                Some(b'=') => {
                    let v = &arg[k + 1..];
                    k = arg.len();
                    bool_value(f, v)?
                }
                _ => OsString::from("true"),
            };
            m.flags.push((f.long, value));
        }
    }
    Ok(m)
}

fn arg_name(f: &Flag) -> String {
    format!("--{}", f.long)
}

fn bool_value(f: &Flag, v: &[u8]) -> Result<OsString, UsageError> {
    match parse_bool(v) {
        Some(b) => Ok(OsString::from(if b { "true" } else { "false" })),
        None => Err(usage(format!(
            "invalid boolean value {:?} for flag --{}",
            lossy(v),
            f.long
        ))),
    }
}

fn take_value(
    f: &Flag,
    inline: Option<&[u8]>,
    args: &[OsString],
    i: &mut usize,
    name: &str,
) -> Result<OsString, UsageError> {
    if !f.takes_value {
        return match inline {
            Some(v) => bool_value(f, v),
            None => Ok(OsString::from("true")),
        };
    }
    if let Some(v) = inline {
        return Ok(os(v));
    }
    match args.get(*i) {
        Some(next) if !next.as_bytes().starts_with(b"-") || is_dash_value(next.as_bytes()) => {
            *i += 1;
            Ok(next.clone())
        }
        _ => Err(usage(format!("flag needs an argument: {name}"))),
    }
}

impl Matches {
    fn last(&self, long: &str) -> Option<&OsString> {
        self.flags
            .iter()
            .rev()
            .find(|(l, _)| *l == long)
            .map(|(_, v)| v)
    }

    /// A bool flag: its last value, false when absent.
    pub fn flag(&self, long: &str) -> bool {
        self.last(long).is_some_and(|v| v == "true")
    }

    pub fn path(&self, long: &str) -> Option<PathBuf> {
        self.last(long).map(PathBuf::from)
    }

    pub fn string(&self, long: &str) -> Result<Option<String>, UsageError> {
        self.last(long).map(|v| utf8(long, v)).transpose()
    }

    pub fn strings(&self, long: &str) -> Result<Vec<String>, UsageError> {
        self.flags
            .iter()
            .filter(|(l, _)| *l == long)
            .map(|(_, v)| utf8(long, v))
            .collect()
    }

    pub fn number<T: FromStr>(&self, long: &str) -> Result<Option<T>, UsageError>
    where
        T::Err: fmt::Display,
    {
        self.last(long).map(|v| number(long, v)).transpose()
    }

    pub fn numbers<T: FromStr>(&self, long: &str) -> Result<Vec<T>, UsageError>
    where
        T::Err: fmt::Display,
    {
        self.flags
            .iter()
            .filter(|(l, _)| *l == long)
            .map(|(_, v)| number(long, v))
            .collect()
    }

    /// The positionals as UTF-8 strings, between `min` and `max` of them (runc's
    /// `checkArgs`), for `verb`.
    pub fn positionals(
        &self,
        verb: &str,
        min: usize,
        max: usize,
    ) -> Result<Vec<String>, UsageError> {
        let n = self.positionals.len();
        if n < min || n > max {
            let what = match (min == max, n < min) {
                (true, _) => format!("exactly {min}"),
                (false, true) => format!("a minimum of {min}"),
                (false, false) => format!("a maximum of {max}"),
            };
            let got = match self.positionals.get(max) {
                Some(extra) if n > max => format!("unexpected argument {:?}", extra),
                _ if min == 1 && n == 0 => "missing container id".to_owned(),
                _ => format!("got {n}"),
            };
            return Err(usage(format!(
                "{verb:?} requires {what} argument(s): {got}"
            )));
        }
        self.positionals
            .iter()
            .map(|p| utf8("argument", p))
            .collect()
    }
}

fn utf8(what: &str, v: &OsStr) -> Result<String, UsageError> {
    v.to_str()
        .map(str::to_owned)
        .ok_or_else(|| usage(format!("invalid UTF-8 in the value of {what}: {v:?}")))
}

fn number<T: FromStr>(long: &str, v: &OsStr) -> Result<T, UsageError>
where
    T::Err: fmt::Display,
{
    let s = utf8(long, v)?;
    s.parse()
        .map_err(|e| usage(format!("invalid value {s:?} for flag --{long}: {e}")))
}

/// A verb's `--help`: runc's (urfave's) layout.
pub fn help(prog: &str, verb: &str, about: &str, usage: &str, flags: &[&[Flag]]) -> String {
    let mut s = format!("NAME:\n   {prog} {verb} - {about}\n\nUSAGE:\n   {prog} {verb}");
    if flags.iter().any(|f| !f.is_empty()) {
        s.push_str(" [command options]");
    }
    if !usage.is_empty() {
        s.push(' ');
        s.push_str(usage);
    }
    s.push('\n');
    options(&mut s, "OPTIONS", flags);
    s
}

/// An OPTIONS section: `--name value, -n value   help`, aligned, under `title`.
pub fn options(s: &mut String, title: &str, flags: &[&[Flag]]) {
    let rows: Vec<(String, String)> = flags
        .iter()
        .flat_map(|f| f.iter())
        .map(|f| {
            let v = if f.takes_value { " value" } else { "" };
            let mut left = format!("--{}{v}", f.long);
            if let Some(c) = f.short {
                left.push_str(&format!(", -{c}{v}"));
            }
            let help = if f.list {
                format!("{} (may be repeated)", f.help)
            } else {
                f.help.to_owned()
            };
            (left, help)
        })
        .chain(std::iter::once((
            "--help, -h".to_owned(),
            "show help".to_owned(),
        )))
        .collect();
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    s.push_str(&format!("\n{title}:\n"));
    for (left, help) in rows {
        s.push_str(&format!("   {left:width$}  {help}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[
        Flag::value("bundle", Some('b'), ""),
        Flag::bool("detach", Some('d'), ""),
        Flag::bool("tty", Some('t'), ""),
        Flag::list("env", Some('e'), ""),
        Flag::value("memory", None, ""),
        Flag::value("resources", Some('r'), ""),
    ];

    fn lex_line(line: &str, mode: Positionals) -> Result<Matches, UsageError> {
        let args: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        lex(&args, &[FLAGS], mode, false)
    }

    fn ok(line: &str) -> Matches {
        lex_line(line, Positionals::Interleaved).unwrap()
    }

    #[test]
    fn value_forms_all_read_the_same() {
        for line in [
            "--bundle /b x",
            "--bundle=/b x",
            "-bundle /b x",
            "-bundle=/b x",
            "-b /b x",
            "-b=/b x",
            "-b/b x",
            "x --bundle /b",
            "--bundle /a x --bundle /b",
        ] {
            let m = ok(line);
            assert_eq!(m.path("bundle"), Some(PathBuf::from("/b")), "{line}");
            assert_eq!(m.positionals, vec![OsString::from("x")], "{line}");
        }
    }

    #[test]
    fn bools_clusters_and_go_bool_values() {
        let m = ok("-dt x");
        assert!(m.flag("detach") && m.flag("tty"));
        let m = ok("--detach=false --tty=1 x");
        assert!(!m.flag("detach") && m.flag("tty"));
        assert!(!ok("x").flag("detach"));
        let m = ok("-db /b x");
        assert!(m.flag("detach"));
        assert_eq!(m.path("bundle"), Some(PathBuf::from("/b")));
        assert!(lex_line("--detach=maybe x", Positionals::Interleaved).is_err());
    }

    #[test]
    fn lists_keep_every_value() {
        let m = ok("-e A=1 --env B=2 --env=C=3 x");
        assert_eq!(m.strings("env").unwrap(), ["A=1", "B=2", "C=3"]);
    }

    #[test]
    fn dash_values_only_when_dash_or_numbers() {
        assert_eq!(ok("--memory -1 x").string("memory").unwrap().unwrap(), "-1");
        assert_eq!(ok("-r - x").path("resources"), Some(PathBuf::from("-")));
        assert_eq!(ok("--memory=-x x").string("memory").unwrap().unwrap(), "-x");
        let e = lex_line("--memory --detach x", Positionals::Interleaved).unwrap_err();
        assert_eq!(e.0, "flag needs an argument: --memory");
        let e = lex_line("x --bundle", Positionals::Interleaved).unwrap_err();
        assert_eq!(e.0, "flag needs an argument: --bundle");
    }

    #[test]
    fn unknown_flags_are_named() {
        for (line, flag) in [
            ("--bogus x", "--bogus"),
            ("--bogus=1 x", "--bogus"),
            ("-z x", "-z"),
            ("-dz x", "-z"),
        ] {
            let e = lex_line(line, Positionals::Interleaved).unwrap_err();
            assert_eq!(
                e.0,
                format!("flag provided but not defined: {flag}"),
                "{line}"
            );
        }
    }

    #[test]
    fn double_dash_and_raw_commands() {
        assert_eq!(ok("-- -d").positionals, vec![OsString::from("-d")]);
        let m = lex_line("-t x sh -c --detach", Positionals::RawAfter(1)).unwrap();
        assert!(m.flag("tty") && !m.flag("detach"));
        assert_eq!(m.positionals, ["x", "sh", "-c", "--detach"]);
        let m = lex_line("x -- sh -h", Positionals::RawAfter(1)).unwrap();
        assert_eq!(m.positionals, ["x", "sh", "-h"]);
        assert!(!m.help);
        let m = lex_line("-t -- x sh", Positionals::RawAfter(1)).unwrap();
        assert_eq!(m.positionals, ["x", "sh"]);
    }

    #[test]
    fn help_anywhere_among_the_flags() {
        assert!(ok("x --help").help);
        assert!(ok("-h").help);
        assert!(!ok("x").help);
    }

    #[test]
    fn positional_counts_and_numbers() {
        let e = ok("").positionals("create", 1, 1).unwrap_err();
        assert_eq!(
            e.0,
            "\"create\" requires exactly 1 argument(s): missing container id"
        );
        let e = ok("a b").positionals("start", 1, 1).unwrap_err();
        assert_eq!(
            e.0,
            "\"start\" requires exactly 1 argument(s): unexpected argument \"b\""
        );
        assert_eq!(ok("a b").positionals("kill", 1, 2).unwrap(), ["a", "b"]);
        let e = ok("--memory abc x").number::<i64>("memory").unwrap_err();
        assert!(
            e.0.starts_with("invalid value \"abc\" for flag --memory: "),
            "{e}"
        );
        assert_eq!(ok("--memory -1 x").number::<i64>("memory"), Ok(Some(-1)));
    }

    /// The fuzz target's property on generated lines (the fuzz target itself is not run in
    /// CI): no panic, only the table's flags, and the canonical spelling of what was read
    /// reads back the same.
    #[test]
    fn generated_lines_read_back_canonically() {
        const TOKENS: &[&str] = &[
            "x",
            "-",
            "--",
            "-1",
            "-x",
            "--bundle",
            "-b",
            "-b/b",
            "--bundle=",
            "-bundle",
            "--detach",
            "--detach=false",
            "-dt",
            "-td",
            "-dte",
            "A=1",
            "--env",
            "-e",
            "--env=B",
            "--memory",
            "--memory=-1",
            "-h",
            "--help",
            "--nope",
            "-=",
            "--=",
            "=",
            "",
            "-d=true",
            "-t=x",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut accepted = 0;
        for _ in 0..8_000 {
            let len = (next() % 7) as usize;
            let argv: Vec<OsString> = (0..len)
                .map(|_| OsString::from(TOKENS[(next() % TOKENS.len() as u64) as usize]))
                .collect();
            for mode in [Positionals::Interleaved, Positionals::RawAfter(1)] {
                for stop in [false, true] {
                    let Ok(m) = lex(&argv, &[FLAGS], mode, stop) else {
                        continue;
                    };
                    accepted += 1;
                    for (name, value) in &m.flags {
                        let f = FLAGS.iter().find(|f| f.long == *name).unwrap();
                        assert!(f.takes_value || value == "true" || value == "false");
                    }
                    let mut canon: Vec<OsString> = m
                        .flags
                        .iter()
                        .map(|(name, value)| {
                            let mut a = OsString::from(format!("--{name}="));
                            a.push(value);
                            a
                        })
                        .collect();
                    if m.help {
                        canon.push("--help".into());
                    }
                    if !m.positionals.is_empty() {
                        canon.push("--".into());
                        canon.extend(m.positionals.iter().cloned());
                    }
                    assert_eq!(lex(&canon, &[FLAGS], mode, stop), Ok(m), "{argv:?}");
                }
            }
        }
        assert!(accepted > 4_000, "only {accepted} lines accepted");
    }

    #[test]
    fn help_text_lists_every_flag() {
        let h = help(
            "rt",
            "create",
            "create a container",
            "<container-id>",
            &[FLAGS],
        );
        assert!(
            h.contains("rt create [command options] <container-id>"),
            "{h}"
        );
        assert!(h.contains("--bundle value, -b value"), "{h}");
        assert!(h.contains("--detach, -d"), "{h}");
    }
}
