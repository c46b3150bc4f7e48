//! Conformance of a registry to the OCI distribution-spec v1.1: one check per requirement,
//! each recording the exact requests and responses it made, and a [`Report`] of them all.
//!
//! **Owns**: the checks ([`checks::all`]), the test data they push (random blobs, an image,
//! an index, artifacts with a `subject`, a 4 MiB manifest, empty and sha512 blobs), what a
//! report may show of an exchange (credentials redacted, bodies truncated), and the report
//! model that the JSON report is, and its renderers ([`render::html`], [`render::junit`]:
//! pure functions from a [`Report`] to a document).
//!
//! It also judges image signing (issue 18): [`signing::signer`] checks one Notary Project
//! signature against every rule of the specification v1.1.0, [`signing::registry`] runs a
//! signer command against a registry and judges what it pushed, and the `signatures`
//! workflow ([`Workflow::Signatures`], run when asked) checks what signing needs of a
//! registry.
//!
//! **Does not own**: HTTP, TLS and authentication (the [`berth_distribution::Client`]'s
//! [`exchange`](berth_distribution::Client::exchange), which answers challenges and follows
//! the token flow — except in the `auth` checks, which take the token flow step by step
//! themselves so that each step is recorded), or writing files and the terminal summary
//! (the `berth` binary).
//!
//! **Signing** ([`signing`], issue 18): the same [`Report`], with [`Subject::Verifier`], for
//! a signature verifier judged against the Notary Project specification — a corpus of
//! signatures that MUST be accepted or refused, built at run time from a test PKI, presented
//! to any verifier command ([`signing::verifier::check_verifier`]).
//!
//! A run either pushes generated test data and pulls it back, or — given
//! [`Options::existing`] — checks existing content read-only, sending only `GET` and `HEAD`.
//!
//! **Design decision**: a check is a plain async function that returns a [`Verdict`]
//! (pass, violation, unsupported, not run); its requirement level (MUST/SHOULD/MAY) is data
//! beside it, and one rule ([`Verdict::outcome`]) turns the two into pass/fail/warn/skip, so
//! no check decides on its own how much a violation matters. A check must be able to fail:
//! each compares what came back with what the spec says, and says both in its reason.

pub mod checks;
mod data;
mod existing;
pub mod model;
pub mod redact;
pub mod render;
mod session;
pub mod signing;

use std::time::{Instant, SystemTime};

use berth_distribution::Client;

pub use checks::Check;
pub use model::*;
use session::Ctx;

/// What failed before any check could run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid repository name {name:?} for conformance checks: {reason}")]
    InvalidNamespace { name: String, reason: String },
    #[error("no workflow selected")]
    NoWorkflow,
    #[error(
        "the {workflow} checks write to the registry: they cannot check existing content {reference} read-only"
    )]
    WritesInReadOnlyRun {
        workflow: Workflow,
        reference: String,
    },
    /// Without credentials, the registry refused to show the repository at all: every
    /// check that needs data would fail on a `401`, saying nothing about conformance.
    #[error(
        "credentials required: {registry} answered 401 to an anonymous request for {registry}/{namespace}"
    )]
    CredentialsRequired { registry: String, namespace: String },
}

/// What to check, and with which client.
#[derive(Debug, Clone)]
pub struct Options {
    /// The client (its credentials, plain-HTTP policy and TLS roots are used as they are).
    pub client: Client,
    /// The registry host, `host[:port]`.
    pub registry: String,
    /// The repository to push to and pull from (it and `<namespace>-mount` are written).
    pub namespace: String,
    /// Workflows to run (empty = none: an error). [`Workflow::ALL`] is the release;
    /// add [`Workflow::Main`] for the optional checks of the spec's `main` branch.
    pub workflows: Vec<Workflow>,
    /// Whether the client has credentials for the registry (also found true when the
    /// client's credential provider has some for it).
    pub has_credentials: bool,
    /// A tag or digest of existing content in `namespace` to check read-only: nothing is
    /// pushed, the pull (and discovery) checks pull it, and only `GET` and `HEAD` are
    /// sent. `None`: push generated test data and pull that.
    pub existing: Option<String>,
}

/// Run the checks of the selected workflows against the registry and report on them.
/// Failing checks are results, not errors.
#[tracing::instrument(level = "info", skip_all, fields(registry = %opts.registry, namespace = %opts.namespace))]
pub async fn run(opts: Options) -> Result<Report, Error> {
    berth_oci::validate_repository_name(&opts.namespace).map_err(|e| Error::InvalidNamespace {
        name: opts.namespace.clone(),
        reason: e.to_string(),
    })?;
    if opts.workflows.is_empty() {
        return Err(Error::NoWorkflow);
    }
    if let Some(reference) = &opts.existing
        && let Some(w) = opts.workflows.iter().find(|w| {
            matches!(
                w,
                Workflow::Push | Workflow::Management | Workflow::Signatures | Workflow::Main
            )
        })
    {
        return Err(Error::WritesInReadOnlyRun {
            workflow: *w,
            reference: reference.clone(),
        });
    }
    let started = SystemTime::now();
    let clock = Instant::now();
    // Credentials from docker's config.json count as given, as the CLI's --username does.
    let has_credentials =
        opts.has_credentials || matches!(opts.client.credential(&opts.registry).await, Ok(Some(_)));
    let needs_data = opts.workflows.iter().any(|w| *w != Workflow::Auth);
    if needs_data && !has_credentials {
        probe_anonymous(&opts).await?;
    }
    let mut c = Ctx::new(
        opts.client,
        &opts.registry,
        &opts.namespace,
        has_credentials,
    );
    if let Some(reference) = &opts.existing {
        c.set_read_only(reference);
    }
    if needs_data {
        c.setup().await;
    }
    let setup = c.take_log();
    let mut results = Vec::new();
    for check in checks::all() {
        if !opts.workflows.contains(&check.workflow) {
            continue;
        }
        let t = Instant::now();
        let verdict = (check.run)(&mut c).await.unwrap_or_else(|v| v);
        let outcome = verdict.outcome(check.level);
        tracing::debug!(check = check.id, status = %outcome.status, reason = %outcome.reason, "checked");
        results.push(CheckResult {
            info: check.info(),
            outcome,
            duration_ms: t.elapsed().as_millis() as u64,
            exchanges: c.take_log(),
            evidence: None,
        });
    }
    if needs_data {
        c.cleanup().await;
    }
    let cleanup = c.take_log();
    let mut workflows = opts.workflows.clone();
    workflows.sort();
    workflows.dedup();
    let (totals, summary) = model::summarize(&workflows, &results);
    Ok(Report {
        format: REPORT_FORMAT,
        subject: Subject::Registry,
        implementation: None,
        tool: format!("berth-conformance {}", env!("CARGO_PKG_VERSION")),
        spec_version: SPEC_VERSION.to_owned(),
        registry: opts.registry,
        namespace: opts.namespace,
        existing: opts.existing,
        started_at: berth_oci::timefmt::rfc3339(started),
        duration_ms: clock.elapsed().as_millis() as u64,
        workflows,
        conformant: results
            .iter()
            .all(|r| r.info.optional || r.outcome.status != Status::Fail),
        totals,
        summary,
        checks: results,
        setup,
        cleanup,
    })
}

/// Before a run without credentials: one anonymous `HEAD` of a manifest in the namespace
/// (the existing image in a read-only run). A `401` stops the run with
/// [`Error::CredentialsRequired`]; any other answer, or no answer, lets the checks judge.
async fn probe_anonymous(opts: &Options) -> Result<(), Error> {
    let Ok(repo) = berth_distribution::Repository::new(&opts.registry, &opts.namespace) else {
        return Ok(());
    };
    let reference = opts
        .existing
        .as_deref()
        .unwrap_or("berth-conformance-probe");
    match opts.client.head_manifest(&repo, reference, &[]).await {
        Err(e) if e.status() == Some(401) => Err(Error::CredentialsRequired {
            registry: opts.registry.clone(),
            namespace: opts.namespace.clone(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        use berth_oci::timefmt::rfc3339;
        use std::time::UNIX_EPOCH;
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_709_251_199)),
            "2024-02-29T23:59:59Z"
        );
    }

    #[test]
    fn levels_decide_the_status() {
        let v = || Verdict::violation("expected 404 NAME_UNKNOWN, got 403");
        assert_eq!(v().outcome(Level::Must).status, Status::Fail);
        assert_eq!(v().outcome(Level::Should).status, Status::Warn);
        assert_eq!(v().outcome(Level::May).status, Status::Fail);
        assert_eq!(
            v().outcome(Level::Must).reason,
            "expected 404 NAME_UNKNOWN, got 403"
        );
        let u = Verdict::Unsupported("no".into()).outcome(Level::May);
        assert_eq!((u.status, u.reason.as_str()), (Status::Skip, "no"));
        assert_eq!(
            Verdict::NotRun("x".into()).outcome(Level::Must).status,
            Status::Skip
        );
        assert_eq!(Verdict::Pass.outcome(Level::Must).status, Status::Pass);
    }

    #[test]
    fn workflows_parse() {
        assert_eq!("Pull".parse::<Workflow>(), Ok(Workflow::Pull));
        assert!("pul".parse::<Workflow>().is_err());
    }
}
