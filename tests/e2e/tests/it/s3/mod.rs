//! Real S3 servers, as the registry's S3 driver meets them: `s3s-fs` and moto's server on
//! 127.0.0.1. `servers`: each spoken to with curl's `--aws-sigv4` — what it refuses; what
//! `If-None-Match`, `If-Match`, multipart and presigned URLs do (tabled in
//! `tests/support/src/s3.rs`, from these tests). `replicas`: berth's S3 driver on both
//! servers, and docker-registry 2.8's on moto (s3s-fs lacks a call it needs), alone and as
//! two replicas on one bucket behind a round-robin nginx — an upload handed from one to the
//! other, one killed mid-push — driven by skopeo.

mod replicas;
mod servers;

pub const MIB: usize = 1 << 20;
