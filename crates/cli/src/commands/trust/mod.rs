//! Signing and verification commands (issue 17).

pub mod policy;
pub mod tofu;
