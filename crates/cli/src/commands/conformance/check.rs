//! `berth conformance check REGISTRY/NAMESPACE`: run the checks, print a summary (counts
//! per workflow, one line per failure and warning) on stdout, optionally write the JSON,
//! HTML and JUnit reports (any of them, together), and fail unless every MUST passed.

use std::io::Read;
use std::sync::Arc;

use anyhow::Context;
use berth_conformance::{Options, Report, Status, Workflow, render};
use berth_distribution::{
    Client, ClientOptions, Credential, PlainHttp, RetryPolicy, Secret, StaticCredentials,
};
use clap::Args;

use super::super::image::{RegistryFlags, print, runtime};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The registry and the repository to test in: `127.0.0.1:5000/conformance`. With a
    /// tag or digest (`127.0.0.1:5000/library/alpine:3.20`, `…@sha256:…`), the check is
    /// read-only: nothing is pushed; the pull and discovery checks pull that existing image
    /// (its manifest, an index's first image, a config or layer blob), and checks that
    /// need data it lacks are skipped with the reason. For mirrors, pull-through caches,
    /// registries in maintenance mode, and accounts with pull rights only.
    target: String,
    /// User name (with --password-stdin); without it, the credentials of docker's
    /// config.json or the containers auth.json files.
    #[arg(long, short, requires = "password_stdin")]
    username: Option<String>,
    /// Read the password (or token) from stdin.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Only these workflows (comma-separated: auth, pull, push, discovery, management, and
    /// main for the optional group alone). Default: the five v1.1 workflows; with a tag or
    /// digest in the target (read-only), auth, pull and discovery.
    #[arg(long, value_delimiter = ',')]
    only: Vec<Workflow>,
    /// Also run the optional `main` group: requirements added to distribution-spec on its
    /// main branch after v1.1 (ids main.*). Reported, marked as beyond v1.1; its failures
    /// never change the exit code.
    #[arg(long)]
    include_main: bool,
    #[command(flatten)]
    reports: ReportFiles,
    #[command(flatten)]
    flags: RegistryFlags,
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let (registry, namespace, existing) = split_target(&args.target)?;
    let client = client(&args, registry)?;
    let mut workflows = match (args.only.is_empty(), &existing) {
        (false, _) => args.only.clone(),
        (true, None) => Workflow::ALL.to_vec(),
        (true, Some(_)) => vec![Workflow::Auth, Workflow::Pull, Workflow::Discovery],
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
        existing: existing.map(str::to_owned),
    };
    let report = match runtime()?.block_on(berth_conformance::run(opts)) {
        Err(e @ berth_conformance::Error::CredentialsRequired { .. }) => anyhow::bail!(
            "{e}\nhint: pass --username USER --password-stdin (the password on stdin), or run berth login {registry} first"
        ),
        r => r.with_context(|| format!("failed to check {}", args.target))?,
    };
    args.reports.write(&report)?;
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

/// `REGISTRY/REPOSITORY[:TAG|@DIGEST]` split into the registry, the repository and the
/// tag or digest of existing content (a read-only check).
fn split_target(target: &str) -> anyhow::Result<(&str, &str, Option<&str>)> {
    let (registry, rest) = target
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split_once('/')
        .filter(|(r, rest)| !r.is_empty() && !rest.is_empty())
        .with_context(|| {
            format!("{target:?} is not REGISTRY/NAMESPACE or REGISTRY/REPOSITORY:TAG")
        })?;
    if let Some((repo, digest)) = rest.split_once('@') {
        return Ok((registry, repo, Some(digest)));
    }
    let last = rest.rsplit('/').next().unwrap_or(rest);
    match last.split_once(':') {
        Some((_, tag)) => Ok((registry, &rest[..rest.len() - tag.len() - 1], Some(tag))),
        None => Ok((registry, rest, None)),
    }
}

/// The report files a conformance command writes: any of JSON, HTML and JUnit.
#[derive(Debug, clap::Args)]
pub struct ReportFiles {
    /// Write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
    /// Write the report as one self-contained HTML page to FILE (open it in a browser).
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
    /// Write the report as JUnit XML to FILE (for CI systems).
    #[arg(long, value_name = "FILE")]
    junit: Option<std::path::PathBuf>,
}

impl ReportFiles {
    /// Write the files asked for, each atomically.
    pub fn write(&self, report: &Report) -> anyhow::Result<()> {
        if let Some(path) = &self.json {
            let json =
                serde_json::to_vec_pretty(report).context("failed to serialize the report")?;
            write_report(path, "JSON", &json)?;
        }
        if let Some(path) = &self.html {
            write_report(path, "HTML", render::html::render(report).as_bytes())?;
        }
        if let Some(path) = &self.junit {
            write_report(path, "JUnit", render::junit::render(report).as_bytes())?;
        }
        Ok(())
    }
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
        None => Arc::new(crate::dirs::credentials()?),
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
    let read_only = report
        .existing
        .as_ref()
        .map(|r| format!(" (read-only: {r})"))
        .unwrap_or_default();
    print(&format!(
        "{} {}{read_only} against distribution-spec {} in {:.1}s",
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

#[cfg(test)]
mod tests {
    use super::split_target;

    #[test]
    fn targets_split() {
        assert_eq!(
            split_target("127.0.0.1:5000/conformance").unwrap(),
            ("127.0.0.1:5000", "conformance", None)
        );
        assert_eq!(
            split_target("http://127.0.0.1:5000/library/alpine:3.20").unwrap(),
            ("127.0.0.1:5000", "library/alpine", Some("3.20"))
        );
        assert_eq!(
            split_target("reg.example/a/b@sha256:abc").unwrap(),
            ("reg.example", "a/b", Some("sha256:abc"))
        );
        assert!(split_target("reg.example").is_err());
        assert!(split_target("reg.example/").is_err());
    }
}
