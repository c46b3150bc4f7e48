//! `run <id>`: create + start; in the foreground, wait (forwarding signals) and exit with
//! the container's status, then delete it unless `--keep`.

use crate::Global;
use crate::args::{Flag, Matches, UsageError};
use anyhow::Context;
use berth_container::{
    Container, ForegroundOptions, SingleThreaded, catch_signals, wait_foreground,
};

/// `run`'s flags beside `create`'s.
pub const FLAGS: &[Flag] = &[
    Flag::bool("detach", Some('d'), "detach from the container's process"),
    Flag::bool("keep", None, "do not delete the container after it exits"),
    Flag::bool(
        "no-subreaper",
        None,
        "disable the use of the subreaper used to reap reparented processes (accepted)",
    ),
];

#[derive(Debug, PartialEq, Eq)]
pub struct RunArgs {
    pub id: String,
    pub flags: super::create::CreateFlags,
    pub detach: bool,
    pub keep: bool,
    pub no_subreaper: bool,
}

impl RunArgs {
    pub fn from_matches(m: &Matches) -> Result<Self, UsageError> {
        let [id] = super::exactly::<1>("run", m)?;
        Ok(RunArgs {
            id,
            flags: super::create::CreateFlags::from_matches(m)?,
            detach: m.flag("detach"),
            keep: m.flag("keep"),
            no_subreaper: m.flag("no-subreaper"),
        })
    }
}

pub fn run(g: &Global, a: RunArgs, proof: SingleThreaded) -> anyhow::Result<u8> {
    let mut opts = super::create::options(g, &a.id, &a.flags)?;
    opts.keep_pty = !a.detach && opts.console_socket.is_none();
    // as runc, which installs its handler before `Run`: a signal during create, hooks or
    // start is held and forwarded to the process once it runs
    let signals = if a.detach {
        None
    } else {
        Some(catch_signals().context("failed to block signals for forwarding")?)
    };
    let (mut c, pty) = Container::create(&opts, proof)
        .with_context(|| format!("failed to run container {}", a.id))?;
    for w in &c.warnings {
        g.log.warn(w);
    }
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
        signals,
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
