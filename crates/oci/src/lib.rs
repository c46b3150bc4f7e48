//! OCI vocabulary for berth: the parsing and checking of what clients send.
//!
//! **Owns**
//! - [`Digest`]: `sha256:`/`sha512:` digests, one-shot and streaming hashing
//!   ([`Digester`]), and [`VerifyingReader`], which checks content against a
//!   digest and size as it is read;
//! - repository names and tags ([`validate_repository_name`],
//!   [`validate_tag`]) per distribution-spec v1.1;
//! - image references ([`Reference`]) normalised as docker and containerd
//!   do (`busybox` → `docker.io/library/busybox:latest`);
//! - media type constants ([`media_type`]);
//! - manifest inspection ([`ManifestInfo`]): what a registry must know about
//!   a pushed manifest (kind, config, layers, child manifests, subject,
//!   artifact type) without rejecting manifest types it does not know.
//!
//! **Does not own**: storage, HTTP, registry logic, pulling, unpacking, or
//! image configuration semantics, nor the runtime-spec types (`config.json`, state,
//! features: `berth-runtime-spec`, so that the runtime compiles none of this crate's
//! dependencies). The crate is pure: no I/O beyond wrapping a caller's `Read`, no async,
//! no global state. The OCI document types themselves (`Descriptor`, `ImageManifest`,
//! `ImageIndex`) are `oci-spec`'s.
//!
//! **Design decision**: every string from outside is validated once, into a
//! type that cannot hold an invalid value. A [`Digest`] is always a
//! well-formed sha256 or sha512 digest, so code holding one may build paths
//! and URLs from it; other algorithms are refused as
//! [`DigestError::Unsupported`], distinct from [`DigestError::Invalid`], so
//! the registry can answer `UNSUPPORTED` or `DIGEST_INVALID`. Hashing goes
//! through [`Digester`] only, so the hash implementation (today `ring`,
//! chosen by `examples/digest_bench.rs`, see `docs/digest-bench.md`) can
//! change in one place.
//!
//! # Example
//!
//! ```
//! use berth_oci::{Digest, ManifestInfo, ManifestKind, Reference, media_type};
//!
//! let r: Reference = "busybox@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582"
//!     .parse()?;
//! assert_eq!(r.registry(), "docker.io");
//! assert_eq!(r.repository(), "library/busybox");
//! assert_eq!(r.tag(), None); // a digest and no tag: no default tag
//!
//! let body = br#"{"schemaVersion": 2, "manifests": []}"#;
//! let info = ManifestInfo::parse(body, Some(media_type::OCI_INDEX))?;
//! assert_eq!(info.kind, ManifestKind::Index);
//! assert_eq!(Digest::sha256_of(body).algorithm().as_str(), "sha256");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod digest;
mod manifest;
/// The image-spec types (manifests, indexes, configs, descriptors), re-exported so that
/// every crate uses the one version pinned by the workspace. The runtime-spec types are
/// berth's own, in `berth-runtime-spec`.
pub use oci_spec;

pub mod media_type;
mod name;
mod reference;
/// RFC 3339 timestamps (image configs, tokens, reports): the runtime-spec crate's, which
/// owns them for the runtime state's `created`, so that there is one copy.
pub use berth_runtime_spec::timefmt;

pub use digest::{Algorithm, Digest, DigestError, Digester, VerifyingReader};
pub use manifest::{ManifestError, ManifestInfo, ManifestKind, descriptor_digest};
pub use name::{MAX_NAME_LEN, MAX_TAG_LEN, NameError, validate_repository_name, validate_tag};
pub use reference::{DEFAULT_REGISTRY, DEFAULT_TAG, Reference, ReferenceError};
