//! `berth conformance sign --signer 'COMMAND {image} {key} {cert} {config}'`: push test
//! images, run the signer on each with a test key and chain, judge every signature it
//! produced against the Notary Project specification's rules
//! (`berth_conformance::signing::signer`), print a summary, write the reports asked for, and
//! fail unless the signer conforms.
//!
//! Without --registry the images go to a berth registry started in this process on
//! 127.0.0.1 (as for `berth conformance verify`).

use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use berth_conformance::signing::registry::{SignerOptions, run_signer};
use clap::Args;

use super::super::image::{RegistryFlags, runtime};
use super::check::ReportFiles;
use super::verify::{LocalRegistry, summary};

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The signer's command line, run by `sh -c` once per test image: `{image}` becomes
    /// `REGISTRY/REPOSITORY@sha256:…`, `{key}` the test private key (PKCS#8 PEM), `{cert}`
    /// its certificate chain (PEM, leaf first), `{config}` a directory with notation's
    /// `notation/signingkeys.json` naming the key `conformance` (the command runs with
    /// XDG_CONFIG_HOME={config}). notation: `notation sign --insecure-registry --key
    /// conformance {image}`.
    #[arg(long, value_name = "COMMAND")]
    signer: String,
    /// The registry to push the test images to (`127.0.0.1:5000`). Default: a berth
    /// registry started for the run on 127.0.0.1.
    #[arg(long, value_name = "HOST:PORT")]
    registry: Option<String>,
    /// The repository of the test images.
    #[arg(long, value_name = "NAME", default_value = "berth-conformance/signer")]
    repository: String,
    /// Seconds the signer has for one image.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
    #[command(flatten)]
    reports: ReportFiles,
    #[command(flatten)]
    flags: RegistryFlags,
}

pub fn run(args: SignArgs) -> anyhow::Result<()> {
    let temp = tempfile::Builder::new()
        .prefix("berth-conformance-sign-")
        .tempdir()
        .context("failed to create a temporary directory")?;
    let client = args.flags.client()?;
    let started = SystemTime::now();
    let clock = Instant::now();
    let report = runtime()?.block_on(async {
        let (local, registry) =
            LocalRegistry::unless(args.registry.as_deref(), &temp.path().join("registry")).await?;
        let work_dir = temp.path().join("signer");
        berth_fsutil::create_dir_all_durable(&work_dir)
            .with_context(|| format!("failed to create {}", work_dir.display()))?;
        let images = run_signer(&SignerOptions {
            client,
            registry: registry.clone(),
            repository: args.repository.clone(),
            command: args.signer.clone(),
            work_dir,
            timeout: Duration::from_secs(args.timeout.max(1)),
            key_spec: berth_trust::KeySpec::EcP256,
        })
        .await
        .with_context(|| format!("failed to check the signer {:?}", args.signer));
        if let Some(l) = local {
            l.stop().await;
        }
        anyhow::Ok(berth_conformance::signing::signer_report(
            &args.signer,
            &registry,
            &args.repository,
            berth_oci::timefmt::rfc3339(started),
            clock.elapsed().as_millis() as u64,
            &images?,
        ))
    })?;
    args.reports.write(&report)?;
    summary(&report)?;
    if !report.conformant {
        anyhow::bail!(
            "the signer {:?} {} (Notary Project {})",
            args.signer,
            report.verdict(),
            report.spec_version
        );
    }
    Ok(())
}
