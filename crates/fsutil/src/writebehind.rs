//! Write-behind: flush a file's dirty pages to disk while it is still being written.
//!
//! A large blob is made durable with one `fsync` after its last byte, which then waits for
//! every byte to reach the disk — on a 256 MiB pull that is half the time. [`WriteBehind`]
//! hands the flushing to a companion thread holding a duplicate of the file descriptor: every
//! [`WriteBehind::INTERVAL`] bytes it asks for an `fdatasync`, which runs while the writer
//! keeps writing, so the final `fsync` finds little left. Small files never start the thread.

use std::fs::File;
use std::io;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;

/// Background `fdatasync` of a file being written; see the module docs.
#[derive(Debug, Default)]
pub struct WriteBehind {
    pending: u64,
    worker: Option<(SyncSender<()>, JoinHandle<io::Result<()>>)>,
}

impl WriteBehind {
    /// Bytes written between two background flushes.
    pub const INTERVAL: u64 = 16 * 1024 * 1024;

    pub fn new() -> WriteBehind {
        WriteBehind::default()
    }

    /// Record that `n` more bytes were written to `file`; may start a background flush.
    /// Never blocks: when a flush is still running, the next one is simply requested later.
    pub fn wrote(&mut self, file: &File, n: usize) {
        self.pending = self.pending.saturating_add(n as u64);
        if self.pending < Self::INTERVAL {
            return;
        }
        if self.worker.is_none() {
            let Ok(dup) = file.try_clone() else {
                return; // no background flushing; the final fsync still makes it durable
            };
            let (tx, rx) = mpsc::sync_channel::<()>(1);
            let handle = std::thread::spawn(move || {
                for () in rx {
                    dup.sync_data()?;
                }
                Ok(())
            });
            self.worker = Some((tx, handle));
        }
        if let Some((tx, _)) = &self.worker {
            match tx.try_send(()) {
                Ok(()) => self.pending = 0,
                Err(TrySendError::Full(())) => {} // a flush is queued already
                Err(TrySendError::Disconnected(())) => self.pending = 0, // it failed; finish() reports
            }
        }
    }

    /// Stop the companion thread and report the first error it met. Call before the final
    /// `fsync`; the caller's `fsync` is what makes the file durable.
    pub fn finish(&mut self) -> io::Result<()> {
        match self.worker.take() {
            None => Ok(()),
            Some((tx, handle)) => {
                drop(tx);
                handle
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("write-behind thread panicked")))
            }
        }
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn flushes_in_the_background_and_finishes_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(dir.path().join("big"))
            .unwrap();
        let mut wb = WriteBehind::new();
        let chunk = vec![7u8; 1 << 20];
        for _ in 0..40 {
            f.write_all(&chunk).unwrap();
            wb.wrote(&f, chunk.len());
        }
        assert!(
            wb.worker.is_some(),
            "a 40 MiB file starts the companion thread"
        );
        wb.finish().unwrap();
        f.sync_all().unwrap();
        assert_eq!(f.metadata().unwrap().len(), 40 << 20);
    }

    #[test]
    fn small_files_start_no_thread() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(dir.path().join("small"))
            .unwrap();
        let mut wb = WriteBehind::new();
        f.write_all(b"tiny").unwrap();
        wb.wrote(&f, 4);
        assert!(wb.worker.is_none());
        wb.finish().unwrap();
    }
}
