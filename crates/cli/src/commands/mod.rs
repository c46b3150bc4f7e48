pub mod conformance;
pub mod container;
pub mod image;
pub mod login;
pub mod logout;
pub mod network;
pub mod registry;
pub mod system;
