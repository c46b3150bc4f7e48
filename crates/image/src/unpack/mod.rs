//! Unpacking image layers, safely.
//!
//! [`unpack`] streams one layer blob (any [`Read`]: a file, a network body) into a directory:
//! decompressed on the fly, hashed on the fly (the result is the layer's *diff ID*, checked
//! against [`UnpackOptions::expected_diff_id`]), never held in memory whole.
//!
//! Two ways to treat whiteouts ([`WhiteoutMode`]):
//! - [`WhiteoutMode::Overlay`]: the layer goes into its own empty directory, to be an
//!   overlayfs lower; `.wh.NAME` becomes a 0/0 character device `NAME` and `.wh..wh..opq`
//!   the xattr `trusted.overlay.opaque=y` on its directory (as containerd's overlay
//!   snapshotter unpacks).
//! - [`WhiteoutMode::Apply`]: layers are applied in order onto one directory; `.wh.NAME`
//!   removes `NAME` and an opaque whiteout removes what lower layers put in its directory
//!   (image-spec "layer.md", "Whiteouts"). Paths that this same layer created are never
//!   removed by its own whiteouts.
//!
//! [`decompress`] gives a layer's tar stream, decompressed, hashed and bounded by the same
//! [`Limits`], to readers that walk its entries without unpacking it (`berth-sbom`).
//!
//! # Containment
//! Every file-system call is relative to a directory fd resolved inside the target with
//! `openat2(RESOLVE_IN_ROOT)`; the last component is never followed (`root.rs`). Entry names
//! are refused when they hold a `..` component or a NUL byte, or are longer than `PATH_MAX`;
//! a leading `/` is dropped (as GNU tar and containerd do). Names that are not UTF-8 are
//! legal in tar and on Linux and are unpacked byte for byte. Symlink targets are written as
//! they are (they may point anywhere: they are only ever resolved inside the container's
//! root, and never followed by the unpacker). Hardlinks must name an existing non-directory
//! inside the root. Device nodes are skipped and reported with [`DeviceNodes::Skip`]
//! (rootless). Xattrs in overlayfs's own namespaces (`trusted.overlay.*`,
//! `user.overlay.*`) are never taken from a layer.
//!
//! # Caller contract
//! On error the target holds a partly unpacked layer: discard it (a snapshotter removes the
//! snapshot). A layer that unpacked without error but whose diff ID the caller did not check
//! is not verified: a tar cut exactly between two entries (no end-of-archive blocks) reads as
//! a shorter valid tar, as Go's `archive/tar` reads it too; only the diff ID catches it, so
//! callers pass [`UnpackOptions::expected_diff_id`] (the config's `rootfs.diff_ids`).

mod error;
mod meta;
mod options;
mod root;
mod stream;
mod unpacker;
mod whiteout;

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

pub use error::UnpackError;
pub use options::{
    Compression, DeviceNodes, IdMap, Limits, OpaqueXattr, Ownership, SkipReason, Skipped,
    UnpackOptions, UnpackStats, WhiteoutMode,
};
use root::Root;
use stream::{LayerReader, Meter};
use unpacker::Unpacker;

/// Unpack one layer of `media_type` from `reader` into the directory `target`.
///
/// See the module documentation for what is refused and the caller contract on error.
pub fn unpack(
    reader: impl Read,
    media_type: &str,
    target: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let compression = Compression::for_media_type(media_type)?;
    unpack_stream(reader, compression, target, opts)
}

/// [`unpack`] with the compression given directly.
pub fn unpack_stream(
    reader: impl Read,
    compression: Compression,
    target: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let root = Root::open(target).map_err(|source| UnpackError::OpenTarget {
        path: target.to_owned(),
        source,
    })?;
    let meter = Rc::new(Meter::default());
    let read_err = |source, at_entry| UnpackError::Read {
        compression: compression.name(),
        at_entry,
        source,
    };
    let limit_or = |meter: &Meter, e: UnpackError| match meter.hit.get() {
        Some((limit, value)) => UnpackError::Limit { limit, value },
        None => e,
    };
    let reader = LayerReader::new(reader, compression, opts.limits, Rc::clone(&meter))
        .map_err(|e| read_err(e, None))?;
    let mut archive = tar::Archive::new(reader);
    let mut u = Unpacker {
        root,
        root_path: target.to_owned(),
        opts,
        unpacked: HashSet::new(),
        dir_times: Vec::new(),
        stats_entries: 0,
        whiteouts: 0,
        skipped: Vec::new(),
        compression,
    };
    u.run(&mut archive, &meter)
        .map_err(|e| limit_or(&meter, e))?;
    let mut reader = archive.into_inner();
    meter.in_headers.set(false);
    reader
        .drain()
        .map_err(|e| limit_or(&meter, read_err(e, None)))?;
    u.set_dir_times()?;
    let diff_id = reader.finish();
    if let Some(expected) = &opts.expected_diff_id
        && *expected != diff_id
    {
        return Err(UnpackError::DiffIdMismatch {
            expected: expected.clone(),
            actual: diff_id,
        });
    }
    Ok(UnpackStats {
        diff_id,
        uncompressed_bytes: meter.total.get(),
        entries: u.stats_entries,
        whiteouts: u.whiteouts,
        skipped: u.skipped,
    })
}

/// A layer's uncompressed tar stream, for readers that walk a layer's entries without
/// unpacking it (the SBOM cataloguers, `berth-sbom`): decompressed, hashed and metered
/// against [`Limits::max_uncompressed_bytes`] on the fly, as [`unpack`] reads it. Read it
/// through `tar::Archive`, then call [`Decompressed::finish`] for the diff ID.
pub struct Decompressed<'a> {
    reader: LayerReader<'a>,
    meter: Rc<Meter>,
    compression: Compression,
}

impl std::fmt::Debug for Decompressed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressed")
            .field("compression", &self.compression)
            .field("uncompressed_bytes", &self.meter.total.get())
            .finish_non_exhaustive()
    }
}

/// The layer of `media_type` in `reader`, decompressed: see [`Decompressed`].
pub fn decompress<'a>(
    reader: impl Read + 'a,
    media_type: &str,
    limits: Limits,
) -> Result<Decompressed<'a>, UnpackError> {
    let compression = Compression::for_media_type(media_type)?;
    let meter = Rc::new(Meter::default());
    let reader =
        LayerReader::new(reader, compression, limits, Rc::clone(&meter)).map_err(|source| {
            UnpackError::Read {
                compression: compression.name(),
                at_entry: None,
                source,
            }
        })?;
    Ok(Decompressed {
        reader,
        meter,
        compression,
    })
}

/// Tells a [`Decompressed`] stream whether the tar parser is reading headers (bounded by
/// [`Limits::max_metadata_bytes`]) or entry data; cloned from [`Decompressed::meter`]
/// before the stream goes into `tar::Archive`.
#[derive(Clone)]
pub struct HeaderMeter(Rc<Meter>);

impl std::fmt::Debug for HeaderMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderMeter").finish_non_exhaustive()
    }
}

impl HeaderMeter {
    /// The parser is about to read the next entry's headers.
    pub fn headers(&self) {
        self.0.metadata.set(0);
        self.0.in_headers.set(true);
    }

    /// The parser is reading an entry's data.
    pub fn data(&self) {
        self.0.in_headers.set(false);
    }
}

impl Decompressed<'_> {
    pub fn meter(&self) -> HeaderMeter {
        HeaderMeter(Rc::clone(&self.meter))
    }

    /// The error for `source`, returned by a read of this stream after `at_entry`: the
    /// limit that stopped it, or a corrupt stream.
    pub fn error(&self, source: io::Error, at_entry: Option<String>) -> UnpackError {
        match self.meter.hit.get() {
            Some((limit, value)) => UnpackError::Limit { limit, value },
            None => UnpackError::Read {
                compression: self.compression.name(),
                at_entry,
                source,
            },
        }
    }

    /// Uncompressed bytes read so far.
    pub fn uncompressed_bytes(&self) -> u64 {
        self.meter.total.get()
    }

    /// Read the rest of the stream into the hash and give the layer's diff ID.
    pub fn finish(mut self) -> Result<berth_oci::Digest, UnpackError> {
        self.meter.in_headers.set(false);
        if let Err(e) = self.reader.drain() {
            return Err(self.error(e, None));
        }
        Ok(self.reader.finish())
    }
}

impl Read for Decompressed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}
