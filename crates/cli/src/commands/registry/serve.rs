//! `berth registry serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_registry::auth::Authorizer;
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
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let (mut config, root) = args.storage.load()?;
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    if let Some(h) = args.htpasswd {
        config.auth.htpasswd = Some(h);
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
    config.validate()?;
    super::ensure_dir(&root)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(serve(config, root))
}

async fn serve(config: berth_registry::Config, root: PathBuf) -> anyhow::Result<()> {
    let auth = Authorizer::new(&config.auth, &root).context("failed to set up authentication")?;
    let tls = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(c), Some(k)) => Some(berth_registry::tls::load_server_config(c, k)?),
        _ => None,
    };
    let purge_interval = Duration::from_secs(config.gc.upload_purge_interval_secs);
    let upload_expiry = Duration::from_secs(config.gc.upload_expiry_secs);
    let listen = config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!("failed to listen on {listen}\nhint: another process may hold the port; choose one with --listen")
        })?;
    let local = listener
        .local_addr()
        .context("failed to read the bound address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let app = Arc::new(berth_registry::App::new(
        FsDriver::new(&root),
        config,
        auth,
        tls.is_some(),
    ));
    // Abandoned uploads free their space without an operator running `berth registry gc`.
    let purger = (!purge_interval.is_zero()).then(|| {
        tokio::spawn(berth_registry::gc::purge_uploads_every(
            FsDriver::new(&root),
            purge_interval,
            upload_expiry,
        ))
    });
    tracing::info!(
        address = %local,
        data = %root.display(),
        auth = app_auth_label(&app),
        "berth registry listening on {scheme}://{local}"
    );
    berth_registry::server::serve(
        listener,
        berth_registry::router(app),
        tls,
        shutdown_signal(),
    )
    .await
    .context("the server stopped with an error")?;
    if let Some(p) = purger {
        p.abort();
    }
    tracing::info!("berth registry stopped");
    Ok(())
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

async fn shutdown_signal() {
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
