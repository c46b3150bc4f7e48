//! `berth watch [--format json|falco] [--enforce] [--policy FILE] [--metrics-listen ADDR]
//! [--output FILE] [CONTAINER…]`: what containers do, checked against the profile of their
//! image (berth-watch, issue 22).
//!
//! Every running container (or the ones named: id, id prefix or name) of berth, berth-runtime,
//! runc (also under containerd) and crun is watched, and so are the ones started later. Each
//! event is one JSON line on stdout (`berth.watch/v1`), or with `--format falco` each alert
//! is one line of Falco's `json_output`. `--enforce` (or the policy's `enforce` table) kills a
//! process that runs a file the image did not ship and refuses connects outside the policy.
//! `--metrics-listen` serves the Prometheus counters on `/metrics`. SIGINT or SIGTERM stops it
//! cleanly (the probes detached).
//!
//! Exit status: 0 after a signal, 1 when watching failed, 2 when it cannot start here (not
//! root, no BTF, no cgroup2, a bad policy): the message says what is missing.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_errdefs::ErrorKind;
use berth_watch::containers::{RuntimeKind, Sources, StateDir};
use berth_watch::daemon::{Format, Metrics, StopHandle, Watch, WatchConfig, WatchError};
use berth_watch::detect::Policy;
use clap::{Args, ValueEnum};

use super::container::{DataArgs, Failure};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// `berth.watch/v1` JSON lines, one for every event (stable schema).
    Json,
    /// Falco's JSON alerts (`json_output: true`), one for every alert.
    Falco,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Containers to watch (id, id prefix or name); none: every container, also the ones
    /// started later.
    #[arg(value_name = "CONTAINER")]
    containers: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    format: OutputFormat,
    /// Enforce on every watched container: kill drift, refuse connects outside the policy.
    #[arg(long)]
    enforce: bool,
    /// A policy file: the `[watch]` table of a TOML file (or `{"watch": {…}}` in a .json
    /// file): allow_exec, allow_connect, allow_loopback, watch_writes, enforce.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Serve the Prometheus counters at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Append the output to FILE instead of writing it to stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Another runc state directory (runc's --root) to find containers in, besides
    /// /run/runc and /run/containerd/runc (repeatable).
    #[arg(long, value_name = "DIR")]
    runc_root: Vec<PathBuf>,
    /// The size of the ring buffer between the kernel side and berth, in bytes (a power of
    /// two; an exec event takes 1,344): a burst larger than it is dropped, counted and
    /// reported.
    #[arg(long, value_name = "BYTES", default_value_t = berth_watch::probe::DEFAULT_RING_BUFFER_BYTES)]
    ring_buffer_bytes: u32,
    #[command(flatten)]
    data: DataArgs,
}

/// A failure to start: exit status 2.
fn cannot_start(error: anyhow::Error) -> Failure {
    Failure { error, code: 2 }
}

fn read_policy(path: &Path) -> anyhow::Result<Policy> {
    let data = std::fs::read(path)
        .with_context(|| format!("failed to read the policy file {}", path.display()))?;
    let policy = if path.extension().is_some_and(|e| e == "json") {
        Policy::from_json(&data)
    } else {
        let text = String::from_utf8(data)
            .with_context(|| format!("the policy file {} is not UTF-8", path.display()))?;
        Policy::from_toml(&text)
    };
    policy.with_context(|| format!("invalid policy file {}", path.display()))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

pub fn run(args: WatchArgs) -> Result<i32, Failure> {
    let policy = match &args.policy {
        Some(p) => read_policy(p).map_err(cannot_start)?,
        None => Policy::default(),
    };
    let mut sources = Sources::host(Path::new("/proc"))
        .context("failed to find where containers are")
        .map_err(cannot_start)?;
    let data = args.data.dir().map_err(cannot_start)?;
    for d in &mut sources.state_dirs {
        if d.runtime == RuntimeKind::Berth {
            d.path.clone_from(&data);
        }
    }
    for root in &args.runc_root {
        sources.state_dirs.push(StateDir {
            runtime: RuntimeKind::Runc,
            path: root.clone(),
            namespaced: false,
        });
    }
    let mut out: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("failed to open the output file {}", path.display()))
                .map_err(cannot_start)?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let metrics_listener = match args.metrics_listen {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .with_context(|| format!("failed to listen on {addr} for --metrics-listen"))
                .map_err(cannot_start)?,
        ),
        None => None,
    };
    let mut config = WatchConfig::new(sources);
    config.probes.ring_buffer_bytes = args.ring_buffer_bytes;
    config.policy = policy;
    config.enforce_all = args.enforce;
    config.format = match args.format {
        OutputFormat::Json => Format::Json,
        OutputFormat::Falco => Format::Falco,
    };
    config.only = args.containers;
    config.hostname = hostname();
    let watch = match Watch::start(config) {
        Ok(w) => w,
        Err(e) => {
            let code = match e.kind() {
                ErrorKind::Denied | ErrorKind::Unavailable | ErrorKind::InvalidInput => 2,
                _ => 1,
            };
            return Err(Failure {
                error: anyhow::Error::new(e).context("berth watch cannot start"),
                code,
            });
        }
    };
    let stop = watch.stop_handle();
    let metrics = watch.metrics();
    // signals and the metrics endpoint on a small runtime beside the loop
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
        .map_err(Failure::other)?;
    let signals = {
        let _guard = runtime.enter();
        Signals::new().map_err(Failure::other)?
    };
    let side = std::thread::Builder::new()
        .name("watch-signals".to_owned())
        .spawn({
            let stop = stop.clone();
            move || runtime.block_on(side_tasks(signals, stop, metrics, metrics_listener))
        })
        .context("failed to start the signal thread")
        .map_err(Failure::other)?;
    let result = watch.run(&mut out);
    stop.stop();
    let _ = side.join();
    match result {
        Ok(summary) => {
            tracing::info!(
                events = summary.probes.received,
                dropped = summary.probes.dropped,
                kills = summary.counters.kills,
                "berth watch stopped"
            );
            Ok(0)
        }
        // the reader of stdout went away (`berth watch | head`): done
        Err(WatchError::Output { source }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(0)
        }
        Err(e) => Err(Failure::other(anyhow::Error::new(e))),
    }
}

struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("failed to handle SIGINT")?,
            term: signal(SignalKind::terminate()).context("failed to handle SIGTERM")?,
        })
    }
}

/// Until a signal (or the loop's end): SIGINT/SIGTERM stop the loop; the metrics endpoint
/// serves meanwhile.
async fn side_tasks(
    mut signals: Signals,
    stop: StopHandle,
    metrics: Metrics,
    listener: Option<std::net::TcpListener>,
) {
    if let Some(l) = listener {
        match tokio::net::TcpListener::from_std(l) {
            Ok(l) => {
                if let Ok(addr) = l.local_addr() {
                    tracing::info!("metrics at http://{addr}/metrics");
                }
                let app = axum::Router::new().route(
                    "/metrics",
                    axum::routing::get(move || {
                        let m = metrics.clone();
                        async move {
                            (
                                [(
                                    axum::http::header::CONTENT_TYPE,
                                    "text/plain; version=0.0.4; charset=utf-8",
                                )],
                                m.render(),
                            )
                        }
                    }),
                );
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(l, app).await {
                        tracing::error!(error = %e, "the metrics endpoint failed");
                    }
                });
            }
            Err(e) => tracing::error!(error = %e, "the metrics endpoint failed"),
        }
    }
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = signals.int.recv() => break,
            _ = signals.term.recv() => break,
            _ = tick.tick() => if stop.is_stopped() { return },
        }
    }
    tracing::info!("signal received: stopping");
    stop.stop();
}
