//! temp → write → fsync → verify → rename → fsync dir.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::FsError;

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_name(dest: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let base = dest
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = format!(".{base}.tmp.{}.{n}", std::process::id());
    dest.with_file_name(name)
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `fsync` a directory so that entries created or renamed in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), FsError> {
    let f = File::open(dir).map_err(|source| FsError::Sync {
        path: dir.to_owned(),
        source,
    })?;
    f.sync_all().map_err(|source| FsError::Sync {
        path: dir.to_owned(),
        source,
    })
}

/// Rename `from` to `to` (same filesystem) and `fsync` the destination directory, so the
/// move survives a crash. The source directory is not synced as well: a rename is one
/// transaction of a journaling filesystem's log (ext4, XFS), which the destination's `fsync`
/// commits whole, so after a crash the entry is under exactly one of its names.
pub fn rename_durable(from: &Path, to: &Path) -> Result<(), FsError> {
    rename_unsynced(from, to)?;
    sync_dir(parent_of(to))
}

/// Rename `from` to `to` (same filesystem) atomically but **not durably**: no directory is
/// `fsync`ed, so after a crash the entry may be under either name. Only for moves whose
/// outcome either way is handled, such as moving an already-unrecorded directory into a
/// trash that is emptied at the next start (a leftover under the old name is found and
/// removed then too).
pub fn rename_unsynced(from: &Path, to: &Path) -> Result<(), FsError> {
    #[expect(
        clippy::disallowed_methods,
        reason = "this is the one place allowed to rename into place"
    )]
    std::fs::rename(from, to).map_err(|source| FsError::Rename {
        from: from.to_owned(),
        to: to.to_owned(),
        source,
    })
}

/// Create `dir` and its parents, `fsync`ing each newly created level's parent so that the
/// directory entries are durable too.
pub fn create_dir_all_durable(dir: &Path) -> Result<(), FsError> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = parent_of(dir);
    if parent != dir {
        create_dir_all_durable(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(FsError::CreateDir {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// A file being written under a temporary name beside its destination. Nothing is visible
/// under the destination name until [`AtomicFile::commit`] succeeds; dropping it without
/// committing removes the temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<File>,
    behind: crate::WriteBehind,
    temp: PathBuf,
    dest: PathBuf,
}

impl AtomicFile {
    /// Start writing a file that will become `dest`. Creates missing parent directories.
    pub fn create(dest: impl AsRef<Path>) -> Result<AtomicFile, FsError> {
        let dest = dest.as_ref().to_owned();
        let dir = parent_of(&dest).to_owned();
        create_dir_all_durable(&dir)?;
        let temp = temp_name(&dest);
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&temp)
            .map_err(|source| FsError::CreateTemp { dir, source })?;
        Ok(AtomicFile {
            file: Some(file),
            behind: crate::WriteBehind::new(),
            temp,
            dest,
        })
    }

    /// The temporary path being written.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// The final path.
    pub fn dest_path(&self) -> &Path {
        &self.dest
    }

    /// The open temporary file, for callers that need `File` APIs (`set_len`, `metadata`).
    pub fn file(&self) -> Option<&File> {
        self.file.as_ref()
    }

    /// Flush and `fsync` the temporary file, closing it.
    fn sync_temp(&mut self) -> Result<(), FsError> {
        if let Some(file) = self.file.take() {
            self.behind.finish().map_err(|source| FsError::Sync {
                path: self.temp.clone(),
                source,
            })?;
            file.sync_all().map_err(|source| FsError::Sync {
                path: self.temp.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Flush, `fsync`, rename over the destination and `fsync` its directory.
    pub fn commit(self) -> Result<PathBuf, FsError> {
        self.commit_verified(|_| Ok(()))
    }

    /// As [`AtomicFile::commit`], but run `verify` on the flushed temporary file first; if it
    /// fails, the temporary file is removed and the destination is untouched.
    pub fn commit_verified<F>(mut self, verify: F) -> Result<PathBuf, FsError>
    where
        F: FnOnce(&Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
    {
        self.sync_temp()?;
        verify(&self.temp).map_err(|source| FsError::Verify {
            path: self.dest.clone(),
            source,
        })?;
        rename_durable(&self.temp, &self.dest)?;
        // Renamed: nothing left for Drop to clean up.
        self.temp = PathBuf::new();
        Ok(self.dest.clone())
    }

    /// As [`AtomicFile::commit`], but only if nothing exists at the destination: the
    /// temporary file is flushed, `fsync`ed and hard-linked (`link(2)`, which never replaces)
    /// to the destination, then removed, and the directory is `fsync`ed. Of many concurrent
    /// `commit_new`s on one destination, from any process, exactly one succeeds; the others
    /// fail with [`FsError::Link`] of kind `AlreadyExists` and leave the destination as it
    /// was. (`link` rather than `renameat2(RENAME_NOREPLACE)`: every local filesystem has it.)
    pub fn commit_new(mut self) -> Result<PathBuf, FsError> {
        self.sync_temp()?;
        std::fs::hard_link(&self.temp, &self.dest).map_err(|source| FsError::Link {
            from: self.temp.clone(),
            to: self.dest.clone(),
            source,
        })?;
        // Linked: the temporary name goes (Drop would do it too), then the entry is made
        // durable. A crash before the removal leaves a dot-file, which listings skip.
        let _ = std::fs::remove_file(&self.temp);
        self.temp = PathBuf::new();
        sync_dir(parent_of(&self.dest))?;
        Ok(self.dest.clone())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.file.as_mut() {
            Some(f) => {
                let n = f.write(buf)?;
                self.behind.wrote(f, n);
                Ok(n)
            }
            None => Err(std::io::Error::other("atomic file already committed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Write `data` to `dest` atomically and durably: readers see the old content or the new,
/// never a torn file, also after a crash.
pub fn atomic_write(dest: impl AsRef<Path>, data: &[u8]) -> Result<(), FsError> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(data).map_err(|source| FsError::Write {
        path: f.temp_path().to_owned(),
        source,
    })?;
    f.commit()?;
    Ok(())
}

/// Write several files into the directory `dir` atomically and durably, as [`atomic_write`]
/// does each, but waiting for the disk once instead of once per file: their contents, and the
/// directories `also` (holding entries an earlier step renamed without syncing), are
/// `fsync`ed concurrently, then the files are renamed into place and `dir` is synced. A
/// journaling filesystem commits concurrent `fsync`s that share a transaction together.
/// After a crash each file holds its old content or its new, never a torn one; once this
/// returns, all of it is durable. If a write or a sync fails, no file is renamed and the
/// temporary files are removed.
pub fn atomic_write_many(
    dir: &Path,
    files: &[(&str, &[u8])],
    also: &[&Path],
) -> Result<(), FsError> {
    let mut temps = Vec::with_capacity(files.len());
    for (name, data) in files {
        let mut f = AtomicFile::create(dir.join(name))?;
        f.write_all(data).map_err(|source| FsError::Write {
            path: f.temp_path().to_owned(),
            source,
        })?;
        temps.push(f);
    }
    let panicked = |path: &Path| FsError::Sync {
        path: path.to_owned(),
        source: std::io::Error::other("the thread syncing it panicked"),
    };
    std::thread::scope(|s| {
        let mut temps = temps.iter_mut();
        // the first on this thread, the others beside it
        let first = temps.next();
        let files: Vec<_> = temps
            .map(|f| {
                let path = f.temp.clone();
                (path, s.spawn(move || f.sync_temp()))
            })
            .collect();
        let dirs: Vec<_> = also
            .iter()
            .map(|d| (d.to_path_buf(), s.spawn(move || sync_dir(d))))
            .collect();
        let mut result = first.map_or(Ok(()), AtomicFile::sync_temp);
        for (path, handle) in files.into_iter().chain(dirs) {
            let synced = handle.join().unwrap_or_else(|_| Err(panicked(&path)));
            result = result.and(synced);
        }
        result
    })?;
    for f in &mut temps {
        rename_unsynced(&f.temp, &f.dest)?;
        // Renamed: nothing left for Drop to clean up.
        f.temp = PathBuf::new();
    }
    sync_dir(dir)
}

/// Replace `dest` with `data` atomically, its new content made durable before the rename (so
/// never torn or empty, also after a crash) without waiting for the rename to be durable too:
/// after a crash `dest` holds the old content or the new. For changes whose loss in a crash
/// is the same as a crash a moment before them, and that nobody was told had happened: a
/// status change of a record, a removal from an index that is redone when found undone. A
/// journaling filesystem (ext4, XFS) commits its metadata changes in order, so any later
/// durable change makes this one durable as well. One directory `fsync` fewer than
/// [`atomic_write`].
pub fn atomic_rewrite(dest: impl AsRef<Path>, data: &[u8]) -> Result<(), FsError> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(data).map_err(|source| FsError::Write {
        path: f.temp_path().to_owned(),
        source,
    })?;
    f.sync_temp()?;
    rename_unsynced(&f.temp, &f.dest)?;
    // Renamed: nothing left for Drop to clean up.
    f.temp = PathBuf::new();
    Ok(())
}

/// Replace `dest` (in an existing directory) with `data` atomically for concurrent readers —
/// they see the old content or the new, never a torn file — but **not durably**: nothing is
/// `fsync`ed, so after a crash the file may hold the old content, or be empty or missing.
/// Only for state that does not outlive the machine's processes, such as a container
/// runtime's state under `/run` (runc and crun write theirs the same way): a power loss takes
/// the containers with it, and their stale records are removed by `delete --force`.
pub fn atomic_replace(dest: impl AsRef<Path>, data: &[u8]) -> Result<(), FsError> {
    replace_with_mode(dest.as_ref(), data, 0o666)
}

/// [`atomic_replace`] for a file only its owner may read: the new file is created 0600
/// (less if the umask says so) before it takes `dest`'s name, so no moment exists in which
/// it is readable by others, and nothing touches `dest` after the rename — a file removed
/// by someone else right after it is replaced is not an error here.
pub fn atomic_replace_private(dest: impl AsRef<Path>, data: &[u8]) -> Result<(), FsError> {
    replace_with_mode(dest.as_ref(), data, 0o600)
}

fn replace_with_mode(dest: &Path, data: &[u8], mode: u32) -> Result<(), FsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let temp = temp_name(dest);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .map_err(|source| FsError::CreateTemp {
            dir: parent_of(dest).to_owned(),
            source,
        })?;
    let written = file.write_all(data).map_err(|source| FsError::Write {
        path: temp.clone(),
        source,
    });
    drop(file);
    let renamed = written.and_then(|()| {
        #[expect(
            clippy::disallowed_methods,
            reason = "this is the one place allowed to rename into place"
        )]
        std::fs::rename(&temp, dest).map_err(|source| FsError::Rename {
            from: temp.clone(),
            to: dest.to_owned(),
            source,
        })
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    renamed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_replace_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("state.json");
        atomic_replace(&dest, b"one").unwrap();
        atomic_replace(&dest, b"two").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // a missing directory is an error naming it, and leaves nothing
        let err = atomic_replace(dir.path().join("gone/state.json"), b"x").unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");
        // a destination that cannot be replaced (a directory) keeps it and removes the temp
        std::fs::create_dir(dir.path().join("d")).unwrap();
        atomic_write(dir.path().join("d/x"), b"").unwrap();
        assert!(atomic_replace(dir.path().join("d"), b"x").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn atomic_replace_private_creates_the_file_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("lastref");
        atomic_replace_private(&dest, b"1").unwrap();
        atomic_replace_private(&dest, b"2").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"2");
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        atomic_replace(dir.path().join("hosts"), b"x").unwrap();
        let mode = std::fs::metadata(dir.path().join("hosts"))
            .unwrap()
            .permissions()
            .mode();
        assert_ne!(mode & 0o044, 0, "a plain replace stays readable: {mode:o}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn atomic_write_creates_parents_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a/b/c.json");
        atomic_write(&dest, b"one").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"one");
        atomic_write(&dest, b"two").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"two");
        // no temp files left behind
        let names: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("c.json")]);
    }

    #[test]
    fn dropped_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x");
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"partial").unwrap();
            assert!(f.temp_path().exists());
        }
        assert!(!dest.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn failed_verification_keeps_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("blob");
        atomic_write(&dest, b"good").unwrap();
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"bad").unwrap();
        let err = f
            .commit_verified(|_| Err("digest mismatch".into()))
            .unwrap_err();
        assert!(matches!(err, FsError::Verify { .. }));
        assert_eq!(std::fs::read(&dest).unwrap(), b"good");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn commit_new_creates_once_and_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a/lease");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"first").unwrap();
        f.commit_new().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"first");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"second").unwrap();
        let err = f.commit_new().unwrap_err();
        assert_eq!(
            err.io_kind(),
            Some(std::io::ErrorKind::AlreadyExists),
            "{err}"
        );
        assert!(err.to_string().contains("lease"), "{err}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"first");
        // neither attempt leaves its temporary file behind
        let names: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("lease")]);
    }

    #[test]
    fn concurrent_commit_new_has_exactly_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x");
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16u8)
                .map(|i| {
                    let dest = &dest;
                    s.spawn(move || {
                        let mut f = AtomicFile::create(dest).unwrap();
                        f.write_all(&[i; 512]).unwrap();
                        f.commit_new().map(|_| i)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<u8> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        assert_eq!(std::fs::read(&dest).unwrap(), vec![winners[0]; 512]);
    }

    #[test]
    fn atomic_rewrite_replaces_whole_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("record.json");
        atomic_write(&dest, b"old content").unwrap();
        atomic_rewrite(&dest, b"new").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // a destination that cannot be renamed onto (a directory) keeps what it was and
        // leaves no temporary file behind
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        atomic_write(sub.join("keep"), b"k").unwrap();
        let err = atomic_rewrite(&sub, b"x").unwrap_err();
        assert!(err.to_string().contains("sub"), "{err}");
        assert!(sub.join("keep").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn atomic_write_many_writes_each_whole_and_syncs_the_other_directories() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("names");
        std::fs::create_dir(&other).unwrap();
        let c = dir.path().join("c");
        atomic_write(c.join("b.json"), b"old").unwrap();
        atomic_write_many(
            &c,
            &[("a.json", b"first"), ("b.json", b"second"), ("s", b"")],
            &[&other],
        )
        .unwrap();
        assert_eq!(std::fs::read(c.join("a.json")).unwrap(), b"first");
        assert_eq!(std::fs::read(c.join("b.json")).unwrap(), b"second");
        assert_eq!(std::fs::read(c.join("s")).unwrap(), b"");
        assert_eq!(
            std::fs::read_dir(&c).unwrap().count(),
            3,
            "no temporary file"
        );
        // a directory to sync that is not there: nothing renamed, no temporary file left
        let err = atomic_write_many(
            &c,
            &[("a.json", b"x"), ("d.json", b"y")],
            &[&dir.path().join("gone")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");
        assert_eq!(std::fs::read(c.join("a.json")).unwrap(), b"first");
        assert!(!c.join("d.json").exists());
        assert_eq!(
            std::fs::read_dir(&c).unwrap().count(),
            3,
            "no temporary file"
        );
    }

    #[test]
    fn rename_durable_moves_across_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        atomic_write(a.join("f"), b"x").unwrap();
        rename_durable(&a.join("f"), &b.join("g")).unwrap();
        assert_eq!(std::fs::read(b.join("g")).unwrap(), b"x");
        let err = rename_durable(&a.join("f"), &b.join("g")).unwrap_err();
        assert_eq!(err.io_kind(), Some(std::io::ErrorKind::NotFound));
    }
}
