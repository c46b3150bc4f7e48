//! The snapshotters, for real: overlay mounts, whiteouts, many layers, concurrency, GC,
//! native equivalence and crash cleanup.

mod batch;
mod crash;
mod gc;
pub(crate) mod helpers;
mod native;
mod overlay;
pub(crate) mod process;
mod suite;
