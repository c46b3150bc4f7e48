//! Revocation against real peers: the PKI of `berth_test_support::RevocationPki` (made by
//! `openssl ca`; CRLs served on 127.0.0.1; OCSP answers from an `openssl ocsp` responder or
//! made offline by it), verified through the whole workflow under enforce, log and skip.

use berth_test_support::{LeafInfo, RevocationPki as Pki};
use berth_trust::revocation::{self, FetchRequest, Fetcher, Method, Status};
use berth_trust::{
    Action, Certificate, EnvelopeFormat, Outcome, SignOptions, SigningKey, Step, Timestamp,
    TrustPolicy, TrustStore, Verdict, VerifyOptions,
};
use std::sync::Mutex;

/// Signing and verifying with the test PKI's leaf.
trait Verify {
    fn chain(&self) -> Vec<Certificate>;
    fn envelope(&self) -> Vec<u8>;
    fn verify_at(&self, revocation: Option<&str>, now: Timestamp, fetcher: &dyn Fetcher)
    -> Verdict;
    fn verify(&self, revocation: Option<&str>) -> Verdict;
}

impl Verify for Pki {
    fn chain(&self) -> Vec<Certificate> {
        ["leaf.pem", "inter/ca.pem", "root/ca.pem"]
            .iter()
            .flat_map(|p| Certificate::parse_many(&std::fs::read(self.path().join(p)).unwrap()))
            .flatten()
            .collect()
    }

    fn envelope(&self) -> Vec<u8> {
        let key =
            SigningKey::from_pem_or_der(&std::fs::read(self.path().join("leaf.key")).unwrap())
                .unwrap();
        berth_trust::sign(
            &crate::pki::target(),
            &key,
            &self.chain(),
            &SignOptions::new(EnvelopeFormat::Jws),
        )
        .unwrap()
    }

    /// Verifies the leaf's signature under `strict` with `revocation` overridden (or not).
    fn verify_at(
        &self,
        revocation: Option<&str>,
        now: Timestamp,
        fetcher: &dyn Fetcher,
    ) -> Verdict {
        let store = self.path().join("store/x509/ca/t");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::copy(self.path().join("root/ca.pem"), store.join("root.pem")).unwrap();
        let level = match revocation {
            Some(a) => format!(r#"{{"level":"strict","override":{{"revocation":"{a}"}}}}"#),
            None => r#"{"level":"strict"}"#.to_string(),
        };
        let policy = TrustPolicy::parse(
            format!(
                r#"{{"version":"1.0","trustPolicies":[{{"name":"t","registryScopes":["*"],
                "signatureVerification":{level},"trustStores":["ca:t"],"trustedIdentities":["*"]}}]}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        let target = crate::pki::target();
        let opts = VerifyOptions {
            statement: &policy.statements[0],
            artifact: Some(&target),
            now,
            revocation: fetcher,
        };
        berth_trust::verify(
            &self.envelope(),
            berth_trust::envelope::MEDIA_TYPE_JWS,
            &TrustStore::new(self.path().join("store")),
            &opts,
        )
    }

    fn verify(&self, revocation: Option<&str>) -> Verdict {
        self.verify_at(revocation, Timestamp::now(), &revocation::HTTP)
    }
}

/// Verifies under `strict` and expects the revocation step to refuse with `want`.
#[track_caller]
fn refused(pki: &Pki, want: &str) -> Verdict {
    let v = pki.verify(None);
    assert!(!v.passed, "expected a refusal ({want})");
    failed_with(&v, Action::Enforce, want);
    v
}

fn revocation_step(v: &Verdict) -> (Action, Outcome) {
    let s = v
        .steps
        .iter()
        .find(|s| s.step == Step::Revocation)
        .unwrap_or_else(|| panic!("no revocation step in {:?}", v.steps));
    (s.action, s.outcome.clone())
}

fn failed_with(v: &Verdict, action: Action, want: &str) {
    match revocation_step(v) {
        (a, Outcome::Failed(reason)) if a == action => assert!(
            reason.contains(want),
            "the revocation step's reason {reason:?} does not say {want:?}"
        ),
        other => panic!("expected a failed revocation step ({action:?}), got {other:?}"),
    }
}

#[test]
fn good_chain_passes_with_ocsp_for_the_leaf_and_crl_for_the_intermediate() {
    let pki = Pki::new(LeafInfo::Both);
    let _ocsp = pki.responder();
    let v = pki.verify(None);
    assert!(v.passed, "{:?}", v.failure());
    assert_eq!(revocation_step(&v).1, Outcome::Passed);
    let methods: Vec<(Method, Status)> =
        v.revocation.iter().map(|r| (r.method, r.status)).collect();
    assert_eq!(
        methods,
        [
            (Method::Ocsp, Status::Good),
            (Method::Crl, Status::Good),
            (Method::None, Status::NonRevokable)
        ]
    );
    assert_eq!(pki.files.hits(), ["/root.crl"]);
}

#[test]
fn leaf_revoked_over_ocsp_fails_under_enforce_and_is_logged_under_log() {
    let pki = Pki::new(LeafInfo::OcspOnly);
    pki.revoke("inter", "leaf.pem", "keyCompromise");
    let _ocsp = pki.responder();
    let v = refused(&pki, "is revoked");
    failed_with(&v, Action::Enforce, "reason keyCompromise");
    assert_eq!(v.revocation[0].status, Status::Revoked);
    assert_eq!(v.revocation[0].method, Method::Ocsp);

    let v = pki.verify(Some("log"));
    assert!(v.passed, "{:?}", v.failure());
    failed_with(&v, Action::Log, "O=berth test,CN=leaf\" is revoked");
}

#[test]
fn leaf_revoked_in_the_crl_fails_and_skip_fetches_nothing() {
    let pki = Pki::new(LeafInfo::CrlOnly);
    pki.revoke("inter", "leaf.pem", "superseded");
    let v = refused(&pki, "reason superseded");
    assert_eq!(v.revocation[0].method, Method::Crl);
    let before = pki.files.hits().len();

    let v = pki.verify(Some("skip"));
    assert!(v.passed, "{:?}", v.failure());
    assert_eq!(revocation_step(&v), (Action::Skip, Outcome::Skipped));
    assert!(v.revocation.is_empty());
    assert_eq!(pki.files.hits().len(), before, "skip must fetch nothing");
}

#[test]
fn revoked_intermediate_fails() {
    let pki = Pki::new(LeafInfo::Both);
    pki.revoke("root", "inter/ca.pem", "cACompromise");
    let _ocsp = pki.responder();
    let v = refused(&pki, "revocation intermediate");
    assert_eq!(v.revocation[1].status, Status::Revoked);
}

#[test]
fn responder_down_is_unknown_and_falls_back_to_the_crl() {
    // OCSP only: unknown, which fails under enforce and is logged under log
    let pki = Pki::new(LeafInfo::OcspOnly);
    let v = refused(&pki, "revocation status is unknown");
    failed_with(&v, Action::Enforce, &format!("127.0.0.1:{}", pki.ocsp_port));
    let v = pki.verify(Some("log"));
    assert!(v.passed, "{:?}", v.failure());
    failed_with(&v, Action::Log, "revocation status is unknown");

    // OCSP and CRL: the CRL decides, both ways
    let pki = Pki::new(LeafInfo::Both);
    let v = pki.verify(None);
    assert!(v.passed, "{:?}", v.failure());
    assert_eq!(v.revocation[0].method, Method::OcspFallbackCrl);
    assert_eq!(v.revocation[0].status, Status::Good);
    pki.revoke("inter", "leaf.pem", "keyCompromise");
    refused(&pki, "is revoked");
}

/// Publishes the intermediate's CRL with the CRL extensions `lines` (openssl config syntax).
fn gencrl_with_extensions(pki: &Pki, lines: &str) {
    let config = pki.path().join("inter/openssl.cnf");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("[crl_extra]\n{lines}\n"));
    std::fs::write(&config, text).unwrap();
    pki.gencrl_with("inter", &["-crlexts", "crl_extra"]);
}

#[test]
fn a_crl_that_moved_is_followed_over_http_only() {
    // as Go's client in notation: a redirect to another http:// location is followed
    let pki = Pki::new(LeafInfo::CrlOnly);
    let www = pki.path().join("www");
    std::fs::create_dir_all(www.join("moved")).unwrap();
    std::fs::rename(www.join("inter.crl"), www.join("moved/inter.crl")).unwrap();
    std::fs::write(www.join("inter.crl.redirect"), "/moved/inter.crl").unwrap();
    let v = pki.verify(None);
    assert!(v.passed, "{:?}", v.failure());
    let hits = pki.files.hits();
    assert!(hits.contains(&"/moved/inter.crl".to_string()), "{hits:?}");

    // not to https:// (berth fetches revocation data over http only)
    std::fs::write(
        www.join("inter.crl.redirect"),
        "https://127.0.0.1:1/inter.crl",
    )
    .unwrap();
    refused(&pki, "only http:// URLs are used");
}

/// Publishes CA `ca`'s CRL with a nextUpdate long past (2025-01-02).
fn publish_stale_crl(pki: &Pki, ca: &str) {
    pki.gencrl_with(
        ca,
        &[
            "-crl_lastupdate",
            "20250101000000Z",
            "-crl_nextupdate",
            "20250102000000Z",
        ],
    );
}

#[test]
fn crl_past_its_next_update_is_refused() {
    let pki = Pki::new(LeafInfo::CrlOnly);
    publish_stale_crl(&pki, "inter");
    refused(&pki, "expired CRL");
}

#[test]
fn crl_of_another_issuer_or_naming_a_delta_crl_is_refused() {
    let pki = Pki::new(LeafInfo::CrlOnly);
    std::fs::copy(
        pki.path().join("www/root.crl"),
        pki.path().join("www/inter.crl"),
    )
    .unwrap();
    refused(&pki, "the CRL was not issued by");

    let pki = Pki::new(LeafInfo::CrlOnly);
    gencrl_with_extensions(
        &pki,
        &format!("freshestCRL=URI:{}", pki.files.url("delta.crl")),
    );
    refused(&pki, "berth does not support delta CRLs");
}

#[test]
fn certificate_on_hold_counts_as_revoked() {
    // as notation: certificateHold is a revocation until a removeFromCRL entry lifts it
    let pki = Pki::new(LeafInfo::CrlOnly);
    pki.revoke_with("inter", "leaf.pem", &["-crl_hold", "holdInstructionReject"]);
    refused(&pki, "reason certificateHold");
}

#[test]
fn crl_cache_serves_current_crls_and_replaces_stale_or_corrupt_ones() {
    let pki = Pki::new(LeafInfo::CrlOnly);
    let dir = tempfile::tempdir().unwrap();
    let cache = revocation::CrlCache::new(dir.path().join("crl"), &revocation::HTTP);
    let v = pki.verify_at(None, Timestamp::now(), &cache);
    assert!(v.passed, "{:?}", v.failure());
    assert_eq!(pki.files.hits().len(), 2, "both CRLs downloaded");
    let v = pki.verify_at(None, Timestamp::now(), &cache);
    assert!(v.passed, "{:?}", v.failure());
    assert_eq!(pki.files.hits().len(), 2, "both CRLs from the cache");

    // a corrupt file and a stale CRL are fetched again
    let inter = cache.path_of(&pki.files.url("inter.crl"));
    std::fs::write(&inter, b"not a CRL").unwrap();
    let root = cache.path_of(&pki.files.url("root.crl"));
    publish_stale_crl(&pki, "root");
    std::fs::copy(pki.path().join("www/root.crl"), &root).unwrap();
    pki.gencrl("root");
    let v = pki.verify_at(None, Timestamp::now(), &cache);
    assert!(v.passed, "{:?}", v.failure());
    assert_eq!(pki.files.hits().len(), 4, "both fetched again");
    assert_eq!(
        std::fs::read(&inter).unwrap(),
        std::fs::read(pki.path().join("www/inter.crl")).unwrap()
    );

    // a cache of one entry keeps only the last CRL written
    let small =
        revocation::CrlCache::new(dir.path().join("one"), &revocation::HTTP).with_max_entries(1);
    let v = pki.verify_at(None, Timestamp::now(), &small);
    assert!(v.passed, "{:?}", v.failure());
    assert_eq!(
        std::fs::read_dir(dir.path().join("one")).unwrap().count(),
        1
    );
}

#[test]
fn crl_expired_at_the_verification_time_is_refused() {
    let pki = Pki::new(LeafInfo::CrlOnly);
    // the CRLs' nextUpdate is a day away; the certificates last 30 days
    let later = Timestamp(Timestamp::now().0 + 3 * 86400);
    let v = pki.verify_at(None, later, &revocation::HTTP);
    assert!(!v.passed);
    failed_with(&v, Action::Enforce, "expired CRL");
}

#[test]
fn crl_signed_by_another_key_is_refused() {
    let pki = Pki::new(LeafInfo::CrlOnly);
    // an impostor CA with the intermediate's name and its own key publishes the CRL
    pki.publish_impostor_crl();
    refused(&pki, "signature does not verify");
}

#[test]
fn canned_ocsp_response_for_the_leaf_passes() {
    // the control for the two refusals below: the same path with a right answer
    let pki = Pki::new(LeafInfo::CannedOcsp);
    pki.canned_ocsp_response("leaf.pem", "responder");
    let v = pki.verify(None);
    assert!(v.passed, "{:?}", v.failure());
    assert_eq!(v.revocation[0].status, Status::Good);
}

#[test]
fn ocsp_response_for_another_serial_is_refused() {
    let pki = Pki::new(LeafInfo::CannedOcsp);
    pki.canned_ocsp_response("responder.pem", "responder");
    refused(&pki, "has no status for serial number");
}

#[test]
fn ocsp_response_from_an_unauthorised_or_expired_responder_is_refused() {
    // issued by the root, not by the leaf's issuer, though it has id-kp-OCSPSigning
    let pki = Pki::new(LeafInfo::CannedOcsp);
    pki.new_cert(
        "root",
        "rogue",
        "/O=berth test/CN=rogue responder",
        "responder",
    );
    pki.canned_ocsp_response("leaf.pem", "rogue");
    refused(&pki, "unauthorised responder");

    // issued by the right CA without id-kp-OCSPSigning
    pki.new_cert("inter", "plain", "/O=berth test/CN=plain", "plain");
    pki.canned_ocsp_response("leaf.pem", "plain");
    refused(&pki, "lacks the id-kp-OCSPSigning");

    // issued by the right CA with id-kp-OCSPSigning, but expired
    pki.new_expired_cert(
        "inter",
        "old",
        "/O=berth test/CN=old responder",
        "responder",
    );
    pki.canned_ocsp_response("leaf.pem", "old");
    refused(&pki, "which is not valid now");
}

#[test]
fn ocsp_status_unknown_is_unknown() {
    // the responder answers from the root's index, where the leaf is not: "unknown"
    let pki = Pki::new(LeafInfo::CannedOcsp);
    pki.canned_ocsp(
        &["-issuer", "inter/ca.pem", "-cert", "leaf.pem"],
        "root",
        "inter",
        "responder",
    );
    refused(&pki, "does not know the certificate (status unknown)");
}

#[test]
fn ocsp_response_about_another_issuers_certificate_is_refused() {
    // the leaf's serial number under the root's name and key, signed by the intermediate
    let pki = Pki::new(LeafInfo::CannedOcsp);
    let serial = String::from_utf8(
        std::process::Command::new("openssl")
            .args(["x509", "-noout", "-serial", "-in", "leaf.pem"])
            .current_dir(pki.path())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let serial = format!("0x{}", serial.trim().trim_start_matches("serial="));
    pki.canned_ocsp(
        &["-issuer", "root/ca.pem", "-serial", &serial],
        "inter",
        "root",
        "inter/ca",
    );
    refused(&pki, "about a certificate of another issuer");
}

#[test]
fn crl_with_an_unknown_critical_extension_is_refused() {
    let pki = Pki::new(LeafInfo::CrlOnly);
    gencrl_with_extensions(&pki, "1.2.3.4=critical,ASN1:NULL");
    refused(&pki, "unsupported critical extension 1.2.3.4 in the CRL");
}

#[test]
fn an_invalid_chain_is_not_checked_for_revocation() {
    // audit logs authenticity and revocation; a chain without its root proves nothing, so
    // nothing is fetched for it (as notation, which validates the chain first)
    let pki = Pki::new(LeafInfo::Both);
    let chain = pki.chain();
    let key =
        SigningKey::from_pem_or_der(&std::fs::read(pki.path().join("leaf.key")).unwrap()).unwrap();
    let env = berth_trust::sign(
        &crate::pki::target(),
        &key,
        &chain[..2],
        &SignOptions::new(EnvelopeFormat::Jws),
    )
    .unwrap();
    let policy = TrustPolicy::parse(
        br#"{"version":"1.0","trustPolicies":[{"name":"t","registryScopes":["*"],
        "signatureVerification":{"level":"audit"},"trustStores":["ca:t"],"trustedIdentities":["*"]}]}"#,
    )
    .unwrap();
    let off = Offline(Mutex::new(Vec::new()));
    let target = crate::pki::target();
    let opts = VerifyOptions {
        statement: &policy.statements[0],
        artifact: Some(&target),
        now: Timestamp::now(),
        revocation: &off,
    };
    let store = pki.path().join("store/x509/ca/t");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::copy(pki.path().join("root/ca.pem"), store.join("root.pem")).unwrap();
    let v = berth_trust::verify(
        &env,
        berth_trust::envelope::MEDIA_TYPE_JWS,
        &TrustStore::new(pki.path().join("store")),
        &opts,
    );
    failed_with(&v, Action::Log, "unable to check revocation status");
    assert!(off.0.lock().unwrap().is_empty(), "nothing fetched");
}

/// A fetcher whose first two requests each wait (at most 10 s) until the other has arrived:
/// they can only both succeed if they are made at the same time.
#[derive(Debug, Default)]
struct Rendezvous {
    arrived: Mutex<usize>,
    both: std::sync::Condvar,
}

impl Fetcher for Rendezvous {
    fn fetch(&self, _: &FetchRequest<'_>) -> Result<Vec<u8>, String> {
        let mut n = self.arrived.lock().unwrap();
        *n += 1;
        self.both.notify_all();
        let (n, timeout) = self
            .both
            .wait_timeout_while(n, std::time::Duration::from_secs(10), |n| *n < 2)
            .unwrap();
        if timeout.timed_out() && *n < 2 {
            return Err("asked alone".to_string());
        }
        Err("offline together".to_string())
    }
}

#[test]
fn certificates_are_checked_at_the_same_time() {
    // the leaf's OCSP responder and the intermediate's CRL are asked concurrently, so an
    // offline chain costs one timeout rather than one per certificate (as notation)
    let pki = Pki::new(LeafInfo::OcspOnly);
    let v = pki.verify_at(None, Timestamp::now(), &Rendezvous::default());
    failed_with(&v, Action::Enforce, "offline together");
    let reasons: Vec<String> = v
        .revocation
        .iter()
        .flat_map(|r| r.servers.iter().filter_map(|s| s.detail.clone()))
        .collect();
    assert!(
        reasons.iter().all(|r| r.contains("offline together")),
        "{reasons:?}"
    );
}

/// A fetcher with no network: records what it was asked.
#[derive(Debug)]
struct Offline(Mutex<Vec<String>>);

impl Fetcher for Offline {
    fn fetch(&self, req: &FetchRequest<'_>) -> Result<Vec<u8>, String> {
        self.0.lock().unwrap().push(req.url.to_string());
        Err("offline".to_string())
    }
}

#[test]
fn offline_result_names_every_url_and_error() {
    let pki = Pki::new(LeafInfo::Both);
    let off = Offline(Mutex::new(Vec::new()));
    let v = pki.verify_at(None, Timestamp::now(), &off);
    assert!(!v.passed);
    failed_with(&v, Action::Enforce, "offline");
    let asked = off.0.lock().unwrap().clone();
    // the leaf: OCSP, then its CRL; the intermediate (at the same time): its CRL
    assert_eq!(asked.len(), 3, "{asked:?}");
    let at = |end: &str| asked.iter().position(|u| u.ends_with(end)).unwrap();
    assert!(
        at(&format!("{}/", pki.ocsp_port)) < at("/inter.crl"),
        "{asked:?}"
    );
    assert!(asked.iter().any(|u| u.ends_with("/root.crl")), "{asked:?}");
    assert_eq!(v.revocation[0].servers.len(), 2);
}

/// Routes notation's e2e CRL URLs (`http://localhost:10086/…`) to the test's server and
/// refuses every other host (the intermediate's OCSP URL, `http://localhost.test/ocsp`, does
/// not resolve for notation either; here no DNS query leaves the machine).
#[derive(Debug)]
struct NotationCrlHost(String);

impl Fetcher for NotationCrlHost {
    fn fetch(&self, req: &FetchRequest<'_>) -> Result<Vec<u8>, String> {
        let Some(path) = req.url.strip_prefix("http://localhost:10086/") else {
            return Err(format!("{} does not resolve in this test", req.url));
        };
        let url = format!("{}{path}", self.0);
        revocation::HTTP.fetch(&FetchRequest { url: &url, ..*req })
    }
}

#[test]
fn notation_e2e_crl_vectors_give_notations_revocation_verdicts() {
    // notation's own CRL test material (test/e2e/testdata/config/crl) and the revocation
    // verdicts of its e2e suite: good CRLs pass (the intermediate's OCSP fails and falls back
    // to its CRL); a revoked leaf or intermediate is revoked; an expired CRL leaves the status
    // unknown. The chain is checked by the revocation module directly: its leaf has no
    // extendedKeyUsage, which berth's authenticity step refuses (see envelopes.rs).
    let dir = crate::vectors().join("notation/test/e2e/testdata/config/crl");
    let tmp = tempfile::tempdir().unwrap();
    let www = tmp.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let files = berth_test_support::CrlServer::start(www.clone());
    let fetcher = NotationCrlHost(files.url(""));
    let chain =
        Certificate::parse_many(&std::fs::read(dir.join("certchain_with_crl.pem")).unwrap())
            .unwrap();
    let opts = revocation::Options::new(&fetcher, Timestamp::now());
    for (leaf, intermediate, want) in [
        ("leaf.crl", "intermediate.crl", None),
        (
            "leaf_revoked.crl",
            "intermediate.crl",
            Some("CN=LeafCert,OU=OrgUnit,O=Organization,L=City,ST=State,C=US\" is revoked"),
        ),
        (
            "leaf.crl",
            "intermediate_revoked.crl",
            Some("CN=IntermediateCA,OU=OrgUnit,O=Organization,L=City,ST=State,C=US\" is revoked"),
        ),
        (
            "leaf_expired.crl",
            "intermediate.crl",
            Some("revocation status is unknown"),
        ),
    ] {
        std::fs::copy(dir.join(leaf), www.join("leaf.crl")).unwrap();
        std::fs::copy(dir.join(intermediate), www.join("intermediate.crl")).unwrap();
        let results = revocation::check_chain(&chain, &opts);
        let verdict = revocation::summarize(&results);
        match want {
            None => {
                assert_eq!(verdict, Ok(()), "{leaf} + {intermediate}");
                assert_eq!(results[0].method, Method::Crl);
                assert_eq!(results[1].method, Method::OcspFallbackCrl);
            }
            Some(w) => {
                let e = verdict.expect_err(w);
                assert!(e.contains(w), "{leaf} + {intermediate}: {e}");
            }
        }
    }
}
