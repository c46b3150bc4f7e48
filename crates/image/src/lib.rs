//! berth-image: image layers into root filesystems.
//!
//! **Owns** [`unpack`]: streaming a layer blob (tar, tar+gzip, tar+zstd) into a directory,
//! strictly inside that directory, computing its diff ID on the way.
//!
//! **Does not own**: fetching blobs (`berth-transfer`), storing them (`berth-store`), deciding
//! where snapshots live.
//!
//! **Design decision**: the tar stream is *parsed* by the `tar` crate but *extracted* by our
//! own code, every file-system call relative to a directory fd that was resolved with
//! `openat2(RESOLVE_IN_ROOT)`, and the last component never followed. No entry can write or
//! read outside the target, whatever symlinks earlier entries planted.

pub mod unpack;
