//! berth-sbom integration tests: one module per part (catalogers against real image
//! layers, document formats against their official schemas, version orders against their
//! reference implementations, the OSV database and matching).

mod catalog_image;
mod catalog_lang;
mod catalog_layers;
mod catalog_os;
mod catalog_support;
mod package;
