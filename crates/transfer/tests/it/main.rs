//! Integration tests of berth-transfer: one binary, one module per subject.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking, helpers included"
)]

mod archive;
mod roles;

use berth_distribution::Descriptor;
use berth_oci::Digest;
use berth_oci::oci_spec::image::MediaType;

/// A layer descriptor for `data`.
pub fn layer(data: &[u8]) -> (Digest, Descriptor) {
    let digest = Digest::sha256_of(data);
    let desc = Descriptor::new(
        MediaType::ImageLayerGzip,
        data.len() as u64,
        berth_oci::oci_spec::image::Digest::try_from(&digest).unwrap(),
    );
    (digest, desc)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}
