//! What is inside an image.
//!
//! - [`package`]: the vocabulary every part shares — a [`package::Package`] found in a layer,
//!   its [`package::Ecosystem`] and [`package::Purl`], the distribution from `os-release`.
//! - [`format`]: SPDX 2.3 and CycloneDX 1.6 JSON documents written from an inventory, and
//!   SPDX and CycloneDX documents (berth's, syft's) read back into one.
//!
//! - [`layers`]: an image's layers read once, streaming, into the squashed view of the
//!   few files the cataloguers need (whiteouts applied), or the same of a directory.
//! - [`catalog`]: the cataloguers (dpkg, apk, rpm, Python, npm, Rust, Go, Java) over that
//!   view: [`catalog::catalog_layers`] and [`catalog::catalog_dir`] give an
//!   [`package::Inventory`].
//!
//! The parts that find packages in layers, write SPDX and CycloneDX documents, order versions
//! the way each ecosystem does, and import and match OSV records build on it (issue 21).
//!
//! Layering (`docs/ARCHITECTURE.md`): an L2 crate over `berth-oci` and `berth-image`'s layer
//! reader. It never talks to a registry; the `berth` binary hands it layer streams.

pub mod catalog;
pub mod format;
pub mod layers;
pub mod osv;
pub mod package;
pub mod scan;
pub mod zip;
