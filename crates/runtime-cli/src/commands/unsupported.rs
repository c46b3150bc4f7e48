//! Commands runc has that berth-runtime refuses (checkpoint, restore).

use clap::Args;

#[derive(Args, Debug)]
pub struct AnyArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}
