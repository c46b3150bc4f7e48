//! The probe binary (`tests/probe`), built static for test root filesystems.
//!
//! A busybox-static rootfs has no libc and no dynamic loader, so the probe must be a static
//! executable. [`probe_bin`] builds it with `-C target-feature=+crt-static` for the host
//! triple, in its own target directory (`target/probe`), so the flags never invalidate the
//! main build cache, and checks the ELF file really needs no interpreter and no library.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::tools::env_os;
use crate::{run_with_timeout, workspace_root};

/// The environment variable naming a prebuilt static probe (skips the build).
pub const PROBE_BIN_ENV: &str = "BERTH_PROBE_BIN";

/// The triple the probe is built for: the only one this test suite runs on.
const PROBE_TARGET: &str = "x86_64-unknown-linux-gnu";

/// The static probe binary: `$BERTH_PROBE_BIN` when set, else built once per test process
/// with `cargo build -p berth-probe --release --target x86_64-unknown-linux-gnu
/// --target-dir target/probe` and `+crt-static`. Cargo's own lock serialises concurrent
/// test processes, and a second build is a no-op.
///
/// Panics when the build fails or the result is not static.
pub fn probe_bin() -> PathBuf {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let path = match env_os(PROBE_BIN_ENV) {
                Some(p) => PathBuf::from(p),
                None => build_probe(),
            };
            match is_static_elf(&path) {
                Ok(true) => path,
                Ok(false) => panic!(
                    "{} is not a static executable: it names a dynamic loader or shared libraries",
                    path.display()
                ),
                Err(e) => panic!("failed to inspect the probe {}: {e}", path.display()),
            }
        })
        .clone()
}

fn build_probe() -> PathBuf {
    let root = workspace_root();
    let target_dir = root.join("target/probe");
    let cargo = env_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "berth-probe",
            "--target",
        ])
        .arg(PROBE_TARGET)
        .arg("--target-dir")
        .arg(&target_dir)
        // CARGO_ENCODED_RUSTFLAGS wins over RUSTFLAGS and config files: these flags and no
        // others. With --target they apply to the probe and its dependencies, not to build
        // scripts.
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            "-Ctarget-feature=+crt-static\u{1f}-Cstrip=debuginfo",
        )
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    let out = run_with_timeout(&mut cmd, Duration::from_secs(900));
    assert!(
        out.status.success(),
        "failed to build the static probe ({cmd:?}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join(PROBE_TARGET).join("release/berth-probe")
}

/// Whether the ELF executable at `path` runs without a dynamic loader: no `PT_INTERP`
/// program header and no `DT_NEEDED` entry (a static-pie keeps a `PT_DYNAMIC` for its own
/// relocations, with no libraries). Errors for a file that is not 64-bit little-endian ELF.
pub fn is_static_elf(path: &Path) -> Result<bool, String> {
    let data = std::fs::read(path).map_err(|e| format!("failed to read: {e}"))?;
    elf_is_static(&data)
}

fn elf_is_static(data: &[u8]) -> Result<bool, String> {
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const DT_NEEDED: u64 = 1;
    let u16_at = |o: usize| -> Result<u16, String> {
        data.get(o..o + 2)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
            .ok_or_else(|| format!("truncated ELF at {o}"))
    };
    let u32_at = |o: usize| -> Result<u32, String> {
        data.get(o..o + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| format!("truncated ELF at {o}"))
    };
    let u64_at = |o: usize| -> Result<u64, String> {
        data.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| format!("truncated ELF at {o}"))
    };
    let idx = |v: u64| usize::try_from(v).map_err(|_| "offset out of range".to_owned());
    if data.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF file".into());
    }
    // EI_CLASS 2 = 64-bit, EI_DATA 1 = little-endian
    if data.get(4) != Some(&2) || data.get(5) != Some(&1) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let phoff = idx(u64_at(0x20)?)?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        match u32_at(ph)? {
            PT_INTERP => return Ok(false),
            PT_DYNAMIC => {
                let off = idx(u64_at(ph + 8)?)?;
                let size = idx(u64_at(ph + 32)?)?;
                for e in (off..off + size).step_by(16) {
                    match u64_at(e)? {
                        0 => break, // DT_NULL
                        DT_NEEDED => return Ok(false),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_check_tells_busybox_static_from_a_dynamic_binary() {
        let busybox = Path::new("/bin/busybox");
        if busybox.exists() {
            assert_eq!(is_static_elf(busybox), Ok(true));
        }
        // the test binary itself links libc dynamically
        let me = std::env::current_exe().unwrap();
        assert_eq!(is_static_elf(&me), Ok(false));
        assert!(elf_is_static(b"#!/bin/sh\n").is_err());
        assert!(elf_is_static(b"\x7fELF\x02\x01").is_err());
    }
}
