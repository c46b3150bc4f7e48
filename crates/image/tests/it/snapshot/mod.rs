//! The snapshotters, for real: overlay mounts, whiteouts, many layers, concurrency, GC,
//! native equivalence and crash cleanup.

mod crash;
mod gc;
mod helpers;
mod native;
mod overlay;
mod process;
mod suite;
