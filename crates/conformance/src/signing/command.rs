//! The implementation's command line: a template split into words once (as a shell would,
//! with `'…'` and `"…"` quoting; no variables, globs or pipes), whose `{placeholders}` are
//! replaced word by word for each case, then run directly — no shell — in its own process
//! group with a time limit; the group is killed (SIGKILL, by its id) when the command ends or
//! overruns, so nothing it started outlives its case.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::Error;

/// The bytes of output kept from a run (the end of stdout and stderr together).
const OUTPUT_TAIL: usize = 2048;

/// A parsed command line with `{name}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTemplate {
    text: String,
    words: Vec<String>,
}

/// What a run of the command did.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// The exit status; `None` when it was killed (time limit) or could not start.
    pub code: Option<i32>,
    /// Why there is no exit status.
    pub error: Option<String>,
    /// Whether the command could not be started at all (not found, not executable).
    pub not_started: bool,
    /// The end of its stdout and stderr.
    pub output: String,
    pub duration: Duration,
}

impl CommandTemplate {
    /// Parses `text`; every name in `required` must appear as `{name}` and no other
    /// `{…}` placeholder than `known` may (a typo would otherwise reach the command).
    pub fn parse(text: &str, required: &[&str], known: &[&str]) -> Result<CommandTemplate, Error> {
        let bad = |reason: String| Error::InvalidCommand {
            command: text.to_owned(),
            reason,
        };
        let words = split_words(text).map_err(bad)?;
        if words.is_empty() {
            return Err(bad("it is empty".to_owned()));
        }
        for name in required {
            let p = format!("{{{name}}}");
            if !words.iter().any(|w| w.contains(&p)) {
                return Err(bad(format!("it has no {p} (where the case's {name} goes)")));
            }
        }
        for w in &words {
            let mut rest = w.as_str();
            while let Some(start) = rest.find('{') {
                let Some(len) = rest[start..].find('}') else {
                    break;
                };
                let name = &rest[start + 1..start + len];
                if !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !known.contains(&name)
                {
                    return Err(bad(format!(
                        "unknown placeholder {{{name}}} (known: {})",
                        known
                            .iter()
                            .map(|k| format!("{{{k}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                rest = &rest[start + len + 1..];
            }
        }
        Ok(CommandTemplate {
            text: text.to_owned(),
            words,
        })
    }

    /// The command line as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The words with every `{name}` replaced by its value.
    pub fn expand(&self, values: &BTreeMap<&str, String>) -> Vec<String> {
        self.words
            .iter()
            .map(|w| {
                let mut w = w.clone();
                for (name, value) in values {
                    w = w.replace(&format!("{{{name}}}"), value);
                }
                w
            })
            .collect()
    }

    /// Runs the expanded command in `dir` with `env` added, for at most `timeout`.
    pub(crate) async fn run(
        &self,
        values: &BTreeMap<&str, String>,
        env: &[(&str, &Path)],
        dir: &Path,
        timeout: Duration,
    ) -> Run {
        let argv = self.expand(values);
        let started = Instant::now();
        let fail = |error: String| Run {
            code: None,
            error: Some(error),
            not_started: false,
            output: String::new(),
            duration: started.elapsed(),
        };
        let Some((program, args)) = argv.split_first() else {
            return fail("the command line is empty".to_owned());
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that what it starts is killed with it.
            .process_group(0)
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Run {
                    not_started: true,
                    ..fail(format!("could not start {program:?}: {e}"))
                };
            }
        };
        let group = GroupGuard(child.id());
        let result = tokio::time::timeout(timeout, child.wait_with_output()).await;
        // Whatever it left running (or all of it, on a timeout) goes, by its group id.
        drop(group);
        match result {
            Ok(Ok(out)) => {
                let mut all = out.stdout;
                all.extend_from_slice(&out.stderr);
                let start = all.len().saturating_sub(OUTPUT_TAIL);
                Run {
                    not_started: false,
                    code: out.status.code(),
                    error: out
                        .status
                        .code()
                        .is_none()
                        .then(|| format!("ended without an exit status ({})", out.status)),
                    output: String::from_utf8_lossy(&all[start..]).into_owned(),
                    duration: started.elapsed(),
                }
            }
            Ok(Err(e)) => fail(format!("failed to wait for {program:?}: {e}")),
            // Dropping the future drops the child: kill_on_drop kills it by its pid.
            Err(_) => fail(format!("did not finish within {timeout:?}: killed")),
        }
    }
}

/// Kills a process group (SIGKILL, by its id: the verifier's pid) when dropped.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self
            .0
            .and_then(|id| rustix::process::Pid::from_raw(id as i32))
        {
            // ESRCH (nothing left) is the normal case.
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }
}

/// Splits a command line into words: whitespace separates, `'…'` keeps everything
/// literally, `"…"` keeps everything but `\"` and `\\`, a backslash outside quotes escapes
/// the next character.
fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("a single quote is not closed".to_owned()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err("a double quote is not closed".to_owned()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("a double quote is not closed".to_owned()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("it ends with a backslash".to_owned()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(w) = word {
        words.push(w);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_as_a_shell_would() {
        assert_eq!(
            split_words(r#"notation verify  --insecure-registry {image}"#).unwrap(),
            ["notation", "verify", "--insecure-registry", "{image}"]
        );
        assert_eq!(
            split_words(r#"sh -c 'exit 0' "a \"b\"" c\ d ''"#).unwrap(),
            ["sh", "-c", "exit 0", "a \"b\"", "c d", ""]
        );
        assert!(split_words("sh -c 'exit").is_err());
        assert!(split_words("a\\").is_err());
    }

    #[test]
    fn placeholders_are_checked_and_expanded_per_word() {
        let known = ["image", "policy", "truststore", "config"];
        let t = CommandTemplate::parse("v --p={policy} '{image} x'", &["image"], &known).unwrap();
        let values = BTreeMap::from([
            ("image", "h/r@sha256:1 ;rm".to_owned()),
            ("policy", "/p".to_owned()),
        ]);
        assert_eq!(t.expand(&values), ["v", "--p=/p", "h/r@sha256:1 ;rm x"]);
        assert!(CommandTemplate::parse("v {policy}", &["image"], &known).is_err());
        let e = CommandTemplate::parse("v {image} {polcy}", &["image"], &known).unwrap_err();
        assert!(e.to_string().contains("unknown placeholder {polcy}"), "{e}");
        assert!(CommandTemplate::parse("  ", &[], &known).is_err());
    }
}
