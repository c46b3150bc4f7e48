//! [`AdmissionHarness`]: the Kubernetes API server's side of an admission webhook, played
//! faithfully against a webhook listening on 127.0.0.1.
//!
//! What the API server does, and so this does (k8s.io/apiserver
//! `pkg/admission/plugin/webhook`):
//! - reads the webhooks of the `MutatingWebhookConfiguration` and
//!   `ValidatingWebhookConfiguration` manifests (YAML, as applied): `clientConfig` (service
//!   name, namespace, path, port, `caBundle`), `rules`, `namespaceSelector`, `timeoutSeconds`,
//!   `failurePolicy`, `sideEffects`, `admissionReviewVersions`, `reinvocationPolicy`;
//! - calls a webhook only when one of its rules matches the request (operation, API group,
//!   version, resource and subresource, scope), its namespaceSelector matches the
//!   namespace's labels (`kubernetes.io/metadata.name` included, as the API server sets it)
//!   and its objectSelector the object's (or the old object's) labels;
//! - connects over TLS and verifies the serving certificate against the `caBundle` only,
//!   with the Service's DNS name `NAME.NAMESPACE.svc` as the server name (SNI and the name
//!   checked), or the IP address for a `url:` webhook on 127.0.0.1;
//! - POSTs the AdmissionReview to `PATH?timeout=Ns` with a client deadline of
//!   `timeoutSeconds`;
//! - checks the response: an `admission.k8s.io/v1` AdmissionReview whose `response.uid` is
//!   the request's; a patch only from a mutating webhook, with `patchType: JSONPatch`, base64
//!   JSON patch applied with RFC 6902 semantics ([`crate::jsonpatch`]); a denial's
//!   `status.code` and `status.message`;
//! - runs the mutating webhooks in order (again once, for `reinvocationPolicy: IfNeeded`,
//!   when a later one changed the object), then the validating webhooks on the mutated object;
//! - turns a call that fails (connection, TLS, timeout, malformed response) into a denial
//!   when `failurePolicy` is `Fail`, and skips the webhook when it is `Ignore`.
//!
//! A response that breaks the protocol panics the test (it would be a bug in the webhook),
//! after the API server's answer to it is noted in the message.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;

use crate::jsonpatch::apply_patch;

/// The longest warning the API server passes on whole.
pub const MAX_WARNING_CHARS: usize = 256;
/// The most warning text the API server passes on for one request.
pub const MAX_WARNINGS_CHARS: usize = 4096;

/// Which kind of webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    Mutating,
    Validating,
}

/// One webhook of a webhook configuration, as the API server reads it.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub kind: WebhookKind,
    pub name: String,
    /// `clientConfig.service` (name, namespace, path, port), or `None` for a `url:` webhook.
    pub service: Option<(String, String, String, u16)>,
    /// `clientConfig.url`.
    pub url: Option<String>,
    /// The decoded `caBundle` (PEM).
    pub ca_bundle: Vec<u8>,
    pub timeout_seconds: u64,
    pub failure_policy: String,
    pub side_effects: String,
    pub admission_review_versions: Vec<String>,
    pub reinvocation_policy: Option<String>,
    pub rules: Vec<Value>,
    pub namespace_selector: Value,
    pub object_selector: Value,
}

/// Every YAML document of `text` as JSON (empty documents skipped).
pub fn yaml_documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(text)
        .map(|d| {
            Value::deserialize(d).unwrap_or_else(|e| panic!("a YAML document does not parse: {e}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

impl Webhook {
    /// The webhooks of the configurations in `yaml` (other documents are ignored), checked
    /// as the API server validates them on create.
    pub fn from_manifests(yaml: &str) -> Vec<Webhook> {
        let mut out = Vec::new();
        for doc in yaml_documents(yaml) {
            let kind = match doc["kind"].as_str() {
                Some("MutatingWebhookConfiguration") => WebhookKind::Mutating,
                Some("ValidatingWebhookConfiguration") => WebhookKind::Validating,
                _ => continue,
            };
            assert_eq!(
                doc["apiVersion"], "admissionregistration.k8s.io/v1",
                "webhook configuration API version"
            );
            for w in doc["webhooks"].as_array().into_iter().flatten() {
                out.push(Webhook::parse(kind, w));
            }
        }
        out
    }

    fn parse(kind: WebhookKind, w: &Value) -> Webhook {
        let name = w["name"].as_str().expect("webhook name").to_string();
        // the API server requires a fully qualified name: at least three segments
        assert!(
            name.split('.').count() >= 3,
            "{name}: not a fully qualified name"
        );
        let cc = &w["clientConfig"];
        let service = cc.get("service").map(|s| {
            (
                s["name"].as_str().expect("service name").to_string(),
                s["namespace"]
                    .as_str()
                    .expect("service namespace")
                    .to_string(),
                s["path"].as_str().unwrap_or("/").to_string(),
                s["port"]
                    .as_u64()
                    .map_or(443, |p| u16::try_from(p).expect("port")),
            )
        });
        let url = cc["url"].as_str().map(str::to_string);
        assert!(
            service.is_some() != url.is_some(),
            "{name}: exactly one of clientConfig.service and clientConfig.url"
        );
        let ca_bundle = STANDARD
            .decode(cc["caBundle"].as_str().unwrap_or(""))
            .unwrap_or_else(|e| panic!("{name}: caBundle is not base64: {e}"));
        let timeout_seconds = w["timeoutSeconds"].as_u64().unwrap_or(10);
        assert!(
            (1..=30).contains(&timeout_seconds),
            "{name}: timeoutSeconds must be 1..30"
        );
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        let side_effects = w["sideEffects"].as_str().unwrap_or("").to_string();
        assert!(
            side_effects == "None" || side_effects == "NoneOnDryRun",
            "{name}: admissionregistration/v1 requires sideEffects None or NoneOnDryRun"
        );
        let versions = strings(&w["admissionReviewVersions"]);
        assert!(
            versions.iter().any(|v| v == "v1"),
            "{name}: admissionReviewVersions must include v1"
        );
        Webhook {
            kind,
            name,
            service,
            url,
            ca_bundle,
            timeout_seconds,
            failure_policy: w["failurePolicy"].as_str().unwrap_or("Fail").to_string(),
            side_effects,
            admission_review_versions: versions,
            reinvocation_policy: w["reinvocationPolicy"].as_str().map(str::to_string),
            rules: w["rules"].as_array().cloned().unwrap_or_default(),
            namespace_selector: w["namespaceSelector"].clone(),
            object_selector: w["objectSelector"].clone(),
        }
    }

    /// Whether a rule matches the request (operation, group, version, resource[/sub], scope).
    pub fn matches_rules(&self, request: &Value) -> bool {
        let op = request["operation"].as_str().unwrap_or("");
        let res = &request["resource"];
        let sub = request["subResource"].as_str().unwrap_or("");
        let full = if sub.is_empty() {
            res["resource"].as_str().unwrap_or("").to_string()
        } else {
            format!("{}/{sub}", res["resource"].as_str().unwrap_or(""))
        };
        let namespaced = request["namespace"].as_str().is_some_and(|n| !n.is_empty());
        let has = |v: &Value, want: &str| {
            v.as_array()
                .into_iter()
                .flatten()
                .any(|s| s.as_str() == Some("*") || s.as_str() == Some(want))
        };
        self.rules.iter().any(|r| {
            let resource_ok = r["resources"].as_array().into_iter().flatten().any(|p| {
                let p = p.as_str().unwrap_or("");
                p == full
                    || p == "*/*"
                    || (p == "*" && sub.is_empty())
                    || p.strip_suffix("/*").is_some_and(|base| {
                        !sub.is_empty() && (base == "*" || base == res["resource"])
                    })
            });
            let scope_ok = match r["scope"].as_str().unwrap_or("*") {
                "Namespaced" => namespaced,
                "Cluster" => !namespaced,
                _ => true,
            };
            has(&r["operations"], op)
                && has(&r["apiGroups"], res["group"].as_str().unwrap_or(""))
                && has(&r["apiVersions"], res["version"].as_str().unwrap_or(""))
                && resource_ok
                && scope_ok
        })
    }

    /// Whether the namespaceSelector selects a namespace with these labels (matchLabels and
    /// matchExpressions In, NotIn, Exists, DoesNotExist; an absent selector selects all).
    pub fn selects_namespace(&self, labels: &BTreeMap<String, String>) -> bool {
        label_selector_matches(&self.namespace_selector, labels)
    }

    /// Whether the objectSelector selects the request: the labels of `object` or, failing
    /// that, of `oldObject` (as the API server matches a DELETE or a label change).
    pub fn selects_object(&self, request: &Value) -> bool {
        let labels = |o: &Value| -> BTreeMap<String, String> {
            o["metadata"]["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        };
        ["object", "oldObject"].iter().any(|k| {
            !request[*k].is_null()
                && label_selector_matches(&self.object_selector, &labels(&request[*k]))
        })
    }
}

/// A Kubernetes LabelSelector against a label set.
pub fn label_selector_matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    if selector.is_null() {
        return true;
    }
    let match_labels = selector["matchLabels"].as_object();
    let labels_ok = match_labels
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
    let exprs_ok = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e["key"].as_str().unwrap_or("");
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let got = labels.get(key).map(String::as_str);
            match e["operator"].as_str() {
                Some("In") => got.is_some_and(|g| values.contains(&g)),
                Some("NotIn") => got.is_none_or(|g| !values.contains(&g)),
                Some("Exists") => got.is_some(),
                Some("DoesNotExist") => got.is_none(),
                other => panic!("unknown label selector operator {other:?}"),
            }
        });
    labels_ok && exprs_ok
}

/// One call of a webhook.
#[derive(Debug, Clone)]
pub struct Call {
    pub webhook: String,
    pub kind: WebhookKind,
    /// The URL path and query sent.
    pub target: String,
    pub elapsed: Duration,
    /// The AdmissionReview response, or why the call failed.
    pub result: Result<Value, String>,
}

/// What the API server decided.
#[derive(Debug, Clone)]
pub struct Admission {
    pub allowed: bool,
    /// The object after every mutating webhook's patch.
    pub object: Value,
    /// For a denial: the status code (403 when a webhook denied without one, as the API server
    /// answers) and the message as `kubectl` shows it.
    pub code: Option<u16>,
    pub message: Option<String>,
    /// The webhook's own `status.message` of a denial.
    pub webhook_message: Option<String>,
    /// `response.warnings` of every call, in order.
    pub warnings: Vec<String>,
    pub calls: Vec<Call>,
    pub elapsed: Duration,
}

impl Admission {
    /// The calls made to webhooks of `kind`.
    pub fn calls_of(&self, kind: WebhookKind) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.kind == kind).collect()
    }
}

/// The API server, for the webhooks of one set of manifests, whose Service resolves to
/// `endpoint`.
#[derive(Debug, Clone)]
pub struct AdmissionHarness {
    webhooks: Vec<Webhook>,
    endpoint: SocketAddr,
    verify_ip: bool,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

impl AdmissionHarness {
    /// The webhooks of the manifests in `yaml`, their Service reached at `endpoint`.
    pub fn new(yaml: &str, endpoint: SocketAddr) -> AdmissionHarness {
        let webhooks = Webhook::from_manifests(yaml);
        assert!(
            !webhooks.is_empty(),
            "no webhook configuration in the manifests"
        );
        AdmissionHarness {
            webhooks,
            endpoint,
            verify_ip: false,
            namespaces: BTreeMap::new(),
        }
    }

    /// The webhooks of the manifest file `path`.
    pub fn from_file(path: &Path, endpoint: SocketAddr) -> AdmissionHarness {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
        AdmissionHarness::new(&text, endpoint)
    }

    /// Verify the serving certificate for the endpoint's IP address (as for a `url:
    /// https://127.0.0.1:PORT/…` webhook) instead of the Service's DNS name.
    pub fn verify_ip(mut self) -> AdmissionHarness {
        self.verify_ip = true;
        self
    }

    /// Labels of a namespace (besides `kubernetes.io/metadata.name`, which it always has).
    pub fn namespace_labels(
        mut self,
        namespace: &str,
        labels: &[(&str, &str)],
    ) -> AdmissionHarness {
        self.namespaces.insert(
            namespace.to_string(),
            labels
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        );
        self
    }

    pub fn webhooks(&self) -> &[Webhook] {
        &self.webhooks
    }

    fn labels_of(&self, namespace: &str) -> BTreeMap<String, String> {
        let mut l = self.namespaces.get(namespace).cloned().unwrap_or_default();
        l.insert(
            "kubernetes.io/metadata.name".to_string(),
            namespace.to_string(),
        );
        l
    }

    fn applies(&self, w: &Webhook, request: &Value) -> bool {
        let ns = request["namespace"].as_str().unwrap_or("");
        w.matches_rules(request)
            && (ns.is_empty() || w.selects_namespace(&self.labels_of(ns)))
            && w.selects_object(request)
    }

    /// Admit an AdmissionReview (from [`crate::ReviewBuilder::build`]) as the API server does.
    pub fn admit(&self, review: &Value) -> Admission {
        let start = Instant::now();
        let mut review = review.clone();
        let mut adm = Admission {
            allowed: true,
            object: review["request"]["object"].clone(),
            code: None,
            message: None,
            webhook_message: None,
            warnings: Vec::new(),
            calls: Vec::new(),
            elapsed: Duration::ZERO,
        };
        let mutating: Vec<&Webhook> = self
            .webhooks
            .iter()
            .filter(|w| w.kind == WebhookKind::Mutating && self.applies(w, &review["request"]))
            .collect();
        // mutating webhooks in order; those with IfNeeded once more when a later webhook
        // changed the object after them
        let mut changed_after: Vec<bool> = vec![false; mutating.len()];
        for round in 0..2 {
            for (i, w) in mutating.iter().enumerate() {
                if round == 1
                    && !(w.reinvocation_policy.as_deref() == Some("IfNeeded") && changed_after[i])
                {
                    continue;
                }
                review["request"]["object"] = adm.object.clone();
                match self.call_one(w, &review, &mut adm) {
                    Step::Denied => return finish(adm, start),
                    Step::Patched => {
                        for c in changed_after.iter_mut().take(i) {
                            *c = true;
                        }
                    }
                    Step::Allowed => {}
                }
            }
            if round == 0 {
                // only webhooks before the last change need another call
                if !changed_after.iter().any(|c| *c) {
                    break;
                }
            }
        }
        review["request"]["object"] = adm.object.clone();
        for w in self
            .webhooks
            .iter()
            .filter(|w| w.kind == WebhookKind::Validating && self.applies(w, &review["request"]))
        {
            if let Step::Denied = self.call_one(w, &review, &mut adm) {
                return finish(adm, start);
            }
        }
        finish(adm, start)
    }

    /// Call `w` with `review`, recording the call and applying what it answered to `adm`.
    fn call_one(&self, w: &Webhook, review: &Value, adm: &mut Admission) -> Step {
        let uid = review["request"]["uid"].as_str().unwrap_or("").to_string();
        let (target, result, elapsed) = self.post(w, review);
        let checked = result.and_then(|resp| check_response(w, &uid, &resp).map(|()| resp));
        adm.calls.push(Call {
            webhook: w.name.clone(),
            kind: w.kind,
            target,
            elapsed,
            result: checked.clone(),
        });
        let resp = match checked {
            Ok(r) => r,
            Err(e) => {
                if w.failure_policy == "Ignore" {
                    return Step::Allowed;
                }
                adm.allowed = false;
                adm.code = Some(500);
                adm.message = Some(format!(
                    "Internal error occurred: failed calling webhook \"{}\": {e}",
                    w.name
                ));
                return Step::Denied;
            }
        };
        let r = &resp["response"];
        // as the API server passes warnings on ("Dynamic Admission Control", Response): each
        // one cut at 256 characters, and none once 4096 characters have been added
        for w in r["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let total: usize = adm.warnings.iter().map(|w| w.chars().count()).sum();
            let cut: String = w.chars().take(MAX_WARNING_CHARS).collect();
            if total + cut.chars().count() > MAX_WARNINGS_CHARS {
                break;
            }
            adm.warnings.push(cut);
        }
        if r["allowed"] != Value::Bool(true) {
            let code = r["status"]["code"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(403);
            let msg = r["status"]["message"].as_str().unwrap_or("").to_string();
            adm.allowed = false;
            adm.code = Some(code);
            adm.message = Some(format!(
                "admission webhook \"{}\" denied the request: {msg}",
                w.name
            ));
            adm.webhook_message = Some(msg);
            return Step::Denied;
        }
        let Some(patch) = r["patch"].as_str() else {
            return Step::Allowed;
        };
        let bytes = STANDARD
            .decode(patch)
            .unwrap_or_else(|e| panic!("{}: the patch is not base64: {e}", w.name));
        let ops: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{}: the patch is not JSON: {e}", w.name));
        let patched = apply_patch(&adm.object, &ops).unwrap_or_else(|e| {
            panic!(
                "{}: the API server would refuse the patch ({e}): {ops}",
                w.name
            )
        });
        if patched == adm.object {
            return Step::Allowed;
        }
        adm.object = patched;
        Step::Patched
    }

    /// POST the review to `w`: (path and query, response or failure, time taken).
    fn post(&self, w: &Webhook, review: &Value) -> (String, Result<Value, String>, Duration) {
        let (host, path) = match (&w.service, &w.url) {
            (Some((name, ns, path, port)), _) => (format!("{name}.{ns}.svc:{port}"), path.clone()),
            (None, Some(url)) => {
                let rest = url
                    .strip_prefix("https://")
                    .expect("webhook URLs are https");
                let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                (host.to_string(), path.to_string())
            }
            (None, None) => unreachable!("checked when parsed"),
        };
        let target = format!("{path}?timeout={}s", w.timeout_seconds);
        let server_name: ServerName<'static> = match (&w.service, self.verify_ip) {
            (Some((name, ns, _, _)), false) => {
                ServerName::try_from(format!("{name}.{ns}.svc")).expect("service DNS name")
            }
            _ => ServerName::IpAddress(self.endpoint.ip().into()),
        };
        let body = serde_json::to_vec(review).expect("JSON");
        let start = Instant::now();
        let timeout = Duration::from_secs(w.timeout_seconds);
        let result = https_post(
            self.endpoint,
            server_name,
            &w.ca_bundle,
            &host,
            &target,
            &body,
            timeout,
        )
        .and_then(|(status, body)| {
            if status != 200 {
                return Err(format!(
                    "the server responded with status {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
            serde_json::from_slice(&body).map_err(|e| format!("the response is not JSON: {e}"))
        });
        (target, result, start.elapsed())
    }

    /// A TLS handshake with the webhook as the API server makes it: the certificate chain it
    /// presented, or why it was refused.
    pub fn handshake(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        let w = self.webhooks.first().expect("a webhook");
        let name = match (&w.service, self.verify_ip) {
            (Some((n, ns, _, _)), false) => {
                ServerName::try_from(format!("{n}.{ns}.svc")).expect("service DNS name")
            }
            _ => ServerName::IpAddress(self.endpoint.ip().into()),
        };
        let (conn, tcp) = connect(self.endpoint, name, &w.ca_bundle, Duration::from_secs(10))?;
        let certs = conn
            .peer_certificates()
            .map(<[CertificateDer<'static>]>::to_vec)
            .unwrap_or_default();
        drop(tcp);
        Ok(certs)
    }
}

enum Step {
    Allowed,
    Patched,
    Denied,
}

fn finish(mut adm: Admission, start: Instant) -> Admission {
    adm.elapsed = start.elapsed();
    adm
}

/// The API server's checks of a webhook's response; a broken one is a bug in the webhook
/// and panics the test.
fn check_response(w: &Webhook, uid: &str, resp: &Value) -> Result<(), String> {
    let name = &w.name;
    assert_eq!(
        (resp["apiVersion"].as_str(), resp["kind"].as_str()),
        (Some("admission.k8s.io/v1"), Some("AdmissionReview")),
        "{name}: expected an admission.k8s.io/v1 AdmissionReview, got {resp}"
    );
    let r = &resp["response"];
    assert!(r.is_object(), "{name}: no response in {resp}");
    assert_eq!(
        r["uid"].as_str(),
        Some(uid),
        "{name}: expected response.uid={uid:?} (the API server refuses this response)"
    );
    assert!(
        r["allowed"].is_boolean(),
        "{name}: response.allowed is missing or not a boolean: {resp}"
    );
    if r["allowed"] == Value::Bool(false) {
        let code = r["status"]["code"].as_u64();
        assert!(
            code.is_some_and(|c| (400..600).contains(&c)),
            "{name}: a denial without an HTTP error status code: {resp}"
        );
        assert!(
            r["status"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}: a denial without a message: {resp}"
        );
    }
    if r.get("patch").is_some_and(|p| !p.is_null()) {
        assert_eq!(
            w.kind,
            WebhookKind::Mutating,
            "{name}: a validating webhook returned a patch"
        );
        assert_eq!(
            r["patchType"].as_str(),
            Some("JSONPatch"),
            "{name}: a patch without patchType JSONPatch"
        );
    }
    Ok(())
}

fn client_config(ca_bundle: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_bundle) {
        let c = c.map_err(|e| format!("the caBundle is not PEM: {e}"))?;
        roots
            .add(c)
            .map_err(|e| format!("a caBundle certificate is refused: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the caBundle holds no certificate".to_string());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS versions: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

fn connect(
    endpoint: SocketAddr,
    name: ServerName<'static>,
    ca_bundle: &[u8],
    timeout: Duration,
) -> Result<(rustls::ClientConnection, TcpStream), String> {
    let config = client_config(ca_bundle)?;
    let mut tcp = TcpStream::connect_timeout(&endpoint, timeout)
        .map_err(|e| format!("dial tcp {endpoint}: {e}"))?;
    tcp.set_read_timeout(Some(timeout)).ok();
    tcp.set_write_timeout(Some(timeout)).ok();
    let mut conn =
        rustls::ClientConnection::new(config, name).map_err(|e| format!("TLS client: {e}"))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| format!("tls: failed to verify certificate or handshake: {e}"))?;
    }
    Ok((conn, tcp))
}

/// One HTTPS POST over a new connection: (status, body).
fn https_post(
    endpoint: SocketAddr,
    name: ServerName<'static>,
    ca_bundle: &[u8],
    host: &str,
    target: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let deadline = Instant::now() + timeout;
    let (conn, tcp) = connect(endpoint, name, ca_bundle, timeout)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: kube-apiserver-admission\r\n\
         Content-Type: application/json\r\nAccept: application/json, */*\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes())
        .and_then(|()| tls.write_all(body))
        .and_then(|()| tls.flush())
        .map_err(|e| format!("Post \"https://{host}{target}\": {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if Instant::now() > deadline {
            return Err(format!(
                "Post \"https://{host}{target}\": context deadline exceeded"
            ));
        }
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // a server that closes without close_notify after a complete response
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!(
                    "Post \"https://{host}{target}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                ));
            }
            Err(e) => return Err(format!("Post \"https://{host}{target}\": {e}")),
        }
    }
    parse_response(&raw)
}

/// An HTTP/1.1 response read to the end: (status, body), de-chunked.
fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the response has no header end")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
            if k == "content-length" {
                length = v.parse::<usize>().ok();
            }
        }
    }
    let body = &raw[end + 4..];
    if chunked {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("a chunk size line is cut short")?;
            let size_text = String::from_utf8_lossy(&rest[..line_end]);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| format!("bad chunk size {size_text:?}"))?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                return Ok((status, out));
            }
            if rest.len() < size + 2 {
                return Err("a chunk is cut short".to_string());
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    }
    match length {
        Some(n) if body.len() < n => Err(format!(
            "the body is cut short: {} of {n} bytes",
            body.len()
        )),
        Some(n) => Ok((status, body[..n].to_vec())),
        None => Ok((status, body.to_vec())),
    }
}

#[cfg(test)]
mod fake;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HOOKS: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: x}
webhooks:
  - name: validate.x.test
    admissionReviewVersions: [v1]
    sideEffects: None
    clientConfig:
      service: {name: hook, namespace: sys, path: /validate}
      caBundle: ""
    namespaceSelector:
      matchExpressions:
        - {key: kubernetes.io/metadata.name, operator: NotIn, values: [sys]}
      matchLabels: {team: a}
    rules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE]
        resources: [pods, pods/ephemeralcontainers]
        scope: Namespaced
"#;

    #[test]
    fn rules_and_namespace_selectors_match_as_the_api_server_matches_them() {
        let hooks = Webhook::from_manifests(HOOKS);
        assert_eq!(hooks.len(), 1);
        let w = &hooks[0];
        assert_eq!(
            w.service,
            Some((
                "hook".to_string(),
                "sys".to_string(),
                "/validate".to_string(),
                443
            ))
        );
        let req = |op: &str, group: &str, res: &str, sub: Option<&str>| {
            let mut r = json!({"operation": op, "namespace": "n",
                "resource": {"group": group, "version": "v1", "resource": res}});
            if let Some(s) = sub {
                r["subResource"] = json!(s);
            }
            r
        };
        assert!(w.matches_rules(&req("CREATE", "", "pods", None)));
        assert!(w.matches_rules(&req("CREATE", "", "pods", Some("ephemeralcontainers"))));
        assert!(!w.matches_rules(&req("CREATE", "", "pods", Some("status"))));
        assert!(!w.matches_rules(&req("UPDATE", "", "pods", None)));
        assert!(!w.matches_rules(&req("CREATE", "apps", "pods", None)));
        assert!(!w.matches_rules(&req("CREATE", "", "services", None)));
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect()
        };
        let name = "kubernetes.io/metadata.name";
        assert!(w.selects_namespace(&labels(&[(name, "app"), ("team", "a")])));
        assert!(!w.selects_namespace(&labels(&[(name, "app"), ("team", "b")])));
        assert!(!w.selects_namespace(&labels(&[(name, "sys"), ("team", "a")])));
        assert!(label_selector_matches(&Value::Null, &labels(&[])));
        // objectSelector: the object's labels, else the old object's
        let mut sel = w.clone();
        sel.object_selector = json!({"matchLabels": {"app": "web"}});
        let with = |new: Value, old: Value| json!({"object": new, "oldObject": old});
        let obj = |app: &str| json!({"metadata": {"labels": {"app": app}}});
        assert!(sel.selects_object(&with(obj("web"), Value::Null)));
        assert!(sel.selects_object(&with(obj("db"), obj("web"))));
        assert!(!sel.selects_object(&with(obj("db"), Value::Null)));
        assert!(
            w.selects_object(&with(obj("db"), Value::Null)),
            "no selector: all"
        );
    }

    #[test]
    fn responses_are_read_with_a_length_or_in_chunks() {
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"),
            Ok((200, b"{}".to_vec()))
        );
        assert_eq!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"\r\n3\r\na\":\r\n2\r\n1}\r\n0\r\n\r\n"
            ),
            Ok((200, b"{\"a\":1}".to_vec()))
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n{}").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
