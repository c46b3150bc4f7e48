//! `berth admission serve` as a process: the listening line, the five endpoints, JSON logs,
//! SIGTERM. (Over TLS with a generated `caBundle`, as the API server calls it: tests/e2e.)
#![allow(
    clippy::disallowed_methods,
    reason = "test inputs in a temporary directory need no atomic writes"
)]

use std::process::{Command, Stdio};
use std::time::Duration;

use berth_test_support::{ChildGuard, Http, berth_bin, run_with_timeout, wait_until};

use crate::support::{Fixture, pod, review};

const LISTENING: &str = "berth admission listening on ";

#[test]
fn serve_answers_reviews_health_and_metrics_and_stops_on_sigterm() {
    let f = Fixture::new();
    let config = f.dir.path().join("admission.toml");
    std::fs::write(&config, f.config_text("")).unwrap();
    let log = f.dir.path().join("serve.log");
    let mut child = ChildGuard::spawn(
        Command::new(berth_bin())
            .args(["admission", "serve", "--config"])
            .arg(&config)
            .env_remove("BERTH_LOG_FORMAT")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    let mut base = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            base = text.lines().find_map(|l| {
                let at = l.find(LISTENING)? + LISTENING.len();
                let rest = &l[at..];
                let end = rest.find(['"', ' ']).unwrap_or(rest.len());
                Some(rest[..end].to_string())
            });
            base.is_some()
        }),
        "no listening line: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let base = base.unwrap();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let http = Http::new(&base, None);
    assert_eq!(http.get("/healthz").status, 200);
    assert_eq!(http.get("/readyz").status, 200);

    // a review: an unpinned image is refused by /validate, with the uid echoed
    let body = review("prod-eu", &pod(&["nginx:1.25"]), None);
    let uid = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["request"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http.request(
        "POST",
        "/validate?timeout=10s",
        &[("content-type", "application/json")],
        Some(&body),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    assert_eq!(v["response"]["uid"], uid.as_str());
    assert_eq!(v["response"]["allowed"], false);
    assert!(
        v["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("not pinned"),
        "{v}"
    );
    // junk is a 400
    let r = http.request("POST", "/mutate", &[], Some(b"{\"kind\":"));
    assert_eq!(r.status, 400);

    let m = http.get("/metrics");
    assert_eq!(m.status, 200);
    let text = m.text();
    assert!(
        text.contains("berth_admission_requests_total{endpoint=\"validate\",verdict=\"denied\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "berth_admission_requests_total{endpoint=\"mutate\",verdict=\"bad_request\"} 1"
        ),
        "{text}"
    );

    // JSON lines on stderr, one per review
    let logged = std::fs::read_to_string(&log).unwrap();
    let review_line = logged
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|j| j["message"] == "review")
        .unwrap_or_else(|| panic!("no JSON review line in\n{logged}"));
    assert_eq!(review_line["uid"], uid.as_str());
    assert_eq!(review_line["verdict"], "denied");

    // SIGTERM: a clean exit
    let pid = child.id().unwrap();
    let out = run_with_timeout(
        Command::new("kill").args(["-TERM", &pid.to_string()]),
        Duration::from_secs(10),
    );
    assert!(out.status.success());
    let mut status = None;
    assert!(wait_until(Duration::from_secs(20), || {
        status = child.child().and_then(|c| c.try_wait().ok().flatten());
        status.is_some()
    }));
    assert!(
        status.unwrap().success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("berth admission stopped")
    );
}

#[test]
fn serve_refuses_plain_http_beyond_loopback_and_a_bad_policy() {
    let f = Fixture::new();
    let config = f.dir.path().join("admission.toml");
    std::fs::write(
        &config,
        f.config_text("").replace("127.0.0.1:0", "0.0.0.0:0"),
    )
    .unwrap();
    let refused = || {
        let out = run_with_timeout(
            Command::new(berth_bin())
                .args(["admission", "serve", "--config"])
                .arg(&config),
            Duration::from_secs(20),
        );
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = refused();
    assert!(stderr.contains("the webhook needs TLS"), "{stderr}");

    std::fs::write(
        f.dir.path().join("policy.json"),
        "{\"version\": \"berth.policy/v1\"}",
    )
    .unwrap();
    std::fs::write(&config, f.config_text("")).unwrap();
    let stderr = refused();
    assert!(stderr.contains("invalid role policy"), "{stderr}");
    assert!(stderr.contains("berth policy check"), "{stderr}");
}
