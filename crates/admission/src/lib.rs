//! `berth-admission`: a Kubernetes validating and mutating admission webhook that admits a
//! workload only when each of its images carries the signatures its namespace's berth role
//! policy (`berth.policy/v1`, docs/policy.md) requires. Served by `berth admission serve`
//! over `berth-httpd`; docs/admission.md is the user's guide.
//!
//! - [`review`]: `AdmissionReview` v1, decoded with a size bound, answered with the `uid`.
//! - [`objects`]: every image of a Pod or a pod template, with its JSON pointer.
//! - [`verify`]: one image in one namespace → a verdict (tag → digest, signatures, policy,
//!   provenance), cached per digest, deduplicated while in flight.
//! - [`pull_secrets`]: registry credentials from a reviewed object's `imagePullSecrets`.
//! - [`webhook`]: the endpoints, the deadline, the answer; [`metrics`], [`config`], [`cache`].
//!
//! The design decision to know: **nothing is decided on a tag, and nothing is allowed by a
//! timeout.** The mutating endpoint resolves each tag once, verifies that digest and pins it
//! (`name:tag@sha256:…`); the validating endpoint refuses any image not pinned to a digest it
//! has verified (afresh on a cache miss: replicas share no cache). Every review has a deadline
//! below the API server's, and missing it is a denial.
//!
//! It does not own the policy's semantics (berth-trust's `roles`) nor the HTTP server
//! (berth-httpd); it reaches registries through berth-distribution's client, which
//! berth-trust's `RegistrySignatures` is built on.

pub mod cache;
pub mod config;
pub mod kube;
pub mod metrics;
pub mod objects;
pub mod pull_secrets;
pub mod review;
pub mod verify;
pub mod webhook;

pub use config::Config;
pub use verify::{ImageVerdict, Pinning, SetupError, Verifier};
pub use webhook::{Webhook, router};
