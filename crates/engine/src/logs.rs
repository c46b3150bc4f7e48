//! The container log format: JSON lines as docker's `json-file` driver writes them,
//! `{"log":"…\n","stream":"stdout"|"stderr","time":"RFC 3339 with nanoseconds"}`, one object
//! per line of output (a line longer than 16 KiB is split; the last piece of a stream without
//! a final newline is written without one). The file `container.log` is rotated at a maximum
//! size (default 10 MiB) to `container.log.1`, so a container's logs never take more than
//! twice that.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The largest piece of a line written as one entry (docker's 16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

/// The default size at which the log is rotated.
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// The monitor's writer.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
    pending: [Vec<u8>; 2],
}

const STREAMS: [&str; 2] = ["stdout", "stderr"];

impl LogWriter {
    pub fn open(path: &Path, max: u64) -> std::io::Result<LogWriter> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_owned(),
            file,
            size,
            max: max.max(4096),
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Take `data` read from stream 0 (stdout) or 1 (stderr); writes the complete lines.
    pub fn feed(&mut self, stream: usize, data: &[u8]) -> std::io::Result<()> {
        let s = stream.min(1);
        self.pending[s].extend_from_slice(data);
        loop {
            let buf = &self.pending[s];
            let cut = match buf.iter().position(|&b| b == b'\n') {
                Some(i) if i < MAX_LINE => i + 1,
                _ if buf.len() >= MAX_LINE => MAX_LINE,
                _ => break,
            };
            let piece: Vec<u8> = self.pending[s].drain(..cut).collect();
            if let Err(e) = self.entry(s, &piece) {
                // what cannot be written is dropped: memory stays bounded whatever the disk does
                self.pending[s].clear();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Write what is left of both streams (at exit).
    pub fn flush(&mut self) -> std::io::Result<()> {
        for s in 0..2 {
            if !self.pending[s].is_empty() {
                let piece = std::mem::take(&mut self.pending[s]);
                self.entry(s, &piece)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, s: usize, piece: &[u8]) -> std::io::Result<()> {
        let e = Entry {
            log: String::from_utf8_lossy(piece).into_owned(),
            stream: STREAMS[s].to_owned(),
            time: crate::record::now(),
        };
        let mut line = serde_json::to_vec(&e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max {
            let old = rotated(&self.path);
            let reopened = berth_fsutil::rename_durable(&self.path, &old)
                .map_err(std::io::Error::other)
                .and_then(|()| {
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .truncate(false)
                        .open(&self.path)
                });
            match reopened {
                Ok(f) => self.file = f,
                // the log cannot rotate (its directory is gone): start the file over, so
                // it stays within its size
                Err(_) => self.file.set_len(0)?,
            }
            self.size = 0;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }
}

/// The rotated file next to `path`.
pub fn rotated(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// Read every entry of `path` and its rotated predecessor, oldest first; also returns the
/// offset read up to in `path` (for following).
pub fn read_all(path: &Path) -> std::io::Result<(Vec<Entry>, u64)> {
    let mut out = Vec::new();
    let old = rotated(path);
    if let Ok(f) = File::open(&old) {
        read_from(f, &mut out)?;
    }
    let end = match File::open(path) {
        Ok(f) => read_from(f, &mut out)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    Ok((out, end))
}

/// Read complete lines from `f`, returning the offset after the last complete line.
pub fn read_from(f: File, out: &mut Vec<Entry>) -> std::io::Result<u64> {
    let mut r = BufReader::new(f);
    let mut pos = r.stream_position()?;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(pos);
        }
        pos += n as u64;
        // a line that is not an entry (a torn write) is skipped, not fatal
        if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
            out.push(e);
        }
    }
}

/// Read entries of `path` from `offset`; returns the new offset.
pub fn read_since(path: &Path, offset: u64, out: &mut Vec<Entry>) -> std::io::Result<u64> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    read_from(f, out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// The log's directory removed under a running monitor (rotation cannot rename): the
    /// writer's memory and the file stay bounded (the monitor once grew to 512 MiB).
    #[test]
    fn a_log_that_cannot_rotate_stays_bounded_in_memory_and_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let mut w = LogWriter::open(&path, 8192).unwrap();
        std::fs::remove_dir_all(dir.path()).unwrap();
        for _ in 0..20_000 {
            let _ = w.feed(0, b"tick\n/bin/sh: sleep: not found\n");
            assert!(w.pending[0].len() <= MAX_LINE, "{}", w.pending[0].len());
        }
        assert!(w.size <= 8192, "{}", w.size);
    }

    #[test]
    fn lines_split_long_ones_cut_and_the_log_rotates_at_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let mut w = LogWriter::open(&path, 8192).unwrap();
        w.feed(0, b"one\ntw").unwrap();
        w.feed(1, b"err\n").unwrap();
        w.feed(0, b"o\n").unwrap();
        let (e, _) = read_all(&path).unwrap();
        let got: Vec<(&str, &str)> = e
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("stdout", "one\n"),
                ("stderr", "err\n"),
                ("stdout", "two\n")
            ]
        );
        // a line longer than MAX_LINE is cut into pieces; the tail without newline is flushed
        w.feed(0, &vec![b'x'; MAX_LINE + 10]).unwrap();
        w.flush().unwrap();
        // writing far more than the maximum keeps at most two files of about the maximum
        for i in 0..2000 {
            w.feed(1, format!("line {i}\n").as_bytes()).unwrap();
        }
        let cur = std::fs::metadata(&path).unwrap().len();
        let old = std::fs::metadata(rotated(&path)).unwrap().len();
        assert!(cur <= 8192 && old <= 8192, "{cur} {old}");
        let (e, _) = read_all(&path).unwrap();
        assert_eq!(e.last().unwrap().log, "line 1999\n");
        let first: usize = e[0].log.trim_start_matches("line ").trim().parse().unwrap();
        assert!(
            first > 0 && e.len() == 2000 - first,
            "entries lost inside the kept window"
        );
    }
}
