//! Upload sessions (distribution's `blobwriter.go`): `_uploads/<id>/` holds `startedat`
//! and the `data` received so far, so any replica — or this one after a restart — can
//! continue a session. Bytes are hashed as they arrive when this process saw the session
//! from its first byte ([`PartialHash`]); otherwise the data is re-hashed from storage on
//! commit. Content becomes a blob only after its digest is verified, by one move — or, for
//! a small blob one request carries whole ([`Uploads::commit_whole`]), by one conditional
//! create of the verified bytes under their digest.
//!
//! On a driver that adopts large data by reference instead of moving it
//! ([`Driver::reference_min`]: object storage, where a move copies every byte), the data
//! lives apart from the session, in [`paths::upload_data_dir`], so that the session's end
//! does not delete what a blob now references. The commit first claims that directory
//! with an owner record (a conditional create naming the blob), then adopts; the
//! collector deletes the directory with the blob that references it, and reaps one that
//! neither a session nor a blob owns (`gc.rs`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_oci::{Algorithm, Digest, Digester};
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::{
    Driver, DriverError, Repository, Result, StorageError, UploadWriter, now_millis, paths,
};

/// Upload sessions whose hash state is kept between requests.
const MAX_CACHED_HASHES: usize = 4096;

/// Hashing progress of an upload session kept between requests: an optimisation only. When
/// it is missing (another replica, a restart) the upload is re-hashed from storage.
#[derive(Debug)]
pub(crate) struct PartialHash {
    offset: u64,
    digester: Digester,
}

fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The upload sessions of one repository.
#[derive(Debug)]
pub struct Uploads<'a, D: Driver> {
    pub(super) repo: Repository<'a, D>,
}

/// An upload session as storage holds it ([`Uploads::session`]).
#[derive(Debug, Clone, Copy)]
pub struct Session {
    /// Bytes received so far.
    pub size: u64,
    /// When it started, when storage knows (the start marker's modification time).
    pub started: Option<SystemTime>,
    /// Its directory holds its start marker and data and nothing else, so that the commit
    /// removing those two leaves nothing to delete (every driver removes a prefix, or
    /// directory, emptied by a delete or a move, at worst leaving an empty one to the
    /// upload purge).
    pub tidy: bool,
    /// A data file is stored (possibly empty).
    pub has_data: bool,
}

/// A committed upload.
#[derive(Debug, Clone, Copy)]
pub struct Committed {
    pub size: u64,
    /// From the session's start to its commit, when the start is known.
    pub duration: Option<Duration>,
}

impl<'a, D: Driver> Uploads<'a, D> {
    fn unknown(id: &str) -> StorageError {
        StorageError::UploadUnknown { id: id.to_owned() }
    }

    /// Whether session data lives apart from the sessions (see the module documentation).
    fn apart(&self) -> bool {
        self.repo.driver().reference_min().is_some()
    }

    /// Where the session's data is written.
    fn data_path(&self, id: &str) -> String {
        if self.apart() {
            paths::upload_data_apart(id)
        } else {
            paths::upload_data(self.repo.name, id)
        }
    }

    /// Delete the session's directory and, kept apart, its data unless a commit claimed it;
    /// not found is no error.
    async fn delete_session(&self, id: &str) -> std::result::Result<(), DriverError> {
        let dir = match self
            .repo
            .driver()
            .delete(&paths::upload_dir(self.repo.name, id))
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            r => r,
        };
        let data = if self.apart() {
            super::reap_upload_data(self.repo.driver(), id)
                .await
                .map(|_| ())
        } else {
            Ok(())
        };
        dir.and(data)
    }

    /// Start a session; returns its id. The marker is scratch space like the data: written
    /// without fsync (a marker lost or emptied by a crash loses the session, which the spec
    /// allows; an unreadable one counts as abandoned).
    pub async fn create(&self) -> Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        // one small write, atomic but not synced (`put_hint`): one request on object storage
        let marked = self
            .repo
            .driver()
            .put_hint(
                &paths::upload_started(self.repo.name, &id),
                Bytes::from(now_millis().to_string()),
            )
            .await;
        if let Err(e) = marked {
            self.discard(&id).await;
            return Err(e.into());
        }
        Ok(id)
    }

    /// The session as storage holds it, from one [`Driver::list_files`] of its directory
    /// (one request on object storage); [`StorageError::UploadUnknown`] if there is none
    /// (no start marker: never started, completed, cancelled, or removed).
    pub async fn session(&self, id: &str) -> Result<Session> {
        if !valid_session_id(id) {
            return Err(Self::unknown(id));
        }
        let driver = self.repo.driver();
        let (dir, data_dir) = (
            paths::upload_dir(self.repo.name, id),
            paths::upload_data_dir(id),
        );
        let listing = driver.list_files(&dir);
        // data kept apart: its directory listed at the same time (two requests, one wait)
        let (files, apart) = if self.apart() {
            let (f, d) = tokio::join!(listing, driver.list_files(&data_dir));
            let d = match d {
                Ok(d) => d,
                Err(e) if e.is_not_found() => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            (f, Some(d))
        } else {
            (listing.await, None)
        };
        let files = match files {
            Ok(f) => f,
            Err(e) if e.is_not_found() => return Err(Self::unknown(id)),
            Err(e) => return Err(e.into()),
        };
        let Some((_, marker)) = files.iter().find(|(n, _)| n == paths::UPLOAD_STARTED) else {
            return Err(Self::unknown(id));
        };
        let data_files = apart.as_ref().unwrap_or(&files);
        // data that a commit (or the collector) has claimed is no session's any more
        if data_files
            .iter()
            .any(|(n, _)| n == paths::UPLOAD_DATA_OWNER)
            && apart.is_some()
        {
            return Err(Self::unknown(id));
        }
        let data = data_files.iter().find(|(n, _)| n == paths::UPLOAD_DATA);
        let size = data.filter(|(_, i)| !i.is_dir).map_or(0, |(_, i)| i.size);
        let tidy = files.iter().all(|(n, i)| {
            !i.is_dir
                && (n == paths::UPLOAD_STARTED || (apart.is_none() && n == paths::UPLOAD_DATA))
        });
        let has_data = data.is_some();
        Ok(Session {
            size,
            started: marker.modified,
            tidy,
            has_data,
        })
    }

    /// How many bytes the session holds; [`StorageError::UploadUnknown`] if there is none.
    pub async fn size(&self, id: &str) -> Result<u64> {
        Ok(self.session(id).await?.size)
    }

    /// Append to a session that holds `current` bytes, as [`Uploads::session`] said (the
    /// caller checked it exists): the driver may take `current` on trust
    /// ([`Driver::writer_at`]), and refuses the appends if the session grew meanwhile.
    pub async fn writer(&self, id: &str, current: u64) -> Result<BlobWriter<D>> {
        // Hash as we go only when we know the hash state at `current`.
        let partial = {
            let cached = self
                .repo
                .reg
                .hashes
                .lock()
                .ok()
                .and_then(|mut m| m.remove(id));
            match cached {
                Some(p) if p.offset == current => Some(p),
                _ if current == 0 => Some(PartialHash {
                    offset: 0,
                    digester: Digester::new(Algorithm::Sha256),
                }),
                _ => None,
            }
        };
        let writer = match self
            .repo
            .driver()
            .writer_at(&self.data_path(id), current)
            .await
        {
            Ok(w) => w,
            Err(e) => {
                self.discard(id).await;
                return Err(e.into());
            }
        };
        Ok(BlobWriter {
            writer,
            partial,
            expect: current,
            id: id.to_owned(),
        })
    }

    /// Keep a writer's hash state for the session's next request.
    pub fn keep_hash(&self, closed: Closed) {
        let Some(p) = closed.partial else { return };
        if let Ok(mut map) = self.repo.reg.hashes.lock() {
            // a cache, not state: forget everything rather than grow without bound when
            // clients abandon many sessions
            if map.len() >= MAX_CACHED_HASHES {
                map.clear();
            }
            map.insert(closed.id, p);
        }
    }

    /// Verify the session's data against `expected` and, when it matches, make it a blob
    /// linked into this repository. `session` is what [`Uploads::session`] said in this
    /// request, with the size after its appends. The session is gone afterwards either way
    /// (except when it was not found or storage failed otherwise).
    pub async fn commit(&self, id: &str, expected: &Digest, session: Session) -> Result<Committed> {
        let name = self.repo.name;
        let driver = self.repo.driver();
        let reg = self.repo.reg;
        let data = self.data_path(id);
        // Flush what the session holds to disk before anything can make it visible (this
        // also creates the file for an empty blob, where nothing was ever appended); no
        // request on object storage, where every stored piece is durable already.
        let flushed = async {
            driver
                .writer_at(&data, session.size)
                .await?
                .commit(true)
                .await
        }
        .await;
        let size = match flushed {
            Ok(size) => size,
            Err(e) => {
                if e.is_storage_full() {
                    self.discard(id).await;
                }
                return Err(e.into());
            }
        };
        let cached = reg.hashes.lock().ok().and_then(|mut m| m.remove(id));
        let actual = match cached {
            Some(p) if p.offset == size && p.digester.algorithm() == expected.algorithm() => {
                p.digester.finalize()
            }
            _ => rehash(driver, &data, expected.algorithm()).await?,
        };
        if &actual != expected {
            let _ = self.delete_session(id).await;
            return Err(StorageError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        // The session ends here: remove its marker before the data moves, so a crash in
        // between leaves no session that looks resumable but has lost its bytes (a client
        // then sees BLOB_UPLOAD_UNKNOWN and HEADs or re-uploads the blob).
        let started = match session.started {
            Some(t) => Some(t),
            // a driver without modification times: the time the marker records
            None => driver
                .get_content(&paths::upload_started(name, id))
                .await
                .ok()
                .and_then(|raw| String::from_utf8_lossy(&raw).trim().parse::<u64>().ok())
                .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
        };
        match driver.delete(&paths::upload_started(name, id)).await {
            Ok(()) => {}
            // another request completed or cancelled this session meanwhile
            Err(e) if e.is_not_found() => return Err(Self::unknown(id)),
            Err(e) => return Err(e.into()),
        }
        // The clock first, then the content (see `Registry::mark_referenced`): when the
        // blob is already there this is all; otherwise the verified upload moves in.
        let moved = !reg.mark_referenced(expected).await?;
        let referenced = moved && driver.reference_min().is_some_and(|min| size >= min);
        if referenced {
            // claim the data for this blob before any reference to it exists: the collector
            // reaps only data it claims first, and keeps claimed data while the blob
            // references it
            let owner = format!("{expected} {}", now_millis());
            match driver
                .put_new(&paths::upload_data_owner(id), Bytes::from(owner))
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_already_exists() => return Err(Self::unknown(id)),
                Err(e) => return Err(e.into()),
            }
        }
        if moved {
            driver
                .adopt(&data, &paths::blob_data(expected), size)
                .await?;
        }
        self.repo.blobs().link(expected).await?;
        // The marker's delete emptied a tidy session's directory, and the move its data;
        // otherwise what is left goes: the data (a blob that was there already, or an
        // emptied directory apart), strays. Data a blob references stays.
        if self.apart() {
            // (a move leaves nothing apart: no owner record was made for it)
            if !moved {
                let _ = driver.delete(&data).await;
            }
            if !session.tidy {
                let _ = driver.delete(&paths::upload_dir(name, id)).await;
            }
        } else if !(moved && session.tidy) {
            let _ = driver.delete(&paths::upload_dir(name, id)).await;
        }
        tracing::debug!(repo = name, digest = %expected, size, "blob committed");
        let duration = started.map(|t| SystemTime::now().duration_since(t).unwrap_or_default());
        Ok(Committed { size, duration })
    }

    /// Commit a blob whose content this request holds whole in memory (a small monolithic
    /// upload, or the whole blob in the `PUT` of a session that holds nothing yet):
    /// verify these very bytes, end the session `id` (its marker) if there is one, then the
    /// clock and the content as [`Uploads::commit`] does — except that the content is
    /// created straight from these bytes by [`Driver::put_new`] (conditional, atomic:
    /// "already there" is the blob's content present) instead of written to the session
    /// and moved. On object storage: no segment, no listing to locate it, no copy, no
    /// delete of it.
    pub async fn commit_whole(
        &self,
        session: Option<(&str, Session)>,
        expected: &Digest,
        content: Bytes,
    ) -> Result<Committed> {
        let name = self.repo.name;
        let driver = self.repo.driver();
        let reg = self.repo.reg;
        let mut digester = Digester::new(expected.algorithm());
        digester.update(&content);
        let actual = digester.finalize();
        if &actual != expected {
            if let Some((id, _)) = session {
                self.discard(id).await;
            }
            return Err(StorageError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        let size = content.len() as u64;
        if let Some((id, _)) = session {
            self.forget_hash(id);
            match driver.delete(&paths::upload_started(name, id)).await {
                Ok(()) => {}
                // another request completed or cancelled this session meanwhile
                Err(e) if e.is_not_found() => return Err(Self::unknown(id)),
                Err(e) => return Err(e.into()),
            }
        }
        // The clock first, then the content (see `Registry::mark_referenced`): the
        // conditional create is the content check — created, or found already there.
        reg.refresh_last_referenced(expected).await?;
        match driver.put_new(&paths::blob_data(expected), content).await {
            Ok(()) => {}
            Err(e) if e.is_already_exists() => {}
            Err(e) => return Err(e.into()),
        }
        self.repo.blobs().link(expected).await?;
        // a session holding only its marker is gone with it; anything else is deleted
        if let Some((id, s)) = session
            && (!s.tidy || s.has_data)
        {
            let _ = self.delete_session(id).await;
        }
        tracing::debug!(repo = name, digest = %expected, size, "blob committed whole");
        let duration = session
            .and_then(|(_, s)| s.started)
            .map(|t| SystemTime::now().duration_since(t).unwrap_or_default());
        Ok(Committed { size, duration })
    }

    /// Cancel a session (the client's DELETE).
    pub async fn cancel(&self, id: &str) -> Result<()> {
        self.size(id).await?;
        self.forget_hash(id);
        match self
            .repo
            .driver()
            .delete(&paths::upload_dir(self.repo.name, id))
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Err(Self::unknown(id)),
            Err(e) => return Err(e.into()),
        }
        if self.apart() {
            // claimed first: a commit that ended the session meanwhile may reference it
            super::reap_upload_data(self.repo.driver(), id).await?;
        }
        Ok(())
    }

    fn forget_hash(&self, id: &str) {
        if let Ok(mut m) = self.repo.reg.hashes.lock() {
            m.remove(id);
        }
    }

    /// Remove a session and everything it holds (a failed write, an upload over a limit):
    /// its space is free again at once, and the client starts a new upload.
    pub async fn discard(&self, id: &str) {
        self.forget_hash(id);
        match self.delete_session(id).await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(repo = self.repo.name, session = id, error = %super::error::error_chain(&e), "failed to remove a failed upload; the next upload purge removes it");
            }
        }
    }
}

/// Appends to one upload session, hashing what it writes when the session's hash state is
/// known. [`BlobWriter::close`] ends the request's writes (not durably: an upload is
/// scratch space until its commit).
#[derive(Debug)]
pub struct BlobWriter<D: Driver> {
    writer: D::Writer,
    partial: Option<PartialHash>,
    /// What the session will hold once everything written so far has landed.
    expect: u64,
    id: String,
}

/// A closed [`BlobWriter`]: the session's size and the hash state to keep.
#[derive(Debug)]
pub struct Closed {
    pub size: u64,
    id: String,
    partial: Option<PartialHash>,
}

impl<D: Driver> BlobWriter<D> {
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), DriverError> {
        if let Some(p) = self.partial.as_mut() {
            p.digester.update(&chunk);
        }
        self.expect += chunk.len() as u64;
        self.writer.write(chunk).await
    }

    /// Finish this request's writes; returns the session's size and, when everything
    /// written landed, the hash state for [`Uploads::keep_hash`].
    pub async fn close(self) -> Result<Closed, DriverError> {
        let size = self.writer.commit(false).await?;
        let partial = self.partial.filter(|_| size == self.expect).map(|mut p| {
            p.offset = size;
            p
        });
        Ok(Closed {
            size,
            id: self.id,
            partial,
        })
    }
}

async fn rehash<D: Driver>(driver: &D, path: &str, alg: Algorithm) -> Result<Digest> {
    let (mut reader, _) = driver.reader(path, 0).await?;
    let mut digester = Digester::new(alg);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|source| StorageError::Reread {
                path: path.to_owned(),
                source,
            })?;
        if n == 0 {
            break;
        }
        digester.update(&buf[..n]);
    }
    Ok(digester.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids() {
        assert!(valid_session_id("0b1c-22_ab"));
        assert!(!valid_session_id("../x"));
        assert!(!valid_session_id(""));
        assert!(!valid_session_id(&"a".repeat(65)));
    }
}
