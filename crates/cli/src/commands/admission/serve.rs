//! `berth admission serve --config FILE [--listen ADDR] [--tls-cert F --tls-key F]`: loads
//! the configuration, the role policy and the trust store, binds, prints `berth admission
//! listening on https://ADDR`, serves until SIGTERM or SIGINT, then reports not ready and
//! drains.

#![expect(
    clippy::disallowed_methods,
    reason = "binaries read the environment: POD_NAMESPACE names the webhook's own namespace, KUBERNETES_SERVICE_HOST/PORT the API server"
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use berth_admission::{Config, Webhook};
use berth_httpd::{Server, ServerError, TlsFiles};
use clap::Args;

/// How often the policy, trust store and labels files are checked for changes.
const RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (TOML; docs/admission.md).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Address to listen on (overrides the file's `listen`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// PEM certificate chain (with --tls-key; overrides the file's). Reloaded when it changes.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key (with --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(&args.config)?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if args.tls_cert.is_some() {
        config.tls_cert = args.tls_cert;
        config.tls_key = args.tls_key;
    }
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            // cert-manager and `berth admission certs` renew in place
            reload: true,
        }),
        _ if config.listen.ip().is_loopback() => None,
        _ => anyhow::bail!(
            "the webhook needs TLS on {} (the API server calls webhooks over HTTPS only)\nhint: set tls_cert and tls_key in {}, or pass --tls-cert and --tls-key",
            config.listen,
            args.config.display()
        ),
    };
    // the API server for namespace labels and for image pull secrets
    for k in [
        config.kube_labels.as_mut(),
        config.image_pull_secrets.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        if k.api_server.is_none()
            && let (Ok(host), Ok(port)) = (
                std::env::var("KUBERNETES_SERVICE_HOST"),
                std::env::var("KUBERNETES_SERVICE_PORT"),
            )
        {
            // as client-go's in-cluster configuration: an IPv6 host goes in brackets
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            k.api_server = Some(format!("https://{host}:{port}"));
        }
    }
    let own = std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| berth_admission::config::DEFAULT_OWN_NAMESPACE.to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(serve(config, tls, own))
}

async fn serve(config: Config, tls: Option<TlsFiles>, own: String) -> anyhow::Result<()> {
    let app = Arc::new(
        Webhook::new(&config, &own)
            .await
            .context("failed to load the webhook's policy and trust")?,
    );
    let server = Server::bind(berth_httpd::Config {
        tls,
        ..berth_httpd::Config::new(config.listen)
    })
    .await
    .map_err(|e| match e {
        ServerError::Bind { addr, source } => anyhow::Error::new(source).context(format!(
            "failed to listen on {addr}\nhint: another process may hold the port; choose one with --listen"
        )),
        e => e.into(),
    })?;
    let local = server.local_addr();
    let scheme = if server.is_tls() { "https" } else { "http" };
    tracing::info!(
        address = %local,
        policy = %config.policy.display(),
        policy_version = app.verifier().policy_version(),
        mode = ?config.mode,
        "berth admission listening on {scheme}://{local}"
    );
    // a changed policy, trust store or labels file (a ConfigMap update) applies without a
    // restart; one that does not load is logged and the loaded one kept
    let reloading = app.clone();
    let reloader = tokio::spawn(async move {
        let mut tick = tokio::time::interval(RELOAD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match reloading.verifier().reload().await {
                Ok(true) => tracing::info!(
                    policy_version = reloading.verifier().policy_version(),
                    "policy, trust store or namespace labels changed: reloaded"
                ),
                Ok(false) => {}
                Err(e) => tracing::error!(
                    error = %format!("{:#}", anyhow::Error::new(e)),
                    "failed to reload the policy, trust store or namespace labels; keeping the loaded ones"
                ),
            }
        }
    });
    let stopping = app.clone();
    server
        .serve(berth_admission::router(app), async move {
            crate::commands::registry::shutdown_signal().await;
            stopping.set_ready(false);
        })
        .await
        .context("the server stopped with an error")?;
    reloader.abort();
    tracing::info!("berth admission stopped");
    Ok(())
}
