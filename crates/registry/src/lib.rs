//! `berth-registry`: an OCI distribution-spec v1.1 registry server.
//!
//! Owns the HTTP API (routes → handlers), the storage layout ([`paths`]) over a narrow
//! storage [`storage::Driver`] (filesystem now, S3-compatible next), upload sessions,
//! referrers, authentication (htpasswd basic and bearer tokens), TLS, metrics and garbage
//! collection. It does not own image semantics beyond what the spec needs to validate a
//! push (that is `berth-oci`), and it never depends on the local image store.
//!
//! Design decision: every piece of state — upload sessions included — is a file in the
//! storage driver, never only in process memory, so a restarted server resumes unfinished
//! uploads and several replicas can share one backend. In-memory data (the hash state of
//! an upload) is a cache that can always be rebuilt from storage.

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod gc;
mod handlers;
pub mod metrics;
pub mod paths;
mod repo;
pub mod routes;
pub mod server;
pub mod storage;
pub mod tls;

pub use app::{App, metrics_router, router};
pub use config::Config;
pub use error::{ErrorKind, RegistryError};
