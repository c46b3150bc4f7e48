//! The signatures workflow against real registries: berth's (referrers API: every check
//! passes) and Debian's docker-registry 2.8 (no referrers API: the checks that need it are
//! unsupported, the referrers tag schema carries the rest).

use std::collections::BTreeSet;

use berth_conformance::{Status, Workflow};
use berth_test_support::{DockerRegistry, Registry, RegistryOptions, requires_tool};

use crate::{check, explain, ids};

fn signature_checks() -> BTreeSet<&'static str> {
    berth_conformance::checks::all()
        .iter()
        .filter(|c| c.workflow == Workflow::Signatures)
        .map(|c| c.id)
        .collect()
}

#[test]
fn berth_registry_passes_every_signature_check() {
    let reg = Registry::start(RegistryOptions::new());
    let report = check(&reg.host(), None, &[Workflow::Signatures]);
    let why = explain(&report);
    assert!(report.conformant, "{why}");
    assert_eq!(ids(&report, Status::Pass), signature_checks(), "{why}");
    for c in &report.checks {
        assert!(!c.exchanges.is_empty(), "{} recorded nothing", c.info.id);
        assert!(
            c.info
                .spec_url
                .contains("distribution-spec/blob/v1.1.1/spec.md#"),
            "{}",
            c.info.spec_url
        );
    }
    // the signature pushed is a Notary Project signature manifest
    let list = report
        .checks
        .iter()
        .find(|c| c.info.id == "signatures.referrers-list")
        .unwrap();
    assert!(
        list.exchanges.iter().any(|e| e
            .request_body
            .as_ref()
            .is_some_and(|b| b.content.contains("application/vnd.cncf.notary.signature"))),
        "no signature manifest was pushed"
    );
    // the release's default run does not include the workflow
    assert!(!Workflow::ALL.contains(&Workflow::Signatures));
    assert_eq!("signatures".parse::<Workflow>(), Ok(Workflow::Signatures));
}

#[test]
fn docker_registry_keeps_signatures_through_the_tag_schema() {
    requires_tool!("docker-registry");
    let reg = DockerRegistry::start(None);
    let report = check(&reg.host(), None, &[Workflow::Signatures]);
    let why = explain(&report);
    // distribution 2.8 has no referrers API: listing and filtering through it are
    // unsupported; signatures pushed with the tag schema survive a tag move, and deleting
    // the signed image leaves the signature (and the tag index, the client's to maintain)
    assert_eq!(
        ids(&report, Status::Skip),
        BTreeSet::from([
            "signatures.artifact-type-filter",
            "signatures.referrers-list"
        ]),
        "{why}"
    );
    assert_eq!(
        ids(&report, Status::Pass),
        BTreeSet::from([
            "signatures.subject-deleted",
            "signatures.tag-fallback",
            "signatures.tag-move"
        ]),
        "{why}"
    );
    assert!(report.conformant, "{why}");
}

#[test]
fn the_command_runs_the_workflow_with_only_signatures() {
    let reg = Registry::start(RegistryOptions::new());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = berth_test_support::run_with_timeout(
        std::process::Command::new(berth_test_support::berth_bin())
            .args(["conformance", "check"])
            .arg(format!("{}/conformance/signatures", reg.host()))
            .args(["--only", "signatures", "--json"])
            .arg(&json),
        std::time::Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("signatures    5 pass"), "{stdout}");
    let report: berth_conformance::Report =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let got: BTreeSet<&str> = report.checks.iter().map(|c| c.info.id.as_str()).collect();
    assert_eq!(got, signature_checks());
}
