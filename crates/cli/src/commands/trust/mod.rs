//! Notary Project signatures: keys and test certificates (`berth key`, `berth cert`), role
//! policies (`berth policy`) and pinned signers (`berth trust`).

pub mod cert;
pub mod key;
pub mod policy;
pub mod tofu;
