//! Notary Project signatures: keys and test certificates (`berth key`, `berth cert`),
//! signing and verifying images in registries (`berth sign`, `berth verify`).

pub mod attest;
pub mod cert;
pub mod config;
pub mod gate;
pub mod init;
pub mod key;
pub mod onpush;
pub mod sign;
pub mod verify;
