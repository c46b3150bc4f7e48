//! `run_signer` with real signers against real registries: berth's signer (`berth sign`)
//! and notation pass every rule; signers that push nothing or fail are reported, not errors.

use std::time::Duration;

use berth_conformance::signing::registry::{
    self, NOTATION_COMMAND, SignedImage, SignerOptions, run_signer,
};
use berth_conformance::signing::signer::{HowPushed, RULES};
use berth_distribution::{BytesSource, Repository};
use berth_oci::Digest;
use berth_oci::oci_spec::image::{Descriptor, MediaType};
use berth_test_support::{DockerRegistry, Registry, RegistryOptions, requires_tool};
use berth_trust::keys::{KeySpec, SigningKey};
use berth_trust::{Certificate, EnvelopeFormat, SignOptions};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn run(host: &str, repository: &str, command: &str, key_spec: KeySpec) -> Vec<SignedImage> {
    run_with(host, repository, command, key_spec, Duration::from_secs(60))
}

fn run_with(
    host: &str,
    repository: &str,
    command: &str,
    key_spec: KeySpec,
    timeout: Duration,
) -> Vec<SignedImage> {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run_signer(&SignerOptions {
        client: crate::client(host, None),
        registry: host.into(),
        repository: repository.into(),
        command: command.into(),
        work_dir: dir.path().to_owned(),
        timeout,
        key_spec,
    }))
    .unwrap()
}

fn failures(images: &[SignedImage]) -> Vec<String> {
    let mut out = Vec::new();
    for i in images {
        if let Some(e) = &i.error {
            out.push(format!(
                "{}: {e}\nstdout: {}\nstderr: {}",
                i.reference, i.stdout, i.stderr
            ));
        }
        for s in &i.signatures {
            for r in s.rules.iter().filter(|r| !r.passed) {
                out.push(format!(
                    "{} {}: {}: expected {}; got {}",
                    i.reference, s.digest, r.id, r.expected, r.actual
                ));
            }
        }
    }
    out
}

fn berth_command(envelope: &str) -> String {
    registry::berth_command(&berth_test_support::berth_bin(), envelope)
}

#[test]
fn berth_sign_passes_every_rule_through_the_referrers_api() {
    let reg = Registry::start(RegistryOptions::new());
    for envelope in ["jws", "cose"] {
        let images = run(
            &reg.host(),
            &format!("signer/berth-{envelope}"),
            &berth_command(envelope),
            KeySpec::EcP256,
        );
        assert_eq!(images.len(), 2, "an image and an index");
        assert!(
            failures(&images).is_empty(),
            "{}",
            failures(&images).join("\n")
        );
        for i in &images {
            assert_eq!(i.exit_code, Some(0));
            assert_eq!(i.signatures.len(), 1, "{}", i.reference);
            assert_eq!(i.signatures[0].how_pushed, HowPushed::ReferrersApi);
            assert_eq!(i.signatures[0].rules.len(), RULES.len());
        }
    }
}

#[test]
fn berth_and_notation_pass_every_rule_through_the_tag_fallback() {
    requires_tool!("docker-registry", "notation");
    let reg = DockerRegistry::start(None);
    for (repo, command) in [
        ("signer/berth", berth_command("jws")),
        ("signer/notation", NOTATION_COMMAND.to_owned()),
    ] {
        let images = run(&reg.host(), repo, &command, KeySpec::EcP256);
        assert!(
            failures(&images).is_empty(),
            "{repo}: {}",
            failures(&images).join("\n")
        );
        for i in &images {
            assert_eq!(i.signatures.len(), 1, "{}", i.reference);
            assert_eq!(i.signatures[0].how_pushed, HowPushed::TagFallback);
        }
    }
}

#[test]
fn notation_passes_every_rule() {
    requires_tool!("notation");
    let reg = Registry::start(RegistryOptions::new());
    for (spec, format) in [
        (KeySpec::EcP256, "jws"),
        (KeySpec::EcP384, "jws"),
        (KeySpec::EcP256, "cose"),
    ] {
        let images = run(
            &reg.host(),
            &format!(
                "signer/notation-{format}-{}",
                spec.to_string().replace(' ', "").to_lowercase()
            ),
            &format!(
                "notation sign --insecure-registry --signature-format {format} --key conformance {{image}}"
            ),
            spec,
        );
        assert!(
            failures(&images).is_empty(),
            "{}",
            failures(&images).join("\n")
        );
        for i in &images {
            assert_eq!(i.signatures.len(), 1, "{}: {}", i.reference, i.stderr);
            assert_eq!(i.signatures[0].how_pushed, HowPushed::ReferrersApi);
            let rule = |id: &str| {
                i.signatures[0]
                    .rules
                    .iter()
                    .find(|r| r.id == id)
                    .unwrap()
                    .actual
                    .clone()
            };
            // notation 1.3 writes the v1.1.0 form (config.mediaType), not artifactType
            assert!(rule("manifest.type").contains("the v1.1.0 form"));
            eprintln!(
                "notation {format}, {spec}: {}; {}; alg {}",
                rule("manifest.type"),
                rule("envelope.time-format"),
                rule("envelope.alg")
            );
        }
    }
}

#[test]
fn signers_that_fail_or_push_nothing_are_reported() {
    let reg = Registry::start(RegistryOptions::new());
    let images = run(
        &reg.host(),
        "signer/none",
        "echo signed {image}",
        KeySpec::EcP256,
    );
    for i in &images {
        assert!(i.signatures.is_empty());
        assert_eq!(i.exit_code, Some(0));
        assert!(i.stdout.contains(&i.reference), "{}", i.stdout);
        assert!(
            i.error.as_deref().unwrap().contains("pushed no signature"),
            "{:?}",
            i.error
        );
    }
    let images = run(
        &reg.host(),
        "signer/exit",
        "echo broken >&2; exit 3",
        KeySpec::EcP256,
    );
    for i in &images {
        assert_eq!(i.exit_code, Some(3));
        assert_eq!(i.stderr.trim(), "broken");
        assert!(
            i.error.as_deref().unwrap().contains("exited with 3"),
            "{:?}",
            i.error
        );
    }
}

#[test]
fn a_signer_past_its_deadline_is_killed() {
    let reg = Registry::start(RegistryOptions::new());
    let t = std::time::Instant::now();
    let images = run_with(
        &reg.host(),
        "signer/slow",
        "sleep 60 & sleep 60",
        KeySpec::EcP256,
        Duration::from_secs(2),
    );
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    for i in &images {
        assert_eq!(i.exit_code, None);
        assert!(
            i.error.as_deref().unwrap().contains("did not finish"),
            "{:?}",
            i.error
        );
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the double reads what its test set for it"
)]
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Not a test of its own: the broken signer that `broken_signers_fail_the_rule_they_break`
/// runs as a process (this test binary, run again with `BERTH_SIGNER_DOUBLE` set). It signs
/// the image with berth-trust, breaks one thing, and pushes the signature with the registry
/// client, as a signer would. Without the variable it does nothing.
#[test]
fn signer_double() {
    let Some(mode) = env("BERTH_SIGNER_DOUBLE") else {
        return;
    };
    let image = env("BERTH_DOUBLE_IMAGE").unwrap();
    let (name, digest) = image.split_once('@').unwrap();
    let (host, repo) = name.split_once('/').unwrap();
    let p = crate::signer::Pki {
        key: SigningKey::from_pem_or_der(&std::fs::read(env("BERTH_DOUBLE_KEY").unwrap()).unwrap())
            .unwrap(),
        chain: Certificate::parse_many(&std::fs::read(env("BERTH_DOUBLE_CERT").unwrap()).unwrap())
            .unwrap(),
    };
    let client = crate::client(host, None);
    let repository = Repository::new(host, repo).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let m = client
            .get_manifest(&repository, digest, &[OCI_MANIFEST, OCI_INDEX])
            .await
            .unwrap();
        let subject = Descriptor::new(
            MediaType::from(m.media_type.as_str()),
            m.bytes.len() as u64,
            digest
                .parse::<berth_oci::oci_spec::image::Digest>()
                .unwrap(),
        );
        let opts = SignOptions::new(EnvelopeFormat::Jws);
        let (manifest, envelope) = match mode.as_str() {
            "drop-thumbprint" => {
                let (m, e) = crate::signer::berth_signs(&subject, &p, &opts);
                let m = crate::signer::manifest_edit(&m, |v| {
                    v["annotations"]
                        .as_object_mut()
                        .unwrap()
                        .remove("io.cncf.notary.x509chain.thumbprint#S256");
                });
                (m, e)
            }
            "swap-subject" => crate::signer::jws_edit(&subject, &p, &opts, |_, _, payload| {
                payload["targetArtifact"]["digest"] =
                    serde_json::json!(Digest::sha256_of(b"another image").to_string());
            }),
            "rewrite-cty" => crate::signer::jws_edit(&subject, &p, &opts, |protected, _, _| {
                protected.insert("cty".into(), serde_json::json!("application/json"));
            }),
            other => panic!("unknown double {other}"),
        };
        for blob in [envelope, b"{}".to_vec()] {
            client
                .push_blob(
                    &repository,
                    &Digest::sha256_of(&blob),
                    blob.len() as u64,
                    BytesSource(blob.into()),
                )
                .await
                .unwrap();
        }
        let d = Digest::sha256_of(&manifest);
        client
            .put_manifest(&repository, d.as_str(), &manifest, OCI_MANIFEST)
            .await
            .unwrap();
        println!("{d}");
    });
}

#[test]
fn broken_signers_fail_the_rule_they_break() {
    let reg = Registry::start(RegistryOptions::new());
    let exe = std::env::current_exe().unwrap();
    for (mode, rule) in [
        ("drop-thumbprint", "manifest.thumbprints"),
        ("swap-subject", "payload.target"),
        ("rewrite-cty", "envelope.cty"),
    ] {
        let command = format!(
            "BERTH_SIGNER_DOUBLE={mode} BERTH_DOUBLE_IMAGE={{image}} BERTH_DOUBLE_KEY={{key}} \
             BERTH_DOUBLE_CERT={{cert}} {} signer_run::signer_double --exact --quiet",
            exe.display()
        );
        let images = run(
            &reg.host(),
            &format!("signer/{mode}"),
            &command,
            KeySpec::EcP256,
        );
        for i in &images {
            assert_eq!(i.exit_code, Some(0), "{mode}: {}", i.stderr);
            assert_eq!(i.signatures.len(), 1, "{mode}: {}", i.stdout);
            let failed: Vec<&str> = i.signatures[0]
                .rules
                .iter()
                .filter(|r| !r.passed)
                .map(|r| r.id.as_str())
                .collect();
            assert_eq!(failed, [rule], "{mode} on {}", i.reference);
        }
    }
}
