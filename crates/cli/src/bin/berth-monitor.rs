//! `berth-monitor STATE_ROOT ID [--start] [--wait]`: the per-container monitor
//! (`berth_engine::monitor`), installed beside `berth` as conmon is beside podman.
//!
//! The same code as `berth __monitor`, in a binary that links only the engine: the monitor
//! lives as long as its container, so what it maps and relocates at start is paid once per
//! container in start time and for its whole life in memory. `berth` runs this binary when it
//! finds it next to itself, and its own `__monitor` mode otherwise.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(berth_engine::monitor::main(&args));
}
