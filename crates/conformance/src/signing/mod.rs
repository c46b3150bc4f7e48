pub mod registry;
pub mod signer;
