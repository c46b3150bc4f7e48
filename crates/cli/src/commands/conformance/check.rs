//! `berth conformance check REGISTRY/NAMESPACE`: run the checks, print a summary (counts
//! per workflow, one line per failure and warning) on stdout, optionally write the JSON,
//! HTML and JUnit reports (any of them, together), and fail unless every MUST passed.

use std::io::Read;
use std::sync::Arc;

use anyhow::Context;
use berth_conformance::{Options, Report, Status, Workflow, render};
use berth_distribution::{
    Client, ClientOptions, Credential, CredentialsConfig, PlainHttp, RetryPolicy, Secret,
    StaticCredentials,
};
use clap::Args;

use super::super::image::{RegistryFlags, print, runtime};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The registry and the repository to test in: `127.0.0.1:5000/conformance`.
    target: String,
    /// User name (with --password-stdin); without it, docker's config.json credentials.
    #[arg(long, short, requires = "password_stdin")]
    username: Option<String>,
    /// Read the password (or token) from stdin.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Only these workflows (comma-separated: auth, pull, push, discovery, management, and
    /// main for the optional group alone).
    #[arg(long, value_delimiter = ',')]
    only: Vec<Workflow>,
    /// Also run the optional `main` group: requirements added to distribution-spec on its
    /// main branch after v1.1 (ids main.*). Reported, marked as beyond v1.1; its failures
    /// never change the exit code.
    #[arg(long)]
    include_main: bool,
    /// Write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
    /// Write the report as one self-contained HTML page to FILE (open it in a browser).
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
    /// Write the report as JUnit XML to FILE (for CI systems).
    #[arg(long, value_name = "FILE")]
    junit: Option<std::path::PathBuf>,
    #[command(flatten)]
    flags: RegistryFlags,
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let (registry, namespace) = args
        .target
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split_once('/')
        .with_context(|| format!("{:?} is not REGISTRY/NAMESPACE", args.target))?;
    let client = client(&args, registry)?;
    let mut workflows = if args.only.is_empty() {
        Workflow::ALL.to_vec()
    } else {
        args.only.clone()
    };
    if args.include_main && !workflows.contains(&Workflow::Main) {
        workflows.push(Workflow::Main);
    }
    let opts = Options {
        client,
        registry: registry.to_owned(),
        namespace: namespace.to_owned(),
        workflows,
        has_credentials: args.username.is_some(),
    };
    let report = runtime()?
        .block_on(berth_conformance::run(opts))
        .with_context(|| format!("failed to check {}", args.target))?;
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report).context("failed to serialize the report")?;
        write_report(path, "JSON", &json)?;
    }
    if let Some(path) = &args.html {
        write_report(path, "HTML", render::html::render(&report).as_bytes())?;
    }
    if let Some(path) = &args.junit {
        write_report(path, "JUnit", render::junit::render(&report).as_bytes())?;
    }
    summary(&report)?;
    if !report.conformant {
        let required = report.required();
        anyhow::bail!(
            "{} of {} checks failed: {} does not conform to distribution-spec {}",
            required.fail,
            required.total(),
            report.registry,
            report.spec_version
        );
    }
    Ok(())
}

/// Write a report file atomically (a reader never sees half a report).
fn write_report(path: &std::path::Path, kind: &str, data: &[u8]) -> anyhow::Result<()> {
    berth_fsutil::atomic_write(path, data)
        .with_context(|| format!("failed to write the {kind} report to {}", path.display()))
}

fn client(args: &CheckArgs, registry: &str) -> anyhow::Result<Client> {
    let credentials: Arc<dyn berth_distribution::CredentialProvider> = match &args.username {
        Some(username) => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("failed to read the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']);
            Arc::new(StaticCredentials::new().with(
                registry,
                Credential::Basic {
                    username: username.clone(),
                    password: Secret::new(password),
                },
            ))
        }
        None => Arc::new(CredentialsConfig::new(crate::dirs::docker_config()?)),
    };
    Client::new(ClientOptions {
        credentials: Some(credentials),
        plain_http: if args.flags.plain_http {
            PlainHttp::Always
        } else {
            PlainHttp::Auto
        },
        insecure_skip_verify: args.flags.insecure,
        // A conformance check sees each answer as it is: no retries.
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    })
    .context("failed to set up the registry client")
}

fn summary(report: &Report) -> anyhow::Result<()> {
    print(&format!(
        "{} {} against distribution-spec {} in {:.1}s",
        report.registry,
        report.namespace,
        report.spec_version,
        report.duration_ms as f64 / 1000.0
    ))?;
    for w in &report.summary {
        let c = &w.counts;
        print(&format!(
            "  {:<11} {:>3} pass {:>3} fail {:>3} warn {:>3} skip{}",
            w.workflow.as_str(),
            c.pass,
            c.fail,
            c.warn,
            c.skip,
            if w.optional {
                "  (optional, beyond v1.1: does not change the exit code)"
            } else {
                ""
            }
        ))?;
    }
    for status in [Status::Fail, Status::Warn] {
        for r in report.with_status(status) {
            let optional = if r.info.optional {
                ", optional beyond v1.1"
            } else {
                ""
            };
            print(&format!(
                "{status:<4} {} [{}{optional}] {}",
                r.info.id, r.info.level, r.outcome.reason
            ))?;
        }
    }
    // The verdict's checks; the optional group has its own line.
    let t = report.required();
    print(&format!(
        "{} checks: {} passed, {} failed, {} warned, {} skipped",
        t.total(),
        t.pass,
        t.fail,
        t.warn,
        t.skip
    ))?;
    let o = report.optional();
    if o.total() > 0 {
        print(&format!(
            "{} optional checks (main branch, beyond v1.1): {} passed, {} failed, {} warned, {} skipped",
            o.total(),
            o.pass,
            o.fail,
            o.warn,
            o.skip
        ))?;
    }
    Ok(())
}
