//! `berth-registry`: an OCI distribution-spec v1.1 registry server.
//!
//! Owns the HTTP API (routes → handlers), the storage layout ([`paths`]) over a narrow
//! storage [`storage::Driver`] (filesystem now, S3-compatible next), upload sessions,
//! referrers, authentication (htpasswd basic and bearer tokens), metrics and garbage
//! collection. It does not own image semantics beyond what the spec needs to validate a
//! push (that is `berth-oci`), it never depends on the local image store, and it does not
//! own the HTTP server it runs in: the accept loop, TLS, graceful drain, limits, request
//! spans and access log are `berth-httpd`'s, which serves [`router`].
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
pub mod storage;

pub use app::{App, metrics_router, router};
pub use config::Config;
pub use error::{ErrorKind, RegistryError};
