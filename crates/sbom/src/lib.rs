//! What is inside an image, and which of it is known to be vulnerable (issue 21).
//!
//! - [`package`]: the vocabulary every part shares — a [`package::Package`] found in a layer,
//!   its [`package::Ecosystem`] and [`package::Purl`], the distribution from `os-release`,
//!   and the [`package::Inventory`] of one image: its packages and its executable files
//!   ([`package::FileDigest`]: path, SHA-256, SHA-1, layer), which `berth watch` adds to the
//!   image's expected programs.
//! - [`layers`]: an image's layers read once, streaming, into the squashed view of the few
//!   files the cataloguers need and of every executable's digests (whiteouts applied), or
//!   the same of a directory.
//! - [`catalog`]: the cataloguers (dpkg, apk, rpm, Python, npm, Rust, Go, Java) over that
//!   view: [`catalog::catalog_layers`] and [`catalog::catalog_dir`] give an inventory.
//! - [`format`]: SPDX 2.3 and CycloneDX 1.6 JSON documents written from an inventory
//!   (executables as SPDX `files` and CycloneDX `file` components), and SPDX and CycloneDX
//!   documents (berth's, syft's, trivy's) read back into one.
//! - [`version`]: each ecosystem's version order (dpkg, apk, rpm, SemVer for crates.io, npm
//!   and Go, PEP 440, Maven), proven against the reference implementations.
//! - [`osv`]: OSV records, osv.dev's exports imported into a local, atomically replaced
//!   database, the OSV range evaluation, CVSS scores.
//! - [`scan`]: an inventory matched against the database, and the report (table, JSON,
//!   SARIF).
//! - [`zip`]: the zip reader osv.dev's exports and Java archives go through.
//!
//! Layering (`docs/ARCHITECTURE.md`): an L2 crate over `berth-oci`, `berth-image`'s layer
//! reader and `berth-fsutil`. It never talks to a registry; the `berth` binary hands it
//! layer streams.

pub mod catalog;
pub mod format;
pub mod layers;
pub mod osv;
pub mod package;
pub mod scan;
pub mod version;
pub mod zip;
