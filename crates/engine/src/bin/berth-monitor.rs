//! `berth-monitor STATE_ROOT ID`: the per-container monitor (see `berth_engine::monitor`).

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(berth_engine::monitor::main(&args));
}
