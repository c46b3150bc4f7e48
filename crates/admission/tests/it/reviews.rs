//! Reviews through `Webhook::review` (decode → images → verdicts → answer) against a real
//! registry holding real signatures.
#![allow(
    clippy::disallowed_methods,
    reason = "test inputs in a temporary directory need no atomic writes"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_admission::metrics::{Endpoint, Reason};
use berth_admission::review::PatchOp;

use crate::support::{Fixture, apply, call, deployment, message, patch_of, pod, review};

/// dev + CI + prod present: the mutating endpoint pins the tag to the verified digest, the
/// validating endpoint admits the patched object and refuses the unpatched one.
#[tokio::test(flavor = "multi_thread")]
async fn all_roles_present_is_allowed_and_pinned() {
    let f = Fixture::new();
    let target = f
        .push_signed("shop/web", "v1", &["dev", "ci", "prod"])
        .await;
    let hook = f.webhook("").await;
    let image = format!("{}/shop/web:v1", f.host());
    let object = deployment(&[&image]);
    let r = call(&hook, Endpoint::Mutate, &review("prod-eu", &object, None)).await;
    assert!(r.allowed, "{}", message(&r));
    let pinned = format!("{image}@{}", target.digest);
    assert_eq!(
        patch_of(&r),
        [PatchOp::replace(
            "/spec/template/spec/containers/0/image",
            &pinned
        )]
    );
    assert!(
        r.audit_annotations["verified-images"].contains(&target.digest),
        "{:?}",
        r.audit_annotations
    );
    // the API server applies the patch, then calls the validating webhook
    let patched = apply(&object, &patch_of(&r));
    let v = call(
        &hook,
        Endpoint::Validate,
        &review("prod-eu", &patched, None),
    )
    .await;
    assert!(v.allowed, "{}", message(&v));
    assert!(v.patch.is_none(), "validation never patches");
    // the registry round trips were timed
    let metrics = hook.metrics().render();
    assert!(
        metrics.contains("berth_admission_registry_seconds_count")
            && !metrics.contains("berth_admission_registry_seconds_count 0\n"),
        "{metrics}"
    );
    // the unpatched object is refused: a tag is never admitted by the validating endpoint
    let v = call(&hook, Endpoint::Validate, &review("prod-eu", &object, None)).await;
    assert!(!v.allowed);
    assert!(
        message(&v).contains("is not pinned to a digest"),
        "{}",
        message(&v)
    );
    assert_eq!(v.status.as_ref().unwrap().code, Some(403));
    // a Pod with the docker-style short name of the same image, pinned by hand
    let v = call(
        &hook,
        Endpoint::Validate,
        &review("prod-eu", &pod(&[&pinned]), None),
    )
    .await;
    assert!(v.allowed, "{}", message(&v));
}

/// One role missing: denied, naming the role and the rule, nothing patched.
#[tokio::test(flavor = "multi_thread")]
async fn one_role_missing_is_denied_naming_it() {
    let f = Fixture::new();
    f.push_signed("shop/api", "v1", &["dev", "ci"]).await;
    let hook = f.webhook("").await;
    let image = format!("{}/shop/api:v1", f.host());
    let r = call(
        &hook,
        Endpoint::Mutate,
        &review("prod-eu", &deployment(&[&image]), None),
    )
    .await;
    assert!(!r.allowed);
    assert!(r.patch.is_none());
    let m = message(&r);
    assert!(m.contains("missing role(s): prod"), "{m}");
    assert!(m.contains("rule \"production\""), "{m}");
    assert!(m.starts_with(&format!("image {image}:")), "{m}");
    assert!(m.len() < 400, "short enough for kubectl: {m}");
    // the same image passes where the policy asks less (dev-*: audit, dev + ci)
    let r = call(
        &hook,
        Endpoint::Mutate,
        &review("dev-alice", &deployment(&[&image]), None),
    )
    .await;
    assert!(r.allowed && r.warnings.is_empty(), "{r:?}");
}

/// A signature under a look-alike CA outside the trust store does not fill its role.
#[tokio::test(flavor = "multi_thread")]
async fn forged_signature_is_denied() {
    let f = Fixture::new();
    let target = f.push_image("shop/pay", "v1").await;
    f.sign("shop/pay", &target, &f.pki.signer("dev")).await;
    f.sign("shop/pay", &target, &f.pki.signer("ci")).await;
    f.sign("shop/pay", &target, &f.pki.forger("prod")).await;
    let hook = f.webhook("").await;
    let image = format!("{}/shop/pay@{}", f.host(), target.digest);
    let r = call(
        &hook,
        Endpoint::Validate,
        &review("prod-eu", &pod(&[&image]), None),
    )
    .await;
    assert!(!r.allowed);
    let m = message(&r);
    assert!(m.contains("missing role(s): prod"), "{m}");
    assert!(m.contains("1 signature(s) did not count"), "{m}");
    assert_eq!(hook.metrics().images(Reason::Policy), 1);
}

/// The registry takes connections and never answers: the review is denied, saying so,
/// before the API server's timeout (less the margin).
#[tokio::test(flavor = "multi_thread")]
async fn unreachable_registry_is_denied_within_the_deadline() {
    let f = Fixture::new();
    let hook = f.webhook("").await;
    // a listener that accepts and holds connections without a byte of answer
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_addr = hole.local_addr().unwrap();
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for c in hole.incoming().take(16).flatten() {
            keep.lock().unwrap().push(c);
        }
    });
    let image = format!("{hole_addr}/shop/web:v1");
    let started = Instant::now();
    let r = hook
        .review(
            Endpoint::Mutate,
            &review("prod-eu", &pod(&[&image]), None),
            Some(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(!r.allowed);
    let m = message(&r);
    assert!(m.contains("did not finish within 1500 ms"), "{m}");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(1900),
        "answered after {took:?}; the API server waits 2s"
    );
    eprintln!("blackholed registry: denied after {took:?} (deadline 1.5s)");
    assert_eq!(hook.metrics().images(Reason::Deadline), 1);
    // under a rule of level audit, the same miss is a warning (reported, never refused)
    let r = hook
        .review(
            Endpoint::Mutate,
            &review("dev-carol", &pod(&[&image]), None),
            Some(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    assert!(r.allowed);
    assert!(r.patch.is_none());
    assert!(
        r.warnings[0].contains("did not finish within 500 ms"),
        "{:?}",
        r.warnings
    );

    // a closed port: denied at once, naming the registry failure
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let started = Instant::now();
    let r = call(
        &hook,
        Endpoint::Mutate,
        &review("prod-eu", &pod(&[&format!("{closed}/x:v1")]), None),
    )
    .await;
    assert!(!r.allowed);
    assert!(
        message(&r).contains("failed to resolve tag v1"),
        "{}",
        message(&r)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A verified digest is served from the cache: with the registry gone, the same pinned image
/// is still admitted by this replica; a new policy version (another webhook) verifies afresh
/// and, the registry being gone, denies.
#[tokio::test(flavor = "multi_thread")]
async fn a_cache_hit_does_not_call_the_registry() {
    let mut f = Fixture::new();
    let target = f
        .push_signed("shop/web", "v1", &["dev", "ci", "prod"])
        .await;
    let hook = f.webhook("").await;
    let body = review(
        "prod-eu",
        &pod(&[&format!("{}/shop/web@{}", f.host(), target.digest)]),
        None,
    );
    let r = call(&hook, Endpoint::Validate, &body).await;
    assert!(r.allowed, "{}", message(&r));
    assert_eq!(hook.metrics().verifications(), 1);
    f.registry.kill9();
    let started = Instant::now();
    let r = call(&hook, Endpoint::Validate, &body).await;
    assert!(r.allowed, "{}", message(&r));
    eprintln!("cached verdict: {:?}", started.elapsed());
    assert_eq!(hook.metrics().verifications(), 1, "no second verification");
    assert_eq!(hook.metrics().cache_hits(), 1);
    // another namespace under the same rule shares the entry (keyed by rule, not namespace)
    let other = review(
        "prod-us",
        &pod(&[&format!("{}/shop/web@{}", f.host(), target.digest)]),
        None,
    );
    assert!(call(&hook, Endpoint::Validate, &other).await.allowed);
    // a webhook with another configuration has its own cache
    let fresh = f.webhook("").await;
    let r = call(&fresh, Endpoint::Validate, &body).await;
    assert!(!r.allowed, "verified afresh, and the registry is gone");
}

/// 150 junk signatures beside nothing valid: at most `max_signatures` are fetched, the
/// answer says how many were not, and it comes well inside the deadline.
#[tokio::test(flavor = "multi_thread")]
async fn junk_signatures_are_bounded() {
    let f = Fixture::new();
    let target = f.push_image("shop/junk", "v1").await;
    f.push_junk("shop/junk", &target, 150).await;
    let hook = f.webhook("max_signatures = 50").await;
    let image = format!("{}/shop/junk@{}", f.host(), target.digest);
    let started = Instant::now();
    let r = call(
        &hook,
        Endpoint::Validate,
        &review("prod-eu", &pod(&[&image]), None),
    )
    .await;
    let took = started.elapsed();
    assert!(!r.allowed);
    let m = message(&r);
    assert!(m.contains("50 signature(s) did not count"), "{m}");
    assert!(m.contains("100 more signature(s) not evaluated"), "{m}");
    eprintln!("150 junk signatures, 50 evaluated: {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// The tag moves after verification: the pinned digest still validates; the mutating
/// endpoint resolves the tag again and verifies the new digest afresh (unsigned: denied).
#[tokio::test(flavor = "multi_thread")]
async fn a_moved_tag_is_verified_afresh() {
    let f = Fixture::new();
    let first = f
        .push_signed("shop/web", "v1", &["dev", "ci", "prod"])
        .await;
    let hook = f.webhook("").await;
    let image = format!("{}/shop/web:v1", f.host());
    let object = pod(&[&image]);
    let r = call(&hook, Endpoint::Mutate, &review("prod-eu", &object, None)).await;
    assert!(r.allowed, "{}", message(&r));
    let pinned = apply(&object, &patch_of(&r));
    // the tag now names another image, unsigned
    let second = f.push_image("shop/web", "v1").await;
    assert_ne!(first.digest, second.digest);
    let r = call(&hook, Endpoint::Mutate, &review("prod-eu", &object, None)).await;
    assert!(!r.allowed, "the new digest is not signed");
    assert!(
        message(&r).contains(&second.digest[..19]),
        "{}",
        message(&r)
    );
    // what was pinned still runs
    let v = call(&hook, Endpoint::Validate, &review("prod-eu", &pinned, None)).await;
    assert!(v.allowed, "{}", message(&v));
}

/// Rules chosen by namespace labels, the default for namespaces no rule covers, skip and
/// audit levels, excluded namespaces, audit mode.
#[tokio::test(flavor = "multi_thread")]
async fn namespaces_select_rules_by_name_and_labels() {
    let f = Fixture::new();
    let target = f.push_image("shop/web", "v1").await;
    f.sign("shop/web", &target, &f.pki.signer("ci")).await;
    let hook = f.webhook("").await;
    let image = format!("{}/shop/web:v1", f.host());
    let body = |ns: &str| review(ns, &deployment(&[&image]), None);
    // tier=gold: the "gold" rule needs ci only
    let r = call(&hook, Endpoint::Mutate, &body("gold-ns")).await;
    assert!(r.allowed, "{}", message(&r));
    assert_eq!(patch_of(&r).len(), 1);
    // tier=bronze and unlabelled: no rule, default deny
    for ns in ["plain-ns", "unknown"] {
        let r = call(&hook, Endpoint::Mutate, &body(ns)).await;
        assert!(!r.allowed, "{ns}");
        assert!(
            message(&r).contains("no rule of the policy applies"),
            "{}",
            message(&r)
        );
    }
    // default allow: admitted, not pinned (nothing verified)
    let open = f.webhook("default = \"allow\"").await;
    let r = call(&open, Endpoint::Mutate, &body("unknown")).await;
    assert!(r.allowed && r.patch.is_none());
    // skip level: admitted, not pinned, and the validating endpoint needs no pin either
    let r = call(&hook, Endpoint::Mutate, &body("sandbox")).await;
    assert!(r.allowed && r.patch.is_none());
    assert!(
        call(&hook, Endpoint::Validate, &body("sandbox"))
            .await
            .allowed
    );
    // audit level (dev-*): dev is missing, admitted with a warning
    let r = call(&hook, Endpoint::Mutate, &body("dev-bob")).await;
    assert!(r.allowed, "{}", message(&r));
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].contains("missing role(s): dev"),
        "{:?}",
        r.warnings
    );
    // excluded namespaces: nothing checked
    for ns in ["kube-system", "berth-system"] {
        let r = call(&hook, Endpoint::Validate, &body(ns)).await;
        assert!(r.allowed, "{ns}");
    }
    // audit mode: a denial becomes a warning
    let audit = f.webhook("mode = \"audit\"").await;
    let r = call(&audit, Endpoint::Mutate, &body("prod-eu")).await;
    assert!(r.allowed && r.patch.is_none());
    assert!(
        r.warnings[0].contains("missing role(s): dev, prod"),
        "{:?}",
        r.warnings
    );
}

/// UPDATE: only images not in `oldObject` need a verdict (an ephemeral container added to a
/// running Pod through `pods/ephemeralcontainers`).
#[tokio::test(flavor = "multi_thread")]
async fn an_update_checks_only_new_images() {
    let f = Fixture::new();
    let hook = f.webhook("").await;
    let old = pod(&["nginx:1.25"]);
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"] =
        serde_json::json!([{"name": "debug", "image": format!("{}/tools/debug:v1", f.host())}]);
    // the unchanged tag is not checked; the new image is (and does not exist: denied)
    let r = call(
        &hook,
        Endpoint::Validate,
        &review("prod-eu", &new, Some(&old)),
    )
    .await;
    assert!(!r.allowed);
    let m = message(&r);
    assert!(m.contains("tools/debug:v1"), "{m}");
    assert!(!m.contains("nginx"), "{m}");
    // an update that changes no image is admitted without a registry call
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = serde_json::json!({"x": "y"});
    let r = call(
        &hook,
        Endpoint::Validate,
        &review("prod-eu", &relabelled, Some(&old)),
    )
    .await;
    assert!(r.allowed);
    assert_eq!(hook.metrics().verifications(), 0);
}

/// What is not an AdmissionReview v1 is a 400, never an answer.
#[tokio::test(flavor = "multi_thread")]
async fn undecodable_requests_are_refused() {
    let f = Fixture::new();
    let hook = f.webhook("").await;
    for body in [
        b"".to_vec(),
        b"{".to_vec(),
        br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{}}"#
            .to_vec(),
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
    ] {
        let e = hook
            .review(Endpoint::Validate, &body, None)
            .await
            .unwrap_err();
        assert_eq!(e.0, 400, "{}", e.1);
    }
    // a workload whose container list is not a list is denied, not skipped
    let mut broken = pod(&["nginx"]);
    broken["spec"]["containers"] = serde_json::json!({"name": "x"});
    let r = call(&hook, Endpoint::Validate, &review("prod-eu", &broken, None)).await;
    assert!(!r.allowed);
    assert!(
        message(&r).contains("/spec/containers is not an array"),
        "{}",
        message(&r)
    );
}

/// A rule with `requireSource`: the signatures suffice only with a signed provenance
/// attestation naming the source; one naming another source does not count.
#[tokio::test(flavor = "multi_thread")]
async fn a_required_source_needs_a_signed_attestation() {
    let f = Fixture::new();
    let target = f.push_image("shop/app", "v1").await;
    let ci = f.pki.signer("ci");
    f.sign("shop/app", &target, &ci).await;
    let hook = f.webhook("").await;
    let image = format!("{}/shop/app:v1", f.host());
    let body = review("src-eu", &pod(&[&image]), None);
    let r = call(&hook, Endpoint::Mutate, &body).await;
    assert!(!r.allowed);
    let m = message(&r);
    assert!(
        m.contains("requires a signed provenance attestation naming github.com/acme/app"),
        "{m}"
    );
    assert_eq!(hook.metrics().images(Reason::Source), 1);
    f.attest("shop/app", &target, "https://github.com/acme/other", &ci)
        .await;
    let r = call(&hook, Endpoint::Mutate, &body).await;
    assert!(!r.allowed, "another source does not count");
    f.attest("shop/app", &target, "https://github.com/acme/app", &ci)
        .await;
    let r = call(&hook, Endpoint::Mutate, &body).await;
    assert!(r.allowed, "{}", message(&r));
    assert_eq!(patch_of(&r).len(), 1);
}

/// A `berth.scan/v1` report made `age_days` ago with findings of these severities.
fn scan_report(age_days: u64, severities: &[&str]) -> (String, Vec<u8>) {
    let created = berth_oci::timefmt::rfc3339(
        std::time::SystemTime::now() - std::time::Duration::from_secs(age_days * 86_400),
    );
    let findings: Vec<serde_json::Value> = severities
        .iter()
        .enumerate()
        .map(|(i, s)| {
            serde_json::json!({"id": format!("CVE-2026-{i:04}"), "package": "zlib",
                "installed_version": "1:1.2.13.dfsg-1", "severity": s})
        })
        .collect();
    let report = serde_json::json!({"schema": "berth.scan/v1", "created": created,
        "subject": {"name": "app"}, "findings": findings, "warnings": []});
    (created, serde_json::to_vec(&report).unwrap())
}

/// A rule with `requireSbom` and `requireScan`: the signatures suffice only with an SBOM and
/// a fresh scan report with no finding at or above `high`, each signed by role ci; unsigned
/// ones, ones signed by another role, stale ones and ones with findings do not count, and
/// the newest report decides.
#[tokio::test(flavor = "multi_thread")]
async fn required_sbom_and_scan_need_signed_fresh_clean_referrers() {
    use berth_trust::evidence::{CYCLONEDX_JSON, SCAN_REPORT, SPDX_JSON};
    let f = Fixture::new();
    let target = f.push_image("shop/scanned", "v1").await;
    let (ci, dev) = (f.pki.signer("ci"), f.pki.signer("dev"));
    f.sign("shop/scanned", &target, &ci).await;
    let hook = f.webhook("").await;
    let image = format!("{}/shop/scanned:v1", f.host());
    let body = review("scan-eu", &pod(&[&image]), None);
    let denied = |want: &'static str| {
        let (hook, body) = (hook.clone(), body.clone());
        async move {
            let r = call(&hook, Endpoint::Mutate, &body).await;
            assert!(!r.allowed, "allowed, expected a denial with {want:?}");
            let m = message(&r);
            assert!(m.contains(want), "want {want:?} in {m}");
        }
    };
    denied("requires an SBOM signed by role \"ci\": none is attached to the image").await;
    assert_eq!(hook.metrics().images(Reason::Sbom), 1);
    // each referrer newer than the one before: the denial names the newest one's reason
    let at = |secs_ago: u64| {
        berth_oci::timefmt::rfc3339(
            std::time::SystemTime::now() - std::time::Duration::from_secs(secs_ago),
        )
    };
    let now = at(0);
    let spdx = br#"{"spdxVersion":"SPDX-2.3","name":"app","packages":[]}"#;
    f.attach("shop/scanned", &target, SPDX_JSON, spdx, &at(30), None)
        .await;
    denied("not signed").await;
    f.attach(
        "shop/scanned",
        &target,
        CYCLONEDX_JSON,
        br#"{"bomFormat":"CycloneDX","specVersion":"1.6"}"#,
        &at(20),
        Some(&dev),
    )
    .await;
    denied("which is no identity of role \"ci\"").await;
    denied("(and 1 other referrer(s) that did not count)").await;
    // an SPDX type over content that is not SPDX does not count
    f.attach(
        "shop/scanned",
        &target,
        SPDX_JSON,
        br#"{"bomFormat":"CycloneDX"}"#,
        &at(10),
        Some(&ci),
    )
    .await;
    denied("requires an SBOM signed by role").await;
    f.attach("shop/scanned", &target, SPDX_JSON, spdx, &now, Some(&ci))
        .await;
    denied("requires a scan report signed by role \"ci\" at most 7 day(s) old with no finding at or above high: none is attached to the image").await;
    assert_eq!(hook.metrics().images(Reason::Scan), 1);
    let (created, stale) = scan_report(10, &[]);
    f.attach(
        "shop/scanned",
        &target,
        SCAN_REPORT,
        &stale,
        &created,
        Some(&ci),
    )
    .await;
    denied("10 day(s) ago, more than 7").await;
    let (created, vulnerable) = scan_report(1, &["critical", "low"]);
    f.attach(
        "shop/scanned",
        &target,
        SCAN_REPORT,
        &vulnerable,
        &created,
        Some(&ci),
    )
    .await;
    denied("1 finding(s) at or above high: CVE-2026-0000 in zlib 1:1.2.13.dfsg-1 (critical)").await;
    // a newer clean report signed by dev does not count; one signed by ci does
    let (created, clean) = scan_report(0, &["low", "medium"]);
    f.attach(
        "shop/scanned",
        &target,
        SCAN_REPORT,
        &clean,
        &created,
        Some(&dev),
    )
    .await;
    denied("at or above high").await;
    f.attach(
        "shop/scanned",
        &target,
        SCAN_REPORT,
        &clean,
        &created,
        Some(&ci),
    )
    .await;
    let r = call(&hook, Endpoint::Mutate, &body).await;
    assert!(r.allowed, "{}", message(&r));
}

/// 16 concurrent reviewers of one pinned image: their first reviews, all at once, share one
/// verification; then 2,000 cached reviews through the whole review path (decode, images,
/// cache, answer) are timed.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_reviews_share_one_verification_and_cached_ones_are_fast() {
    let f = Fixture::new();
    let target = f
        .push_signed("shop/web", "v1", &["dev", "ci", "prod"])
        .await;
    let hook = f.webhook("").await;
    let body = Arc::new(review(
        "prod-eu",
        &deployment(&[&format!("{}/shop/web@{}", f.host(), target.digest)]),
        None,
    ));
    let gate = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (h, b, g) = (hook.clone(), body.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            g.wait().await;
            let first = call(&h, Endpoint::Validate, &b).await;
            assert!(first.allowed, "{}", message(&first));
            let mut times = Vec::new();
            for _ in 0..125 {
                let t = Instant::now();
                let r = call(&h, Endpoint::Validate, &b).await;
                times.push(t.elapsed());
                assert!(r.allowed);
            }
            times
        }));
    }
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await.unwrap());
    }
    times.sort();
    let (p50, p99) = (times[times.len() / 2], times[times.len() * 99 / 100]);
    eprintln!("cached reviews, 16 concurrent, 2000: p50 {p50:?}, p99 {p99:?}");
    assert_eq!(
        hook.metrics().verifications(),
        1,
        "one verification for all"
    );
    assert_eq!(
        hook.metrics().images(Reason::Verified) + hook.metrics().images(Reason::Cached),
        16 + 2000
    );
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?}");
}

/// A registry that requires authentication: without `registry.docker_config` the webhook is
/// refused and denies, naming the failure; with docker's `config.json` it logs in.
#[tokio::test(flavor = "multi_thread")]
async fn registry_credentials_come_from_a_docker_config() {
    berth_test_support::requires_tool!("htpasswd");
    let f = Fixture::with_registry(
        berth_test_support::RegistryOptions::new().user("alice", "s3cret"),
        Some(("alice", "s3cret")),
    );
    let target = f
        .push_signed("shop/web", "v1", &["dev", "ci", "prod"])
        .await;
    let image = format!("{}/shop/web@{}", f.host(), target.digest);
    let body = review("prod-eu", &pod(&[&image]), None);
    let anonymous = f.webhook("").await;
    let r = call(&anonymous, Endpoint::Validate, &body).await;
    assert!(!r.allowed);
    assert_eq!(
        anonymous.metrics().images(Reason::Registry),
        1,
        "{}",
        message(&r)
    );
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    std::fs::write(
        f.dir.path().join("config.json"),
        format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, f.host()),
    )
    .unwrap();
    let hook = f
        .webhook_with_registry("docker_config = \"config.json\"")
        .await;
    let r = call(&hook, Endpoint::Validate, &body).await;
    assert!(r.allowed, "{}", message(&r));
}

/// A changed policy (a ConfigMap update) applies at `reload`, under a new version (nothing
/// verified under the old one is reused); a policy that does not parse keeps the loaded one.
#[tokio::test(flavor = "multi_thread")]
async fn a_changed_policy_applies_at_reload() {
    let f = Fixture::new();
    let target = f.push_signed("shop/web", "v1", &["dev", "ci"]).await;
    let hook = f.webhook("").await;
    let image = format!("{}/shop/web@{}", f.host(), target.digest);
    let body = review("prod-eu", &pod(&[&image]), None);
    assert!(
        !call(&hook, Endpoint::Validate, &body).await.allowed,
        "prod is missing"
    );
    assert!(!hook.verifier().reload().await.unwrap(), "nothing changed");
    let before = hook.verifier().policy_version();
    let policy = f.dir.path().join("policy.json");
    let relaxed = crate::support::POLICY.replace(
        r#""requirement": {"allOf": ["dev", "ci", "prod"]}"#,
        r#""requirement": {"allOf": ["dev", "ci"]}"#,
    );
    assert_ne!(relaxed, crate::support::POLICY);
    std::fs::write(&policy, &relaxed).unwrap();
    assert!(hook.verifier().reload().await.unwrap());
    assert_ne!(hook.verifier().policy_version(), before);
    let r = call(&hook, Endpoint::Validate, &body).await;
    assert!(r.allowed, "{}", message(&r));
    // broken: refused, the relaxed policy stays
    std::fs::write(&policy, "{\"version\": \"berth.policy/v1\"").unwrap();
    let e = hook.verifier().reload().await.unwrap_err();
    assert!(e.to_string().contains("invalid role policy"), "{e}");
    assert!(call(&hook, Endpoint::Validate, &body).await.allowed);
    // a new trust store file is a new version too
    let v = hook.verifier().policy_version();
    std::fs::write(&policy, &relaxed).unwrap();
    std::fs::write(f.dir.path().join("truststore/x509/ca/acme/other.der"), b"x").unwrap();
    assert!(hook.verifier().reload().await.unwrap());
    assert_ne!(hook.verifier().policy_version(), v);
}
