//! Notary Project signatures: keys and test certificates (`berth key`, `berth cert`).

pub mod cert;
pub mod key;
