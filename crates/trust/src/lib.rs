//! `berth-trust`: Notary Project signatures (specification v1.1) — envelopes (JWS and
//! COSE_Sign1), X.509 certificate chains, notation's trust store layout and trust policy, and
//! verification as the specification's workflow.
//!
//! What it owns: turning envelope bytes plus a trust store and a policy statement into a
//! [`Verdict`] with every step's outcome. It also signs: keys and berth's key store
//! ([`keys`]), test certificates ([`certgen`]), envelopes ([`sign`](mod@sign)) and the signature manifest
//! ([`manifest`]). Registries are reached only through [`repository`]'s `SignatureRepository`
//! port over `berth-distribution` (list, fetch and push signatures; [`verify_image`]). berth's
//! role policies ([`roles`]: who must have signed, per scope and namespace) and their
//! evaluation for an image in its registry ([`image_policy`]), trust on first use ([`tofu`]),
//! and provenance: in-toto SLSA statements ([`provenance`]) pushed, signed and checked as
//! attestations ([`attestation`]). RFC 3161 timestamps are verified ([`timestamp`]) and
//! obtained when signing ([`tsa`], through its small `TimestampTransport` port over
//! `berth-distribution`); CRL/OCSP revocation is checked ([`revocation`], through a small
//! fetch port).
//!
//! The design decision to know: parsing is strict and in-crate (a DER reader for the
//! certificate fields the specification reads, a CBOR reader for COSE_Sign1), and all
//! cryptography is `ring`'s; nothing else parses outside input. ring has no P-521, so ES512
//! signatures and P-521 keys are refused with a message that says so.

pub mod attestation;
pub mod cbor;
pub mod cbor_writer;
pub mod cert;
pub mod certgen;
mod cose;
mod crypto;
mod der;
mod der_writer;
pub mod envelope;
pub mod evidence;
pub mod image_policy;
mod jws;
pub mod keys;
pub mod manifest;
pub mod policy;
pub mod provenance;
pub mod repository;
pub mod revocation;
pub mod roles;
pub mod sign;
pub mod time;
pub mod timestamp;
pub mod tofu;
pub mod truststore;
pub mod tsa;
pub mod verify;

pub use cert::Certificate;
pub use der::DerError;
pub use envelope::{
    Envelope, EnvelopeError, EnvelopeFormat, SignatureAlgorithm, SigningScheme, TargetArtifact,
};
pub use keys::{KeySpec, KeyStore, Signer, SigningKey};
pub use policy::{Action, Level, PolicyError, PolicyStatement, TrustPolicy, VerificationLevel};
pub use repository::{
    ImageVerification, RegistrySignatures, RepositoryError, SignatureOutcome, SignatureRepository,
    VerifyImageOptions, verify_image,
};
pub use roles::{Decision, Policy as RolePolicy, VerifiedSignature, evaluate};
pub use sign::{SignOptions, sign};
pub use time::Timestamp;
pub use truststore::{StoreType, TrustStore, TrustStoreError};
pub use verify::{Outcome, Step, StepResult, Verdict, VerifyOptions, verify};
