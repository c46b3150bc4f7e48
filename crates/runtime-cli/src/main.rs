//! berth-runtime: runc's command line over `berth-container` (being written).

fn main() -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
