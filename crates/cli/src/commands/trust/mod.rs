//! Notary Project signatures: keys and test certificates (`berth key`, `berth cert`),
//! signing and verifying images in registries (`berth sign`, `berth verify`).

pub mod attest;
pub mod cert;
pub mod key;
pub mod sign;
pub mod verify;
