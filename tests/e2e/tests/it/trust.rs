//! Notary Project signatures in registries, against notation v1.3.2 as the proof: notation
//! signs and `berth verify` verifies (with notation's own configuration directory), a
//! signature copied onto another image fails, an untrusted signer fails, and junk signature
//! manifests are evaluated up to the limit and the rest ignored with a note. Each runs
//! against `berth registry serve` (referrers API) and docker-registry 2.8 (the
//! `sha256-<hex>` tag fallback).
//!
//! notation is found on PATH (`BERTH_NOTATION` may name the binary); scripts/test installs
//! it (`install_notation`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use berth_test_support::{
    Digest, DockerRegistry, Http, Registry, RegistryOptions, berth_bin, random_bytes, skip_or_fail,
    tool_available, write_file,
};
use serde_json::{Value, json};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const SIGNATURE: &str = "application/vnd.cncf.notary.signature";
const JWS: &str = "application/jose+json";
/// The subject `notation cert generate-test NAME` gives its certificate.
pub(crate) const TEST_SUBJECT: &str = "C=US, ST=WA, L=Seattle, O=Notary, CN=";

/// The notation binary, or `None` when the test should return (skipped).
pub(crate) fn notation_bin() -> Option<PathBuf> {
    #[expect(clippy::disallowed_methods, reason = "tests read their environment")]
    if let Some(p) = std::env::var_os("BERTH_NOTATION").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if tool_available("notation") {
        return Some(PathBuf::from("notation"));
    }
    if skip_or_fail("the tool `notation` (v1.3.2) is not on PATH and BERTH_NOTATION is unset") {
        return None;
    }
    None
}

/// A registry of either kind, and a client for it.
pub(crate) enum Peer {
    Berth(Box<Registry>),
    Docker(DockerRegistry),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Berth,
    Docker,
}

impl Peer {
    pub(crate) fn start(kind: Kind) -> Peer {
        match kind {
            Kind::Berth => Peer::Berth(Box::new(Registry::start(RegistryOptions::new()))),
            Kind::Docker => Peer::Docker(DockerRegistry::start(None)),
        }
    }

    pub(crate) fn host(&self) -> String {
        match self {
            Peer::Berth(r) => r.host(),
            Peer::Docker(r) => r.host(),
        }
    }

    pub(crate) fn http(&self) -> Http {
        match self {
            Peer::Berth(r) => r.http(),
            Peer::Docker(r) => Http::new(&format!("http://{}", r.host()), None),
        }
    }

    fn has_referrers_api(&self) -> bool {
        matches!(self, Peer::Berth(_))
    }

    /// The signature manifests the registry lists for `subject`, in its order: the referrers
    /// API, else the tag index.
    fn listed_signatures(&self, repo: &str, subject: &Digest) -> Vec<String> {
        let h = self.http();
        let v = if self.has_referrers_api() {
            let r = h.get(&format!("/v2/{repo}/referrers/{subject}"));
            r.expect_status(200, "referrers");
            r.json()
        } else {
            let r = h.request(
                "GET",
                &format!("/v2/{repo}/manifests/sha256-{}", subject.hex()),
                &[("accept", OCI_INDEX)],
                None,
            );
            r.expect_status(200, "referrers tag index");
            r.json()
        };
        v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["artifactType"] == SIGNATURE)
            .map(|d| d["digest"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// An image pushed to `repo:tag`: its digest.
pub(crate) fn push_image(h: &Http, repo: &str, tag: &str, seed: u64) -> Digest {
    let layer = random_bytes(seed, 512);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [Digest::sha256_of(&layer).to_string()]},
    }))
    .unwrap();
    let cd = h.push_blob(repo, &config);
    let ld = h.push_blob(repo, &layer);
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.to_string(), "size": layer.len()}],
    }))
    .unwrap();
    h.put_manifest(repo, tag, OCI_MANIFEST, &m)
        .expect_status(201, "push image manifest");
    Digest::sha256_of(&m)
}

/// A notation configuration directory of its own (`XDG_CONFIG_HOME`), which berth reads too
/// when it has no configuration of its own.
pub(crate) struct Notation {
    bin: PathBuf,
    home: tempfile::TempDir,
}

impl Notation {
    pub(crate) fn new(bin: &Path) -> Notation {
        Notation {
            bin: bin.to_owned(),
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn xdg(&self) -> &Path {
        self.home.path()
    }

    pub(crate) fn dir(&self) -> PathBuf {
        self.xdg().join("notation")
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .env("XDG_CONFIG_HOME", self.xdg())
            .env("HOME", self.xdg())
            .env("DOCKER_CONFIG", self.xdg().join("docker"))
            .output()
            .expect("run notation")
    }

    #[track_caller]
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "notation {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `notation cert generate-test NAME` (an RSA key and a self-signed certificate in
    /// notation's key list and in the trust store `ca:NAME`).
    pub(crate) fn generate_test(&self, name: &str) {
        self.ok(&["cert", "generate-test", name]);
    }

    /// The PEM certificate of a generated test key.
    pub(crate) fn certificate(&self, name: &str) -> PathBuf {
        self.dir().join(format!("localkeys/{name}.crt"))
    }

    /// Write the trust policy (notation v1.3.2 reads `trustpolicy.json`).
    pub(crate) fn policy(&self, stores: &[&str], identities: &[&str]) {
        let p = json!({
            "version": "1.0",
            "trustPolicies": [{
                "name": "berth-test",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": stores,
                "trustedIdentities": identities,
            }]
        });
        std::fs::create_dir_all(self.dir()).unwrap();
        write_file(
            self.dir().join("trustpolicy.json"),
            &serde_json::to_vec_pretty(&p).unwrap(),
        );
    }

    /// `notation sign` with `key`, storing through the referrers API when the registry has
    /// one (`--force-referrers-tag=false`), else the tag schema.
    pub(crate) fn sign(&self, key: &str, image: &str, format: &str) {
        self.ok(&[
            "sign",
            "--insecure-registry",
            "--force-referrers-tag=false",
            "--key",
            key,
            "--signature-format",
            format,
            image,
        ]);
    }

    pub(crate) fn verify(&self, image: &str) -> Output {
        self.cmd(&["verify", "--insecure-registry", image])
    }
}

/// `berth verify` with notation's configuration directory as the only trust configuration.
pub(crate) fn berth_verify(n: &Notation, image: &str, extra: &[&str]) -> (Output, Value) {
    let out = Command::new(berth_bin())
        .arg("verify")
        .arg("--format")
        .arg("json")
        .args(extra)
        .arg(image)
        .env("XDG_CONFIG_HOME", n.xdg())
        .env("HOME", n.xdg())
        .env("XDG_CACHE_HOME", n.xdg().join(".cache"))
        .env("DOCKER_CONFIG", n.xdg().join("docker"))
        .env("REGISTRY_AUTH_FILE", n.xdg().join("auth.json"))
        .output()
        .expect("run berth verify");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "berth verify printed no JSON ({e}): stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report)
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(crate) fn failures(report: &Value) -> Vec<String> {
    report["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["failure"].as_str().map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------------------------------

fn notation_signs_berth_verifies(kind: Kind) {
    let Some(bin) = notation_bin() else { return };
    let peer = Peer::start(kind);
    let h = peer.http();
    let digest = push_image(&h, "app", "v1", 1);
    let n = Notation::new(&bin);
    n.generate_test("alice.example");
    n.policy(
        &["ca:alice.example"],
        &[&format!("x509.subject: {TEST_SUBJECT}alice.example")],
    );
    let image = format!("{}/app@{digest}", peer.host());
    n.sign("alice.example", &image, "jws");
    n.sign("alice.example", &image, "cose");
    assert!(
        n.verify(&image).status.success(),
        "notation verifies its own"
    );

    let (out, report) = berth_verify(&n, &image, &[]);
    assert!(out.status.success(), "berth verify: {}", stderr(&out));
    assert_eq!(report["passed"], true);
    assert_eq!(report["target"]["digest"], digest.to_string());
    assert_eq!(report["trustPolicy"]["statement"], "berth-test");
    assert!(
        report["trustPolicy"]["file"]
            .as_str()
            .unwrap()
            .ends_with("notation/trustpolicy.json"),
        "{report}"
    );
    let sigs = report["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2, "{report}");
    let mut formats: Vec<&str> = sigs
        .iter()
        .map(|s| s["envelopeMediaType"].as_str().unwrap())
        .collect();
    formats.sort_unstable();
    assert_eq!(formats, ["application/cose", JWS]);
    for s in sigs {
        assert_eq!(s["passed"], true, "{s}");
        assert!(
            s["signer"].as_str().unwrap().contains("CN=alice.example"),
            "{s}"
        );
        let steps: Vec<&str> = s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|st| st["step"].as_str().unwrap())
            .collect();
        assert_eq!(
            steps,
            [
                "integrity",
                "authenticity",
                "expiry",
                "authenticTimestamp",
                "revocation"
            ]
        );
    }

    // by tag: resolved to the digest, with a warning; text output names every step
    let tagged = format!("{}/app:v1", peer.host());
    let out = Command::new(berth_bin())
        .args(["verify", &tagged])
        .env("XDG_CONFIG_HOME", n.xdg())
        .env("HOME", n.xdg())
        .env("XDG_CACHE_HOME", n.xdg().join(".cache"))
        .env("DOCKER_CONFIG", n.xdg().join("docker"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        stderr(&out).contains("rather than by tag"),
        "{}",
        stderr(&out)
    );
    assert!(
        text.contains(&format!("verified: {}/app@{digest}", peer.host())),
        "{text}"
    );
    assert!(text.contains("signer: "), "{text}");
    assert!(text.contains("authenticity (enforce): passed"), "{text}");
}

#[test]
fn notation_signs_berth_verifies_berth_registry() {
    notation_signs_berth_verifies(Kind::Berth);
}

#[test]
fn notation_signs_berth_verifies_docker_registry() {
    notation_signs_berth_verifies(Kind::Docker);
}

// ---------------------------------------------------------------------------------------

/// A signature manifest for `subject` holding the envelope `layer` (a descriptor JSON), in the
/// specification's form (notation's): the signature type as `config.mediaType`.
fn signature_manifest(h: &Http, repo: &str, subject: &Value, layer: &Value) -> Vec<u8> {
    let empty = h.push_blob(repo, b"{}");
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": SIGNATURE, "digest": empty.to_string(), "size": 2},
        "layers": [layer],
        "subject": subject,
    }))
    .unwrap()
}

/// Push a signature manifest by digest; on a registry without the referrers API, add it to
/// the subject's tag index as a client must.
fn push_signature_manifest(peer: &Peer, repo: &str, subject: &Digest, manifest: &[u8]) -> Digest {
    let h = peer.http();
    let d = Digest::sha256_of(manifest);
    h.put_manifest(repo, d.as_ref(), OCI_MANIFEST, manifest)
        .expect_status(201, "push signature manifest");
    if !peer.has_referrers_api() {
        add_to_tag_index(&h, repo, subject, &[(d.clone(), manifest.len())]);
    }
    d
}

fn add_to_tag_index(h: &Http, repo: &str, subject: &Digest, entries: &[(Digest, usize)]) {
    let tag = format!("sha256-{}", subject.hex());
    let r = h.request(
        "GET",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("accept", OCI_INDEX)],
        None,
    );
    let mut index = if r.status == 200 {
        r.json()
    } else {
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
    };
    for (d, size) in entries {
        index["manifests"].as_array_mut().unwrap().push(json!({
            "mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": size, "artifactType": SIGNATURE,
        }));
    }
    h.put_manifest(repo, &tag, OCI_INDEX, &serde_json::to_vec(&index).unwrap())
        .expect_status(201, "push referrers tag index");
}

pub(crate) fn get_json(h: &Http, repo: &str, digest: &str) -> (Value, usize) {
    let r = h.request(
        "GET",
        &format!("/v2/{repo}/manifests/{digest}"),
        &[("accept", OCI_MANIFEST)],
        None,
    );
    r.expect_status(200, "get manifest");
    (r.json(), r.body.len())
}

fn copied_signature_fails(kind: Kind) {
    let Some(bin) = notation_bin() else { return };
    let peer = Peer::start(kind);
    let h = peer.http();
    let signed = push_image(&h, "app", "signed", 2);
    let other = push_image(&h, "app", "other", 3);
    let n = Notation::new(&bin);
    n.generate_test("alice.example");
    n.policy(&["ca:alice.example"], &["*"]);
    n.sign(
        "alice.example",
        &format!("{}/app@{signed}", peer.host()),
        "jws",
    );
    let sigs = peer.listed_signatures("app", &signed);
    assert_eq!(sigs.len(), 1);
    let (sig, sig_size) = get_json(&h, "app", &sigs[0]);

    // the signature manifest re-made with the other image as subject, same envelope
    let (_, other_size) = get_json(&h, "app", other.as_ref());
    let subject =
        json!({"mediaType": OCI_MANIFEST, "digest": other.to_string(), "size": other_size});
    let copy = signature_manifest(&h, "app", &subject, &sig["layers"][0]);
    push_signature_manifest(&peer, "app", &other, &copy);
    let image = format!("{}/app@{other}", peer.host());
    let (out, report) = berth_verify(&n, &image, &[]);
    assert!(
        !out.status.success(),
        "a copied signature must fail: {report}"
    );
    assert_eq!(report["passed"], false);
    let f = failures(&report);
    assert_eq!(f.len(), 1, "{report}");
    assert!(
        f[0].contains(&format!("the signature is over {signed}"))
            && f[0].contains(&format!("not over {other}")),
        "{}",
        f[0]
    );
    assert!(
        stderr(&out).contains("failed signature verification"),
        "{}",
        stderr(&out)
    );
    assert!(
        !n.verify(&image).status.success(),
        "notation refuses it too"
    );

    if !peer.has_referrers_api() {
        // the original signature manifest (subject: the signed image) listed in the other
        // image's tag index, which anyone with push rights can write
        let third = push_image(&h, "app", "third", 4);
        add_to_tag_index(
            &h,
            "app",
            &third,
            &[(Digest::parse(&sigs[0]).unwrap(), sig_size)],
        );
        let (out, report) = berth_verify(&n, &format!("{}/app@{third}", peer.host()), &[]);
        assert!(!out.status.success());
        let f = failures(&report);
        assert_eq!(f.len(), 1, "{report}");
        assert!(
            f[0].contains(&format!("subject is {signed}"))
                && f[0].contains("not the verified image"),
            "{}",
            f[0]
        );
    }
    // the signed image itself still verifies
    let (out, _) = berth_verify(&n, &format!("{}/app@{signed}", peer.host()), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn copied_signature_fails_berth_registry() {
    copied_signature_fails(Kind::Berth);
}

#[test]
fn copied_signature_fails_docker_registry() {
    copied_signature_fails(Kind::Docker);
}

// ---------------------------------------------------------------------------------------

fn untrusted_signer_fails(kind: Kind) {
    let Some(bin) = notation_bin() else { return };
    let peer = Peer::start(kind);
    let h = peer.http();
    let digest = push_image(&h, "app", "v1", 5);
    let image = format!("{}/app@{digest}", peer.host());
    // mallory signs with a key of her own
    let mallory = Notation::new(&bin);
    mallory.generate_test("mallory.example");
    mallory.sign("mallory.example", &image, "jws");
    // the verifier trusts only alice
    let n = Notation::new(&bin);
    n.generate_test("alice.example");
    n.policy(&["ca:alice.example"], &["*"]);
    let (out, report) = berth_verify(&n, &image, &[]);
    assert!(!out.status.success(), "{report}");
    let f = failures(&report);
    assert_eq!(f.len(), 1, "{report}");
    assert!(
        f[0].contains("Authenticity")
            && f[0].contains("does not lead to a certificate of the policy's trust stores"),
        "{}",
        f[0]
    );
    assert!(
        !n.verify(&image).status.success(),
        "notation refuses it too"
    );

    // mallory's certificate in a trusted store, but only alice's subject is a trusted identity
    let store = n.dir().join("truststore/x509/ca/mallory");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::copy(mallory.certificate("mallory.example"), store.join("m.crt")).unwrap();
    n.policy(
        &["ca:alice.example", "ca:mallory"],
        &[&format!("x509.subject: {TEST_SUBJECT}alice.example")],
    );
    let (out, report) = berth_verify(&n, &image, &[]);
    assert!(!out.status.success(), "{report}");
    let f = failures(&report);
    assert!(
        f[0].contains("CN=mallory.example") && f[0].contains("is not a trusted identity"),
        "{}",
        f[0]
    );
    assert!(
        !n.verify(&image).status.success(),
        "notation refuses it too"
    );
}

#[test]
fn untrusted_signer_fails_berth_registry() {
    untrusted_signer_fails(Kind::Berth);
}

#[test]
fn untrusted_signer_fails_docker_registry() {
    untrusted_signer_fails(Kind::Docker);
}

// ---------------------------------------------------------------------------------------

const JUNK: usize = 60;

fn junk_signatures_are_limited(kind: Kind) {
    let Some(bin) = notation_bin() else { return };
    let peer = Peer::start(kind);
    let h = peer.http();
    let digest = push_image(&h, "app", "v1", 6);
    let image = format!("{}/app@{digest}", peer.host());
    let n = Notation::new(&bin);
    n.generate_test("alice.example");
    n.policy(&["ca:alice.example"], &["*"]);
    n.sign("alice.example", &image, "jws");
    let good = peer.listed_signatures("app", &digest);
    assert_eq!(good.len(), 1);

    // 60 signature manifests whose envelopes are junk, pushed by anyone with push rights
    let (_, size) = get_json(&h, "app", digest.as_ref());
    let subject = json!({"mediaType": OCI_MANIFEST, "digest": digest.to_string(), "size": size});
    let mut entries = Vec::new();
    for i in 0..JUNK {
        let junk = random_bytes(1000 + i as u64, 200);
        let d = h.push_blob("app", &junk);
        let layer = json!({"mediaType": JWS, "digest": d.to_string(), "size": junk.len()});
        let m = signature_manifest(&h, "app", &subject, &layer);
        let md = Digest::sha256_of(&m);
        h.put_manifest("app", md.as_ref(), OCI_MANIFEST, &m)
            .expect_status(201, "push junk signature");
        entries.push((md, m.len()));
    }
    if !peer.has_referrers_api() {
        add_to_tag_index(&h, "app", &digest, &entries);
    }
    let listed = peer.listed_signatures("app", &digest);
    assert_eq!(listed.len(), JUNK + 1);

    // within the default limit (100): all evaluated, the good one passes
    let (out, report) = berth_verify(&n, &image, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(report["signatures"].as_array().unwrap().len(), JUNK + 1);
    assert_eq!(report["ignored"], 0);
    let f = failures(&report);
    assert_eq!(f.len(), JUNK, "{report}");
    assert!(f.iter().all(|f| f.starts_with("Integrity")), "{f:?}");

    // a limit of 10: ten evaluated in the registry's order, the rest ignored and said so;
    // the image passes exactly when the good signature is among the ten
    let (out, report) = berth_verify(&n, &image, &["--max-signatures", "10"]);
    assert_eq!(report["signatures"].as_array().unwrap().len(), 10);
    assert_eq!(report["ignored"], JUNK + 1 - 10);
    let within = listed.iter().take(10).any(|d| *d == good[0]);
    assert_eq!(out.status.success(), within, "{report}");
    let text = Command::new(berth_bin())
        .args(["verify", "--max-signatures", "10", &image])
        .env("XDG_CONFIG_HOME", n.xdg())
        .env("HOME", n.xdg())
        .env("XDG_CACHE_HOME", n.xdg().join(".cache"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains(&format!("{} more signatures ignored", JUNK + 1 - 10)),
        "{stdout}"
    );

    // an envelope over 4 MiB is refused from its descriptor
    let big = random_bytes(77, 4 * 1024 * 1024 + 1);
    let bd = h.push_blob("app", &big);
    let layer = json!({"mediaType": JWS, "digest": bd.to_string(), "size": big.len()});
    let m = signature_manifest(&h, "app", &subject, &layer);
    let big_sig = push_signature_manifest(&peer, "app", &digest, &m);
    let (out, report) = berth_verify(&n, &image, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sig = report["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["digest"] == big_sig.to_string())
        .unwrap_or_else(|| panic!("{report}"))
        .clone();
    assert!(
        sig["failure"]
            .as_str()
            .unwrap()
            .contains("more than the 4194304 bytes a signature may have"),
        "{sig}"
    );
}

#[test]
fn junk_signatures_are_limited_berth_registry() {
    junk_signatures_are_limited(Kind::Berth);
}

#[test]
fn junk_signatures_are_limited_docker_registry() {
    junk_signatures_are_limited(Kind::Docker);
}

// ---------------------------------------------------------------------------------------

/// The OCI 1.1 artifact form of a signature manifest (`artifactType` the signature type, the
/// empty config) is listed and verified too, beside the specification's form notation writes.
fn artifact_type_form_is_read(kind: Kind) {
    let Some(bin) = notation_bin() else { return };
    let peer = Peer::start(kind);
    let h = peer.http();
    let signed = push_image(&h, "app", "v1", 7);
    let n = Notation::new(&bin);
    n.generate_test("alice.example");
    n.policy(&["ca:alice.example"], &["*"]);
    // notation signs a throwaway tag of the same image in another repository, so that the
    // image under test has only the rewritten signature
    let digest_in_other = push_image(&h, "scratch", "v1", 7);
    assert_eq!(digest_in_other, signed);
    n.sign(
        "alice.example",
        &format!("{}/scratch@{signed}", peer.host()),
        "jws",
    );
    let sigs = peer.listed_signatures("scratch", &signed);
    let (sig, _) = get_json(&h, "scratch", &sigs[0]);
    let layer = &sig["layers"][0];
    let envelope = h.get_verified_blob(
        "scratch",
        &Digest::parse(layer["digest"].as_str().unwrap()).unwrap(),
    );
    h.push_blob("app", &envelope);
    assert_eq!(sig["config"]["mediaType"], SIGNATURE, "notation's form");
    let config = h.push_blob("app", b"{}");
    let other_form = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SIGNATURE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config.to_string(), "size": 2},
        "layers": [layer],
        "subject": sig["subject"],
    }))
    .unwrap();
    let d = push_signature_manifest(&peer, "app", &signed, &other_form);
    assert_eq!(peer.listed_signatures("app", &signed), [d.to_string()]);
    let (out, report) = berth_verify(&n, &format!("{}/app@{signed}", peer.host()), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(report["signatures"][0]["digest"], d.to_string());
    assert_eq!(report["signatures"][0]["passed"], true);
}

#[test]
fn artifact_type_form_is_read_berth_registry() {
    artifact_type_form_is_read(Kind::Berth);
}

#[test]
fn artifact_type_form_is_read_docker_registry() {
    artifact_type_form_is_read(Kind::Docker);
}

// ---------------------------------------------------------------------------------------

/// `berth` with its configuration (keys, trust store, trust policy), cache and data (the
/// store, the vulnerability database) under `xdg`: never the machine's `/var/lib/berth`,
/// even as root.
pub(crate) fn berth(xdg: &Path, args: &[&str]) -> Output {
    Command::new(berth_bin())
        .args(args)
        .env("XDG_CONFIG_HOME", xdg)
        .env("XDG_DATA_HOME", xdg.join("data"))
        .env("HOME", xdg)
        .env("XDG_CACHE_HOME", xdg.join(".cache"))
        .env("DOCKER_CONFIG", xdg.join("docker"))
        .env("REGISTRY_AUTH_FILE", xdg.join("auth.json"))
        .output()
        .expect("run berth")
}

#[track_caller]
pub(crate) fn berth_ok(xdg: &Path, args: &[&str]) -> String {
    let out = berth(xdg, args);
    assert!(
        out.status.success(),
        "berth {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn berth_signs_notation_verifies(kind: Kind) {
    let Some(bin) = notation_bin() else { return };
    let peer = Peer::start(kind);
    let h = peer.http();
    // berth's key and test certificate; notation trusts that certificate and nothing else
    let n = Notation::new(&bin);
    berth_ok(
        n.xdg(),
        &["cert", "generate-test", "bob.example", "--default"],
    );
    let cert = n
        .xdg()
        .join("berth/truststore/x509/ca/bob.example/bob.example.crt");
    let store = n.dir().join("truststore/x509/ca/bob");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::copy(&cert, store.join("bob.crt")).unwrap();
    n.policy(
        &["ca:bob"],
        &[&format!("x509.subject: {TEST_SUBJECT}bob.example")],
    );
    for (i, envelope) in ["jws", "cose"].into_iter().enumerate() {
        let tag = format!("v{i}");
        let digest = push_image(&h, "app", &tag, 10 + i as u64);
        // by tag: resolved, signed by digest, with a warning
        let out = berth(
            n.xdg(),
            &[
                "sign",
                "--envelope",
                envelope,
                &format!("{}/app:{tag}", peer.host()),
            ],
        );
        assert!(out.status.success(), "berth sign: {}", stderr(&out));
        assert!(
            stderr(&out).contains("rather than by tag"),
            "{}",
            stderr(&out)
        );
        let sig = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(
            peer.listed_signatures("app", &digest),
            std::slice::from_ref(&sig)
        );
        let (m, _) = get_json(&h, "app", &sig);
        assert_eq!(
            m["config"]["mediaType"], SIGNATURE,
            "the specification's form"
        );
        assert_eq!(m["subject"]["digest"], digest.to_string());
        let want = if envelope == "jws" {
            JWS
        } else {
            "application/cose"
        };
        assert_eq!(m["layers"][0]["mediaType"], want);
        assert!(
            m["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"].is_string(),
            "{m}"
        );

        let image = format!("{}/app@{digest}", peer.host());
        let v = n.verify(&image);
        assert!(
            v.status.success(),
            "notation verify of berth's {envelope} signature: {}{}",
            String::from_utf8_lossy(&v.stdout),
            stderr(&v)
        );
        // berth verifies it too, with notation's configuration (berth has no policy)
        let (out, report) = berth_verify(&n, &image, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(report["signatures"][0]["envelopeMediaType"], want);
    }
    // an expired signature fails both tools (signed with --expiry 1s, verified 2 s later)
    let digest = push_image(&h, "app", "exp", 20);
    let image = format!("{}/app@{digest}", peer.host());
    berth_ok(n.xdg(), &["sign", "--expiry", "1s", &image]);
    let later = std::time::Instant::now() + std::time::Duration::from_secs(2);
    berth_test_support::wait_until(std::time::Duration::from_secs(5), || {
        std::time::Instant::now() >= later
    });
    assert!(!n.verify(&image).status.success(), "notation refuses it");
    let (out, report) = berth_verify(&n, &image, &[]);
    assert!(!out.status.success());
    assert!(failures(&report)[0].contains("expired"), "{report}");
}

#[test]
fn berth_signs_notation_verifies_berth_registry() {
    berth_signs_notation_verifies(Kind::Berth);
}

#[test]
fn berth_signs_notation_verifies_docker_registry() {
    berth_signs_notation_verifies(Kind::Docker);
}

/// berth's own trust policy, when there is one, is used instead of notation's; a signature
/// made with notation's RSA key imported into berth verifies.
#[test]
fn berth_configuration_comes_first() {
    let Some(bin) = notation_bin() else { return };
    let peer = Peer::start(Kind::Berth);
    let h = peer.http();
    let digest = push_image(&h, "app", "v1", 30);
    let image = format!("{}/app@{digest}", peer.host());
    let n = Notation::new(&bin);
    n.generate_test("carol.example");
    n.policy(&["ca:carol.example"], &["*"]);
    let key = n.dir().join("localkeys/carol.example.key");
    berth_ok(
        n.xdg(),
        &[
            "key",
            "import",
            "carol",
            "--key",
            key.to_str().unwrap(),
            "--cert",
            n.certificate("carol.example").to_str().unwrap(),
        ],
    );
    berth_ok(n.xdg(), &["sign", "--key", "carol", &image]);
    assert!(n.verify(&image).status.success());
    let (out, report) = berth_verify(&n, &image, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        report["trustPolicy"]["file"]
            .as_str()
            .unwrap()
            .ends_with("notation/trustpolicy.json")
    );
    // berth's own policy trusts a store with nothing of carol's: it is the one used
    berth_ok(n.xdg(), &["cert", "generate-test", "dave.example"]);
    write_file(
        n.xdg().join("berth/trustpolicy.oci.json"),
        &serde_json::to_vec(&json!({
            "version": "1.0",
            "trustPolicies": [{
                "name": "berth-own",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:dave.example"],
                "trustedIdentities": ["*"],
            }]
        }))
        .unwrap(),
    );
    let (out, report) = berth_verify(&n, &image, &[]);
    assert!(!out.status.success(), "{report}");
    assert_eq!(report["trustPolicy"]["statement"], "berth-own");
    assert!(
        report["trustPolicy"]["file"]
            .as_str()
            .unwrap()
            .ends_with("berth/trustpolicy.oci.json")
    );
}

/// `berth sign` and `berth verify` use the registry credentials `berth pull` and `berth push`
/// use (`berth login` → docker's config.json), against a registry behind htpasswd.
#[test]
fn registry_credentials_are_used() {
    let Some(bin) = notation_bin() else { return };
    berth_test_support::requires_tool!("htpasswd");
    let registry = Registry::start(RegistryOptions::new().user("erin", "s3cret-pass"));
    let h = registry.http().basic("erin", "s3cret-pass");
    let digest = push_image(&h, "app", "v1", 40);
    let image = format!("{}/app@{digest}", registry.host());
    let n = Notation::new(&bin);
    berth_ok(
        n.xdg(),
        &["cert", "generate-test", "erin.example", "--default"],
    );
    let store = n.dir().join("truststore/x509/ca/erin");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::copy(
        n.xdg()
            .join("berth/truststore/x509/ca/erin.example/erin.example.crt"),
        store.join("erin.crt"),
    )
    .unwrap();
    n.policy(&["ca:erin"], &["*"]);
    // without credentials: refused by the registry, and said so
    let out = berth(n.xdg(), &["sign", &image]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("authentication required"),
        "{}",
        stderr(&out)
    );
    berth_ok(
        n.xdg(),
        &["login", "-u", "erin", "-p", "s3cret-pass", &registry.host()],
    );
    berth_ok(n.xdg(), &["sign", &image]);
    let (out, report) = berth_verify(&n, &image, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(report["signatures"].as_array().unwrap().len(), 1);
    let v = n.cmd(&[
        "verify",
        "--insecure-registry",
        "-u",
        "erin",
        "-p",
        "s3cret-pass",
        &image,
    ]);
    assert!(v.status.success(), "{}", stderr(&v));
}

/// The statement for the image's `registry/repository` scope is the one applied: an unsigned
/// image fails under a strict statement ("no signature found") and passes under the global
/// skip statement, as with notation.
#[test]
fn the_statement_of_the_scope_applies() {
    let Some(bin) = notation_bin() else { return };
    let peer = Peer::start(Kind::Berth);
    let h = peer.http();
    let app = push_image(&h, "app", "v1", 50);
    let other = push_image(&h, "other", "v1", 51);
    let n = Notation::new(&bin);
    n.generate_test("alice.example");
    write_file(
        n.dir().join("trustpolicy.json"),
        &serde_json::to_vec(&json!({
            "version": "1.0",
            "trustPolicies": [
                {
                    "name": "app-strict",
                    "registryScopes": [format!("{}/app", peer.host())],
                    "signatureVerification": {"level": "strict"},
                    "trustStores": ["ca:alice.example"],
                    "trustedIdentities": ["*"],
                },
                {
                    "name": "everything-else",
                    "registryScopes": ["*"],
                    "signatureVerification": {"level": "skip"},
                },
            ]
        }))
        .unwrap(),
    );
    let app_image = format!("{}/app@{app}", peer.host());
    let other_image = format!("{}/other@{other}", peer.host());
    let (out, report) = berth_verify(&n, &app_image, &[]);
    assert!(!out.status.success());
    assert_eq!(report["trustPolicy"]["statement"], "app-strict");
    assert!(
        stderr(&out).contains("no signature found"),
        "{}",
        stderr(&out)
    );
    assert!(!n.verify(&app_image).status.success(), "notation agrees");
    let (out, report) = berth_verify(&n, &other_image, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(report["trustPolicy"]["statement"], "everything-else");
    assert_eq!(report["trustPolicy"]["level"], "skip");
    assert!(n.verify(&other_image).status.success(), "notation agrees");
    // signed, the app image passes its statement
    n.sign("alice.example", &app_image, "jws");
    let (out, _) = berth_verify(&n, &app_image, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}
