//! `berth registry serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_httpd::{Server, ServerError, TlsFiles};
use berth_registry::auth::Authorizer;
use berth_registry::config::DriverKind;
use berth_registry::storage::Driver;
use berth_registry::storage::fs::FsDriver;
use clap::Args;

use super::StorageArgs;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    storage: StorageArgs,
    /// htpasswd file (bcrypt) enabling authentication: basic, and bearer tokens from the
    /// built-in /token endpoint.
    #[arg(long, value_name = "FILE")]
    htpasswd: Option<PathBuf>,
    /// The bearer-token signing key (32 bytes, mode 0600) to use instead of
    /// <data>/registry/token.key: give every replica of one registry the same file
    /// (`auth.token_key`).
    #[arg(long, value_name = "FILE")]
    token_key: Option<PathBuf>,
    /// PEM certificate chain for TLS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (with --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Allow anonymous access on a non-loopback address.
    #[arg(long)]
    insecure_anonymous: bool,
    /// Refuse DELETE requests (405 UNSUPPORTED).
    #[arg(long)]
    disable_delete: bool,
    /// Serve /metrics on this loopback address, without authentication, instead of on
    /// --listen (where it needs authentication when it is on).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let (mut config, root) = args.storage.load()?;
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    if let Some(h) = args.htpasswd {
        config.auth.htpasswd = Some(h);
    }
    if let Some(k) = args.token_key {
        config.auth.token_key = Some(k);
    }
    if args.tls_cert.is_some() {
        config.server.tls_cert = args.tls_cert;
        config.server.tls_key = args.tls_key;
    }
    if args.insecure_anonymous {
        config.server.insecure_anonymous = true;
    }
    if args.disable_delete {
        config.storage.delete_enabled = false;
    }
    if args.metrics_listen.is_some() {
        config.server.metrics_listen = args.metrics_listen;
    }
    config.validate()?;
    super::ensure_dir(&root)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(serve(config, root))
}

async fn serve(config: berth_registry::Config, root: PathBuf) -> anyhow::Result<()> {
    match config.storage.driver {
        DriverKind::Filesystem => serve_on(FsDriver::new(&root), "filesystem", config, root).await,
        DriverKind::S3 => {
            let driver = super::s3_driver(&config)?;
            driver.check().await.context(
                "cannot list the S3 bucket\nhint: check storage.s3 (endpoint, bucket, region, path_style) and the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials)",
            )?;
            serve_on(driver, "s3", config, root).await
        }
    }
}

async fn serve_on<D: Driver + Clone>(
    driver: D,
    storage: &'static str,
    config: berth_registry::Config,
    root: PathBuf,
) -> anyhow::Result<()> {
    let auth = Authorizer::new(&config.auth, &root).context("failed to set up authentication")?;
    let tls = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            // The registry reads its certificate at start (docs/security.md: restart to reload).
            reload: false,
        }),
        _ => None,
    };
    let purge_interval = Duration::from_secs(config.gc.upload_purge_interval_secs);
    let upload_expiry = Duration::from_secs(config.gc.upload_expiry_secs);
    // Loads the certificate, then binds.
    let server = Server::bind(berth_httpd::Config {
        tls,
        ..berth_httpd::Config::new(config.server.listen)
    })
    .await
    .map_err(|e| {
        with_hint(
            e,
            "",
            "another process may hold the port; choose one with --listen",
        )
    })?;
    let local = server.local_addr();
    // Bound (and announced) before the main listener's line, so whoever waits for that
    // line finds the metrics address already logged.
    let metrics_server = match config.server.metrics_listen {
        Some(addr) => {
            let m = Server::bind(berth_httpd::Config::new(addr))
                .await
                .map_err(|e| {
                    with_hint(
                        e,
                        " for metrics",
                        "choose another address with --metrics-listen",
                    )
                })?;
            tracing::info!("metrics listening on http://{}/metrics", m.local_addr());
            Some(m)
        }
        None => None,
    };
    let scheme = if server.is_tls() { "https" } else { "http" };
    let app = Arc::new(berth_registry::App::new(
        driver.clone(),
        config,
        auth,
        server.is_tls(),
    ));
    // Abandoned uploads free their space without an operator running `berth registry gc`.
    let purger = (!purge_interval.is_zero()).then(|| {
        tokio::spawn(berth_registry::gc::purge_uploads_every(
            driver,
            purge_interval,
            upload_expiry,
        ))
    });
    tracing::info!(
        address = %local,
        data = %root.display(),
        storage,
        auth = app_auth_label(&app),
        "berth registry listening on {scheme}://{local}"
    );
    // One signal stops both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let metrics_server = metrics_server.map(|m| {
        tokio::spawn(m.serve(
            berth_registry::metrics_router(app.clone()),
            stopped(stop_rx.clone()),
        ))
    });
    server
        .serve(berth_registry::router(app), stopped(stop_rx))
        .await
        .context("the server stopped with an error")?;
    if let Some(m) = metrics_server {
        m.await
            .context("the metrics server failed")?
            .context("the metrics server stopped with an error")?;
    }
    if let Some(p) = purger {
        p.abort();
    }
    tracing::info!("berth registry stopped");
    Ok(())
}

/// A listener that cannot be bound, with what it was for and the flag that changes it; any
/// other error as it is.
fn with_hint(e: ServerError, what: &str, hint: &str) -> anyhow::Error {
    match e {
        ServerError::Bind { addr, source } => anyhow::Error::new(source)
            .context(format!("failed to listen on {addr}{what}\nhint: {hint}")),
        e => e.into(),
    }
}

fn app_auth_label<D: berth_registry::storage::Driver>(
    app: &berth_registry::App<D>,
) -> &'static str {
    if app.auth_enabled() {
        "htpasswd+token"
    } else {
        "anonymous"
    }
}

/// SIGTERM or SIGINT: also what `berth admission serve` stops on.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {},
                _ = i.recv() => {},
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
