//! One file per verb: parse → one library call → render.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod unsupported;
pub mod update;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use berth_container::Container;

use crate::Global;
use crate::args::{Matches, UsageError};

/// Exactly `N` positional arguments (runc's `checkArgs(…, exactArgs)`).
pub fn exactly<const N: usize>(verb: &str, m: &Matches) -> Result<[String; N], UsageError> {
    m.positionals(verb, N, N)?
        .try_into()
        .map_err(|_| UsageError(format!("{verb:?} requires exactly {N} argument(s)")))
}

/// `--version`: runc-like lines.
pub fn version() -> ExitCode {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "berth-runtime version {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, "spec: {}", berth_container::SPEC_VERSION);
    ExitCode::SUCCESS
}

/// Load a container, with runc's message for a missing one.
pub fn load(g: &Global, id: &str) -> anyhow::Result<Container> {
    Container::load(&g.root, id).with_context(|| format!("failed to load container {id}"))
}

/// Print to stdout; a closed stdout is not our error to report.
pub fn print(s: &str) {
    let mut out = std::io::stdout();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

/// Number of descriptors received through systemd socket activation (LISTEN_FDS when
/// LISTEN_PID is us), as runc passes them on.
#[expect(
    clippy::disallowed_methods,
    reason = "the binary reads its own environment"
)]
pub fn listen_fds() -> u32 {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    if !pid_ok {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
