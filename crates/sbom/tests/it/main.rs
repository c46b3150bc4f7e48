//! berth-sbom integration tests: one module per part (catalogers against real image
//! layers, document formats against their official schemas, version orders against their
//! reference implementations, the OSV database and matching).

mod catalog_files;
mod catalog_image;
mod catalog_lang;
mod catalog_layers;
mod catalog_os;
mod catalog_support;
mod format;
mod format_read;
mod format_schema;
mod format_syft;
mod osv;
mod osv_common;
mod osv_cvss;
mod osv_eval;
mod package;
mod scan;
mod scan_report;
mod tools;
mod version;
