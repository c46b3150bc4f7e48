//! The registry client of berth: talks distribution-spec v1.1 to any OCI registry.
//!
//! **Owns**
//! - [`Client`]: manifests ([`Client::get_manifest`], [`Client::head_manifest`],
//!   [`Client::put_manifest`]), blobs ([`Client::head_blob`], [`Client::get_blob`] streaming
//!   through a digest verifier with `Range` resume, [`Client::push_blob`] monolithic or
//!   chunked and resumable, [`Client::mount_blob`]), tags with `Link` pagination,
//!   referrers with the tag-schema fallback, and [`Client::ping`];
//! - authentication ([`parse_challenges`], Basic, bearer tokens cached per scope set) and
//!   docker's `config.json` and containers' `auth.json` credentials with credential
//!   helpers ([`CredentialsConfig`], asked in order by a [`CredentialChain`]);
//! - transport policy: HTTPS by default (rustls with the ring provider, the system trust
//!   store plus caller-given roots), plain HTTP only where [`PlainHttp`] allows it, retries
//!   of transient failures ([`RetryPolicy`]), never forwarding `Authorization` to another
//!   host on a redirect;
//! - [`Client::exchange`]: one request as built and its whole response as sent, for tools
//!   that judge a registry (the conformance checks).
//!
//! **Does not own**: where content goes (the caller's sink, e.g. `berth-store`), what an
//! image means (unpacking, configs), progress display, or reading the environment: paths
//! (`config.json`, `auth.json`, helper directories) and options come from the caller.
//!
//! **Design decision**: the client is hyper's pooled client (HTTP/1.1 keep-alive, HTTP/2
//! by ALPN) over a small rustls connector rather than a batteries-included HTTP client, so
//! that redirects, retries and authentication are ours and visible: a blob `GET` may be
//! redirected to object storage and must not carry the registry's credentials there, a
//! `401` must be answered with a token for exactly the scopes the operation needs, and a
//! broken download resumes with `Range` through the same digest verifier. Every byte
//! received is hashed on its way to the caller's sink, and the caller learns the verdict
//! before using the content.
//!
//! # Example
//!
//! ```no_run
//! use berth_distribution::{Client, ClientOptions, Repository};
//! # async fn f() -> Result<(), berth_distribution::Error> {
//! let client = Client::new(ClientOptions::default())?;
//! let repo = Repository::new("ghcr.io", "org/app")?;
//! let manifest = client.get_manifest(&repo, "v1", &[]).await?;
//! println!("{} {}", manifest.digest, manifest.media_type);
//! # Ok(()) }
//! ```

mod auth;
mod blob;
mod body;
mod client;
mod connect;
mod credentials;
mod error;
mod manifest;
mod raw;
mod referrers;
mod retry;
mod secret;
mod source;
mod transport;
mod url;

use http::HeaderName;

pub use auth::{Challenge, parse_challenges};
pub use berth_oci::oci_spec::image::Descriptor;
pub use blob::BlobPush;
pub use client::{Client, ClientOptions, Repository};
pub use credentials::{
    Credential, CredentialChain, CredentialProvider, CredentialsConfig, CredentialsError,
    DOCKER_HUB_KEY, FileKind, StaticCredentials, config_key, normalize_host,
};
pub use error::{ConnectCause, Error, ErrorKind, RegistryErrorCode, Target};
pub use manifest::{DEFAULT_MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, Manifest, ManifestHead};
pub use raw::{RawRequest, RawResponse};
pub use referrers::referrers_tag;
pub use retry::{MAX_RETRY_AFTER, RetryPolicy, parse_retry_after};
pub use secret::Secret;
pub use source::{BlobSource, BytesSource, FileSource};
pub use transport::PlainHttp;

/// `Docker-Content-Digest`: the digest a registry computed.
pub(crate) const DOCKER_CONTENT_DIGEST: HeaderName =
    HeaderName::from_static("docker-content-digest");
/// `OCI-Subject`: the registry processed a pushed manifest's subject.
pub(crate) const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
/// `OCI-Filters-Applied`: the registry filtered a referrers list.
pub(crate) const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");
