pub mod conformance;
pub mod image;
pub mod login;
pub mod logout;
pub mod registry;
pub mod system;
