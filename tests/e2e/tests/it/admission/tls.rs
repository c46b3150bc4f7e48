//! The API server's side of the TLS connection, as the harness plays it: the serving
//! certificate must chain to the webhook configuration's `caBundle` and name the Service; a
//! call that fails is a denial under `failurePolicy: Fail` and skipped under `Ignore`.

use std::net::TcpListener;

use berth_test_support::{AdmissionHarness, ReviewBuilder, WorkloadKind};

use super::Fixture;

#[test]
fn the_api_server_refuses_a_certificate_not_from_the_ca_bundle_or_not_for_the_service() {
    let f = Fixture::new();
    let w = f.serve("");
    let text = std::fs::read_to_string(f.manifests().join("webhooks.yaml")).unwrap();
    let good = AdmissionHarness::new(&text, w.addr);
    good.handshake()
        .expect("the generated caBundle verifies the served certificate");
    good.clone()
        .verify_ip()
        .handshake()
        .expect("and so does the IP address SAN");
    let review = ReviewBuilder::new(WorkloadKind::Pod, "team-a", "app")
        .image("127.0.0.1:1/x:1")
        .build();

    // another CA's bundle
    let other = tempfile::tempdir().unwrap();
    let out = f.berth(&[
        "admission",
        "certs",
        "--out",
        other.path().to_str().unwrap(),
    ]);
    let bundle = std::fs::read_to_string(f.certs().join("ca-bundle.b64")).unwrap();
    let wrong_ca = text.replace(bundle.trim(), out.trim());
    assert_ne!(wrong_ca, text);
    let h = AdmissionHarness::new(&wrong_ca, w.addr);
    let e = h.handshake().expect_err("a certificate of another CA");
    // the two CAs have the same subject: the chain is built and its signature fails
    assert!(
        ["UnknownIssuer", "BadSignature"]
            .iter()
            .any(|w| e.contains(w)),
        "{e}"
    );
    let a = h.admit(&review);
    assert!(!a.allowed);
    assert_eq!(a.code, Some(500));
    assert!(
        a.message
            .as_deref()
            .unwrap_or("")
            .contains("failed calling webhook"),
        "{a:#?}"
    );

    // the right CA, another Service name
    let renamed = text.replace(
        "name: berth-admission\n        namespace",
        "name: other\n        namespace",
    );
    assert_ne!(renamed, text);
    let e = AdmissionHarness::new(&renamed, w.addr)
        .handshake()
        .expect_err("a certificate for another name");
    assert!(
        e.contains("NotValidForName") || e.contains("not valid for name"),
        "{e}"
    );

    // failurePolicy Ignore: the failed call is skipped, the request admitted unchecked
    let ignore = wrong_ca.replace("failurePolicy: Fail", "failurePolicy: Ignore");
    let a = AdmissionHarness::new(&ignore, w.addr).admit(&review);
    assert!(
        a.allowed && a.calls.iter().all(|c| c.result.is_err()),
        "{a:#?}"
    );

    // nothing listening: denied
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let a = AdmissionHarness::new(&text, closed).admit(&review);
    assert!(!a.allowed && a.code == Some(500), "{a:#?}");
}

/// What the Deployment's probes ask (`/readyz`, `/healthz` over HTTPS on the serving port)
/// answers 200, and `/metrics` counts the reviews the harness made.
#[test]
fn the_deployments_probes_and_the_metrics_answer_over_tls() {
    let f = Fixture::new();
    let w = f.serve("");
    let ca = std::fs::read(f.certs().join("ca.crt")).unwrap();
    let http = berth_test_support::Http::new(&format!("https://{}", w.addr), Some(&ca));
    for path in ["/readyz", "/healthz"] {
        http.get(path).expect_status(200, path);
    }
    let review = ReviewBuilder::new(WorkloadKind::Pod, "team-a", "app")
        .image(&format!("{}/x:1", f.reg.host()))
        .build();
    assert!(!f.harness(&w).admit(&review).allowed);
    let metrics = http.get("/metrics");
    metrics.expect_status(200, "/metrics");
    let text = metrics.text();
    assert!(
        text.lines()
            .any(|l| l.starts_with("berth_admission_requests_total{") && !l.ends_with(" 0")),
        "{text}"
    );
}

/// `berth admission certs --url`: webhook configurations that call a webhook outside the
/// cluster by URL; the API server then verifies the certificate for the URL's host (here an
/// IP address, which the certificate names because the URL does).
#[test]
fn url_webhook_configurations_are_verified_for_the_urls_host() {
    let f = Fixture::new();
    let w = f.serve("");
    let out = f.dir().join("by-url");
    f.make_certs(&[
        "--url",
        "https://127.0.0.1:8443/",
        "--manifests",
        out.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(out.join("webhooks.yaml")).unwrap();
    let hooks = berth_test_support::Webhook::from_manifests(&text);
    let urls: Vec<_> = hooks
        .iter()
        .map(|h| (h.url.clone(), h.service.clone()))
        .collect();
    assert_eq!(
        urls,
        [
            (Some("https://127.0.0.1:8443/mutate".to_string()), None),
            (Some("https://127.0.0.1:8443/validate".to_string()), None)
        ]
    );
    let api = AdmissionHarness::new(&text, w.addr);
    let a = api.admit(
        &ReviewBuilder::new(WorkloadKind::Pod, "team-a", "app")
            .image(&format!("{}/x:1", f.reg.host()))
            .build(),
    );
    assert!(a.calls.iter().all(|c| c.result.is_ok()), "{a:#?}");
    assert!(!a.allowed, "no rule for team-a: {a:#?}");
    // a bad URL is refused
    let o = crate::trust::berth(
        f.dir(),
        &[
            "admission",
            "certs",
            "--out",
            out.to_str().unwrap(),
            "--url",
            "http://127.0.0.1",
            "--manifests",
            out.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not https://HOST[:PORT]"));
}
