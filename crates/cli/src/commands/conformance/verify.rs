//! `berth conformance verify --verifier 'COMMAND {image} …'`: present the signing corpus
//! (and, with --vectors, notation's vectors) to a verifier, print a summary, optionally
//! write the JSON, HTML and JUnit reports, and fail unless the verifier conforms.
//!
//! Without --registry the corpus goes to a berth registry started in this process on
//! 127.0.0.1 (a free port, storage in a temporary directory, anonymous), stopped at the end.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_conformance::signing::verifier::{self, VerifierOptions};
use berth_conformance::{Report, Status};
use clap::Args;

use super::super::image::{RegistryFlags, print, runtime};
use super::check::ReportFiles;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The verifier's command line, run once per case without a shell: `{image}` (required)
    /// becomes `REGISTRY/REPOSITORY@sha256:…`, `{policy}` the trust policy file,
    /// `{truststore}` the trust store directory (`x509/ca/<name>/…`), `{config}` a directory
    /// holding both as `notation/` and `berth/` (the command runs with
    /// XDG_CONFIG_HOME={config}). Exit status 0 means accepted, anything else refused.
    /// berth: `berth verify --plain-http {image}`; notation: `notation verify
    /// --insecure-registry {image}`.
    #[arg(long, value_name = "COMMAND")]
    verifier: String,
    /// The registry to push the corpus to (`127.0.0.1:5000`). Default: a berth registry
    /// started for the run on 127.0.0.1.
    #[arg(long, value_name = "HOST:PORT")]
    registry: Option<String>,
    /// The repository prefix of the cases (`<namespace>/<case>`).
    #[arg(long, value_name = "NAME")]
    namespace: Option<String>,
    /// Also present notation's test vectors from DIR (a copy of notation's and
    /// notation-go's testdata laid out as `shared/vectors/notation`).
    #[arg(long, value_name = "DIR")]
    vectors: Option<PathBuf>,
    /// Keep each case's trust policy and trust store in DIR (default: a temporary
    /// directory, removed afterwards).
    #[arg(long, value_name = "DIR")]
    workdir: Option<PathBuf>,
    /// An RFC 3161 timestamp authority for the timestamp cases (an expired certificate with
    /// a timestamp from its validity: accepted; a timestamp after it expired: refused);
    /// without it those cases are left out. With --tsa-root.
    #[arg(long, value_name = "URL", requires = "tsa_root")]
    tsa_url: Option<String>,
    /// The root certificate (PEM) the TSA's certificate chains to.
    #[arg(long, value_name = "FILE", requires = "tsa_url")]
    tsa_root: Option<PathBuf>,
    /// The openssl that makes the weak-key case (a 1024-bit RSA signing key, which berth's
    /// crypto library cannot make); when it cannot run, that case is reported as not run.
    #[arg(long, value_name = "PROGRAM", default_value = "openssl")]
    openssl: PathBuf,
    /// Seconds the verifier has for one case.
    #[arg(long, value_name = "SECONDS", default_value_t = verifier::DEFAULT_TIMEOUT.as_secs())]
    timeout: u64,
    #[command(flatten)]
    reports: ReportFiles,
    #[command(flatten)]
    flags: RegistryFlags,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let command = verifier::parse_command(&args.verifier)?;
    // Checked before the corpus is built (which takes seconds), not after.
    if let Some(dir) = &args.vectors {
        let layouts = dir.join("notation/test/e2e/testdata/registry/oci_layout");
        anyhow::ensure!(
            layouts.is_dir(),
            "{} holds no notation test vectors: {} is not a directory\nhint: give the directory laid out as shared/vectors/notation (notation/ and notation-go/ inside)",
            dir.display(),
            layouts.display()
        );
    }
    let temp = tempfile::Builder::new()
        .prefix("berth-conformance-verify-")
        .tempdir()
        .context("failed to create a temporary directory")?;
    let workdir = match &args.workdir {
        Some(d) => d.clone(),
        None => temp.path().join("cases"),
    };
    let client = args.flags.client()?;
    let tsa = match (&args.tsa_url, &args.tsa_root) {
        (Some(url), Some(root)) => {
            let pem = std::fs::read(root)
                .with_context(|| format!("failed to read the TSA root {}", root.display()))?;
            let root = berth_trust::Certificate::parse_many(&pem)
                .ok()
                .and_then(|c| c.into_iter().next())
                .with_context(|| format!("{} holds no PEM certificate", root.display()))?;
            Some(verifier::Tsa {
                url: url.clone(),
                root,
            })
        }
        _ => None,
    };
    let namespace = args.namespace.clone().unwrap_or_else(|| {
        format!(
            "berth-conformance/{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        )
    });
    let report = runtime()?.block_on(async {
        let (local, registry) =
            LocalRegistry::unless(args.registry.as_deref(), &temp.path().join("registry")).await?;
        let opts = VerifierOptions {
            client,
            registry: registry.clone(),
            namespace,
            command,
            workdir,
            vectors: args.vectors.clone(),
            timeout: Duration::from_secs(args.timeout.max(1)),
            tsa,
            openssl: args.openssl.clone(),
        };
        let report = verifier::check_verifier(&opts)
            .await
            .with_context(|| format!("failed to check the verifier {:?}", args.verifier));
        if let Some(l) = local {
            l.stop().await;
        }
        report
    })?;
    args.reports.write(&report)?;
    summary(&report)?;
    if !report.conformant {
        anyhow::bail!(
            "the verifier {:?} {} (Notary Project {})",
            args.verifier,
            report.verdict(),
            report.spec_version
        );
    }
    Ok(())
}

/// The summary on stdout: counts per group, one line per violation, the verdict.
pub(super) fn summary(report: &Report) -> anyhow::Result<()> {
    print(&format!(
        "{} {} against the Notary Project specification {} in {:.1}s",
        report.subject.as_str(),
        report.implementation.as_deref().unwrap_or(""),
        report.spec_version,
        report.duration_ms as f64 / 1000.0
    ))?;
    for w in &report.summary {
        let c = &w.counts;
        print(&format!(
            "  {:<9} {:>3} pass {:>3} fail {:>3} skip",
            w.workflow.as_str(),
            c.pass,
            c.fail,
            c.skip
        ))?;
    }
    for r in report.with_status(Status::Fail) {
        print(&format!(
            "fail {} [{}] {}",
            r.info.id, r.info.level, r.outcome.reason
        ))?;
    }
    // A check not run is said as plainly: it was not passed.
    for r in report.with_status(Status::Skip) {
        print(&format!(
            "skip {} [{}] {}",
            r.info.id, r.info.level, r.outcome.reason
        ))?;
    }
    print(&report.verdict())
}

/// A berth registry serving on 127.0.0.1 for the run.
pub(super) struct LocalRegistry {
    address: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LocalRegistry {
    async fn start(root: &std::path::Path) -> anyhow::Result<LocalRegistry> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("failed to create {}", root.display()))?;
        let mut config = berth_registry::Config::default();
        config.server.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let auth = berth_registry::auth::Authorizer::new(&config.auth, root)
            .context("failed to set up the local registry")?;
        let server = berth_httpd::Server::bind(berth_httpd::Config::new(config.server.listen))
            .await
            .context("failed to start a registry on 127.0.0.1")?;
        let address = server.local_addr().to_string();
        let app = Arc::new(berth_registry::App::new(
            berth_registry::storage::fs::FsDriver::new(root),
            config,
            auth,
            false,
        ));
        let (stop, mut rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(server.serve(berth_registry::router(app), async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        tracing::info!(%address, "local registry for the conformance corpus");
        Ok(LocalRegistry {
            address,
            stop,
            task,
        })
    }

    /// `given` when there is one (no local registry), else a local registry started with
    /// its storage in `root`, and its address.
    pub(super) async fn unless(
        given: Option<&str>,
        root: &std::path::Path,
    ) -> anyhow::Result<(Option<LocalRegistry>, String)> {
        match given {
            Some(r) => Ok((None, r.to_owned())),
            None => {
                let l = LocalRegistry::start(root).await?;
                let address = l.address.clone();
                Ok((Some(l), address))
            }
        }
    }

    pub(super) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}
