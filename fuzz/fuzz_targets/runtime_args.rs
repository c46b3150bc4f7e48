//! berth-runtime's command-line lexer (`crates/runtime-cli/src/args.rs`, included as is: the
//! binary crate has no library to depend on) on arbitrary argument vectors (the input split
//! at NUL bytes): never panics; every flag it reports is one of the table's, with a bool's
//! value "true" or "false"; and the canonical spelling of what it read (`--name=value` for
//! each flag, `--help`, then `--` and the positionals) reads back to the same matches.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/runtime-cli/src/args.rs"]
#[allow(dead_code)]
mod args;

use args::{Flag, Positionals};

/// Flags of every shape: bools and values with and without short names, lists, and the
/// program's global flags.
const VERB: &[Flag] = &[
    Flag::value("bundle", Some('b'), ""),
    Flag::bool("detach", Some('d'), ""),
    Flag::bool("tty", Some('t'), ""),
    Flag::list("env", Some('e'), ""),
    Flag::list("additional-gids", Some('g'), ""),
    Flag::value("pid-file", None, ""),
    Flag::value("memory", None, ""),
    Flag::value("preserve-fds", None, ""),
    Flag::bool("no-pivot", None, ""),
];
const GLOBAL: &[Flag] = &[
    Flag::bool("debug", None, ""),
    Flag::value("log", None, ""),
    Flag::value("root", None, ""),
    Flag::value("rootless", None, ""),
    Flag::bool("version", Some('v'), ""),
];

fuzz_target!(|data: &[u8]| {
    let argv: Vec<OsString> = data
        .split(|b| *b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    let tables: [&[Flag]; 2] = [VERB, GLOBAL];
    let _ = args::help("rt", "verb", "about", "<id>", &tables);
    for mode in [Positionals::Interleaved, Positionals::RawAfter(1), Positionals::RawAfter(0)] {
        for stop in [false, true] {
            let Ok(m) = args::lex(&argv, &tables, mode, stop) else {
                continue;
            };
            assert!(m.positionals.len() <= argv.len());
            for (name, value) in &m.flags {
                let f = tables
                    .iter()
                    .flat_map(|t| t.iter())
                    .find(|f| f.long == *name)
                    .expect("a flag from the table");
                if !f.takes_value {
                    assert!(value == "true" || value == "false", "{name}={value:?}");
                }
            }
            // the accessors never panic, whatever the values
            for f in tables.iter().flat_map(|t| t.iter()) {
                let _ = m.flag(f.long);
                let _ = m.path(f.long);
                let _ = m.string(f.long);
                let _ = m.strings(f.long);
                let _ = m.number::<u32>(f.long);
                let _ = m.numbers::<i64>(f.long);
            }
            let _ = m.positionals("verb", 1, 2);
            // the canonical spelling reads back the same
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
            let again = args::lex(&canon, &tables, mode, stop).expect("the canonical form parses");
            assert_eq!(again, m, "{:?}", canon.iter().map(|a| a.as_bytes()).collect::<Vec<_>>());
        }
    }
});
