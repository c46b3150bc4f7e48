//! `run <id>`: create + start; in the foreground, wait (forwarding signals) and exit with
//! the container's status, then delete it unless `--keep`.

use anyhow::Context;
use berth_container::{Container, ForegroundOptions, wait_foreground};
use clap::Args;

use crate::Global;

#[derive(Args, Debug)]
pub struct RunArgs {
    pub id: String,
    #[command(flatten)]
    pub flags: super::create::CreateFlags,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// do not delete the container after it exits
    #[arg(long)]
    pub keep: bool,
    /// disable the use of the subreaper used to reap reparented processes (accepted)
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

pub fn run(g: &Global, a: RunArgs) -> anyhow::Result<u8> {
    let mut opts = super::create::options(g, &a.id, &a.flags)?;
    opts.keep_pty = !a.detach && opts.console_socket.is_none();
    let (mut c, pty) =
        Container::create(&opts).with_context(|| format!("failed to run container {}", a.id))?;
    let started = c.start();
    let warnings = match started {
        Ok(w) => w,
        Err(e) => {
            let _ = c.clone().delete(true);
            return Err(anyhow::Error::new(e).context(format!("failed to run container {}", a.id)));
        }
    };
    for w in warnings {
        g.log.warn(&crate::log::chain(&anyhow::Error::new(w)));
    }
    if a.detach {
        return Ok(0);
    }
    let code = wait_foreground(ForegroundOptions {
        pid: c.state.pid,
        pty,
    })
    .with_context(|| format!("failed to wait for container {}", a.id))?;
    if !a.keep {
        match c.delete(true) {
            Ok(ws) => {
                for w in ws {
                    g.log.warn(&crate::log::chain(&anyhow::Error::new(w)));
                }
            }
            Err(e) => g.log.warn(&crate::log::chain(&anyhow::Error::new(e))),
        }
    }
    Ok(u8::try_from(code & 0xff).unwrap_or(255))
}
