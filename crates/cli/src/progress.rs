//! What a transfer shows on stderr: a bar per blob and an overall bar on a terminal, plain
//! lines otherwise, nothing with `--quiet`.
//!
//! Bars are drawn only when stderr is a terminal, `TERM` is not `dumb` and `NO_COLOR` is
//! unset; scripts and CI logs get one line per event instead, which stay stable to grep.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// indicatif bars on stderr.
    Bars,
    /// One plain line per event on stderr.
    Lines,
    /// Nothing.
    Quiet,
}

impl Mode {
    /// Bars on an interactive terminal, lines elsewhere, nothing when `quiet`.
    #[expect(
        clippy::disallowed_methods,
        reason = "the binary reads TERM and NO_COLOR, as every command-line tool does"
    )]
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            return Mode::Quiet;
        }
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if std::io::stderr().is_terminal() && !dumb && !no_color {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }
}

/// The progress display of one command; cheap to clone.
#[derive(Clone)]
pub struct Progress {
    mode: Mode,
    bars: Option<Arc<Bars>>,
}

struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("mode", &self.mode)
            .finish()
    }
}

const BLOB_TEMPLATE: &str = "{prefix:>19} {bar:30.cyan/blue} {bytes:>10}/{total_bytes:<10} {msg}";
const TOTAL_TEMPLATE: &str =
    "{prefix:>19} {bar:30.green/white} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec} {msg}";

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        let bars = (mode == Mode::Bars).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            let total = multi.add(ProgressBar::new(0));
            total.set_style(style(TOTAL_TEMPLATE));
            total.set_prefix("total");
            Arc::new(Bars { multi, total })
        });
        Progress { mode, bars }
    }

    /// A line of its own (above the bars on a terminal).
    pub fn line(&self, line: fmt::Arguments<'_>) {
        match (&self.bars, self.mode) {
            (_, Mode::Quiet) => {}
            (Some(b), _) => {
                let _ = b.multi.println(line.to_string());
            }
            (None, _) => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    /// Start showing the transfer of blob `digest` of `size` bytes.
    pub fn blob(&self, digest: &berth_oci::Digest, size: u64) -> BlobProgress {
        let short = short_digest(digest.as_str());
        let bar = self.bars.as_ref().map(|b| {
            b.total.inc_length(size);
            let bar = b.multi.insert_before(
                &b.total,
                ProgressBar::new(size).with_style(style(BLOB_TEMPLATE)),
            );
            bar.set_prefix(short.clone());
            bar
        });
        if self.mode == Mode::Lines {
            self.line(format_args!("copying {digest} ({size} bytes)"));
        }
        BlobProgress {
            progress: self.clone(),
            bar,
            size,
            digest: digest.to_string(),
        }
    }

    /// Say that blob `digest` needed no transfer (`how`: "exists", "mounted").
    pub fn skipped(&self, digest: &berth_oci::Digest, how: &str) {
        match &self.bars {
            Some(b) => {
                let bar = b.multi.insert_before(
                    &b.total,
                    ProgressBar::new(0).with_style(style("{prefix:>19} {msg}")),
                );
                bar.set_prefix(short_digest(digest.as_str()));
                bar.finish_with_message(how.to_owned());
            }
            None => self.line(format_args!("{how} {digest}")),
        }
    }

    /// Remove the bars (before the command prints its result).
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            b.total.finish_and_clear();
            let _ = b.multi.clear();
        }
    }
}

/// The transfer of one blob; clones show the same bar.
#[derive(Debug, Clone)]
pub struct BlobProgress {
    progress: Progress,
    bar: Option<ProgressBar>,
    size: u64,
    digest: String,
}

impl BlobProgress {
    /// `n` more bytes arrived.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            let before = bar.position();
            let after = (before + n).min(self.size);
            bar.set_position(after);
            if let Some(b) = &self.progress.bars {
                b.total.inc(after - before);
            }
        }
    }

    /// The transfer (re)starts from byte `offset` (a retry or a resumed upload).
    pub fn restart_at(&self, offset: u64) {
        if let Some(bar) = &self.bar {
            let before = bar.position();
            let after = offset.min(self.size);
            bar.set_position(after);
            if let Some(b) = &self.progress.bars {
                if after >= before {
                    b.total.inc(after - before);
                } else {
                    b.total
                        .set_position(b.total.position().saturating_sub(before - after));
                }
            }
        }
    }

    /// The blob is at the destination; `how` says how ("done", "mounted", "exists").
    pub fn done(self, how: &str) {
        match &self.bar {
            Some(bar) => {
                self.inc(self.size);
                bar.finish_with_message(how.to_owned());
            }
            None if how != "done" => self.progress.line(format_args!("{how} {}", self.digest)),
            None => {}
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// `sha256:0123456789ab`: enough to tell layers apart on one line.
fn short_digest(d: &str) -> String {
    let (alg, hex) = d.split_once(':').unwrap_or(("", d));
    format!("{alg}:{}", &hex[..hex.len().min(12)])
}

/// The copy engine's events, rendered.
impl berth_transfer::Progress for Progress {
    fn manifest(&self, digest: &berth_oci::Digest) {
        self.line(format_args!("writing manifest {digest}"));
    }

    fn exists(&self, digest: &berth_oci::Digest) {
        self.skipped(digest, "exists");
    }

    fn blob(&self, digest: &berth_oci::Digest, size: u64) -> Arc<dyn berth_transfer::BlobProgress> {
        Arc::new(Progress::blob(self, digest, size))
    }
}

impl berth_transfer::BlobProgress for BlobProgress {
    fn inc(&self, n: u64) {
        BlobProgress::inc(self, n);
    }

    fn restart_at(&self, offset: u64) {
        BlobProgress::restart_at(self, offset);
    }

    fn done(&self, how: berth_transfer::Put) {
        self.clone().done(how.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_digest_keeps_the_algorithm_and_twelve_hex_digits() {
        assert_eq!(
            short_digest("sha256:0123456789abcdef0123"),
            "sha256:0123456789ab"
        );
        assert_eq!(short_digest("sha256:abc"), "sha256:abc");
    }

    #[test]
    fn quiet_wins_over_everything() {
        assert_eq!(Mode::detect(true), Mode::Quiet);
    }
}
