//! The offline OSV vulnerability database (issue 21 §2): osv.dev's per-ecosystem exports
//! (`Debian/all.zip`, `Alpine/all.zip`, `PyPI/all.zip`, …) imported into one local file
//! indexed by (ecosystem, package name), and the evaluation of a record's affected ranges
//! against an installed version.
//!
//! - [`record`]: OSV records (<https://ossf.github.io/osv-schema/>), refused with file and
//!   field when malformed.
//! - [`db`]: [`import`] and [`Database`]; the on-disk tree is in [`layout`].
//! - [`evaluate()`]: the schema's "Evaluation" pseudo-code, over any [`VersionOrder`].
//! - [`cvss`]: CVSS v2, v3.x and v4.0 scores from vectors.
//! - `view`: a stored record as a scan reads it (typed, borrowed, only what matching and
//!   reports use); [`record`] is the whole record, with the import's checks.

pub mod cvss;
mod cvss4;
pub mod db;
pub mod evaluate;
pub mod layout;
pub mod record;
pub(crate) mod view;

pub use db::{Database, DbError, ExportMeta, ImportReport, Meta, import};
pub use evaluate::{Scheme, Verdict, VersionOrder, evaluate};
pub use record::{
    Affected, AffectedPackage, Event, EventKind, Range, RangeType, Record, RecordError, Severity,
    SeverityType,
};
