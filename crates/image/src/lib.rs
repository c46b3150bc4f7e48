//! Images become root filesystems.
//!
//! **Owns**: the snapshotters ([`snapshot`]): overlayfs and native (copying) snapshots of
//! layers, keyed by chain ID, shared between images and containers and garbage-collected.
//!
//! **Does not own**: fetching content (`berth-transfer`, `berth-store`), running containers.
//!
//! **Design decision**: a snapshot's directory becomes visible under its final number only
//! after it is complete, and its metadata record is written atomically under a lock; anything
//! a killed process leaves behind is unrecorded and removed at the next open.

pub mod snapshot;
