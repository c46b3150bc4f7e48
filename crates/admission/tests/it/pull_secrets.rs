//! Image pull secrets read from an API server stand-in (`GET
//! /api/v1/namespaces/NS/secrets/NAME` over TLS, insisting on the service account's token)
//! for a registry that requires a password: the bounds (a Secret answer over the size limit,
//! an API server that does not answer within the review's deadline) and the cost per review.
//! The behaviour against a real kube-apiserver with RBAC is tested in tests/e2e (kube).
#![allow(
    clippy::disallowed_methods,
    reason = "test inputs in a temporary directory need no atomic writes"
)]

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_admission::metrics::Endpoint;
use berth_admission::pull_secrets::MAX_SECRET_BYTES;
use berth_admission::{Config, Webhook};
use berth_test_support::RegistryOptions;
use serde_json::{Value, json};

use crate::support::{ApiStandIn, Fixture, call, message, pod, review};

fn secret_body(registry: &str, password: &str) -> String {
    let auth = STANDARD.encode(format!("alice:{password}"));
    let doc = json!({"auths": {registry: {"auth": auth}}}).to_string();
    json!({
        "kind": "Secret", "apiVersion": "v1",
        "metadata": {"name": "regcred", "namespace": "prod-eu", "resourceVersion": "1"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": STANDARD.encode(doc)},
    })
    .to_string()
}

fn with_secrets(mut object: Value, names: &[&str]) -> Value {
    let list: Vec<Value> = names.iter().map(|n| json!({"name": n})).collect();
    object["spec"]["imagePullSecrets"] = Value::Array(list);
    object
}

/// 20 reviews of `body`, each admitted: the median and the longest time.
async fn timed_admissions(hook: &Webhook, body: &[u8]) -> (Duration, Duration) {
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let r = call(hook, Endpoint::Mutate, body).await;
        assert!(r.allowed, "{}", message(&r));
        times.push(started.elapsed());
    }
    times.sort();
    (times[10], times[19])
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_secrets_are_bounded_in_size_and_time() {
    berth_test_support::requires_tool!("openssl", "htpasswd");
    let f = Fixture::with_registry(
        RegistryOptions::new().user("alice", "s3cret"),
        Some(("alice", "s3cret")),
    );
    f.push_signed("shop/web", "v1", &["dev", "ci", "prod"])
        .await;
    let host = f.host();
    let handler = move |Path((ns, name)): Path<(String, String)>, headers: HeaderMap| {
        let host = host.clone();
        async move {
            if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer tok-1") {
                return (StatusCode::UNAUTHORIZED, "{}".to_string());
            }
            match (ns.as_str(), name.as_str()) {
                ("prod-eu", "regcred") => (StatusCode::OK, secret_body(&host, "s3cret")),
                ("prod-eu", "wrong") => (StatusCode::OK, secret_body(&host, "wrong")),
                // a well-formed answer just over the response limit
                ("prod-eu", "huge") => (
                    StatusCode::OK,
                    json!({"kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                           "data": {".dockerconfigjson": "A".repeat(2 * MAX_SECRET_BYTES)}})
                    .to_string(),
                ),
                ("prod-eu", "slow") => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    (StatusCode::OK, secret_body(&host, "s3cret"))
                }
                _ => (StatusCode::NOT_FOUND, "{\"kind\":\"Status\"}".to_string()),
            }
        }
    };
    let app = Router::new().route("/api/v1/namespaces/{ns}/secrets/{name}", get(handler));
    let stand_in = ApiStandIn::start(f.dir.path(), app).await;
    let api = stand_in.url.clone();
    std::fs::write(f.dir.path().join("token"), "tok-1\n").unwrap();
    let text = format!(
        "{}\n[kubernetes]\nimage_pull_secrets = true\napi_server = \"{api}\"\ntoken_file = \"token\"\nca_file = \"{}\"\n",
        f.config_text("timeout = \"2s\""),
        stand_in.ca_cert.display()
    );
    let config = Config::parse(&text, f.dir.path()).unwrap();
    let hook = Webhook::new(&config, "berth-system").await.unwrap();
    let image = format!("{}/shop/web:v1", f.host());

    // the secret's credentials: admitted, pinned; the time of a review that reads one
    let body = review("prod-eu", &with_secrets(pod(&[&image]), &["regcred"]), None);
    let started = Instant::now();
    let r = call(&hook, Endpoint::Mutate, &body).await;
    let first = started.elapsed();
    assert!(r.allowed, "{}", message(&r));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let (median, max) = timed_admissions(&hook, &body).await;
    eprintln!(
        "review with one pull secret: first {first:?}, then median {median:?}, max {max:?} (20 reviews, debug build)"
    );
    // beside it, the same reviews with the credentials in a config.json instead (measured,
    // not asserted: the difference is the API server round trip and the review's own clients)
    std::fs::write(
        f.dir.path().join("config.json"),
        json!({"auths": {f.host(): {"auth": STANDARD.encode("alice:s3cret")}}}).to_string(),
    )
    .unwrap();
    let baseline = f
        .webhook_with_registry("docker_config = \"config.json\"")
        .await;
    let plain = review("prod-eu", &pod(&[&image]), None);
    assert!(call(&baseline, Endpoint::Mutate, &plain).await.allowed);
    let (median, max) = timed_admissions(&baseline, &plain).await;
    eprintln!("the same with config.json credentials: median {median:?}, max {max:?}");

    // anonymous: the registry refuses
    let bare = review("prod-eu", &pod(&[&image]), None);
    let r = call(&hook, Endpoint::Mutate, &bare).await;
    assert!(!r.allowed);
    assert!(
        message(&r).contains("authentication required"),
        "{}",
        message(&r)
    );

    // an answer over the limit: skipped with a warning, the next secret counts
    let body = review(
        "prod-eu",
        &with_secrets(pod(&[&image]), &["huge", "regcred"]),
        None,
    );
    let r = call(&hook, Endpoint::Mutate, &body).await;
    assert!(r.allowed, "{}", message(&r));
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].contains("prod-eu/huge ignored")
            && r.warnings[0].contains(&format!(
                "over {} bytes",
                berth_admission::kube::MAX_SECRET_RESPONSE_BYTES
            )),
        "{:?}",
        r.warnings
    );

    // an API server that does not answer: the review ends at its deadline, denied, saying why
    let body = review("prod-eu", &with_secrets(pod(&[&image]), &["slow"]), None);
    let started = Instant::now();
    let r = call(&hook, Endpoint::Mutate, &body).await;
    let took = started.elapsed();
    assert!(!r.allowed, "{}", message(&r));
    assert!(
        took < Duration::from_secs(4),
        "took {took:?} with timeout 2s"
    );
    // the review's deadline and the API server client's timeout are both 2 s: either says so
    assert!(
        r.warnings.iter().any(|w| {
            w.contains("not read within the deadline")
                || w.contains("prod-eu/slow ignored: the API server")
                    && w.contains("did not answer within 2 s")
        }),
        "{:?}",
        r.warnings
    );
    // denied either way: at the review's deadline, or — the API server's timeout first, the
    // secret ignored — by the registry, which refuses the pull without credentials
    assert!(
        message(&r).contains("did not finish within")
            || message(&r).contains("authentication required"),
        "{}",
        message(&r)
    );

    // the stand-in is still sleeping on the slow answer: dropped, not drained
    drop(stand_in);
}
