//! The checks against real registries: berth's own (every MUST and SHOULD passes; any
//! failure is a registry bug) and Debian's `docker-registry` (distribution 2.8: exactly its
//! known gaps fail, so a wrong check cannot hide behind them).
//!
//! The berth binary must be built first: `cargo build -p berth-cli`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: failing loudly is the point, helpers included"
)]

mod broken;
mod read_only;
mod signatures;
mod signer;
mod signer_run;
mod signing;
mod token;
mod verifier_doubles;

use std::collections::BTreeSet;
use std::sync::Arc;

use berth_conformance::{Options, Report, Status, Workflow};
use berth_distribution::{
    Client, ClientOptions, Credential, PlainHttp, RetryPolicy, Secret, StaticCredentials,
};
use berth_test_support::{DockerRegistry, Registry, RegistryOptions, requires_tool};

mod report;

fn client(registry: &str, user: Option<(&str, &str)>) -> Client {
    let credentials = user.map(|(u, p)| {
        Arc::new(StaticCredentials::new().with(
            registry,
            Credential::Basic {
                username: u.into(),
                password: Secret::new(p),
            },
        )) as Arc<dyn berth_distribution::CredentialProvider>
    });
    Client::new(ClientOptions {
        credentials,
        plain_http: PlainHttp::Always,
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    })
    .unwrap()
}

fn check(registry: &str, user: Option<(&str, &str)>, workflows: &[Workflow]) -> Report {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(berth_conformance::run(Options {
        client: client(registry, user),
        registry: registry.into(),
        namespace: "conformance/test".into(),
        workflows: workflows.to_vec(),
        has_credentials: user.is_some(),
        existing: None,
    }))
    .unwrap()
}

fn ids(report: &Report, status: Status) -> BTreeSet<&str> {
    report
        .with_status(status)
        .map(|c| c.info.id.as_str())
        .collect()
}

fn explain(report: &Report) -> String {
    report
        .checks
        .iter()
        .filter(|c| c.outcome.status != Status::Pass)
        .map(|c| format!("{} {}: {}\n", c.outcome.status, c.info.id, c.outcome.reason))
        .collect()
}

/// The auth checks an open registry (no credentials asked or given) skips.
const OPEN_AUTH_SKIPS: [&str; 5] = [
    "auth.challenge-repository",
    "auth.credentials",
    "auth.token",
    "auth.token-retry",
    "auth.wrong-credentials",
];

#[test]
fn berth_registry_passes_every_must_and_should() {
    let reg = Registry::start(RegistryOptions::new());
    let report = check(&reg.host(), None, &Workflow::ALL);
    let why = explain(&report);
    assert!(report.conformant, "{why}");
    assert_eq!(ids(&report, Status::Fail), BTreeSet::new(), "{why}");
    assert_eq!(ids(&report, Status::Warn), BTreeSet::new(), "{why}");
    // No credentials were given and the registry is open: nothing else is skipped.
    assert_eq!(ids(&report, Status::Skip), OPEN_AUTH_SKIPS.into(), "{why}");
    // Every check of the release ran (the optional main group only runs when asked).
    assert_eq!(
        report.totals.total() as usize,
        berth_conformance::checks::all()
            .iter()
            .filter(|c| Workflow::ALL.contains(&c.workflow))
            .count()
    );
    // Every check that ran a request recorded it.
    for c in &report.checks {
        if c.outcome.status == Status::Pass && !c.info.id.starts_with("discovery.oci-subject") {
            assert!(!c.exchanges.is_empty(), "{} recorded nothing", c.info.id);
        }
    }
    assert!(!report.setup.is_empty() && !report.cleanup.is_empty());
}

#[test]
fn berth_registry_with_authentication_and_the_report_redacts_the_password() {
    requires_tool!("htpasswd");
    let reg = Registry::start(RegistryOptions::new().user("alice", "s3cret-pw"));
    let report = check(&reg.host(), Some(("alice", "s3cret-pw")), &Workflow::ALL);
    let why = explain(&report);
    assert!(report.conformant, "{why}");
    assert!(report.with_status(Status::Warn).next().is_none(), "{why}");
    assert!(report.with_status(Status::Skip).next().is_none(), "{why}");
    let challenge = report
        .checks
        .iter()
        .find(|c| c.info.id == "auth.challenge")
        .unwrap();
    assert_eq!(challenge.exchanges[0].status, Some(401));
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("s3cret-pw"));
    assert!(!json.contains(&base64_of("alice:s3cret-pw")));
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn berth_registry_with_deletion_disabled_skips_only_the_deletes() {
    let reg = Registry::start(RegistryOptions::new().disable_delete());
    let report = check(&reg.host(), None, &[Workflow::Management]);
    let why = explain(&report);
    assert!(report.conformant, "{why}");
    assert_eq!(
        ids(&report, Status::Skip),
        BTreeSet::from([
            "management.delete-blob",
            "management.delete-blob-unknown",
            "management.delete-manifest",
            "management.delete-manifest-unknown-repository",
            "management.delete-tag",
        ]),
        "{why}"
    );
}

#[test]
fn only_the_selected_workflows_run() {
    let reg = Registry::start(RegistryOptions::new());
    let report = check(&reg.host(), None, &[Workflow::Pull]);
    assert!(
        report
            .checks
            .iter()
            .all(|c| c.info.workflow == Workflow::Pull)
    );
    assert_eq!(report.summary.len(), 1);
    assert!(report.totals.pass > 15, "{}", explain(&report));
}

#[test]
fn unreachable_registry_fails_every_check_that_needs_it() {
    // Nothing listens on port 9 of 127.0.0.1: every request fails, and so must the checks.
    let report = check("127.0.0.1:9", None, &[Workflow::Pull]);
    assert!(!report.conformant);
    let api = report
        .checks
        .iter()
        .find(|c| c.info.id == "pull.api-base")
        .unwrap();
    assert_eq!(api.outcome.status, Status::Fail);
    assert!(api.exchanges[0].error.is_some());
}

#[test]
fn docker_registry_fails_exactly_its_known_gaps() {
    requires_tool!("docker-registry");
    let reg = DockerRegistry::start(None);
    let report = check(&reg.host(), None, &Workflow::ALL);
    let why = explain(&report);
    // distribution 2.8: PATCH ignores Content-Range (no 416), tags/list ignores n and last
    // and is not sorted.
    assert_eq!(
        ids(&report, Status::Fail),
        BTreeSet::from([
            "discovery.tags-last",
            "discovery.tags-n",
            "discovery.tags-n-zero",
            "discovery.tags-order",
            "push.chunk-out-of-order",
            "push.chunk-resent",
        ]),
        "{why}"
    );
    // No referrers API (v1.1 SHOULD).
    assert_eq!(
        ids(&report, Status::Warn),
        BTreeSet::from(["discovery.referrers-api"]),
        "{why}"
    );
    assert_eq!(
        ids(&report, Status::Skip),
        BTreeSet::from([
            "auth.challenge-repository",
            "auth.credentials",
            "auth.token",
            "auth.token-retry",
            "auth.wrong-credentials",
            "discovery.oci-subject",
            "discovery.referrers-filter",
            "discovery.referrers-invalid-digest",
            "discovery.referrers-list",
            "discovery.referrers-none",
            "discovery.tags-link",
            "management.delete-tag",
            "push.blob-single-post",
        ]),
        "{why}"
    );
}

#[test]
fn the_command_exits_0_only_when_every_must_passes_and_writes_the_json_report() {
    requires_tool!("docker-registry");
    let ours = Registry::start(RegistryOptions::new());
    let peer = DockerRegistry::start(None);
    let dir = tempfile::tempdir().unwrap();
    for (host, ok) in [(ours.host(), true), (peer.host(), false)] {
        let json = dir.path().join(format!("{}.json", host.replace(':', "_")));
        let out = berth_test_support::run_with_timeout(
            std::process::Command::new(berth_test_support::berth_bin())
                .args(["conformance", "check", &format!("{host}/conformance/cli")])
                .arg("--json")
                .arg(&json),
            std::time::Duration::from_secs(120),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.success(), ok, "{host}: {stdout}");
        let report: Report = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(report.conformant, ok);
        assert!(
            stdout.contains(&format!("{} checks:", report.totals.total())),
            "{stdout}"
        );
        for failed in report.with_status(Status::Fail) {
            assert!(
                stdout.contains(&format!("fail {} [", failed.info.id)),
                "{stdout}"
            );
        }
    }
}

#[test]
fn berth_registry_passes_the_main_group() {
    let reg = Registry::start(RegistryOptions::new());
    let report = check(&reg.host(), None, &[Workflow::Main]);
    let why = explain(&report);
    assert!(report.conformant, "{why}");
    assert!(report.checks.iter().all(|c| c.info.optional));
    assert_eq!(ids(&report, Status::Fail), BTreeSet::new(), "{why}");
    assert_eq!(ids(&report, Status::Warn), BTreeSet::new(), "{why}");
    assert_eq!(ids(&report, Status::Skip), BTreeSet::new(), "{why}");
    let main_checks = berth_conformance::checks::all()
        .iter()
        .filter(|c| c.workflow == Workflow::Main)
        .count();
    assert_eq!(report.totals.pass as usize, main_checks);
    assert!(report.summary.iter().all(|w| w.optional));
}

#[test]
fn docker_registry_fails_exactly_its_main_gaps_and_stays_conformant() {
    requires_tool!("docker-registry");
    let reg = DockerRegistry::start(None);
    let report = check(&reg.host(), None, &[Workflow::Main]);
    let why = explain(&report);
    // distribution 2.8 ignores Content-Range on the closing PUT (it appends the chunk, then
    // refuses the digest: 400), and ignores tag parameters (no OCI-Tag, no tag: a MAY it
    // does not offer). It sends both headers on GET and HEAD, answers a cancel with 204,
    // refuses bad digests with 400, takes sha512, ignores ns= and untags deleted manifests.
    assert_eq!(
        ids(&report, Status::Fail),
        BTreeSet::from(["main.put-chunk-out-of-order"]),
        "{why}"
    );
    assert_eq!(ids(&report, Status::Warn), BTreeSet::new(), "{why}");
    assert_eq!(
        ids(&report, Status::Skip),
        BTreeSet::from(["main.manifest-put-tags", "main.manifest-put-ten-tags"]),
        "{why}"
    );
    // Optional failures are reported, and the run still conforms.
    assert!(report.conformant, "{why}");
    assert_eq!(report.required().total(), 0);
}

#[test]
fn the_main_group_runs_only_when_asked_and_never_changes_the_exit_code() {
    requires_tool!("docker-registry");
    let peer = DockerRegistry::start(None);
    let dir = tempfile::tempdir().unwrap();
    // (arguments, exit 0?, main group in the report?)
    let runs: [(&[&str], bool, bool); 3] = [
        (&["--only", "main"], true, true),
        (&["--only", "pull", "--include-main"], true, true),
        (&["--only", "push"], false, false),
    ];
    for (i, (args, ok, with_main)) in runs.into_iter().enumerate() {
        let json = dir.path().join(format!("{i}.json"));
        let out = berth_test_support::run_with_timeout(
            std::process::Command::new(berth_test_support::berth_bin())
                .args(["conformance", "check"])
                .arg(format!("{}/conformance/main{i}", peer.host()))
                .args(args)
                .arg("--json")
                .arg(&json),
            std::time::Duration::from_secs(120),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.success(), ok, "{args:?}: {stdout}");
        let report: Report = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let has_main = report.checks.iter().any(|c| c.info.optional);
        assert_eq!(has_main, with_main, "{args:?}");
        assert!(
            report
                .checks
                .iter()
                .all(|c| c.info.optional == c.info.id.starts_with("main.")),
            "{args:?}"
        );
        if with_main {
            // Its known failure is listed, marked optional, and the run still conforms.
            assert!(
                stdout
                    .contains("fail main.put-chunk-out-of-order [MUST, optional beyond v1.1] PUT "),
                "{stdout}"
            );
            assert!(stdout.contains("optional checks (main branch, beyond v1.1): "));
            assert!(report.conformant);
            assert!(report.optional().fail >= 1);
        }
        assert!(
            stdout.contains(&format!("{} checks:", report.required().total())),
            "{stdout}"
        );
    }
}
