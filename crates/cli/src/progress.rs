//! What a transfer shows on stderr: a bar per blob and an overall bar on a terminal, plain
//! lines otherwise, nothing with `--quiet`.
//!
//! Bars are drawn only when stderr is a terminal, `TERM` is not `dumb` and `NO_COLOR` is
//! unset; scripts and CI logs get one line per event instead, which stay stable to grep.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use berth_distribution::BlobSource;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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

/// An [`AsyncWrite`] that counts what passes through into a [`BlobProgress`].
#[derive(Debug)]
pub struct CountingWriter<W> {
    pub inner: W,
    pub progress: BlobProgress,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for CountingWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.progress.inc(*n as u64);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A [`BlobSource`] whose reads are counted into a [`BlobProgress`]: an upload's progress.
#[derive(Debug)]
pub struct CountingSource<S> {
    pub inner: S,
    pub progress: BlobProgress,
}

impl<S: BlobSource> BlobSource for CountingSource<S> {
    type Reader = CountingReader<S::Reader>;

    async fn open(&self, offset: u64) -> std::io::Result<Self::Reader> {
        let inner = self.inner.open(offset).await?;
        self.progress.restart_at(offset);
        Ok(CountingReader {
            inner,
            progress: self.progress.clone(),
        })
    }
}

/// An [`AsyncRead`] that counts what is read into a [`BlobProgress`].
#[derive(Debug)]
pub struct CountingReader<R> {
    inner: R,
    progress: BlobProgress,
}

impl<R: AsyncRead + Unpin> AsyncRead for CountingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            self.progress.inc((buf.filled().len() - before) as u64);
        }
        r
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

    #[tokio::test]
    async fn counting_source_restarts_at_the_offset_and_counts_reads() {
        use tokio::io::AsyncReadExt;
        let progress = Progress::new(Mode::Quiet);
        let d = berth_oci::Digest::sha256_of(b"0123456789");
        let blob = progress.blob(&d, 10);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        berth_fsutil::atomic_write(&path, b"0123456789").unwrap();
        let src = CountingSource {
            inner: berth_distribution::FileSource::new(&path),
            progress: blob.clone(),
        };
        let mut r = src.open(4).await.unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"456789");
    }
}
