//! `delete <id>` (`--force` kills a running one first). A directory left without state by
//! an interrupted create is removed too.

use anyhow::Context;
use berth_container::{Container, ContainerError, remove_leftover};
use clap::Args;

use crate::Global;

#[derive(Args, Debug)]
pub struct DeleteArgs {
    pub id: String,
    /// Forcibly deletes the container if it is still running (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
}

pub fn run(g: &Global, a: DeleteArgs) -> anyhow::Result<u8> {
    let c = match Container::load(&g.root, &a.id) {
        Ok(c) => c,
        Err(ContainerError::NotFound { .. }) => {
            let removed = remove_leftover(&g.root, &a.id)?;
            if a.force || removed {
                return Ok(0);
            }
            anyhow::bail!("container {} does not exist", a.id);
        }
        Err(e) => return Err(e).with_context(|| format!("failed to load container {}", a.id)),
    };
    let warnings = c
        .delete(a.force)
        .with_context(|| format!("failed to delete container {}", a.id))?;
    for w in warnings {
        g.log.warn(&crate::log::chain(&anyhow::Error::new(w)));
    }
    Ok(0)
}
