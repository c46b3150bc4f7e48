//! Read-only runs: existing content named by the user (`REGISTRY/REPO:TAG`), checked with
//! `GET` and `HEAD` only, against registries that refuse writes — Debian's
//! `docker-registry` in maintenance read-only mode, and berth's registry for a user with
//! pull rights only or for anonymous pulls. Each registry is seeded first (while writable, or
//! by a user who may push), and each run must leave its storage exactly as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use berth_conformance::{Options, Report, Status, Workflow};
use berth_distribution::{BytesSource, Repository};
use berth_test_support::{
    DockerRegistry, Registry, RegistryOptions, requires_tool, walk_files, write_file,
};
use bytes::Bytes;
use serde_json::json;

use super::{client, explain, ids};

pub(super) const REPO: &str = "conformance/ro";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What [`seed`] pushed.
pub(super) struct Seeded {
    image: String,
    index: String,
    layer: String,
}

/// Push an image (a config and a 3000-byte layer) tagged `v1` … `v4`, and an index over it
/// tagged `multi`, to [`REPO`] with the ordinary client.
pub(super) fn seed(host: &str, user: Option<(&str, &str)>) -> Seeded {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = client(host, user);
    let repo = Repository::new(host, REPO).unwrap();
    let layer = Bytes::from(berth_test_support::random_bytes(7, 3000));
    let config = Bytes::from(
        serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}))
            .unwrap(),
    );
    let desc = |data: &Bytes, media_type: &str| json!({"mediaType": media_type, "digest": berth_oci::Digest::sha256_of(data).as_str(), "size": data.len()});
    let image = Bytes::from(
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc(&config, "application/vnd.oci.image.config.v1+json"),
            "layers": [desc(&layer, "application/vnd.oci.image.layer.v1.tar")],
        }))
        .unwrap(),
    );
    let mut child = desc(&image, OCI_MANIFEST);
    child["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let index = Bytes::from(
        serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child]}),
        )
        .unwrap(),
    );
    rt.block_on(async {
        for blob in [&config, &layer] {
            let d = berth_oci::Digest::sha256_of(blob);
            c.push_blob(&repo, &d, blob.len() as u64, BytesSource(blob.clone()))
                .await
                .unwrap();
        }
        for tag in ["v1", "v2", "v3", "v4"] {
            c.put_manifest(&repo, tag, &image, OCI_MANIFEST)
                .await
                .unwrap();
        }
        c.put_manifest(&repo, "multi", &index, OCI_INDEX)
            .await
            .unwrap();
    });
    Seeded {
        image: berth_oci::Digest::sha256_of(&image).to_string(),
        index: berth_oci::Digest::sha256_of(&index).to_string(),
        layer: berth_oci::Digest::sha256_of(&layer).to_string(),
    }
}

/// Every file under `root` with its size and modification time.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    walk_files(root)
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).unwrap();
            (p, (m.len(), m.modified().unwrap()))
        })
        .collect()
}

fn check_existing(
    host: &str,
    user: Option<(&str, &str)>,
    existing: &str,
    workflows: &[Workflow],
) -> Report {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(berth_conformance::run(Options {
        client: client(host, user),
        registry: host.into(),
        namespace: REPO.into(),
        workflows: workflows.to_vec(),
        has_credentials: user.is_some(),
        existing: Some(existing.into()),
    }))
    .unwrap()
}

/// Every request of the run (setup, checks, cleanup) was a GET or a HEAD.
fn assert_only_reads(report: &Report) {
    let all = report
        .setup
        .iter()
        .chain(report.checks.iter().flat_map(|c| &c.exchanges))
        .chain(&report.cleanup);
    let mut n = 0;
    for e in all {
        assert!(
            e.method == "GET" || e.method == "HEAD",
            "{} {}",
            e.method,
            e.url
        );
        n += 1;
    }
    assert!(n > 30, "only {n} requests");
    assert!(report.cleanup.is_empty());
}

fn reason<'a>(report: &'a Report, id: &str) -> &'a str {
    &report
        .checks
        .iter()
        .find(|c| c.info.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
        .outcome
        .reason
}

/// The checks of a read-only run that cannot run on any existing content: they write, or
/// need the artifacts a pushing run refers to its image.
const WRITERS: [&str; 4] = [
    "discovery.oci-subject",
    "discovery.referrers-filter",
    "discovery.referrers-list",
    "discovery.subject-missing-accepted",
];

#[test]
fn docker_registry_in_read_only_mode_pull_and_discovery_exact_set() {
    requires_tool!("docker-registry");
    let reg = DockerRegistry::start(None);
    let seeded = seed(&reg.host(), None);
    let reg = reg.restart_read_only();
    let host = reg.host();
    // It really is read-only: an upload is refused.
    let refused = reg_post(&host);
    assert!(
        refused == 405 || refused == 503,
        "POST of an upload to a read-only docker-registry answered {refused}"
    );
    let before = snapshot(&reg.storage_root());
    assert!(before.len() > 5);
    let workflows = [Workflow::Auth, Workflow::Pull, Workflow::Discovery];
    let report = check_existing(&host, None, "multi", &workflows);
    let why = explain(&report);
    assert_eq!(snapshot(&reg.storage_root()), before, "the storage changed");
    assert_only_reads(&report);
    // Its access log agrees: nothing but GET and HEAD reached it after the POST above.
    let log = reg.log();
    let requests: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("\"").map(|(_, r)| r))
        .filter_map(|r| r.split_whitespace().next())
        .filter(|m| m.chars().all(|c| c.is_ascii_uppercase()))
        .collect();
    assert!(requests.len() > 30, "{log}");
    assert_eq!(
        requests
            .iter()
            .filter(|m| !matches!(**m, "GET" | "HEAD"))
            .count(),
        1,
        "only the one POST above may be a write: {requests:?}"
    );
    assert_eq!(report.existing.as_deref(), Some("multi"));
    // distribution 2.8 ignores n and last and does not sort the tags list: as in the full run.
    assert_eq!(
        ids(&report, Status::Fail),
        BTreeSet::from([
            "discovery.tags-last",
            "discovery.tags-n",
            "discovery.tags-n-zero",
            "discovery.tags-order",
        ]),
        "{why}"
    );
    assert_eq!(
        ids(&report, Status::Warn),
        BTreeSet::from(["discovery.referrers-api"]),
        "{why}"
    );
    let mut skipped = BTreeSet::from([
        "discovery.referrers-invalid-digest",
        "discovery.referrers-none",
        "discovery.tags-link",
    ]);
    skipped.extend(WRITERS);
    skipped.extend(super::OPEN_AUTH_SKIPS);
    assert_eq!(ids(&report, Status::Skip), skipped, "{why}");
    // Every pull check ran and passed, on the index named, its image and its layer.
    let pulls: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.info.workflow == Workflow::Pull)
        .collect();
    assert_eq!(pulls.len(), 21);
    assert!(
        pulls.iter().all(|c| c.outcome.status == Status::Pass),
        "{why}"
    );
    let urls = |id: &str| -> Vec<String> {
        report
            .checks
            .iter()
            .find(|c| c.info.id == id)
            .unwrap()
            .exchanges
            .iter()
            .map(|e| e.url.clone())
            .collect()
    };
    assert!(urls("pull.manifest-get-tag")[0].ends_with("/manifests/multi"));
    assert!(urls("pull.manifest-content-type-index")[0].ends_with(&seeded.index));
    assert!(urls("pull.manifest-get-digest")[0].ends_with(&seeded.image));
    assert!(urls("pull.blob-get")[0].ends_with(&seeded.layer));
    assert!(reason(&report, "discovery.oci-subject").contains("read-only"));
}

/// The status of `POST /v2/<REPO>/blobs/uploads/` on `host`.
fn reg_post(host: &str) -> u16 {
    let resp = berth_test_support::raw_request(
        host.parse().unwrap(),
        format!("POST /v2/{REPO}/blobs/uploads/ HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    resp.status
}

#[test]
fn a_read_only_registry_without_a_named_image_skips_the_pulls_with_a_hint() {
    requires_tool!("docker-registry");
    let reg = DockerRegistry::start(None).restart_read_only();
    let report = super::check(&reg.host(), None, &[Workflow::Pull]);
    let why = explain(&report);
    // The setup's first write was refused: every pull check that needs the test data says
    // why and how to check this registry instead; the others ran.
    let skipped = ids(&report, Status::Skip);
    assert!(skipped.contains("pull.manifest-get-tag"), "{why}");
    assert!(
        reason(&report, "pull.manifest-get-tag").contains("REGISTRY/REPOSITORY:TAG --only pull"),
        "{why}"
    );
    assert_eq!(
        ids(&report, Status::Pass),
        BTreeSet::from([
            "pull.api-base",
            "pull.repository-unknown",
            "pull.repository-unknown-code"
        ]),
        "{why}"
    );
    assert!(report.with_status(Status::Fail).next().is_none(), "{why}");
}

/// berth's registry with `alice` (every right) and `reader` (pull only), and anonymous
/// pulls when `anonymous_pull`.
fn berth_with_a_reader(anonymous_pull: bool) -> (Registry, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registry.toml");
    write_file(
        &config,
        format!(
            "[auth]\nanonymous_pull = {anonymous_pull}\n\n[[auth.access]]\nusers = [\"alice\"]\nrepositories = [\"*\"]\nactions = [\"pull\", \"push\", \"delete\"]\n\n[[auth.access]]\nusers = [\"reader\"]\nrepositories = [\"*\"]\nactions = [\"pull\"]\n"
        )
        .as_bytes(),
    );
    let reg = Registry::start(
        RegistryOptions::new()
            .user("alice", "alice-pw")
            .user("reader", "reader-pw")
            .arg("--config")
            .arg(&config),
    );
    (reg, dir)
}

#[test]
fn berth_registry_for_a_user_with_pull_rights_only() {
    requires_tool!("htpasswd");
    let (reg, _dir) = berth_with_a_reader(false);
    let host = reg.host();
    let seeded = seed(&host, Some(("alice", "alice-pw")));
    let reader = Some(("reader", "reader-pw"));
    let before = snapshot(reg.data_dir());
    let workflows = [Workflow::Auth, Workflow::Pull, Workflow::Discovery];
    // An image tag (not an index): the index's Content-Type cannot be checked.
    let report = check_existing(&host, reader, "v1", &workflows);
    let why = explain(&report);
    assert_eq!(snapshot(reg.data_dir()), before, "the storage changed");
    assert_only_reads(&report);
    assert!(report.conformant, "{why}");
    assert_eq!(ids(&report, Status::Warn), BTreeSet::new(), "{why}");
    let mut skipped = BTreeSet::from(["pull.manifest-content-type-index"]);
    skipped.extend(WRITERS);
    assert_eq!(ids(&report, Status::Skip), skipped, "{why}");
    assert!(
        reason(&report, "pull.manifest-content-type-index").contains("no image index"),
        "{why}"
    );
    // Four image tags and the index's: n, last and Link run on them.
    for id in [
        "discovery.tags-n",
        "discovery.tags-last",
        "discovery.tags-link",
    ] {
        assert!(ids(&report, Status::Pass).contains(id), "{id}: {why}");
    }

    // The image named by digest: there is no tag to pull it by.
    let report = check_existing(&host, reader, &seeded.image, &workflows);
    let why = explain(&report);
    assert_only_reads(&report);
    assert!(report.conformant, "{why}");
    let mut skipped = BTreeSet::from([
        "pull.manifest-content-type-index",
        "pull.manifest-get-tag",
        "pull.manifest-head-tag",
    ]);
    skipped.extend(WRITERS);
    assert_eq!(ids(&report, Status::Skip), skipped, "{why}");
    assert!(
        reason(&report, "pull.manifest-get-tag").contains("named by digest"),
        "{why}"
    );
    assert_eq!(snapshot(reg.data_dir()), before, "the storage changed");

    // The same user without a named image: the setup push is refused (no push right).
    let report = super::check(&host, reader, &[Workflow::Pull]);
    let why = explain(&report);
    assert!(
        reason(&report, "pull.blob-get").contains("name an existing image"),
        "{why}"
    );
    assert!(report.with_status(Status::Fail).next().is_none(), "{why}");
}

#[test]
fn the_command_checks_an_existing_image_read_only_with_its_exit_code() {
    requires_tool!("htpasswd", "docker-registry");
    // A public registry without write access: anonymous pulls only.
    let (ours, _dir) = berth_with_a_reader(true);
    seed(&ours.host(), Some(("alice", "alice-pw")));
    let peer = DockerRegistry::start(None);
    seed(&peer.host(), None);
    let peer = peer.restart_read_only();
    let dir = tempfile::tempdir().unwrap();
    for (host, ok, storage) in [
        (ours.host(), true, ours.data_dir().to_path_buf()),
        (peer.host(), false, peer.storage_root()),
    ] {
        let before = snapshot(&storage);
        let json = dir.path().join(format!("{}.json", host.replace(':', "_")));
        let out = berth_test_support::run_with_timeout(
            Command::new(berth_test_support::berth_bin())
                .args([
                    "conformance",
                    "check",
                    &format!("{host}/{REPO}:multi"),
                    "--only",
                    "pull,discovery",
                ])
                .arg("--json")
                .arg(&json),
            Duration::from_secs(120),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), ok, "{host}: {stdout}\n{stderr}");
        assert!(
            stdout.contains(&format!("{REPO} (read-only: multi)")),
            "{stdout}"
        );
        assert_eq!(snapshot(&storage), before, "{host}: the storage changed");
        let report: Report = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_only_reads(&report);
        assert_eq!(report.workflows, [Workflow::Pull, Workflow::Discovery]);
        assert!(report.totals.pass >= 21, "{stdout}");
        for failed in report.with_status(Status::Fail) {
            assert!(
                stdout.contains(&format!("fail {} [", failed.info.id)),
                "{stdout}"
            );
        }
    }
    // Asking a read-only run to push is refused before anything is sent.
    let out = berth_test_support::run_with_timeout(
        Command::new(berth_test_support::berth_bin()).args([
            "conformance",
            "check",
            &format!("{}/{REPO}:v1", ours.host()),
            "--only",
            "pull,push",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the push checks write to the registry"),
        "{stderr}"
    );
}
