//! An image's config and `berth run`'s flags into a runtime config, on arbitrary input:
//! never panics. The input is split at `\0\0` into up to four parts: the image config (JSON,
//! `ImageConfig::parse`), the root filesystem's `/etc/passwd` and `/etc/group` (users and
//! groups are resolved inside the root), and `berth run` flags as `NAME=VALUE` lines (`-u`,
//! `-w`, `-e`, `--memory`, `--device-write-bps`, `--security-opt`, …). A config that parses
//! goes through `build_spec`; a spec it returns serialises. The passwd part is also read as
//! `/etc/subuid` by `subid_ranges`, and `pick_range` runs over what that gives.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use berth_image::spec::{
    ImageConfig, RunOptions, build_spec, parse_bytes, parse_signal, pick_range, subid_ranges,
};
use libfuzzer_sys::fuzz_target;

/// A root filesystem at a fixed path, its `/etc` rewritten by every input.
fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root =
            std::env::temp_dir().join(format!("berth-fuzz-image-config-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        root
    })
}

fn flag(opts: &mut RunOptions, name: &str, value: &str) {
    let s = value.to_owned();
    match name {
        "user" => opts.user = Some(s),
        "workdir" => opts.workdir = Some(s),
        "hostname" => opts.hostname = Some(s),
        "entrypoint" => opts.entrypoint = Some(s),
        "env" => opts.env.push(s),
        "arg" => opts.args.push(s),
        "tmpfs" => opts.tmpfs.push(s),
        "volume" => opts.volumes.push(s),
        "memory" => opts.memory = parse_bytes(value).ok(),
        "memory-swap" => opts.memory_swap = parse_bytes(value).ok(),
        "cpus" => opts.cpus = value.parse().ok(),
        "cpu-shares" => opts.cpu_shares = value.parse().ok(),
        "pids-limit" => opts.pids_limit = value.parse().ok(),
        "blkio-weight" => opts.blkio_weight = value.parse().ok(),
        "device-read-bps" => opts.device_read_bps.push(s),
        "device-write-bps" => opts.device_write_bps.push(s),
        "device-read-iops" => opts.device_read_iops.push(s),
        "device-write-iops" => opts.device_write_iops.push(s),
        "cap-add" => opts.cap_add.push(s),
        "cap-drop" => opts.cap_drop.push(s),
        "security-opt" => opts.security_opt.push(s),
        "stop-signal" => {
            let _ = parse_signal(value);
            opts.stop_signal = Some(s);
        }
        "privileged" => opts.privileged = true,
        "read-only" => opts.read_only = true,
        "init" => opts.init = true,
        "tty" => opts.tty = true,
        "rootless" => opts.rootless = true,
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let mut pieces: Vec<&[u8]> = Vec::with_capacity(4);
    let mut rest = data;
    while pieces.len() < 3 {
        match rest.windows(2).position(|w| w == [0, 0]) {
            Some(i) => {
                pieces.push(&rest[..i]);
                rest = &rest[i + 2..];
            }
            None => break,
        }
    }
    pieces.push(rest);
    let config = pieces.first().copied().unwrap_or_default();
    let passwd = pieces.get(1).copied().unwrap_or_default();
    let group = pieces.get(2).copied().unwrap_or_default();
    let flags = String::from_utf8_lossy(pieces.get(3).copied().unwrap_or_default());

    let ranges = subid_ranges(&String::from_utf8_lossy(passwd), "root", 0);
    let _ = pick_range(&ranges, &ranges[ranges.len() / 2..], 65536);

    let root = root();
    std::fs::write(root.join("etc/passwd"), passwd).unwrap();
    std::fs::write(root.join("etc/group"), group).unwrap();

    let Ok(image) = ImageConfig::parse(config) else { return };
    let mut opts = RunOptions::default();
    for line in flags.lines().take(64) {
        let (name, value) = line.split_once('=').unwrap_or((line, ""));
        flag(&mut opts, name, value);
    }
    if let Ok((spec, _notes)) = build_spec(&image, root, &opts) {
        serde_json::to_vec(&spec).unwrap();
    }
});
