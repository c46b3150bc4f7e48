//! Print the runtime config `build_spec` makes for an image with no options but a command
//! (`berth run IMAGE ARGS…`'s defaults), for scripts/security-defaults.sh.
//!
//!     default_spec ROOTFS HOST_ID_START SIZE ARGS…
//!
//! The user namespace maps container ids 0..SIZE onto host ids HOST_ID_START.. (the range
//! the engine would allocate from /etc/subuid; SIZE 0 means none, as `--userns=host`).
//! Prints config.json on stdout; the lines `SpecNotes::opened` holds go to stderr.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use berth_image::spec::{IdRange, ImageConfig, RunOptions, Userns, build_spec};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [rootfs, start, size, cmd @ ..] = args.as_slice() else {
        bail!("usage: default_spec ROOTFS HOST_ID_START SIZE ARGS…");
    };
    if cmd.is_empty() {
        bail!("usage: default_spec ROOTFS HOST_ID_START SIZE ARGS…: give a command");
    }
    let start: u32 = start
        .parse()
        .with_context(|| format!("HOST_ID_START {start:?} is not a number"))?;
    let size: u32 = size
        .parse()
        .with_context(|| format!("SIZE {size:?} is not a number"))?;
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": cmd},
    });
    let image = ImageConfig::parse(config.to_string().as_bytes())?;
    let opts = RunOptions {
        image: "security-defaults".into(),
        userns: if size == 0 {
            Userns::Host
        } else {
            Userns::Auto
        },
        id_range: (size > 0).then_some(IdRange {
            host_start: start,
            size,
        }),
        ..RunOptions::default()
    };
    let (spec, notes) = build_spec(&image, Path::new(rootfs), &opts)
        .with_context(|| format!("failed to build a config for {rootfs}"))?;
    let mut err = std::io::stderr();
    for line in &notes.opened {
        writeln!(err, "opened: {line}")?;
    }
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &spec)?;
    writeln!(out)?;
    Ok(())
}
