//! Unpacking while downloading: a [`LayerGate`] tells [`super::ensure_layers_gated`] when a
//! layer's blob is complete in the source, so each layer is unpacked as soon as its download
//! is committed rather than after the whole pull. [`Arrivals`] is the gate a pull feeds.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard};

use berth_oci::Digest;

/// When blobs become readable in a [`super::BlobSource`].
pub trait LayerGate: Sync {
    /// Block until blob `digest` is complete and verified in the source (`Ok`), or until it
    /// never will be (`Err` with the reason: the download failed or was abandoned).
    fn wait(&self, digest: &Digest) -> Result<(), String>;
}

/// Every blob is already there (the image is in the store).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllPresent;

impl LayerGate for AllPresent {
    fn wait(&self, _: &Digest) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Debug, Default)]
struct State {
    /// The image manifest chosen by the pull (digest, bytes), once known.
    manifest: Option<(Digest, Vec<u8>)>,
    ready: HashSet<Digest>,
    /// The pull failed: nothing more arrives.
    failed: Option<String>,
    /// The pull is over: what is not ready never will be.
    finished: bool,
}

/// What a pull reports as it goes (its manifest, each blob committed, its end) and what an
/// unpack waits on. Shared between the pull (any thread) and the unpack's workers.
#[derive(Debug, Default)]
pub struct Arrivals {
    state: Mutex<State>,
    changed: Condvar,
}

impl Arrivals {
    pub fn new() -> Arrivals {
        Arrivals::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind: keep going with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    /// The pull chose image manifest `digest` (the first one reported wins).
    pub fn manifest(&self, digest: &Digest, bytes: &[u8]) {
        self.update(|s| {
            if s.manifest.is_none() {
                s.manifest = Some((digest.clone(), bytes.to_vec()));
            }
        });
    }

    /// Blob `digest` is committed to the store (downloaded and verified, or already there).
    pub fn ready(&self, digest: &Digest) {
        self.update(|s| {
            s.ready.insert(digest.clone());
        });
    }

    /// The pull failed: every wait returns `reason`.
    pub fn fail(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.update(|s| {
            s.failed.get_or_insert(reason);
        });
    }

    /// The pull finished: a blob not reported by now is not coming.
    pub fn finish(&self) {
        self.update(|s| s.finished = true);
    }

    /// Block until the pull reports its image manifest (`None` when it failed or finished
    /// without one).
    pub fn wait_manifest(&self) -> Result<(Digest, Vec<u8>), String> {
        let mut s = self.lock();
        loop {
            if let Some(reason) = &s.failed {
                return Err(reason.clone());
            }
            if let Some(m) = &s.manifest {
                return Ok(m.clone());
            }
            if s.finished {
                return Err("the pull reported no image manifest".to_owned());
            }
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl LayerGate for Arrivals {
    fn wait(&self, digest: &Digest) -> Result<(), String> {
        let mut s = self.lock();
        loop {
            if let Some(reason) = &s.failed {
                return Err(reason.clone());
            }
            if s.ready.contains(digest) {
                return Ok(());
            }
            if s.finished {
                return Err(format!("the pull ended without blob {digest}"));
            }
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_returns_when_the_blob_arrives_or_the_pull_fails() {
        let a = Arrivals::new();
        let d1 = Digest::sha256_of(b"1");
        let d2 = Digest::sha256_of(b"2");
        std::thread::scope(|s| {
            let h = s.spawn(|| a.wait(&d1));
            a.ready(&d1);
            assert_eq!(h.join().unwrap(), Ok(()));
            let h = s.spawn(|| a.wait(&d2));
            a.fail("boom");
            assert_eq!(h.join().unwrap(), Err("boom".to_owned()));
        });
        // A failure is final, even for blobs that arrived.
        assert!(a.wait(&d1).is_err());
        assert!(a.wait_manifest().is_err());
    }

    #[test]
    fn a_finished_pull_ends_waits_for_blobs_it_never_reported() {
        let a = Arrivals::new();
        let d = Digest::sha256_of(b"x");
        a.manifest(&d, b"{}");
        a.ready(&d);
        a.finish();
        assert_eq!(a.wait(&d), Ok(()));
        assert!(a.wait(&Digest::sha256_of(b"y")).is_err());
        assert_eq!(a.wait_manifest().unwrap().1, b"{}".to_vec());
    }
}
