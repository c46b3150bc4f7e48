//! RFC 3161 timestamps when signing (`berth sign --timestamp-url URL --timestamp-root-cert
//! FILE`, and `timestamp_url`/`timestamp_root_cert` in berth.toml for signed pushes), against
//! a real TSA (`openssl ts -reply` behind an HTTP server on 127.0.0.1, `TestTsa`) and notation
//! v1.3.2 as the proof in both directions: notation verifies berth's timestamped signatures
//! with a `tsa:` store, berth verifies notation's (`notation sign --timestamp-url`); a signing
//! certificate that has expired passes with its timestamp and fails without one, in both
//! tools; a misbehaving or unreachable TSA makes `berth sign` fail with the reason, and
//! nothing is pushed.

use std::path::Path;
use std::process::Command;

use berth_test_support::{TestTsa, TsaMode, openssl_ec_request, requires_tool, write_file};
use serde_json::{Value, json};

use crate::trust::{
    Kind, Notation, Peer, berth, berth_ok, berth_verify, failures, get_json, notation_bin,
    push_image, stderr,
};

const TS_HEADER: &str = "io.cncf.notary.timestampSignature";

/// notation's trust policy: the stores, any identity, `verifyTimestamp` as given.
fn notation_policy(n: &Notation, stores: &[&str], verify_timestamp: &str) {
    let p = json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "berth-tsa-test",
            "registryScopes": ["*"],
            "signatureVerification": {"level": "strict", "verifyTimestamp": verify_timestamp},
            "trustStores": stores,
            "trustedIdentities": ["*"],
        }]
    });
    write_file(
        n.dir().join("trustpolicy.json"),
        &serde_json::to_vec_pretty(&p).unwrap(),
    );
}

/// `certificate` as the only file of notation's trust store `TYPE/NAME`.
fn store(n: &Notation, ty_name: &str, certificate: &Path) {
    let dir = n.dir().join("truststore/x509").join(ty_name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(certificate, dir.join("cert.crt")).unwrap();
}

/// The envelope of the one signature of `digest` in `repo`, and its media type.
fn envelope(peer: &Peer, repo: &str, digest: &str) -> (Vec<u8>, String) {
    let h = peer.http();
    let (report_sig, _) = get_json(&h, repo, digest);
    let layer = &report_sig["layers"][0];
    let r = h.get(&format!(
        "/v2/{repo}/blobs/{}",
        layer["digest"].as_str().unwrap()
    ));
    r.expect_status(200, "envelope blob");
    (
        r.body.to_vec(),
        layer["mediaType"].as_str().unwrap().to_owned(),
    )
}

/// Whether an envelope carries a timestamp token in its unprotected header.
fn has_timestamp(env: &[u8], media_type: &str) -> bool {
    if media_type == "application/jose+json" {
        let v: Value = serde_json::from_slice(env).unwrap();
        v["header"][TS_HEADER].is_string()
    } else {
        env.windows(TS_HEADER.len())
            .any(|w| w == TS_HEADER.as_bytes())
    }
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["signatures"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no {name} step: {report}"))
}

/// A test TSA, berth's registry and a notation configuration; `None` when notation is
/// missing (and the test should return).
fn with_notation() -> Option<(TestTsa, Peer, Notation)> {
    let bin = notation_bin()?;
    Some((
        TestTsa::start(),
        Peer::start(Kind::Berth),
        Notation::new(&bin),
    ))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn berth_timestamps_and_notation_verifies() {
    requires_tool!("openssl");
    let Some((tsa, peer, n)) = with_notation() else {
        return;
    };
    let h = peer.http();
    berth_ok(
        n.xdg(),
        &["cert", "generate-test", "bob.example", "--default"],
    );
    store(
        &n,
        "ca/bob",
        &n.xdg()
            .join("berth/truststore/x509/ca/bob.example/bob.example.crt"),
    );
    store(&n, "tsa/stamps", &tsa.root());
    for (i, envelope_arg) in ["jws", "cose"].into_iter().enumerate() {
        notation_policy(&n, &["ca:bob", "tsa:stamps"], "always");
        let digest = push_image(&h, "app", &format!("t{i}"), 40 + i as u64);
        let image = format!("{}/app@{digest}", peer.host());
        let out = berth(
            n.xdg(),
            &[
                "sign",
                "--envelope",
                envelope_arg,
                "--timestamp-url",
                &tsa.url(),
                "--timestamp-root-cert",
                path(&tsa.root()),
                &image,
            ],
        );
        assert!(out.status.success(), "berth sign: {}", stderr(&out));
        assert!(stderr(&out).contains("timestamped by"), "{}", stderr(&out));
        let sig = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let (env, mt) = envelope(&peer, "app", &sig);
        assert!(
            has_timestamp(&env, &mt),
            "{envelope_arg}: no timestamp header"
        );

        let v = n.verify(&image);
        assert!(
            v.status.success(),
            "notation verify of berth's timestamped {envelope_arg} signature: {}{}",
            String::from_utf8_lossy(&v.stdout),
            stderr(&v)
        );
        let (out, report) = berth_verify(&n, &image, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(step(&report, "authenticTimestamp")["result"], "passed");

        // with a tsa store that does not hold the TSA's root, both tools refuse
        store(&n, "tsa/stamps", &tsa.other_root());
        assert!(
            !n.verify(&image).status.success(),
            "notation refuses a timestamp it cannot chain"
        );
        let (out, report) = berth_verify(&n, &image, &[]);
        assert!(!out.status.success());
        assert!(
            failures(&report)[0].contains("tsa stores"),
            "{envelope_arg}: {report}"
        );
        store(&n, "tsa/stamps", &tsa.root());
    }
    assert_eq!(tsa.served(), 2, "one timestamp request per signature");
}

#[test]
fn notation_timestamps_and_berth_verifies() {
    requires_tool!("openssl");
    let Some((tsa, peer, n)) = with_notation() else {
        return;
    };
    let h = peer.http();
    n.generate_test("alice");
    // notation's test certificate is valid from the second it was made, and a timestamp's
    // whole range (genTime ± 1 s here) must lie within it, for notation as for berth
    let made = now_secs();
    berth_test_support::wait_until(std::time::Duration::from_secs(10), || {
        now_secs() >= made + 2
    });
    store(&n, "tsa/stamps", &tsa.root());
    notation_policy(&n, &["ca:alice", "tsa:stamps"], "always");
    for (i, format) in ["jws", "cose"].into_iter().enumerate() {
        let digest = push_image(&h, "app", &format!("n{i}"), 50 + i as u64);
        let image = format!("{}/app@{digest}", peer.host());
        n.ok(&[
            "sign",
            "--insecure-registry",
            "--force-referrers-tag=false",
            "--key",
            "alice",
            "--signature-format",
            format,
            "--timestamp-url",
            &tsa.url(),
            "--timestamp-root-cert",
            path(&tsa.root()),
            &image,
        ]);
        let sigs = peer.http().get(&format!("/v2/app/referrers/{digest}"));
        let sig = sigs.json()["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_owned();
        let (env, mt) = envelope(&peer, "app", &sig);
        assert!(
            has_timestamp(&env, &mt),
            "notation's {format} is timestamped"
        );
        let (out, report) = berth_verify(&n, &image, &[]);
        assert!(
            out.status.success(),
            "berth verify of notation's timestamped {format}: {report}"
        );
        assert_eq!(step(&report, "authenticTimestamp")["result"], "passed");
        // the same signature against a tsa store of another root: refused
        store(&n, "tsa/stamps", &tsa.other_root());
        let (out, report) = berth_verify(&n, &image, &[]);
        assert!(!out.status.success(), "{report}");
        assert!(failures(&report)[0].contains("tsa stores"), "{report}");
        assert!(!n.verify(&image).status.success(), "notation agrees");
        store(&n, "tsa/stamps", &tsa.root());
    }
}

/// `date -u -d @SECS +FORMAT`.
fn utc(secs: u64, format: &str) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), &format!("+{format}")])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[track_caller]
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A P-256 key and a self-signed code-signing certificate (notation's test subject, CN
/// `short`) valid from five minutes ago until `not_after` (epoch seconds), made by `openssl
/// ca`, which takes exact dates.
pub(crate) fn short_lived_certificate(dir: &Path, not_after: u64) {
    write_file(
        dir.join("ca.cnf"),
        b"[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
default_md = sha256\npolicy = any\nunique_subject = no\n[ any ]\ncommonName = supplied\n\
countryName = optional\nstateOrProvinceName = optional\nlocalityName = optional\n\
organizationName = optional\n[ leaf ]\nkeyUsage = critical, digitalSignature\n\
extendedKeyUsage = codeSigning\nbasicConstraints = critical, CA:FALSE\n",
    );
    write_file(dir.join("index.txt"), b"");
    write_file(dir.join("serial"), b"1000\n");
    openssl_ec_request(dir, "short", "/C=US/ST=WA/L=Seattle/O=Notary/CN=short");
    let fmt = "%Y%m%d%H%M%SZ";
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-selfsign",
            "-notext",
            "-config",
            "ca.cnf",
            "-keyfile",
            "short.key",
            "-in",
            "short.csr",
            "-startdate",
            &utc(now_secs() - 300, fmt),
            "-enddate",
            &utc(not_after, fmt),
            "-extensions",
            "leaf",
            "-out",
            "short.crt",
        ],
    );
}

#[test]
fn an_expired_certificate_passes_with_a_timestamp_and_fails_without_in_both_tools() {
    requires_tool!("openssl");
    let Some((tsa, peer, n)) = with_notation() else {
        return;
    };
    let h = peer.http();
    let pki = tempfile::tempdir().unwrap();
    let expires = now_secs() + 30;
    short_lived_certificate(pki.path(), expires);
    berth_ok(
        n.xdg(),
        &[
            "key",
            "import",
            "short",
            "--key",
            path(&pki.path().join("short.key")),
            "--cert",
            path(&pki.path().join("short.crt")),
        ],
    );
    store(&n, "ca/short", &pki.path().join("short.crt"));
    store(&n, "tsa/stamps", &tsa.root());
    notation_policy(&n, &["ca:short", "tsa:stamps"], "afterCertExpiry");
    let stamped = push_image(&h, "app", "stamped", 60);
    let plain = push_image(&h, "app", "plain", 61);
    let stamped = format!("{}/app@{stamped}", peer.host());
    let plain = format!("{}/app@{plain}", peer.host());
    berth_ok(
        n.xdg(),
        &[
            "sign",
            "--key",
            "short",
            "--timestamp-url",
            &tsa.url(),
            "--timestamp-root-cert",
            path(&tsa.root()),
            &stamped,
        ],
    );
    berth_ok(n.xdg(), &["sign", "--key", "short", &plain]);
    // both verify while the certificate is valid
    for image in [&stamped, &plain] {
        let v = n.verify(image);
        assert!(
            v.status.success(),
            "{image} before expiry ({}s left): {}",
            expires.saturating_sub(now_secs()),
            stderr(&v)
        );
    }
    // with verifyTimestamp always and a tsa store, a signature without a timestamp fails at
    // once, in both tools (notation-go: "no timestamp countersignature was found")
    notation_policy(&n, &["ca:short", "tsa:stamps"], "always");
    assert!(!n.verify(&plain).status.success(), "notation: always, none");
    let (out, report) = berth_verify(&n, &plain, &[]);
    assert!(!out.status.success(), "berth: always, none: {report}");
    assert!(
        failures(&report)[0].contains("no timestamp countersignature"),
        "{report}"
    );
    assert!(
        n.verify(&stamped).status.success(),
        "notation: always, stamped"
    );
    assert!(berth_verify(&n, &stamped, &[]).0.status.success());
    notation_policy(&n, &["ca:short", "tsa:stamps"], "afterCertExpiry");
    // then it expires
    berth_test_support::wait_until(std::time::Duration::from_secs(90), || {
        now_secs() > expires + 1
    });
    let v = n.verify(&stamped);
    assert!(
        v.status.success(),
        "notation: expired certificate, valid timestamp: {}",
        stderr(&v)
    );
    let (out, report) = berth_verify(&n, &stamped, &[]);
    assert!(out.status.success(), "berth: {report}");
    let v = n.verify(&plain);
    assert!(!v.status.success(), "notation: expired, no timestamp");
    let (out, report) = berth_verify(&n, &plain, &[]);
    assert!(!out.status.success(), "berth: {report}");
    assert!(
        failures(&report)[0].contains("no timestamp countersignature"),
        "{report}"
    );
}

/// `berth sign` with the TSA as it is; the signature must not be pushed.
#[track_caller]
fn sign_fails(
    xdg: &Path,
    peer: &Peer,
    tsa_url: &str,
    root: &Path,
    seed: u64,
    want: &[&str],
) -> String {
    let h = peer.http();
    let digest = push_image(&h, "app", &format!("f{seed}"), seed);
    let image = format!("{}/app@{digest}", peer.host());
    let out = berth(
        xdg,
        &[
            "sign",
            "--timestamp-url",
            tsa_url,
            "--timestamp-root-cert",
            path(root),
            &image,
        ],
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "signed anyway: {err}");
    for w in want {
        assert!(err.contains(w), "wanted {w:?} in: {err}");
    }
    let refs = h.get(&format!("/v2/app/referrers/{digest}"));
    assert_eq!(
        refs.json()["manifests"],
        json!([]),
        "nothing was pushed: {err}"
    );
    err
}

#[test]
fn a_misbehaving_or_unreachable_tsa_fails_signing_and_nothing_is_pushed() {
    requires_tool!("openssl");
    let tsa = TestTsa::start();
    let peer = Peer::start(Kind::Berth);
    let xdg = tempfile::tempdir().unwrap();
    berth_ok(xdg.path(), &["cert", "generate-test", "carol", "--default"]);
    let x = xdg.path();
    tsa.set_mode(TsaMode::Reject);
    sign_fails(
        x,
        &peer,
        &tsa.url(),
        &tsa.root(),
        70,
        &["failed to timestamp", "rejection", "badAlg"],
    );
    tsa.set_mode(TsaMode::WrongNonce);
    sign_fails(x, &peer, &tsa.url(), &tsa.root(), 71, &["nonce"]);
    tsa.set_mode(TsaMode::OtherImprint);
    sign_fails(x, &peer, &tsa.url(), &tsa.root(), 72, &["messageImprint"]);
    tsa.set_mode(TsaMode::Grant);
    sign_fails(
        x,
        &peer,
        &tsa.url(),
        &tsa.other_root(),
        73,
        &["does not verify against the timestamp root certificate"],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    sign_fails(
        x,
        &peer,
        &format!("http://127.0.0.1:{port}/tsa"),
        &tsa.root(),
        74,
        &["the request to the timestamp authority", "failed"],
    );
    // the root certificate file holds exactly one certificate
    let two = x.join("two-roots.crt");
    let pems = [
        std::fs::read(tsa.root()).unwrap(),
        std::fs::read(tsa.other_root()).unwrap(),
    ]
    .concat();
    write_file(&two, &pems);
    sign_fails(x, &peer, &tsa.url(), &two, 75, &["holds 2 certificates"]);
    // both flags or neither, as notation
    let out = berth(
        x,
        &["sign", "--timestamp-url", &tsa.url(), "127.0.0.1:1/a:b"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--timestamp-root-cert"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn signed_pushes_are_timestamped_from_the_configuration() {
    use crate::trust_gate::{berth as berth_home, import_busybox, ok};
    requires_tool!("openssl");
    let tsa = TestTsa::start();
    let reg = berth_test_support::Registry::start(berth_test_support::RegistryOptions::new());
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let image = format!("{}/shop/app:v1", reg.host());
    import_busybox(home, &image);
    ok(home, &["trust", "init"]);
    let conf = home.join("config/berth/berth.toml");
    let text = std::fs::read_to_string(&conf).unwrap();
    // a relative root certificate is under the configuration directory
    std::fs::copy(tsa.root(), home.join("config/berth/tsa-root.crt")).unwrap();
    write_file(
        &conf,
        format!(
            "{text}timestamp_url = \"{}\"\ntimestamp_root_cert = \"tsa-root.crt\"\n",
            tsa.url()
        )
        .as_bytes(),
    );
    let out = ok(home, &["push", &image]);
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let refs = reg.http().get(&format!("/v2/shop/app/referrers/{digest}"));
    let sig = refs.json()["manifests"][0]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no signature: {}", stderr(&out)))
        .to_owned();
    let r = reg.http().get(&format!("/v2/shop/app/manifests/{sig}"));
    let layer = r.json()["layers"][0].clone();
    let env = reg.http().get(&format!(
        "/v2/shop/app/blobs/{}",
        layer["digest"].as_str().unwrap()
    ));
    assert!(
        has_timestamp(&env.body, layer["mediaType"].as_str().unwrap()),
        "the signed push is timestamped"
    );
    assert_eq!(tsa.served(), 1);

    // only one of the two keys: refused with the file named, nothing signed
    write_file(
        &conf,
        format!("{text}timestamp_url = \"{}\"\n", tsa.url()).as_bytes(),
    );
    let out = berth_home(home, &["push", &image]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("timestamp_url without timestamp_root_cert"),
        "{}",
        stderr(&out)
    );
    assert_eq!(tsa.served(), 1);
}
