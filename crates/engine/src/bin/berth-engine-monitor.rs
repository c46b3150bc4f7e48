//! The monitor (`berth_engine::monitor`) for this crate's own tests, which can name only
//! their package's binaries (`CARGO_BIN_EXE_*`). What is installed is `berth-cli`'s
//! `berth-monitor`, the same entry point.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(berth_engine::monitor::main(&args));
}
