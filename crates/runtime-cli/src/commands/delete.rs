//! `delete <id>` (`--force` kills a running one first). A directory left without state by
//! an interrupted create is removed too.

use crate::Global;
use crate::args::{Flag, Matches, UsageError};
use anyhow::Context;
use berth_container::{
    Container, ContainerError, ErrorKind, StateError, remove_leftover, remove_unreadable,
};

pub const FLAGS: &[Flag] = &[Flag::bool(
    "force",
    Some('f'),
    "Forcibly deletes the container if it is still running (uses SIGKILL)",
)];

#[derive(Debug, PartialEq, Eq)]
pub struct DeleteArgs {
    pub id: String,
    pub force: bool,
}

impl DeleteArgs {
    pub fn from_matches(m: &Matches) -> Result<Self, UsageError> {
        let [id] = super::exactly::<1>("delete", m)?;
        Ok(DeleteArgs {
            id,
            force: m.flag("force"),
        })
    }
}

pub fn run(g: &Global, a: DeleteArgs) -> anyhow::Result<u8> {
    let c = match Container::load(&g.root, &a.id) {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let removed = remove_leftover(&g.root, &a.id)?;
            if a.force || removed {
                return Ok(0);
            }
            anyhow::bail!("container {} does not exist", a.id);
        }
        Err(ContainerError::State(StateError::Parse { path, source })) if a.force => {
            // a crash while the state was written (it is not fsynced, as runc's)
            let killed = remove_unreadable(&g.root, &a.id)?;
            g.log.warn(&format!(
                "container {}: unreadable state {} ({source}): removed its directory{}",
                a.id,
                path.display(),
                if killed.is_empty() {
                    String::new()
                } else {
                    format!(" and killed its waiting init {killed:?}")
                }
            ));
            return Ok(0);
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
