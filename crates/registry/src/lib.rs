//! `berth-registry`: an OCI distribution-spec v1.1 registry server.
//!
//! Owns the HTTP API (routes → handlers), the storage layer ([`storage`]: repositories,
//! blobs, upload sessions, manifests, tags, referrers, garbage collection) over a narrow
//! [`storage::Driver`] (filesystem and in-memory now, S3-compatible next), authentication
//! (htpasswd basic and bearer tokens) and metrics. It does not own image semantics beyond
//! what the spec needs to validate a push (that is `berth-oci`), it never depends on the
//! local image store, and it does not own the HTTP server it runs in: the accept loop,
//! TLS, graceful drain, limits, request spans and access log are `berth-httpd`'s, which
//! serves [`router`].
//!
//! Layers, each importing only those below it: `app` (router, dispatch) → `handlers` (HTTP
//! in and out) → `state` (what a request reaches) → `storage` (the registry's semantics,
//! its own [`storage::StorageError`]) → `storage::driver` (files). `error` maps storage
//! errors to distribution-spec codes in one place; `config` knows nothing of handlers.
//!
//! Design decision: every piece of state — upload sessions and the garbage collector's
//! clock included — is data in the storage driver, never only in process memory or in file
//! metadata, so a restarted server resumes unfinished uploads and several replicas can
//! share one backend. In-memory data (the hash state of an upload) is a cache that can
//! always be rebuilt from storage.

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
mod handlers;
pub mod metrics;
pub mod routes;
pub mod state;
pub mod storage;

pub use app::{metrics_router, router};
pub use config::Config;
pub use error::{ErrorKind, RegistryError};
pub use state::App;
pub use storage::{gc, paths};
