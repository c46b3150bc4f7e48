//! Reading an image's layers without unpacking them: the "squashed" view of the few files
//! the cataloguers need.
//!
//! [`scan_layers`] walks every tar entry of every layer once, in order, streaming (each
//! layer decompressed and hashed through [`berth_image::unpack::decompress`], its diff ID
//! checked). A [`Selector`] decides, by path, what to keep of each regular file:
//! - [`Want::Keep`]: the whole file (dpkg status, apk database, `METADATA`, lockfiles,
//!   `os-release`…), bounded by [`ScanLimits::max_file_bytes`] and
//!   [`ScanLimits::max_kept_bytes`]: a bigger one is an error, never a silent skip;
//! - [`Want::Inspect`]: the file is handed to [`Selector::inspect`] (jars, and every ELF
//!   file, recognised by its first bytes) and only the result is kept; files bigger than
//!   [`ScanLimits::max_inspect_bytes`] are recorded as [`Content::TooLarge`];
//! - [`Want::Mark`]: only that the file exists (an rpm Berkeley DB reported as unsupported).
//!
//! Whiteouts (image-spec "layer.md", "Whiteouts") are applied as each layer ends: `.wh.NAME`
//! deletes `NAME` and everything under it from the lower layers, `.wh..wh..opq` everything
//! the lower layers put in its directory, and any entry of a later layer replaces what the
//! lower layers had at its path (a file replacing a directory hides the directory's
//! contents). A file deleted and re-added later is seen from the later layer. Symlinks are
//! recorded (`/etc/os-release` → `../usr/lib/os-release`) and resolved by
//! [`FileView::resolve`]; a hardlink to a kept file is the same content at its own path.
//!
//! Executables: every regular file with any x bit in its mode, or whose first bytes are
//! `\x7fELF` or `#!` (exactly what `berth watch`'s profile counts as one), is hashed
//! (SHA-256, and SHA-1 for SPDX) as it streams past, whatever the selector wants of it: the
//! bytes already held for [`Want::Keep`] or [`Want::Inspect`] are hashed there, any other
//! file (or one over [`ScanLimits::max_inspect_bytes`]) is hashed without being kept, so
//! no file is read twice and none is held just to be hashed. [`FileView::executables`]
//! holds the digests, under the same whiteouts, opaque directories and hardlinks as
//! [`FileView::files`].
//!
//! Memory: one inspected file at a time, the kept files, the results, the symlinks and the
//! executables' digests; never a whole layer. [`scan_dir`] gives the same view of a
//! directory (a root file system).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_image::squash::{LayerEdits, clean};
use berth_image::unpack::{Limits, UnpackError, decompress};
use berth_oci::{Algorithm, Digest, Digester};

/// What to keep of a regular file, chosen by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Nothing, unless its first bytes say it is an ELF file (then [`Want::Inspect`]).
    Sniff,
    /// The whole file.
    Keep,
    /// The file is read and given to [`Selector::inspect`]; the result is kept.
    Inspect,
    /// Only that it exists.
    Mark,
}

/// What the cataloguers want from the image's files.
pub trait Selector {
    /// What an inspection yields.
    type Found: Clone;
    /// What to keep of the regular file at `path` (absolute, `/`-separated).
    fn want(&self, path: &str) -> Want;
    /// What the file at `path` holds (an ELF binary's build information, a jar's Maven
    /// coordinates), or `None` when nothing of interest.
    fn inspect(&self, path: &str, data: &[u8]) -> Option<Self::Found>;
}

/// What the view keeps of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content<F> {
    Data(Vec<u8>),
    Found(F),
    /// [`Want::Mark`]ed: it exists.
    Present,
    /// A file to inspect that was bigger than [`ScanLimits::max_inspect_bytes`].
    TooLarge {
        size: u64,
    },
}

/// One file of the squashed view: what was kept of it and the layer it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry<F> {
    /// The diff ID of the layer that holds this version; `None` for a directory.
    pub layer: Option<Digest>,
    pub content: Content<F>,
}

/// The digests of one executable file of the squashed view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executable {
    pub sha256: Digest,
    /// 40 lowercase hex digits.
    pub sha1: String,
    /// The diff ID of the layer that holds this version; `None` for a directory.
    pub layer: Option<Digest>,
}

/// The squashed view of the files a [`Selector`] asked for.
#[derive(Debug, Clone)]
pub struct FileView<F> {
    /// Absolute paths → what was kept.
    pub files: BTreeMap<String, FileEntry<F>>,
    /// Absolute paths of the executable files (see the module documentation) → their
    /// digests.
    pub executables: BTreeMap<String, Executable>,
    /// Absolute paths of symlinks → their targets, as written.
    pub symlinks: BTreeMap<String, String>,
    /// The layers' diff IDs, bottom first (empty for a directory).
    pub layers: Vec<Digest>,
}

impl<F> Default for FileView<F> {
    fn default() -> Self {
        FileView {
            files: BTreeMap::new(),
            executables: BTreeMap::new(),
            symlinks: BTreeMap::new(),
            layers: Vec::new(),
        }
    }
}

impl<F> FileView<F> {
    /// `path` with every symlink on the way resolved inside the image's root (at most 40).
    pub fn resolve(&self, path: &str) -> String {
        let mut hops = 0;
        let mut parts: Vec<String> = Vec::new();
        let mut todo: Vec<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(str::to_owned)
            .collect();
        while let Some(c) = todo.pop() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    parts.pop();
                    continue;
                }
                _ => {}
            }
            parts.push(c);
            let here = format!("/{}", parts.join("/"));
            if let Some(target) = self.symlinks.get(&here) {
                hops += 1;
                if hops > 40 {
                    return path.to_owned();
                }
                parts.pop();
                if target.starts_with('/') {
                    parts.clear();
                }
                for t in target.split('/').filter(|c| !c.is_empty()).rev() {
                    todo.push(t.to_owned());
                }
            }
        }
        format!("/{}", parts.join("/"))
    }

    /// The file at `path` (symlinks resolved), with the path it really has.
    pub fn get(&self, path: &str) -> Option<(String, &FileEntry<F>)> {
        let real = self.resolve(path);
        self.files.get(&real).map(|e| (real, e))
    }

    /// The kept bytes of the file at `path` (symlinks resolved).
    pub fn data(&self, path: &str) -> Option<(String, Option<&Digest>, &[u8])> {
        let (real, e) = self.get(path)?;
        match &e.content {
            Content::Data(d) => Some((real, e.layer.as_ref(), d.as_slice())),
            _ => None,
        }
    }
}

/// Bounds on what a scan holds and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanLimits {
    /// Decompression and tar limits of each layer.
    pub layer: Limits,
    /// The largest file kept whole (default 256 MiB: an rpmdb.sqlite of a large image).
    pub max_file_bytes: u64,
    /// All kept files together (default 512 MiB).
    pub max_kept_bytes: u64,
    /// The largest file read for inspection (default 512 MiB); bigger ones are recorded
    /// as [`Content::TooLarge`].
    pub max_inspect_bytes: u64,
}

impl Default for ScanLimits {
    fn default() -> Self {
        ScanLimits {
            layer: Limits::default(),
            max_file_bytes: 256 << 20,
            max_kept_bytes: 512 << 20,
            max_inspect_bytes: 512 << 20,
        }
    }
}

/// One layer of an image: its blob, its media type and its diff ID (the config's
/// `rootfs.diff_ids`), checked as the layer is read.
#[derive(Debug)]
pub struct LayerBlob<R> {
    pub reader: R,
    pub media_type: String,
    pub diff_id: Digest,
}

/// Why the layers or the directory could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    #[error("failed to read layer {index} ({diff_id})")]
    Layer {
        index: usize,
        diff_id: Digest,
        #[source]
        source: UnpackError,
    },
    #[error(
        "layer {index} has diff ID {actual}, the image config says {expected}; the blob does not match the image"
    )]
    DiffId {
        index: usize,
        expected: Digest,
        actual: Digest,
    },
    #[error("layer {index} ({diff_id}) has more than {limit} entries")]
    TooManyEntries {
        index: usize,
        diff_id: Digest,
        limit: u64,
    },
    #[error(
        "{path} is {size} bytes, over the limit of {limit} for a package database kept in memory; hint: raise ScanLimits::{which}"
    )]
    TooLarge {
        path: String,
        size: u64,
        limit: u64,
        which: &'static str,
    },
    #[error("failed to read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const SHEBANG: &[u8; 2] = b"#!";

/// Whether a regular file with permission bits `mode` whose content starts with `head` is an
/// executable: any x bit, or an ELF or `#!` file. The same test as `berth watch`'s profile
/// (crates/watch/src/profile.rs), so that both name the same files.
pub fn is_executable(mode: u32, head: &[u8]) -> bool {
    mode & 0o111 != 0 || head.starts_with(ELF_MAGIC) || head.starts_with(SHEBANG)
}

/// SHA-256 and SHA-1 of one file's content, as it streams past.
struct FileHasher {
    sha256: Digester,
    sha1: sha1::Sha1,
}

impl FileHasher {
    fn new() -> FileHasher {
        FileHasher {
            sha256: Digester::new(Algorithm::Sha256),
            sha1: sha1::Sha1::default(),
        }
    }

    /// The digests of `data`, all of a file's content.
    fn of(data: &[u8]) -> (Digest, String) {
        let mut h = FileHasher::new();
        h.update(data);
        h.finish()
    }

    /// The digests of `head` (the first bytes, already read) then the rest of `r`.
    fn stream(head: &[u8], r: &mut dyn Read) -> io::Result<(Digest, String)> {
        let mut h = FileHasher::new();
        h.update(head);
        io::copy(r, &mut h)?;
        Ok(h.finish())
    }

    fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        sha1::Digest::update(&mut self.sha1, data);
    }

    fn finish(self) -> (Digest, String) {
        let sha1 = sha1::Digest::finalize(self.sha1);
        let mut hex = String::with_capacity(40);
        for b in sha1.as_slice() {
            hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
        }
        (self.sha256.finalize(), hex)
    }
}

impl Write for FileHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What was read of one regular file: what the selector keeps, and its digests if it is an
/// executable.
struct ReadFile<F> {
    content: Option<Content<F>>,
    digests: Option<(Digest, String)>,
}

/// Counts the kept bytes against the limits.
struct Budget {
    limits: ScanLimits,
    kept: u64,
}

impl Budget {
    fn keep(&mut self, path: &str, size: u64) -> Result<(), ScanError> {
        if size > self.limits.max_file_bytes {
            return Err(ScanError::TooLarge {
                path: path.to_owned(),
                size,
                limit: self.limits.max_file_bytes,
                which: "max_file_bytes",
            });
        }
        self.kept = self.kept.saturating_add(size);
        if self.kept > self.limits.max_kept_bytes {
            return Err(ScanError::TooLarge {
                path: path.to_owned(),
                size: self.kept,
                limit: self.limits.max_kept_bytes,
                which: "max_kept_bytes",
            });
        }
        Ok(())
    }
}

/// The whole of a `size`-byte file whose first bytes `head` were read already, the rest from
/// `r`.
fn read_whole(head: &[u8], size: u64, r: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0).max(head.len()));
    data.extend_from_slice(head);
    r.take(size.saturating_sub(data.len() as u64))
        .read_to_end(&mut data)?;
    Ok(data)
}

/// Read a regular file (of `size` bytes and permission bits `mode`, from `r`) as `sel` wants
/// it, hashing it on the way if it is an executable.
fn read_file<S: Selector>(
    sel: &S,
    path: &str,
    size: u64,
    mode: u32,
    r: &mut dyn Read,
    budget: &mut Budget,
) -> io::Result<Result<ReadFile<S::Found>, ScanError>> {
    let mut head = Vec::with_capacity(4);
    (&mut *r).take(4).read_to_end(&mut head)?;
    let executable = is_executable(mode, &head);
    // A file not kept: hashed as it streams past if it is an executable.
    let pass = |content: Option<Content<S::Found>>, r: &mut dyn Read| -> io::Result<_> {
        let digests = match executable {
            true => Some(FileHasher::stream(&head, r)?),
            false => None,
        };
        Ok(Ok(ReadFile { content, digests }))
    };
    let mut want = sel.want(path);
    if want == Want::Sniff {
        if head.as_slice() != ELF_MAGIC {
            return pass(None, r);
        }
        want = Want::Inspect;
    }
    match want {
        Want::Sniff => pass(None, r),
        Want::Mark => pass(Some(Content::Present), r),
        Want::Keep => {
            if let Err(e) = budget.keep(path, size) {
                return Ok(Err(e));
            }
            let data = read_whole(&head, size, r)?;
            let digests = executable.then(|| FileHasher::of(&data));
            Ok(Ok(ReadFile {
                content: Some(Content::Data(data)),
                digests,
            }))
        }
        Want::Inspect => {
            if size > budget.limits.max_inspect_bytes {
                return pass(Some(Content::TooLarge { size }), r);
            }
            let data = read_whole(&head, size, r)?;
            let digests = executable.then(|| FileHasher::of(&data));
            Ok(Ok(ReadFile {
                content: sel.inspect(path, &data).map(Content::Found),
                digests,
            }))
        }
    }
}

/// One layer's changes, applied to the lower view when the layer ends.
struct LayerChanges<F> {
    files: BTreeMap<String, FileEntry<F>>,
    executables: BTreeMap<String, Executable>,
    symlinks: BTreeMap<String, String>,
    edits: LayerEdits,
}

impl<F: Clone> LayerChanges<F> {
    fn new() -> LayerChanges<F> {
        LayerChanges {
            files: BTreeMap::new(),
            executables: BTreeMap::new(),
            symlinks: BTreeMap::new(),
            edits: LayerEdits::default(),
        }
    }

    fn apply(self, view: &mut FileView<F>) {
        self.edits.apply(&mut view.files);
        self.edits.apply(&mut view.executables);
        self.edits.apply(&mut view.symlinks);
        view.files.extend(self.files);
        view.executables.extend(self.executables);
        view.symlinks.extend(self.symlinks);
    }
}

/// The squashed view of `layers` (bottom first) that `sel` asks for. Each layer's diff ID
/// is checked; see the module documentation.
pub fn scan_layers<S: Selector, R: Read>(
    layers: impl IntoIterator<Item = LayerBlob<R>>,
    sel: &S,
    limits: &ScanLimits,
) -> Result<FileView<S::Found>, ScanError> {
    let mut view = FileView::default();
    let mut budget = Budget {
        limits: *limits,
        kept: 0,
    };
    for (index, layer) in layers.into_iter().enumerate() {
        let diff_id = layer.diff_id.clone();
        let span = tracing::debug_span!("scan_layer", index, diff_id = %diff_id);
        let _enter = span.enter();
        let layer_err = |source| ScanError::Layer {
            index,
            diff_id: diff_id.clone(),
            source,
        };
        let stream =
            decompress(layer.reader, &layer.media_type, limits.layer).map_err(layer_err)?;
        let meter = stream.meter();
        let mut changes = LayerChanges::new();
        let mut archive = tar::Archive::new(stream);
        let mut last: Option<String> = None;
        let mut count: u64 = 0;
        {
            meter.headers();
            let entries = match archive.entries() {
                Ok(e) => e,
                Err(e) => {
                    return Err(layer_err(UnpackError::Read {
                        compression: "tar",
                        at_entry: None,
                        source: e,
                    }));
                }
            };
            for entry in entries {
                let mut entry = match entry {
                    Ok(e) => e,
                    Err(source) => {
                        return Err(layer_err(UnpackError::Read {
                            compression: "tar",
                            at_entry: last,
                            source,
                        }));
                    }
                };
                meter.data();
                count += 1;
                if count > limits.layer.max_entries {
                    return Err(ScanError::TooManyEntries {
                        index,
                        diff_id,
                        limit: limits.layer.max_entries,
                    });
                }
                let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                last = Some(raw.clone());
                'entry: {
                    let Some(path) = clean(&raw) else {
                        break 'entry;
                    };
                    if changes.edits.tar_whiteout(&path) {
                        break 'entry;
                    }
                    let kind = entry.header().entry_type();
                    changes.edits.touch(path.clone(), kind.is_dir());
                    if kind.is_symlink() {
                        if let Some(target) = entry
                            .link_name_bytes()
                            .map(|t| String::from_utf8_lossy(&t).into_owned())
                        {
                            changes.symlinks.insert(path, target);
                        }
                    } else if kind.is_hard_link() {
                        let target = entry
                            .link_name_bytes()
                            .and_then(|t| clean(&String::from_utf8_lossy(&t)));
                        if let Some(target) = target {
                            let found = changes
                                .files
                                .get(&target)
                                .or_else(|| view.files.get(&target))
                                .cloned();
                            if let Some(found) = found {
                                changes.files.insert(path.clone(), found);
                            }
                            let exe = changes
                                .executables
                                .get(&target)
                                .or_else(|| view.executables.get(&target))
                                .cloned();
                            if let Some(exe) = exe {
                                changes.executables.insert(path, exe);
                            }
                        }
                    } else if kind.is_file() || kind == tar::EntryType::Continuous {
                        let size = entry.size();
                        let read = entry.header().mode().and_then(|mode| {
                            read_file(sel, &path, size, mode & 0o7777, &mut entry, &mut budget)
                        });
                        match read {
                            Ok(Ok(read)) => {
                                if let Some((sha256, sha1)) = read.digests {
                                    changes.executables.insert(
                                        path.clone(),
                                        Executable {
                                            sha256,
                                            sha1,
                                            layer: Some(diff_id.clone()),
                                        },
                                    );
                                }
                                if let Some(content) = read.content {
                                    changes.files.insert(
                                        path,
                                        FileEntry {
                                            layer: Some(diff_id.clone()),
                                            content,
                                        },
                                    );
                                }
                            }
                            Ok(Err(e)) => return Err(e),
                            Err(source) => {
                                return Err(layer_err(UnpackError::Read {
                                    compression: "tar",
                                    at_entry: Some(raw.clone()),
                                    source,
                                }));
                            }
                        }
                    }
                }
                // the rest of the entry's data is data, not headers
                if let Err(source) = io::copy(&mut entry, &mut io::sink()) {
                    return Err(layer_err(UnpackError::Read {
                        compression: "tar",
                        at_entry: last,
                        source,
                    }));
                }
                meter.headers();
            }
        }
        let stream = archive.into_inner();
        let actual = stream.finish().map_err(layer_err)?;
        if actual != diff_id {
            return Err(ScanError::DiffId {
                index,
                expected: diff_id,
                actual,
            });
        }
        changes.apply(&mut view);
        view.layers.push(diff_id);
    }
    Ok(view)
}

/// The view `sel` asks for of the root file system in the directory `root` (symlinks are
/// recorded, never followed).
pub fn scan_dir<S: Selector>(
    root: &Path,
    sel: &S,
    limits: &ScanLimits,
) -> Result<FileView<S::Found>, ScanError> {
    let mut view = FileView::default();
    let mut budget = Budget {
        limits: *limits,
        kept: 0,
    };
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ScanError::Io { path, source }
    };
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_owned(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let mut entries: Vec<fs::DirEntry> = fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .collect::<Result<_, _>>()
            .map_err(io_err(&dir))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let path = format!("{rel}/{name}");
            let full = e.path();
            let ty = e.file_type().map_err(io_err(&full))?;
            if ty.is_dir() {
                stack.push((full, path));
            } else if ty.is_symlink() {
                let target = fs::read_link(&full).map_err(io_err(&full))?;
                view.symlinks
                    .insert(path, target.to_string_lossy().into_owned());
            } else if ty.is_file() {
                let meta = e.metadata().map_err(io_err(&full))?;
                let (size, mode) = (meta.len(), meta.mode() & 0o7777);
                let mut f = match fs::File::open(&full) {
                    Ok(f) => f,
                    // unreadable files (permissions) hold nothing a cataloguer can read
                    Err(err) if err.kind() == io::ErrorKind::PermissionDenied => continue,
                    Err(err) => return Err(io_err(&full)(err)),
                };
                let read = read_file(sel, &path, size, mode, &mut f, &mut budget)
                    .map_err(io_err(&full))??;
                if let Some((sha256, sha1)) = read.digests {
                    view.executables.insert(
                        path.clone(),
                        Executable {
                            sha256,
                            sha1,
                            layer: None,
                        },
                    );
                }
                if let Some(content) = read.content {
                    view.files.insert(
                        path,
                        FileEntry {
                            layer: None,
                            content,
                        },
                    );
                }
            }
        }
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let mut v: FileView<()> = FileView::default();
        v.symlinks
            .insert("/etc/os-release".into(), "../usr/lib/os-release".into());
        v.symlinks.insert("/lib".into(), "usr/lib".into());
        v.symlinks.insert("/loop".into(), "/loop".into());
        assert_eq!(v.resolve("/etc/os-release"), "/usr/lib/os-release");
        assert_eq!(
            v.resolve("/lib/apk/db/installed"),
            "/usr/lib/apk/db/installed"
        );
        assert_eq!(v.resolve("/../../etc/x"), "/etc/x");
        assert_eq!(v.resolve("/loop/x"), "/loop/x");
        assert_eq!(v.resolve("/loop"), "/loop");
    }
}
