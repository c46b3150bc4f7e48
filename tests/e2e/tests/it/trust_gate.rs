//! Signing with no extra steps and enforcement on pull and run, as the issue's new user does
//! it: `berth trust init`, a push that signs itself (making the key the first time), a role
//! policy requiring developer + CI signatures, `berth run` refusing the image before anything
//! is pulled or unpacked until the CI signature is added, then running it; `berth verify
//! --policy` explaining the decision; a trust policy (notation's format) gating pull too.

use std::path::Path;
use std::process::{Command, Output};

use berth_test_support::{Registry, RegistryOptions, berth_bin, write_file};
use serde_json::{Value, json};

use crate::trust::stderr;

/// `berth` with its configuration and data under `home`, as the user `dev`.
pub(crate) fn berth(home: &Path, args: &[&str]) -> Output {
    Command::new(berth_bin())
        .args(args)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("HOME", home)
        .env("USER", "dev")
        .env("DOCKER_CONFIG", home.join("docker"))
        .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run berth")
}

#[track_caller]
pub(crate) fn ok(home: &Path, args: &[&str]) -> Output {
    let out = berth(home, args);
    assert!(out.status.success(), "berth {args:?}: {}", stderr(&out));
    out
}

/// A busybox root filesystem imported as `image`.
pub(crate) fn import_busybox(home: &Path, image: &str) {
    let root = home.join("rootfs");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for a in ["sh", "echo", "true"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    write_file(root.join("etc/passwd"), b"root:x:0:0:root:/root:/bin/sh\n");
    ok(home, &["import", root.to_str().unwrap(), image]);
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn signatures(reg: &Registry, repo: &str, digest: &str) -> usize {
    let r = reg.http().get(&format!("/v2/{repo}/referrers/{digest}"));
    r.expect_status(200, "referrers");
    let v: Value = r.json();
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["artifactType"] == "application/vnd.cncf.notary.signature")
        .count()
}

#[test]
fn signing_is_on_after_init_and_a_role_policy_gates_pull_and_run() {
    let reg = Registry::start(RegistryOptions::new());
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let image = format!("{}/shop/app:v1", reg.host());
    import_busybox(home, &image);

    // Without a policy, pull says the image is not verified.
    ok(home, &["push", "-q", &image]);
    let out = ok(home, &["pull", &image]);
    assert!(
        stderr(&out).contains("no trust policy configured"),
        "{}",
        stderr(&out)
    );

    // Signing on: the next push makes a key and signs, the one after signs with no flag.
    let out = ok(home, &["trust", "init"]);
    assert!(stderr(&out).contains("signing on"), "{}", stderr(&out));
    let conf = std::fs::read_to_string(home.join("config/berth/berth.toml")).unwrap();
    assert!(conf.contains("sign_on_push = true"), "{conf}");
    let out = ok(home, &["push", &image]);
    let dev_key = format!("dev.{}", hostname());
    assert!(
        stderr(&out).contains(&format!("made signing key {dev_key:?}")),
        "{}",
        stderr(&out)
    );
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(signatures(&reg, "shop/app", &digest), 1);
    let out = ok(home, &["push", &image]);
    assert!(
        !stderr(&out).contains("made signing key"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("signed "), "{}", stderr(&out));
    assert_eq!(signatures(&reg, "shop/app", &digest), 2);

    // A role policy: a developer AND the CI must have signed.
    ok(home, &["cert", "generate-test", "ci.example"]);
    let subject = |cn: &str| format!("x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN={cn}");
    let policy = json!({
        "version": "berth.policy/v1",
        "trustStores": [format!("ca:{dev_key}"), "ca:ci.example"],
        "roles": {
            "dev": {"trustedIdentities": [subject(&dev_key)]},
            "ci": {"trustedIdentities": [subject("ci.example")]},
        },
        "rules": [{
            "name": "everything",
            "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": [format!("ca:{dev_key}"), "ca:ci.example"],
            "requirement": {"allOf": ["dev", "ci"]},
        }],
    });
    let policy_file = home.join("config/berth/policy.json");
    write_file(&policy_file, &serde_json::to_vec_pretty(&policy).unwrap());
    ok(home, &["policy", "check", policy_file.to_str().unwrap()]);

    // verify --policy explains: dev satisfied, ci missing.
    let out = berth(
        home,
        &["verify", "--policy", policy_file.to_str().unwrap(), &image],
    );
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("role dev: satisfied"), "{text}");
    assert!(text.contains("role ci: missing"), "{text}");

    // The local image is refused at run, before anything is unpacked or made.
    let run = |home: &Path, pull: &str| {
        berth(
            home,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--pull",
                pull,
                &image,
                "echo",
                "ran",
            ],
        )
    };
    let out = run(home, "never");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("refusing to run"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("role ci: missing"),
        "{}",
        stderr(&out)
    );
    let snapshots = home.join("data/berth/snapshots");
    let before = berth_test_support::walk_files(&snapshots).len();
    // Not in the store: pulled? No — refused before the pull.
    ok(home, &["rmi", &image]);
    let out = run(home, "missing");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is denied by the role policy"),
        "{}",
        stderr(&out)
    );
    let images = String::from_utf8_lossy(&ok(home, &["images", "-q"]).stdout).to_string();
    assert!(
        images.trim().is_empty(),
        "a refused image was stored: {images}"
    );
    assert_eq!(
        berth_test_support::walk_files(&snapshots).len(),
        before,
        "something was unpacked"
    );

    // The CI signs: pull and run pass.
    ok(
        home,
        &[
            "sign",
            "--key",
            "ci.example",
            &format!("{}/shop/app@{digest}", reg.host()),
        ],
    );
    let out = run(home, "missing");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ran");
    assert!(
        stderr(&out).contains("allowed by rule \"everything\""),
        "{}",
        stderr(&out)
    );
    let out = ok(
        home,
        &[
            "verify",
            "--format",
            "json",
            "--policy",
            policy_file.to_str().unwrap(),
            &image,
        ],
    );
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["allowed"], true, "{d}");
    assert_eq!(d["signersCounted"], 2, "{d}");

    // The rule also requires provenance from the source repository: refused until a signed
    // attestation names it. An abbreviated commit in the policy is a check error.
    let mut with_source = policy.clone();
    with_source["rules"][0]["requireSource"] = json!("github.com/acme/app@0123abc");
    write_file(
        &policy_file,
        &serde_json::to_vec_pretty(&with_source).unwrap(),
    );
    let out = berth(home, &["policy", "check", policy_file.to_str().unwrap()]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &stderr(&out);
    assert!(
        text.contains("requireSource") && text.contains("full commit"),
        "{text}"
    );
    with_source["rules"][0]["requireSource"] = json!("github.com/acme/app");
    write_file(
        &policy_file,
        &serde_json::to_vec_pretty(&with_source).unwrap(),
    );
    let out = run(home, "never");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no provenance attestation is attached"),
        "{}",
        stderr(&out)
    );
    let commit = "89abcdef0123456789abcdef0123456789abcdef";
    ok(
        home,
        &[
            "attest",
            "--source",
            &format!("https://github.com/acme/app@{commit}"),
            &format!("{}/shop/app@{digest}", reg.host()),
        ],
    );
    let out = run(home, "never");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = ok(
        home,
        &["verify", "--policy", policy_file.to_str().unwrap(), &image],
    );
    assert!(
        stderr(&out).contains(&format!("source: github.com/acme/app@{commit}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_trust_policy_gates_pull_by_digest() {
    let reg = Registry::start(RegistryOptions::new());
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let image = format!("{}/lib/base:v1", reg.host());
    import_busybox(home, &image);
    ok(home, &["push", "-q", &image]);
    ok(home, &["rmi", &image]);
    ok(home, &["cert", "generate-test", "rel.example", "--default"]);
    write_file(
        home.join("config/berth/trustpolicy.oci.json"),
        &serde_json::to_vec(&json!({
            "version": "1.0",
            "trustPolicies": [{
                "name": "all", "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:rel.example"], "trustedIdentities": ["*"],
            }],
        }))
        .unwrap(),
    );
    let out = berth(home, &["pull", &image]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no signature found"),
        "{}",
        stderr(&out)
    );
    ok(home, &["sign", &image]);
    let out = ok(home, &["pull", &image]);
    assert!(
        stderr(&out).contains("passed trust policy statement \"all\""),
        "{}",
        stderr(&out)
    );

    // Trust on first use: the repository's first signer is pinned; an image of it signed by
    // another trusted key is refused until the change is accepted.
    write_file(
        home.join("config/berth/berth.toml"),
        b"[trust]\npin_signers = true\n",
    );
    ok(home, &["cert", "generate-test", "other.example"]);
    let policy = home.join("config/berth/trustpolicy.oci.json");
    let text = std::fs::read_to_string(&policy).unwrap();
    write_file(
        &policy,
        text.replace(
            r#"["ca:rel.example"]"#,
            r#"["ca:rel.example","ca:other.example"]"#,
        )
        .as_bytes(),
    );
    ok(home, &["pull", "-q", &image]);
    let pins = String::from_utf8_lossy(&ok(home, &["trust", "pins"]).stdout).to_string();
    assert!(pins.contains("CN=rel.example"), "{pins}");
    let v2 = format!("{}/lib/base:v2", reg.host());
    ok(home, &["tag", &image, &v2]);
    // a second image of the repository (another config), signed by the other key
    let root = home.join("rootfs");
    write_file(root.join("etc/motd"), b"v2\n");
    ok(home, &["import", root.to_str().unwrap(), &v2]);
    ok(home, &["push", "-q", &v2]);
    ok(home, &["rmi", &v2]);
    ok(home, &["sign", "--key", "other.example", &v2]);
    let out = berth(home, &["pull", &v2]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the signing identity of")
            && stderr(&out).contains("berth trust accept"),
        "{}",
        stderr(&out)
    );
    ok(
        home,
        &["trust", "accept", &format!("{}/lib/base", reg.host())],
    );
    ok(home, &["pull", "-q", &v2]);
}
