//! Provenance back to the source commit: `berth attest` reads the git checkout, pushes an
//! in-toto SLSA provenance statement as an artifact whose subject is the image and signs it;
//! `berth verify --require-source REPO[@COMMIT]` walks image → attestation → its signature
//! and accepts only a signed statement about that image naming that source. Against berth's
//! registry (referrers API) and docker-registry (tag fallback).

use std::path::Path;
use std::process::Command;

use berth_test_support::write_file;
use serde_json::{Value, json};

use crate::trust::{Kind, Peer, berth, berth_ok, push_image, stderr};

const IN_TOTO: &str = "application/vnd.in-toto+json";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git (scripts/test installs it)");
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A checkout with one commit and `origin` at `url`; returns its commit.
fn checkout(dir: &Path, url: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    write_file(dir.join("Containerfile"), b"FROM scratch\n");
    git(dir, &["add", "Containerfile"]);
    git(
        dir,
        &[
            "-c",
            "user.name=CI",
            "-c",
            "user.email=ci@example.com",
            "commit",
            "-q",
            "-m",
            "first",
        ],
    );
    git(dir, &["remote", "add", "origin", url]);
    git(dir, &["rev-parse", "HEAD"])
}

fn attest_and_verify_source(kind: Kind) {
    let peer = Peer::start(kind);
    let h = peer.http();
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path();
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
    let src = xdg.join("src");
    let commit = checkout(&src, "git@github.com:Acme/app.git");
    let digest = push_image(&h, "app", "v1", 40);
    let image = format!("{}/app@{digest}", peer.host());
    berth_ok(xdg, &["sign", &image]);
    let verify = |req: &str| berth(xdg, &["verify", "--require-source", req, &image]);

    // Signed, but nothing says where it came from.
    let out = verify("github.com/Acme/app");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no provenance attestation is attached"),
        "{}",
        stderr(&out)
    );

    // A dirty checkout is refused; a clean one is attested.
    write_file(src.join("Containerfile"), b"FROM busybox\n");
    let out = berth(xdg, &["attest", "--git-dir", src.to_str().unwrap(), &image]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("uncommitted changes"),
        "{}",
        stderr(&out)
    );
    git(&src, &["checkout", "--", "Containerfile"]);
    let attestation = berth_ok(
        xdg,
        &[
            "attest",
            "--git-dir",
            src.to_str().unwrap(),
            "--builder-id",
            "https://ci.example/runs/7",
            "--started",
            "2026-12-04T10:00:00Z",
            &image,
        ],
    )
    .trim()
    .to_owned();

    // What was pushed: an in-toto artifact about the image, naming the repository and commit.
    let r = h.request(
        "GET",
        &format!("/v2/app/manifests/{attestation}"),
        &[("accept", "application/vnd.oci.image.manifest.v1+json")],
        None,
    );
    r.expect_status(200, "the attestation manifest");
    let m: Value = r.json();
    assert_eq!(m["artifactType"], IN_TOTO);
    assert_eq!(m["subject"]["digest"], digest.to_string());
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let r = h.get(&format!("/v2/app/blobs/{layer}"));
    r.expect_status(200, "the statement");
    let st: Value = r.json();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(st["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(st["subject"][0]["digest"]["sha256"], digest.hex());
    let dep = &st["predicate"]["buildDefinition"]["resolvedDependencies"][0];
    assert_eq!(
        dep["uri"],
        "git+https://github.com/Acme/app@refs/heads/main"
    );
    assert_eq!(dep["digest"]["gitCommit"], commit.as_str());
    assert_eq!(
        st["predicate"]["runDetails"]["builder"]["id"],
        "https://ci.example/runs/7"
    );
    assert_eq!(
        st["predicate"]["runDetails"]["metadata"]["startedOn"],
        "2026-12-04T10:00:00Z"
    );

    // The right source passes, by repository alone or with the commit, in any URL form.
    for req in [
        "github.com/Acme/app".to_string(),
        format!("https://github.com/Acme/app.git@{commit}"),
    ] {
        let out = verify(&req);
        assert!(out.status.success(), "{req}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("source: github.com/Acme/app@{commit}")),
            "{}",
            stderr(&out)
        );
    }
    // Another commit, another repository, an abbreviated commit: refused.
    let other = "0".repeat(40);
    let out = verify(&format!("github.com/Acme/app@{other}"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("but github.com/Acme/app@0000"),
        "{}",
        stderr(&out)
    );
    let out = verify("github.com/Acme/app-fork");
    assert!(!out.status.success());
    let out = verify(&format!("github.com/Acme/app@{}", &commit[..7]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("full commit"), "{}", stderr(&out));

    // A statement signed by an untrusted key does not count, whatever it claims.
    let digest2 = push_image(&h, "app", "v2", 41);
    let image2 = format!("{}/app@{digest2}", peer.host());
    berth_ok(xdg, &["sign", &image2]);
    berth_ok(
        xdg,
        &[
            "attest",
            "--key",
            "mallory.example",
            "--source",
            &format!("github.com/Acme/app@{commit}"),
            &image2,
        ],
    );
    let out = berth(
        xdg,
        &["verify", "--require-source", "github.com/Acme/app", &image2],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("signature(s) passed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn attest_and_verify_source_berth_registry() {
    attest_and_verify_source(Kind::Berth);
}

#[test]
fn attest_and_verify_source_docker_registry() {
    berth_test_support::requires_tool!("docker-registry");
    attest_and_verify_source(Kind::Docker);
}
