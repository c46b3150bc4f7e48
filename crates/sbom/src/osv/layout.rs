//! The offline OSV database on disk: the only place that names its files.
//!
//! ```text
//! <db_dir>/                      chosen by the caller (the library reads no environment)
//! ├── osv-v1.db                  the database, format FORMAT_VERSION; replaced whole by
//! │                              each import (temp → fsync → rename → fsync dir), so a
//! │                              reader sees the old or the new file, never half of one
//! ├── .osv-v1.db.tmp.<pid>.<n>   an import being written (removed when it fails; one left
//! │                              by a killed import is removed by the next import)
//! └── import.lock                flock(2)ed by an import, so that two imports merge rather
//!                                than one losing the other's ecosystem
//! ```
//!
//! `osv-v1.db` (all integers little-endian):
//!
//! ```text
//! [records]   each record's JSON (compacted), concatenated; those of one export together
//! [index]     u32 key count, u32 ref count, then per key (sorted by key bytes):
//!                 u32 key offset, u32 key length (into the key blob),
//!                 u32 first ref, u32 ref count (into the ref table)
//!             the ref table: per ref u64 record offset, u32 record length
//!             the key blob: keys `<OSV ecosystem>\0<package name>`, the ecosystem without
//!             its `:release` suffix (`Debian\0openssl`), PyPI names normalised (PEP 503)
//! [meta]      JSON: format version, build time, newest `modified`, the exports (see
//!             `db::Meta`)
//! [trailer]   8 bytes magic `BERTHOSV`, u32 FORMAT_VERSION, u32 0,
//!             u64 index offset, u64 index length, u64 meta offset, u64 meta length
//! ```
//!
//! A scan reads the trailer, the meta and the index (a few hundred KiB for a full Debian
//! export), then, per package, one binary search and the records it refers to.

use std::path::{Path, PathBuf};

/// The version of the file format; a different version is a different file name, so an
/// older berth never misreads a newer database (it reports none and asks for an import).
pub const FORMAT_VERSION: u32 = 1;

pub const MAGIC: &[u8; 8] = b"BERTHOSV";

/// Trailer length: magic, version, padding, four u64.
pub const TRAILER_LEN: usize = 8 + 4 + 4 + 4 * 8;

/// The database file.
pub fn db_file(db_dir: &Path) -> PathBuf {
    db_dir.join(format!("osv-v{FORMAT_VERSION}.db"))
}

/// The lock an import holds.
pub fn import_lock(db_dir: &Path) -> PathBuf {
    db_dir.join("import.lock")
}

/// Whether `name` (a file name in `db_dir`) is a temporary file an import left.
pub fn is_stale_temp(name: &str) -> bool {
    name.starts_with(&format!(".osv-v{FORMAT_VERSION}.db.tmp."))
}

/// The index key of a package: OSV ecosystem without release, NUL, normalised name.
pub fn key(ecosystem_base: &str, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(ecosystem_base.len() + 1 + name.len());
    k.extend_from_slice(ecosystem_base.as_bytes());
    k.push(0);
    if ecosystem_base == "PyPI" {
        k.extend_from_slice(crate::package::pypi_name(name).as_bytes());
    } else {
        k.extend_from_slice(name.as_bytes());
    }
    k
}

/// Whether two package names of one ecosystem are the same key (PyPI's compared
/// normalised, as [`key`] writes them), without building keys.
pub fn same_name(ecosystem_base: &str, a: &str, b: &str) -> bool {
    if ecosystem_base == "PyPI" {
        a == b || crate::package::pypi_name(a) == crate::package::pypi_name(b)
    } else {
        a == b
    }
}
