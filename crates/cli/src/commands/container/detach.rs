//! `--detach-keys` (run, start, attach): docker's syntax and default (ctrl-p,ctrl-q).

use berth_engine::{Attached, DEFAULT_DETACH_KEYS, parse_detach_keys};

/// The keys that detach the caller: `spec` in docker's syntax (`ctrl-p,ctrl-q`, `ctrl-a,x`,
/// `ctrl-@`), else docker's default.
pub fn keys(spec: Option<&str>) -> anyhow::Result<Vec<u8>> {
    match spec {
        Some(s) if !s.is_empty() => {
            parse_detach_keys(s).map_err(|e| anyhow::anyhow!("--detach-keys {s}: {e}"))
        }
        _ => Ok(DEFAULT_DETACH_KEYS.to_vec()),
    }
}

/// The exit status of an attached command: the container's (255 when unknown), or 0 when
/// the caller detached, as docker's.
pub fn status(a: Attached) -> i32 {
    match a {
        Attached::Exited(code) => code.unwrap_or(255),
        Attached::Detached => 0,
    }
}
