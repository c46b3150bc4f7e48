//! Namespace labels from the API server: a stand-in for `GET /api/v1/namespaces` over TLS
//! (certificate from a test CA) that insists on the service account's bearer token.
#![allow(
    clippy::disallowed_methods,
    reason = "test inputs in a temporary directory need no atomic writes"
)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use berth_admission::metrics::Endpoint;
use berth_admission::{Config, Webhook};
use serde_json::{Value, json};

use crate::support::{ApiStandIn, Fixture, call, deployment, message, review};

type Labels = Arc<Mutex<Value>>;

async fn namespaces(State(labels): State<Labels>, headers: HeaderMap) -> (StatusCode, String) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer tok-1") {
        return (
            StatusCode::UNAUTHORIZED,
            "{\"kind\":\"Status\",\"code\":401}".into(),
        );
    }
    let items: Vec<Value> = labels
        .lock()
        .unwrap()
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, l)| json!({"metadata": {"name": name, "labels": l}}))
        .collect();
    (
        StatusCode::OK,
        json!({"kind": "NamespaceList", "apiVersion": "v1", "items": items}).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn namespace_labels_come_from_the_api_server() {
    berth_test_support::requires_tool!("openssl");
    let f = Fixture::new();
    let labels: Labels = Arc::new(Mutex::new(json!({"gold-ns": {"tier": "gold"}})));
    let app = Router::new()
        .route("/api/v1/namespaces", get(namespaces))
        .with_state(labels.clone());
    let stand_in = ApiStandIn::start(f.dir.path(), app).await;
    let api = stand_in.url.clone();
    std::fs::write(f.dir.path().join("token"), "tok-1\n").unwrap();
    let config_text = |token: &str| {
        format!(
            "{}\n[kubernetes]\nnamespace_labels = true\napi_server = \"{api}\"\ntoken_file = \"{token}\"\nca_file = \"{}\"\n",
            f.config_text("")
                .replace("namespace_labels = \"namespaces.json\"\n", ""),
            stand_in.ca_cert.display()
        )
    };
    let config = Config::parse(&config_text("token"), f.dir.path()).unwrap();

    f.push_signed("shop/web", "v1", &["ci"]).await;
    let hook = Webhook::new(&config, "berth-system").await.unwrap();
    let image = format!("{}/shop/web:v1", f.host());
    let body = review("gold-ns", &deployment(&[&image]), None);
    // tier=gold: the "gold" rule (ci only) applies
    let r = call(&hook, Endpoint::Mutate, &body).await;
    assert!(r.allowed, "{}", message(&r));
    assert!(hook.verifier().namespace_labels("gold-ns").is_some());
    // the label changes: after the reload no rule applies, denied
    *labels.lock().unwrap() = json!({"gold-ns": {"tier": "bronze"}});
    assert!(hook.verifier().reload().await.unwrap());
    let r = call(&hook, Endpoint::Mutate, &body).await;
    assert!(!r.allowed);
    assert!(
        message(&r).contains("no rule of the policy applies"),
        "{}",
        message(&r)
    );

    // a token the API server refuses: the webhook does not start
    std::fs::write(f.dir.path().join("bad-token"), "nope").unwrap();
    let bad = Config::parse(&config_text("bad-token"), f.dir.path()).unwrap();
    let e = Webhook::new(&bad, "berth-system").await.unwrap_err();
    let chain = berth_errdefs::error_chain(&e);
    assert!(chain.contains("answered 401"), "{chain}");

    // an API server that is gone: nor does it start, and a reload keeps what is loaded
    stand_in.stop().await;
    assert!(Webhook::new(&config, "berth-system").await.is_err());
    assert!(hook.verifier().reload().await.is_err());
    assert_eq!(
        hook.verifier().namespace_labels("gold-ns").unwrap()["tier"],
        "bronze"
    );
}
