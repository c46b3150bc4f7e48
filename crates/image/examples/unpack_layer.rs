//! Unpack one layer blob into a directory and print what happened (bench/unpack.sh uses it).
//!
//!     unpack_layer MEDIA_TYPE BLOB TARGET [apply|overlay]
//!
//! Prints one line: `diff_id=… bytes=… entries=… seconds=…`.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use berth_image::unpack::{UnpackOptions, WhiteoutMode, unpack};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [media_type, blob, target, rest @ ..] = args.as_slice() else {
        bail!("usage: unpack_layer MEDIA_TYPE BLOB TARGET [apply|overlay]");
    };
    let mode = match rest.first().map(String::as_str) {
        None | Some("apply") => WhiteoutMode::Apply,
        Some("overlay") => WhiteoutMode::Overlay,
        Some(other) => bail!("unknown whiteout mode {other:?}: apply or overlay"),
    };
    let file = std::fs::File::open(blob).with_context(|| format!("failed to open {blob}"))?;
    let start = Instant::now();
    let stats = unpack(
        file,
        media_type,
        Path::new(target),
        &UnpackOptions::new(mode),
    )
    .with_context(|| format!("failed to unpack {blob} into {target}"))?;
    let secs = start.elapsed().as_secs_f64();
    writeln!(
        std::io::stdout(),
        "diff_id={} bytes={} entries={} seconds={secs:.3}",
        stats.diff_id,
        stats.uncompressed_bytes,
        stats.entries
    )?;
    Ok(())
}
