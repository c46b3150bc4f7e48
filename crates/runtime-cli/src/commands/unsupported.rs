//! Commands runc has that berth-runtime refuses (checkpoint, restore).

use std::ffi::OsString;

use crate::args::{Matches, UsageError};

#[derive(Debug, PartialEq, Eq)]
pub struct AnyArgs {
    pub args: Vec<OsString>,
}

impl AnyArgs {
    pub fn from_matches(m: &Matches) -> Result<Self, UsageError> {
        Ok(AnyArgs {
            args: m.positionals.clone(),
        })
    }
}
