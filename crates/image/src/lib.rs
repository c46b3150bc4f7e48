//! berth-image: images become root filesystems.
//!
//! **Owns**: [`unpack`], streaming a layer blob (tar, tar+gzip, tar+zstd) into a directory,
//! strictly inside that directory, computing its diff ID on the way; and the snapshotters
//! ([`snapshot`]): overlayfs and native (copying) snapshots of layers, keyed by chain ID,
//! shared between images and containers and garbage-collected; [`rootfs`], an image of the
//! store made into chain-ID snapshots (missing layers unpacked in parallel) and a container's
//! snapshot over them; [`spec`], an image's config and `berth run`'s flags → a runtime
//! config, locked down by default; and [`idmap`], a user namespace by default: a free range
//! of host ids per container from `/etc/subuid`, and its root filesystem shown in that range
//! (id-mapped layers, nothing copied; or chowned copies of the layers per range where the
//! kernel cannot).
//!
//! **Does not own**: fetching blobs (`berth-transfer`), storing them (`berth-store`),
//! running containers.
//!
//! **Design decisions**: the tar stream is *parsed* by the `tar` crate but *extracted* by our
//! own code, every file-system call relative to a directory fd that was resolved with
//! `openat2(RESOLVE_IN_ROOT)`, and the last component never followed: no entry can write or
//! read outside the target, whatever symlinks earlier entries planted. A snapshot's directory
//! becomes visible under its final number only after it is complete, and its metadata record
//! is written atomically under a lock; anything a killed process leaves behind is unrecorded
//! and removed at the next open.

pub mod idmap;
pub mod rootfs;
pub mod snapshot;
pub mod spec;
pub mod squash;
pub mod unpack;
pub mod volume;
