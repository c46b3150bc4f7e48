//! One pass over an uncompressed tar archive that records where each entry's bytes are,
//! so blobs are then read straight from the file by offset: nothing is extracted, so no
//! entry can write anywhere, and a multi-GiB layer is never copied twice.
//!
//! Hostile archives are refused while indexing: names that are absolute or contain `..`,
//! names given twice, entries that are neither regular files, directories nor symlinks.
//! Symlinks are recorded but only followed by [`TarIndex::resolve`], inside the archive
//! (podman's docker-archive links `<id>/layer.tar` to `../<diff_id>.tar`); one that leads
//! outside, or loops, is refused when something names it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::{Result, TransferError};

/// Entries indexed at most: a bound on what a hostile archive costs in memory.
pub const MAX_ENTRIES: usize = 1_000_000;

/// Symlinks followed at most while resolving one name.
const MAX_LINKS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File { offset: u64, size: u64 },
    Dir,
    Symlink(String),
}

/// Where a regular file's bytes are in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub offset: u64,
    pub size: u64,
}

#[derive(Debug)]
pub(crate) struct TarIndex {
    pub path: PathBuf,
    entries: HashMap<String, EntryKind>,
}

fn hostile(path: &Path, entry: &str, reason: &'static str) -> TransferError {
    TransferError::HostileArchive {
        path: path.to_owned(),
        entry: entry.to_owned(),
        reason,
    }
}

/// `name` without `./` and trailing `/`, refusing absolute names and `..`.
fn clean(path: &Path, name: &str) -> Result<String> {
    if name.contains('\0') {
        return Err(hostile(path, name, "the name contains a NUL byte"));
    }
    if name.starts_with('/') {
        return Err(hostile(path, name, "the name is absolute"));
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(hostile(path, name, "the name contains `..`")),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

impl TarIndex {
    /// Index the tar archive at `path`.
    pub fn scan(path: &Path) -> Result<TarIndex> {
        let file = File::open(path).map_err(|source| TransferError::Io {
            action: "open the archive",
            path: path.to_owned(),
            source,
        })?;
        let read_err = |source| TransferError::ReadArchive {
            path: path.to_owned(),
            source,
        };
        let len = file
            .metadata()
            .map_err(|source| TransferError::Io {
                action: "read the archive",
                path: path.to_owned(),
                source,
            })?
            .len();
        let mut archive = tar::Archive::new(std::io::BufReader::with_capacity(64 << 10, file));
        let mut entries = HashMap::new();
        for entry in archive.entries_with_seek().map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let raw = entry.path_bytes();
            let name = std::str::from_utf8(&raw)
                .map_err(|_| {
                    hostile(
                        path,
                        &String::from_utf8_lossy(&raw),
                        "the name is not UTF-8",
                    )
                })?
                .to_owned();
            let clean_name = clean(path, &name)?;
            let header = entry.header();
            let kind = match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File {
                    offset: entry.raw_file_position(),
                    size: header.entry_size().map_err(read_err)?,
                },
                // GNU tar writes an old-style regular file as type '\0'
                t if t.as_byte() == 0 => EntryKind::File {
                    offset: entry.raw_file_position(),
                    size: header.entry_size().map_err(read_err)?,
                },
                tar::EntryType::Directory => EntryKind::Dir,
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .ok_or_else(|| hostile(path, &name, "a symlink without a target"))?;
                    let target = std::str::from_utf8(&target)
                        .map_err(|_| hostile(path, &name, "the symlink target is not UTF-8"))?;
                    EntryKind::Symlink(target.to_owned())
                }
                tar::EntryType::Link => {
                    return Err(hostile(
                        path,
                        &name,
                        "a hard link (image archives hold regular files)",
                    ));
                }
                _ => {
                    return Err(hostile(
                        path,
                        &name,
                        "a device, fifo or other special entry (image archives hold regular files)",
                    ));
                }
            };
            if let EntryKind::File { offset, size } = kind
                && offset.saturating_add(size) > len
            {
                return Err(hostile(
                    path,
                    &name,
                    "cut short: the archive ends inside it",
                ));
            }
            if clean_name.is_empty() {
                continue; // the archive's root directory
            }
            if entries.len() >= MAX_ENTRIES {
                return Err(hostile(path, &name, "more entries than berth indexes"));
            }
            if let Some(previous) = entries.insert(clean_name, kind.clone())
                && !(previous == EntryKind::Dir && kind == EntryKind::Dir)
            {
                return Err(hostile(path, &name, "the name appears twice"));
            }
        }
        Ok(TarIndex {
            path: path.to_owned(),
            entries,
        })
    }

    /// Whether `name` is in the archive (as anything).
    pub fn contains(&self, name: &str) -> bool {
        clean(&self.path, name).is_ok_and(|n| self.entries.contains_key(&n))
    }

    /// The regular file `name` leads to, following symlinks inside the archive only.
    pub fn resolve(&self, name: &str) -> Result<Span> {
        let mut current = clean(&self.path, name)?;
        for _ in 0..=MAX_LINKS {
            match self.entries.get(&current) {
                None => {
                    return Err(TransferError::ArchiveEntryMissing {
                        path: self.path.clone(),
                        entry: name.to_owned(),
                    });
                }
                Some(EntryKind::File { offset, size }) => {
                    return Ok(Span {
                        offset: *offset,
                        size: *size,
                    });
                }
                Some(EntryKind::Dir) => {
                    return Err(hostile(&self.path, name, "a directory, not a file"));
                }
                Some(EntryKind::Symlink(target)) => {
                    if target.starts_with('/') {
                        return Err(hostile(
                            &self.path,
                            name,
                            "a symlink to an absolute path, outside the archive",
                        ));
                    }
                    let mut parts: Vec<&str> = current.split('/').collect();
                    parts.pop();
                    for part in target.split('/') {
                        match part {
                            "" | "." => {}
                            ".." => {
                                if parts.pop().is_none() {
                                    return Err(hostile(
                                        &self.path,
                                        name,
                                        "a symlink that leads outside the archive",
                                    ));
                                }
                            }
                            p => parts.push(p),
                        }
                    }
                    current = parts.join("/");
                }
            }
        }
        Err(hostile(&self.path, name, "a symlink loop"))
    }

    /// Read the small file `name` whole, refusing one over `limit` bytes.
    pub fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let span = self.resolve(name)?;
        if span.size > limit {
            return Err(TransferError::ArchiveEntryTooLarge {
                path: self.path.clone(),
                entry: name.to_owned(),
                size: span.size,
                limit,
            });
        }
        let mut f = File::open(&self.path).map_err(|source| TransferError::Io {
            action: "open the archive",
            path: self.path.clone(),
            source,
        })?;
        let mut buf = Vec::with_capacity(usize::try_from(span.size).unwrap_or(0));
        f.seek(SeekFrom::Start(span.offset))
            .and_then(|_| f.take(span.size).read_to_end(&mut buf))
            .map_err(|source| TransferError::Io {
                action: "read the archive",
                path: self.path.clone(),
                source,
            })?;
        if buf.len() as u64 != span.size {
            return Err(hostile(
                &self.path,
                name,
                "the archive ends inside this entry",
            ));
        }
        Ok(buf)
    }
}
