//! The endpoints (axum): `POST /validate`, `POST /mutate`, `GET /healthz`, `GET /readyz`,
//! `GET /metrics`; and the review itself ([`Webhook::review`]): decode, pick the images that
//! need a verdict, check them all at once under one deadline, answer.
//!
//! The deadline is the API server's `?timeout=` less [`TIMEOUT_MARGIN`], capped by the
//! configured `timeout`; an image whose verification misses it is **denied** saying so (a
//! warning under a rule of level audit), and the answer is sent before the API server gives
//! up (so `failurePolicy` never decides). A body that is not an
//! `AdmissionReview` v1 is answered `400`, never allowed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_httpd::RouteLabel;
use serde::Deserialize;

use crate::config::{Config, Mode, TIMEOUT_MARGIN};
use crate::metrics::{Endpoint, Metrics, Reason, Verdict};
use crate::objects::{ImageField, new_images, pod_spec_pointer};
use crate::pull_secrets::secret_names;
use crate::review::{
    AdmissionRequest, AdmissionResponse, MAX_REVIEW_BYTES, Operation, PatchOp, ReviewResponse,
    decode,
};
use crate::verify::{ImageVerdict, Pinning, ReviewRegistries, SetupError, Verifier};

/// The shortest deadline a review gets, whatever `?timeout=` says.
pub const MIN_DEADLINE: Duration = Duration::from_millis(100);
/// How long after the deadline the whole review is cut short if the answer is not built yet
/// (less than [`TIMEOUT_MARGIN`], so the answer still beats the API server's timeout).
const DEADLINE_BACKSTOP: Duration = Duration::from_millis(100);
/// Denial messages joined into one `status.message` at most (kubectl shows it whole).
const MAX_MESSAGES: usize = 3;

/// The webhook: what every request reaches.
#[derive(Debug)]
pub struct Webhook {
    verifier: Verifier,
    metrics: Arc<Metrics>,
    excluded: Vec<String>,
    mode: Mode,
    timeout: Duration,
    ready: AtomicBool,
}

impl Webhook {
    /// Loads the policy, trust store and labels of `config`; `own_namespace` is excluded
    /// unless the config lists the excluded namespaces itself.
    pub async fn new(config: &Config, own_namespace: &str) -> Result<Webhook, SetupError> {
        let metrics = Arc::new(Metrics::default());
        let verifier = Verifier::new(config, metrics.clone()).await?;
        Ok(Webhook {
            verifier,
            metrics,
            excluded: config.excluded(own_namespace),
            mode: config.mode,
            timeout: config.timeout,
            ready: AtomicBool::new(true),
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// `/readyz` answers 503 from now on (called when shutdown begins, so the Service stops
    /// sending reviews here while in-flight ones finish).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// The deadline of a review given the API server's `?timeout=`.
    pub fn deadline(&self, api_timeout: Option<Duration>) -> Duration {
        let d = match api_timeout {
            Some(t) => t.saturating_sub(TIMEOUT_MARGIN).min(self.timeout),
            None => self.timeout,
        };
        d.max(MIN_DEADLINE)
    }

    /// Answers one review body: the HTTP status and, for 200, the `AdmissionReview` response.
    pub async fn review(
        &self,
        endpoint: Endpoint,
        body: &[u8],
        api_timeout: Option<Duration>,
    ) -> Result<AdmissionResponse, (StatusCode, String)> {
        let started = Instant::now();
        let request = match decode(body) {
            Ok(r) => r,
            Err(e) => {
                self.metrics.request(endpoint, Verdict::BadRequest);
                tracing::warn!(endpoint = endpoint.label(), error = %e, "refused a request that is not an AdmissionReview v1");
                return Err((StatusCode::BAD_REQUEST, e.to_string()));
            }
        };
        let budget = self.deadline(api_timeout);
        let deadline = tokio::time::Instant::now() + budget;
        // each image stops at the deadline with its own verdict (an audit-level rule's is a
        // warning); this outer bound only backs that up, well inside the API server's margin
        let backstop = deadline + DEADLINE_BACKSTOP;
        let mut response = match tokio::time::timeout_at(
            backstop,
            self.decide(endpoint, &request, deadline, budget),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => {
                self.metrics.image(Reason::Deadline);
                AdmissionResponse::deny(
                    &request.uid,
                    format!(
                        "image verification did not finish within {} ms (the deadline under the API server's timeout), so the request is denied; retry, or check that the registry is reachable from the webhook",
                        budget.as_millis()
                    ),
                )
            }
        };
        let verdict = if response.allowed {
            Verdict::Allowed
        } else if self.mode == Mode::Audit {
            // audit: admit, say what would have been denied
            let message = response
                .status
                .take()
                .map(|s| s.message)
                .unwrap_or_default();
            response.allowed = true;
            response.patch = None;
            response.patch_type = None;
            response.warnings.push(format!("berth (audit): {message}"));
            Verdict::Warned
        } else {
            Verdict::Denied
        };
        let verdict = if verdict == Verdict::Allowed && !response.warnings.is_empty() {
            Verdict::Warned
        } else {
            verdict
        };
        self.metrics.request(endpoint, verdict);
        let elapsed = started.elapsed();
        self.metrics.review_latency(elapsed);
        // one line per review: denials and warnings at info, admissions at debug (a line per
        // admitted pod at info would cost more than the review itself)
        macro_rules! review_line {
            ($level:ident) => {
                tracing::$level!(
                    endpoint = endpoint.label(),
                    uid = %request.uid,
                    kind = %request.kind.kind,
                    namespace = request.namespace.as_deref().unwrap_or(""),
                    name = request.name.as_deref().unwrap_or(""),
                    operation = ?request.operation,
                    dry_run = request.dry_run.unwrap_or(false),
                    allowed = response.allowed,
                    verdict = verdict.label(),
                    detail = response.status.as_ref().map(|s| s.message.as_str()).unwrap_or(""),
                    micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
                    "review"
                );
            };
        }
        if verdict == Verdict::Allowed {
            review_line!(debug);
        } else {
            review_line!(info);
        }
        Ok(response)
    }

    /// The answer to a decoded request; each image's verification stops at `deadline`
    /// (`budget` after the review began, for the message).
    pub async fn decide(
        &self,
        endpoint: Endpoint,
        request: &AdmissionRequest,
        deadline: tokio::time::Instant,
        budget: Duration,
    ) -> AdmissionResponse {
        let uid = request.uid.as_str();
        if !matches!(request.operation, Operation::Create | Operation::Update) {
            return AdmissionResponse::allow(uid);
        }
        let namespace = request.namespace.clone().unwrap_or_default();
        let Some(object) = &request.object else {
            if pod_spec_pointer(&request.kind).is_some() {
                return AdmissionResponse::deny(uid, "the review carries no object to check");
            }
            return AdmissionResponse::allow(uid);
        };
        let old = match request.operation {
            Operation::Update => request.old_object.as_ref(),
            _ => None,
        };
        let fields = match new_images(&request.kind, object, old) {
            Ok(f) => f,
            Err(e) => {
                return AdmissionResponse::deny(
                    uid,
                    format!(
                        "cannot read the images of {} {}: {e}",
                        request.kind.kind,
                        request.name.as_deref().unwrap_or("")
                    ),
                );
            }
        };
        if fields.is_empty() {
            return AdmissionResponse::allow(uid);
        }
        if self.excluded.contains(&namespace) {
            for _ in &fields {
                self.metrics.image(Reason::Excluded);
            }
            return AdmissionResponse::allow(uid);
        }
        let pinning = match endpoint {
            Endpoint::Validate => Pinning::Required,
            Endpoint::Mutate => Pinning::Resolve,
        };
        let mut distinct: Vec<&str> = Vec::new();
        for f in &fields {
            if !distinct.contains(&f.image.as_str()) {
                distinct.push(&f.image);
            }
        }
        let (registries, warnings) = self.pull_credentials(request, object, deadline).await;
        let verdicts: Vec<ImageVerdict> =
            futures_util::future::join_all(distinct.iter().map(|image| {
                self.verifier.check_until(
                    image,
                    &namespace,
                    pinning,
                    deadline,
                    budget,
                    registries.as_deref(),
                )
            }))
            .await;
        let mut response = answer(uid, endpoint, &fields, &verdicts);
        response.warnings.extend(warnings);
        response
    }

    /// The registry clients of this review when `[kubernetes] image_pull_secrets` is on and
    /// the object's pod spec names secrets with credentials; warnings for the secrets skipped.
    async fn pull_credentials(
        &self,
        request: &AdmissionRequest,
        object: &serde_json::Value,
        deadline: tokio::time::Instant,
    ) -> (Option<Arc<ReviewRegistries>>, Vec<String>) {
        let (Some(reader), Some(pointer), Some(namespace)) = (
            self.verifier.pull_secrets(),
            pod_spec_pointer(&request.kind),
            request.namespace.as_deref(),
        ) else {
            return (None, Vec::new());
        };
        let (names, mut warnings) = secret_names(object, pointer);
        if names.is_empty() {
            return (None, warnings);
        }
        let found = match tokio::time::timeout_at(deadline, reader.read(namespace, &names)).await {
            Ok(f) => f,
            Err(_) => {
                warnings.push(
                    "berth: the image pull secrets were not read within the deadline; verifying without them"
                        .to_string(),
                );
                return (None, warnings);
            }
        };
        warnings.extend(found.warnings);
        let Some(credentials) = found.credentials else {
            return (None, warnings);
        };
        match self.verifier.with_pull_credentials(credentials) {
            Ok(r) => (Some(r), warnings),
            Err(e) => {
                tracing::error!(error = %berth_errdefs::error_chain(&e), "failed to set up registry clients for pull secrets");
                warnings.push(format!(
                    "berth: the image pull secrets' credentials could not be used ({e}); verifying without them"
                ));
                (None, warnings)
            }
        }
    }
}

/// The response for these verdicts: denied with the enforced failures' messages, else
/// allowed with warnings for the audited ones and, when mutating, the pins.
fn answer(
    uid: &str,
    endpoint: Endpoint,
    fields: &[ImageField],
    verdicts: &[ImageVerdict],
) -> AdmissionResponse {
    let denials: Vec<&str> = verdicts
        .iter()
        .filter(|v| !v.allowed && v.enforced)
        .filter_map(|v| v.message.as_deref())
        .collect();
    if !denials.is_empty() {
        let mut message = denials[..denials.len().min(MAX_MESSAGES)].join("; ");
        if denials.len() > MAX_MESSAGES {
            message.push_str(&format!(
                "; and {} more image(s) denied",
                denials.len() - MAX_MESSAGES
            ));
        }
        return AdmissionResponse::deny(uid, message);
    }
    let mut response = AdmissionResponse::allow(uid);
    response.warnings = verdicts
        .iter()
        .filter(|v| !v.allowed)
        .filter_map(|v| v.message.as_ref())
        .map(|m| format!("berth (audit): {m}"))
        .collect();
    let verified: Vec<String> = verdicts
        .iter()
        .filter(|v| v.allowed)
        .filter_map(|v| v.digest.as_ref().map(|d| format!("{}={d}", v.image)))
        .collect();
    if !verified.is_empty() {
        response
            .audit_annotations
            .insert("verified-images".to_string(), verified.join(","));
    }
    if endpoint == Endpoint::Mutate {
        let pins: BTreeMap<&str, String> = verdicts
            .iter()
            .filter(|v| v.allowed)
            .filter_map(|v| v.pinned().map(|p| (v.image.as_str(), p)))
            .collect();
        let ops: Vec<PatchOp> = fields
            .iter()
            .filter_map(|f| {
                pins.get(f.image.as_str())
                    .map(|p| PatchOp::replace(&f.pointer, p))
            })
            .collect();
        response = response.with_patch(&ops);
    }
    response
}

/// `?timeout=10s` as the API server sends it.
#[derive(Debug, Deserialize)]
pub struct TimeoutQuery {
    timeout: Option<String>,
}

/// The router: the five endpoints over `app`, with berth-httpd's access log.
pub fn router(app: Arc<Webhook>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(app)
        .layer(berth_httpd::AccessLogLayer)
}

async fn validate(
    State(app): State<Arc<Webhook>>,
    Query(q): Query<TimeoutQuery>,
    body: Body,
) -> Response {
    handle(app, Endpoint::Validate, q, body).await
}

async fn mutate(
    State(app): State<Arc<Webhook>>,
    Query(q): Query<TimeoutQuery>,
    body: Body,
) -> Response {
    handle(app, Endpoint::Mutate, q, body).await
}

async fn handle(app: Arc<Webhook>, endpoint: Endpoint, q: TimeoutQuery, body: Body) -> Response {
    let label = RouteLabel(endpoint.label());
    let bytes = match axum::body::to_bytes(body, MAX_REVIEW_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            app.metrics.request(endpoint, Verdict::BadRequest);
            let mut r = (
                StatusCode::BAD_REQUEST,
                format!(
                    "the body could not be read or is more than {MAX_REVIEW_BYTES} bytes; an AdmissionReview is expected"
                ),
            )
                .into_response();
            r.extensions_mut().insert(label);
            return r;
        }
    };
    let api_timeout = q
        .timeout
        .as_deref()
        .and_then(|t| berth_oci::timefmt::parse_go_duration(t).ok());
    let mut r = match app.review(endpoint, &bytes, api_timeout).await {
        Ok(response) => axum::Json(ReviewResponse::new(response)).into_response(),
        Err((status, message)) => (status, message).into_response(),
    };
    r.extensions_mut().insert(label);
    r
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(app): State<Arc<Webhook>>) -> Response {
    if app.ready.load(Ordering::SeqCst) {
        "ok".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    }
}

async fn metrics(State(app): State<Arc<Webhook>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(image: &str, allowed: bool, enforced: bool, digest: Option<&str>) -> ImageVerdict {
        ImageVerdict {
            image: image.into(),
            reason: if allowed {
                Reason::Verified
            } else {
                Reason::Policy
            },
            allowed,
            enforced,
            digest: digest.map(str::to_string),
            rule: None,
            message: (!allowed).then(|| format!("image {image}: no")),
        }
    }

    fn field(image: &str, i: usize) -> ImageField {
        ImageField {
            image: image.into(),
            pointer: format!("/spec/containers/{i}/image"),
            container: format!("c{i}"),
            list: crate::objects::ContainerList::Containers,
        }
    }

    #[test]
    fn pins_every_field_of_a_verified_image_and_only_when_mutating() {
        let fields = [
            field("nginx:1", 0),
            field("nginx:1", 1),
            field("a@sha256:11", 2),
        ];
        let verdicts = [
            verdict("nginx:1", true, true, Some("sha256:22")),
            verdict("a@sha256:11", true, true, Some("sha256:11")),
        ];
        let r = answer("u", Endpoint::Mutate, &fields, &verdicts);
        assert!(r.allowed);
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(r.patch.unwrap())
            .unwrap();
        let ops: Vec<PatchOp> = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            ops,
            [
                PatchOp::replace("/spec/containers/0/image", "nginx:1@sha256:22"),
                PatchOp::replace("/spec/containers/1/image", "nginx:1@sha256:22"),
            ]
        );
        let r = answer("u", Endpoint::Validate, &fields, &verdicts);
        assert!(r.allowed && r.patch.is_none());
    }

    #[test]
    fn an_enforced_failure_denies_and_an_audited_one_warns() {
        let fields = [field("a", 0), field("b", 1)];
        let r = answer(
            "u",
            Endpoint::Mutate,
            &fields,
            &[
                verdict("a", true, true, Some("sha256:1")),
                verdict("b", false, true, None),
            ],
        );
        assert!(!r.allowed);
        assert!(r.patch.is_none(), "a denial patches nothing");
        assert_eq!(r.status.unwrap().message, "image b: no");
        let r = answer(
            "u",
            Endpoint::Mutate,
            &fields,
            &[
                verdict("a", true, true, Some("sha256:1")),
                verdict("b", false, false, None),
            ],
        );
        assert!(r.allowed);
        assert_eq!(r.warnings, ["berth (audit): image b: no"]);
        // many denials: the first three, and a count
        let many: Vec<ImageVerdict> = (0..5)
            .map(|i| verdict(&format!("i{i}"), false, true, None))
            .collect();
        let fields: Vec<ImageField> = (0..5).map(|i| field(&format!("i{i}"), i)).collect();
        let r = answer("u", Endpoint::Validate, &fields, &many);
        let m = r.status.unwrap().message;
        assert!(m.ends_with("; and 2 more image(s) denied"), "{m}");
    }
}
