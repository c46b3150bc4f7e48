//! runc's logging: logrus text (`time="…" level=error msg="…"`) or JSON lines
//! (`{"level":"error","msg":"…","time":"…"}`, which containerd's go-runc parses) to the
//! `--log` file, or to stderr when there is none. A fatal error is also printed plainly on
//! stderr when the log goes to a file, as runc does.

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, bail};

#[derive(Debug, Clone)]
pub struct Logger {
    file: Option<Arc<File>>,
    json: bool,
    debug: bool,
}

/// "a: b: c": the error chain, Go style.
pub fn chain(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

impl Logger {
    pub fn new(path: &str, format: &str, debug: bool) -> anyhow::Result<Logger> {
        let json = match format {
            "" | "text" => false,
            "json" => true,
            other => bail!("invalid log-format: {other}"),
        };
        let file = if path.is_empty() {
            None
        } else {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .custom_flags(libc_o_sync())
                .open(path)
                .with_context(|| format!("failed to open log file {path}"))?;
            Some(Arc::new(f))
        };
        Ok(Logger { file, json, debug })
    }

    fn line(&self, level: &str, msg: &str) -> String {
        let now = SystemTime::now();
        let full = berth_runtime_spec::timefmt::rfc3339_nano(now);
        // logrus' default timestamp: RFC 3339 with seconds
        let time = match full.find('.') {
            Some(i) => format!("{}Z", &full[..i]),
            None => full,
        };
        if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time=\"{time}\" level={level} msg={}", quote(msg))
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let line = self.line(level, msg);
        match &self.file {
            Some(f) => {
                let mut f: &File = f;
                let _ = writeln!(f, "{line}");
            }
            None => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
        }
    }

    pub fn warn(&self, msg: &str) {
        self.write("warning", msg);
    }

    /// Log an error line (only there: the caller reports it on stderr itself).
    pub fn error(&self, msg: &str) {
        self.write("error", msg);
    }

    /// Log an error and, when the log is a file, print it plainly on stderr too.
    pub fn fatal(&self, e: &anyhow::Error) {
        let msg = chain(e);
        self.write("error", &msg);
        if self.file.is_some() {
            let _ = writeln!(std::io::stderr(), "{msg}");
        }
    }
}

/// logrus quotes a value when it contains anything but [A-Za-z0-9-._/@^+].
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("{s:?}")
    }
}

fn libc_o_sync() -> i32 {
    rustix::fs::OFlags::SYNC.bits() as i32
}
