//! berth-trust against notation's own test vectors (read in place from
//! ../shared/vectors/notation/, never copied into the repository).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "tests fail by panicking; temporary trust stores need no atomic writes"
)]

mod check;
mod envelopes;
mod keystore;
mod openssl;
mod pki;
mod policies;
mod revocation;
mod roles;
mod schema;
mod signing;
mod tofu;
mod truststores;
mod tsa;

use std::path::{Path, PathBuf};

/// The notation vectors directory; fails loudly when it is missing (set BERTH_NOTATION_VECTORS
/// to point elsewhere).
pub fn vectors() -> PathBuf {
    let dir = std::env::var_os("BERTH_NOTATION_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/notation")
        });
    assert!(
        dir.join("README.md").is_file(),
        "notation test vectors not found at {} (set BERTH_NOTATION_VECTORS): these tests need them",
        dir.display()
    );
    dir
}

pub fn read(rel: &str) -> Vec<u8> {
    let p = vectors().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading vector {}: {e}", p.display()))
}
