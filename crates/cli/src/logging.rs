//! Structured logs to stderr: human text by default, JSON lines with `--log-format json`.
#![expect(
    clippy::disallowed_methods,
    reason = "binaries read the environment; libraries take configuration as arguments"
)]

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log format on stderr (default: text; json for `berth admission serve`, whose logs a
    /// cluster collects).
    #[arg(long, global = true, value_enum, env = "BERTH_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter such as
    /// `berth_registry=debug`). RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info", env = "BERTH_LOG")]
    pub log_level: String,
}

/// Installs the subscriber; `default_format` applies when neither `--log-format` nor
/// `BERTH_LOG_FORMAT` chose one.
pub fn init(args: &LogArgs, default_format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&args.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match args.log_format.unwrap_or(default_format) {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
