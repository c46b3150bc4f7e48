//! Trust commands: `berth sign` and `berth verify` (Notary Project signatures in registries).

pub mod verify;
