//! Revocation with real peers, both tools on the same signatures and responders: berth signs
//! with a leaf of `RevocationPki` (made by `openssl ca`; CRLs served on 127.0.0.1, OCSP by an
//! `openssl ocsp` responder), then `notation verify` (v1.3.2) and `berth verify` each judge
//! it, under `strict` and with `revocation` overridden to `log`; the verdicts must agree.

use berth_test_support::{LeafInfo, RevocationPki, write_file};
use serde_json::{Value, json};

use crate::trust::{Kind, Notation, Peer, berth, berth_ok, berth_verify, notation_bin, push_image};

/// notation's trust store `ca:rev` holds the test root; the policy trusts any leaf under it.
fn configure(n: &Notation, pki: &RevocationPki, revocation: Option<&str>) {
    let store = n.dir().join("truststore/x509/ca/rev");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::copy(pki.path().join("root/ca.pem"), store.join("root.crt")).unwrap();
    let mut level = json!({"level": "strict"});
    if let Some(a) = revocation {
        level["override"] = json!({"revocation": a});
    }
    let p = json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "rev",
            "registryScopes": ["*"],
            "signatureVerification": level,
            "trustStores": ["ca:rev"],
            "trustedIdentities": ["*"],
        }]
    });
    write_file(
        n.dir().join("trustpolicy.json"),
        &serde_json::to_vec_pretty(&p).unwrap(),
    );
}

/// berth imports the PKI's leaf (key and chain) and signs `image` with it.
fn berth_signs(n: &Notation, pki: &RevocationPki, image: &str) {
    let chain: Vec<u8> = ["leaf.pem", "inter/ca.pem", "root/ca.pem"]
        .iter()
        .flat_map(|p| std::fs::read(pki.path().join(p)).unwrap())
        .collect();
    let chain_file = pki.path().join("chain.pem");
    write_file(&chain_file, &chain);
    berth_ok(
        n.xdg(),
        &[
            "key",
            "import",
            "leaf",
            "--key",
            pki.path().join("leaf.key").to_str().unwrap(),
            "--cert",
            chain_file.to_str().unwrap(),
        ],
    );
    berth_ok(n.xdg(), &["sign", "--key", "leaf", image]);
}

/// Both verdicts: (notation passed, berth passed, berth's report).
fn both(n: &Notation, image: &str) -> (bool, bool, Value) {
    let nv = n.verify(image);
    let (out, report) = berth_verify(n, image, &[]);
    eprintln!(
        "notation: {}{}",
        String::from_utf8_lossy(&nv.stdout),
        String::from_utf8_lossy(&nv.stderr)
    );
    (nv.status.success(), out.status.success(), report)
}

fn revocation_step(report: &Value) -> Value {
    report["signatures"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "revocation")
        .cloned()
        .unwrap_or_else(|| panic!("no revocation step in {report}"))
}

#[test]
fn berth_and_notation_agree_on_revocation() {
    let Some(bin) = notation_bin() else { return };
    let peer = Peer::start(Kind::Berth);
    let h = peer.http();

    // good: OCSP for the leaf, the CRL for the intermediate
    let pki = RevocationPki::new(LeafInfo::Both);
    let n = Notation::new(&bin);
    configure(&n, &pki, None);
    let image = format!("{}/app@{}", peer.host(), push_image(&h, "app", "good", 40));
    berth_signs(&n, &pki, &image);
    let ocsp = pki.responder();
    let (notation_ok, berth_ok_, report) = both(&n, &image);
    assert!(notation_ok, "notation passes the good chain");
    assert!(berth_ok_, "berth passes the good chain: {report}");
    let step = revocation_step(&report);
    assert_eq!(step["result"], "passed", "{step}");
    let certs: Vec<(String, String)> = step["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["method"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        certs,
        [
            ("ocsp".to_owned(), "good".to_owned()),
            ("crl".to_owned(), "good".to_owned()),
            ("none".to_owned(), "nonRevokable".to_owned())
        ]
    );

    // the text form says the same per certificate; the intermediate's CRL is now cached
    let text = berth_ok(n.xdg(), &["verify", &image]);
    for want in [
        "revocation (enforce): passed",
        "certificate \"O=berth test,CN=leaf\" (serial ",
        &format!("): good (OCSP http://127.0.0.1:{}/)", pki.ocsp_port),
        &format!("): good (CRL {})", pki.files.url("root.crl")),
        "): no OCSP or CRL to check",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    let cached = std::fs::read_dir(n.xdg().join(".cache/berth/crl"))
        .unwrap()
        .count();
    assert_eq!(cached, 1, "the intermediate's CRL is cached");
    let root_crl_hits =
        |p: &RevocationPki| p.files.hits().iter().filter(|h| *h == "/root.crl").count();
    let before = root_crl_hits(&pki);
    assert!(berth(n.xdg(), &["verify", &image]).status.success());
    assert_eq!(root_crl_hits(&pki), before, "served from berth's CRL cache");

    // the leaf revoked: the responder says so; both refuse under strict, both pass under log
    drop(ocsp);
    pki.revoke("inter", "leaf.pem", "keyCompromise");
    let _ocsp = pki.responder();
    let (notation_ok, berth_ok_, report) = both(&n, &image);
    assert!(!notation_ok, "notation refuses a revoked leaf");
    assert!(!berth_ok_, "berth refuses a revoked leaf");
    let failure = report["signatures"][0]["failure"].as_str().unwrap();
    assert!(failure.contains("is revoked"), "{failure}");
    configure(&n, &pki, Some("log"));
    let (notation_ok, berth_ok_, report) = both(&n, &image);
    assert!(notation_ok, "notation logs it under log");
    assert!(berth_ok_, "berth logs it under log: {report}");
    assert_eq!(revocation_step(&report)["result"], "failed");

    // no responder and no CRL for the leaf: unknown, refused under strict by both
    let pki = RevocationPki::new(LeafInfo::OcspOnly);
    let n = Notation::new(&bin);
    configure(&n, &pki, None);
    let image = format!("{}/app@{}", peer.host(), push_image(&h, "app", "down", 41));
    berth_signs(&n, &pki, &image);
    let (notation_ok, berth_ok_, report) = both(&n, &image);
    assert!(!notation_ok, "notation refuses an unknown status");
    assert!(!berth_ok_, "berth refuses an unknown status");
    let failure = report["signatures"][0]["failure"].as_str().unwrap();
    assert!(
        failure.contains("revocation status is unknown"),
        "{failure}"
    );
    assert!(
        failure.contains(&format!("127.0.0.1:{}", pki.ocsp_port)),
        "{failure}"
    );
}
