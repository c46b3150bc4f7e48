//! The harness's own checks, against a fake webhook that answers what each test says: a
//! TLS server on 127.0.0.1 (openssl's test CA, `url:` client configs, so the IP address SAN is
//! what is verified). Each check is shown to fail when the webhook breaks the protocol.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::AdmissionHarness;
use crate::{ReviewBuilder, WorkloadKind};

type Answer = dyn Fn(&str, &Value) -> Option<Value> + Send + Sync;

/// The fake webhook: answers each POST with `answer(path_and_query, review)` (`None`: never
/// answers), and records what it was sent.
struct Fake {
    addr: SocketAddr,
    bundle: String,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl Fake {
    fn start(answer: Box<Answer>) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let certs = crate::TestCerts::generate(dir.path());
        let config = certs.server_config();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let answer: Arc<Answer> = Arc::from(answer);
        {
            let (seen, stop) = (seen.clone(), stop.clone());
            crate::tls::accept_loop(listener, stop, move |conn| {
                if let Ok(tls) = rustls::ServerConnection::new(config.clone()) {
                    serve(rustls::StreamOwned::new(tls, conn), &*answer, &seen);
                }
            });
        }
        Fake {
            addr,
            bundle: STANDARD.encode(certs.ca_pem()),
            seen,
            stop,
            _dir: dir,
        }
    }

    /// Mutating and validating configurations pointing at this webhook.
    fn manifests(&self, timeout: u64) -> String {
        let hook = |kind: &str, name: &str, path: &str| {
            format!(
                "apiVersion: admissionregistration.k8s.io/v1\nkind: {kind}\nmetadata: {{name: fake}}\n\
                 webhooks:\n  - name: {name}\n    admissionReviewVersions: [v1]\n    sideEffects: None\n\
                 \x20   failurePolicy: Fail\n    timeoutSeconds: {timeout}\n\
                 \x20   clientConfig: {{url: \"https://{}{path}\", caBundle: {}}}\n\
                 \x20   rules: [{{apiGroups: [\"\"], apiVersions: [v1], operations: [CREATE], resources: [pods]}}]\n",
                self.addr, self.bundle
            )
        };
        format!(
            "{}---\n{}",
            hook(
                "MutatingWebhookConfiguration",
                "mutate.fake.test",
                "/mutate"
            ),
            hook(
                "ValidatingWebhookConfiguration",
                "validate.fake.test",
                "/validate"
            )
        )
    }

    fn harness(&self, timeout: u64) -> AdmissionHarness {
        AdmissionHarness::new(&self.manifests(timeout), self.addr)
    }

    fn seen(&self) -> Vec<(String, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the accept loop
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve<S: Read + Write>(mut s: S, answer: &Answer, seen: &Mutex<Vec<(String, Value)>>) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let (head_end, length) = loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while raw.len() < head_end + length {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let target = head.split(' ').nth(1).unwrap_or("").to_string();
    let review: Value = serde_json::from_slice(&raw[head_end..head_end + length]).unwrap();
    seen.lock().unwrap().push((target.clone(), review.clone()));
    match answer(&target, &review) {
        Some(resp) => {
            let body = serde_json::to_vec(&resp).unwrap();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
            let _ = s.flush();
        }
        // never answer: wait for the client to give up and close
        None => while matches!(s.read(&mut buf), Ok(n) if n > 0) {},
    }
}

fn response(review: &Value, body: Value) -> Value {
    let mut r = body;
    if r.get("uid").is_none() {
        r["uid"] = review["request"]["uid"].clone();
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": r})
}

const PINNED: &str =
    "reg.test/app@sha256:0000000000000000000000000000000000000000000000000000000000000001";

/// Mutate pins the image; validate admits only the pinned image.
fn pinning(path: &str, review: &Value) -> Option<Value> {
    if path.starts_with("/mutate") {
        let patch = json!([{"op": "replace", "path": "/spec/containers/0/image", "value": PINNED}]);
        Some(response(
            review,
            json!({"allowed": true, "patchType": "JSONPatch",
                   "patch": STANDARD.encode(serde_json::to_vec(&patch).unwrap())}),
        ))
    } else if review["request"]["object"]["spec"]["containers"][0]["image"] == PINNED {
        Some(response(
            review,
            json!({"allowed": true, "warnings": ["w1", "x".repeat(300)]}),
        ))
    } else {
        Some(response(
            review,
            json!({"allowed": false, "status": {"code": 403, "message": "not pinned"}}),
        ))
    }
}

fn pod() -> Value {
    ReviewBuilder::new(WorkloadKind::Pod, "team", "app")
        .image("reg.test/app:v1")
        .build()
}

/// The panic message of `f`.
fn panic_of(f: impl FnOnce()) -> String {
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("no panic");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_default()
}

#[test]
fn the_patched_object_is_what_the_validating_webhook_sees() {
    crate::requires_tool!("openssl");
    let fake = Fake::start(Box::new(pinning));
    let a = fake.harness(10).admit(&pod());
    assert!(a.allowed, "{a:#?}");
    assert_eq!(a.object["spec"]["containers"][0]["image"], PINNED);
    // a long warning is cut as the API server cuts it
    assert_eq!(a.warnings, ["w1".to_string(), "x".repeat(256)]);
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, "/mutate?timeout=10s");
    assert_eq!(seen[1].0, "/validate?timeout=10s");
    assert_eq!(
        seen[0].1["request"]["object"]["spec"]["containers"][0]["image"],
        "reg.test/app:v1"
    );
    assert_eq!(
        seen[1].1["request"]["object"]["spec"]["containers"][0]["image"],
        PINNED
    );
    assert_eq!(seen[0].1["request"]["uid"], seen[1].1["request"]["uid"]);
}

#[test]
fn a_denial_carries_the_webhooks_code_and_message_as_kubectl_shows_them() {
    crate::requires_tool!("openssl");
    let fake = Fake::start(Box::new(|path, review| {
        if path.starts_with("/mutate") {
            Some(response(review, json!({"allowed": true})))
        } else {
            pinning(path, review)
        }
    }));
    let a = fake.harness(10).admit(&pod());
    assert!(!a.allowed);
    assert_eq!(a.code, Some(403));
    assert_eq!(
        a.message.as_deref(),
        Some("admission webhook \"validate.fake.test\" denied the request: not pinned")
    );
}

#[test]
fn responses_that_break_the_protocol_fail_the_test() {
    crate::requires_tool!("openssl");
    let cases: Vec<(Box<Answer>, &str)> = vec![
        (
            Box::new(|_: &str, r: &Value| {
                Some(response(r, json!({"uid": "other", "allowed": true})))
            }),
            "expected response.uid",
        ),
        (
            Box::new(|_: &str, r: &Value| {
                Some(response(
                    r,
                    json!({"allowed": false, "status": {"message": "no"}}),
                ))
            }),
            "without an HTTP error status code",
        ),
        (
            Box::new(|_: &str, r: &Value| {
                Some(response(
                    r,
                    json!({"allowed": false, "status": {"code": 403}}),
                ))
            }),
            "without a message",
        ),
        (
            Box::new(|_: &str, r: &Value| {
                Some(response(
                    r,
                    json!({"allowed": true, "patch": STANDARD.encode(b"[]")}),
                ))
            }),
            "without patchType JSONPatch",
        ),
        (
            Box::new(|p: &str, r: &Value| {
                if p.starts_with("/mutate") {
                    Some(response(r, json!({"allowed": true})))
                } else {
                    Some(response(
                        r,
                        json!({"allowed": true, "patchType": "JSONPatch", "patch": STANDARD.encode(b"[]")}),
                    ))
                }
            }),
            "a validating webhook returned a patch",
        ),
        (
            Box::new(|_: &str, r: &Value| {
                let patch = json!([{"op": "remove", "path": "/spec/nothing"}]);
                Some(response(
                    r,
                    json!({"allowed": true, "patchType": "JSONPatch",
                    "patch": STANDARD.encode(serde_json::to_vec(&patch).unwrap())}),
                ))
            }),
            "would refuse the patch",
        ),
        (
            Box::new(|_: &str, r: &Value| {
                Some(
                    json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                    "response": {"uid": r["request"]["uid"], "allowed": true}}),
                )
            }),
            "expected an admission.k8s.io/v1 AdmissionReview",
        ),
    ];
    for (answer, want) in cases {
        let fake = Fake::start(answer);
        let h = fake.harness(10);
        let msg = panic_of(|| {
            h.admit(&pod());
        });
        assert!(msg.contains(want), "wanted {want:?}, got {msg:?}");
    }
}

#[test]
fn a_webhook_that_does_not_answer_in_time_is_a_denial() {
    crate::requires_tool!("openssl");
    let fake = Fake::start(Box::new(|_: &str, _: &Value| None));
    let a = fake.harness(1).admit(&pod());
    assert!(!a.allowed);
    assert_eq!(a.code, Some(500));
    let msg = a.message.clone().unwrap_or_default();
    assert!(
        msg.contains("failed calling webhook \"mutate.fake.test\""),
        "{msg}"
    );
    assert!(msg.contains("deadline"), "{msg}");
    assert!(a.elapsed < Duration::from_secs(3), "{:?}", a.elapsed);
    assert_eq!(fake.seen()[0].0, "/mutate?timeout=1s");
}

/// Two mutating webhooks: the second adds a sidecar; the first, with `reinvocationPolicy:
/// IfNeeded`, is called again and sees it (with `Never`, it is not).
#[test]
fn an_if_needed_webhook_is_reinvoked_after_a_later_one_changed_the_object() {
    crate::requires_tool!("openssl");
    let fake = Fake::start(Box::new(|path: &str, r: &Value| {
        let patch = if path.starts_with("/second") {
            json!([{"op": "add", "path": "/spec/containers/-", "value": {"name": "side", "image": "reg.test/side:1"}}])
        } else {
            json!([])
        };
        Some(response(
            r,
            json!({"allowed": true, "patchType": "JSONPatch",
                   "patch": STANDARD.encode(serde_json::to_vec(&patch).unwrap())}),
        ))
    }));
    for (policy, calls) in [("IfNeeded", 3), ("Never", 2)] {
        let hook = |name: &str, path: &str| {
            format!(
                "  - name: {name}\n    admissionReviewVersions: [v1]\n    sideEffects: None\n\
                 \x20   reinvocationPolicy: {policy}\n\
                 \x20   clientConfig: {{url: \"https://{}{path}\", caBundle: {}}}\n\
                 \x20   rules: [{{apiGroups: [\"\"], apiVersions: [v1], operations: [CREATE], resources: [pods]}}]\n",
                fake.addr, fake.bundle
            )
        };
        let yaml = format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\n\
             metadata: {{name: two}}\nwebhooks:\n{}{}",
            hook("first.fake.test", "/first"),
            hook("second.fake.test", "/second")
        );
        fake.seen.lock().unwrap().clear();
        let a = AdmissionHarness::new(&yaml, fake.addr).admit(&pod());
        assert!(a.allowed, "{a:#?}");
        let seen = fake.seen();
        assert_eq!(seen.len(), calls, "{policy}");
        if calls == 3 {
            assert!(seen[2].0.starts_with("/first"));
            assert_eq!(
                seen[2].1["request"]["object"]["spec"]["containers"][1]["name"],
                "side"
            );
        }
    }
}
