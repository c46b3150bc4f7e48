//! Notary Project signatures: keys and test certificates (`berth key`, `berth cert`),
//! signing, verifying and attesting images in registries (`berth sign`, `berth verify`,
//! `berth attest`), the trust gate of pull and run, role policies (`berth policy`) and
//! pinned signers and signing on push (`berth trust`).

pub mod attest;
pub mod cert;
pub mod config;
pub mod gate;
pub mod init;
pub mod key;
pub mod onpush;
pub mod policy;
pub mod sign;
pub mod tofu;
pub mod verify;
