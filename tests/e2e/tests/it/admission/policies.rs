//! Role policies end to end through the API-server harness: all roles present → admitted and
//! pinned; a role missing, a forged signature, an expired certificate → denied, saying why; a
//! tag moved after verification; an unreachable registry within the deadline; audit mode;
//! namespaces with no rule and excluded ones; certificate rotation without a restart.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use berth_test_support::{
    Admission, AdmissionHarness, Digest, ReviewBuilder, WebhookKind, WorkloadKind, images_of,
    wait_until, write_file,
};
use serde_json::{Value, json};

use super::{Fixture, ROLES};

/// A review creating a `kind` in `namespace` running `image`.
fn review(kind: WorkloadKind, namespace: &str, image: &str) -> ReviewBuilder {
    ReviewBuilder::new(kind, namespace, "app").image(image)
}

#[track_caller]
fn assert_denied(a: &Admission, wants: &[&str]) {
    assert!(!a.allowed, "admitted: {a:#?}");
    let msg = a.message.clone().unwrap_or_default();
    for w in wants {
        assert!(msg.contains(w), "wanted {w:?} in the denial: {msg}");
    }
    // kubectl shows it on one line: short
    let own = a.webhook_message.clone().unwrap_or_default();
    assert!(
        own.len() < 1024,
        "a long message ({} bytes): {own}",
        own.len()
    );
}

/// The image of the first container after admission.
fn first_image(kind: WorkloadKind, a: &Admission) -> String {
    images_of(kind, &a.object)[0].1.clone()
}

#[test]
fn every_role_present_admits_each_kind_pinned_to_the_verified_digest() {
    let f = Fixture::new();
    let digest = f.push("shop/web", "v1", 1);
    f.sign("shop/web", &digest, &ROLES);
    let w = f.serve("");
    let api = f.harness(&w);
    let tagged = format!("{}:v1", f.repo("shop/web"));
    for kind in WorkloadKind::ALL {
        let b = review(kind, "prod-shop", &tagged).init_image(&tagged);
        let a = api.admit(&b.build());
        assert!(a.allowed, "{kind:?}: {a:#?}");
        // the first review verifies (three signatures), the others hit the cache; each is two
        // calls with a TLS handshake each, in a debug build
        eprintln!(
            "{kind:?}: admitted in {:?} (mutate {:?}, validate {:?})",
            a.elapsed, a.calls[0].elapsed, a.calls[1].elapsed
        );
        // both images pinned to the pushed manifest's digest, at their places
        for (ptr, img) in images_of(kind, &a.object) {
            assert!(
                img.ends_with(&format!("@{digest}")) && img.starts_with(&f.repo("shop/web")),
                "{kind:?} {ptr}: {img}"
            );
        }
        // and nothing else of the object changed
        let mut expected = b.object();
        for (ptr, img) in images_of(kind, &a.object) {
            *expected.pointer_mut(&ptr).unwrap() = json!(img);
        }
        assert_eq!(
            a.object, expected,
            "{kind:?}: the patch changed more than images"
        );
        // the mutating webhook ran, then the validating one saw the pinned object
        assert_eq!(a.calls_of(WebhookKind::Mutating).len(), 1, "{kind:?}");
        assert_eq!(a.calls_of(WebhookKind::Validating).len(), 1, "{kind:?}");
        assert!(a.calls.iter().all(|c| c.target.ends_with("?timeout=10s")));
        // pinning is idempotent: a reinvocation with the pinned object changes nothing
        let again = ReviewBuilder::new(kind, "prod-shop", "app")
            .image(&first_image(kind, &a))
            .init_image(&first_image(kind, &a));
        let b2 = api.admit(&again.build());
        assert!(b2.allowed, "{kind:?}: {b2:#?}");
        assert_eq!(images_of(kind, &b2.object), images_of(kind, &a.object));
        let patch = &b2.calls_of(WebhookKind::Mutating)[0]
            .result
            .as_ref()
            .unwrap()["response"]["patch"];
        assert!(
            patch.is_null() || decode_patch(patch) == json!([]),
            "{kind:?}: a pinned image was patched again: {}",
            decode_patch(patch)
        );
    }
    // dry run and an update that does not change the image are admitted too
    let b = review(WorkloadKind::Deployment, "prod-shop", &tagged);
    let created = api.admit(&b.build());
    let up = ReviewBuilder::new(WorkloadKind::Deployment, "prod-shop", "app")
        .image(&first_image(WorkloadKind::Deployment, &created))
        .update(created.object.clone())
        .dry_run();
    assert!(api.admit(&up.build()).allowed);
}

fn decode_patch(p: &Value) -> Value {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(p.as_str().unwrap_or(""))
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn a_missing_role_is_denied_by_name_and_an_unpinned_image_never_validates() {
    let f = Fixture::new();
    let digest = f.push("shop/web", "v1", 2);
    f.sign("shop/web", &digest, &["dev", "ci"]);
    let w = f.serve("");
    let api = f.harness(&w);
    let image = format!("{}:v1", f.repo("shop/web"));
    let a = api.admit(&review(WorkloadKind::Pod, "prod-shop", &image).build());
    assert_denied(&a, &["shop/web", "prod", "production"]);
    assert!(a.code.is_some_and(|c| (400..500).contains(&c)), "{a:#?}");
    assert!(a.elapsed < Duration::from_secs(10));
    // the validating webhook alone (a client that skips mutation) refuses a tag outright
    let b = review(WorkloadKind::Pod, "prod-shop", &image).build();
    let only_validate = validating_only(&f, &w);
    assert_denied(&only_validate.admit(&b), &["shop/web"]);
    // once prod signs, it passes
    f.sign("shop/web", &digest, &["prod"]);
    let a = api.admit(&review(WorkloadKind::Pod, "prod-shop", &image).build());
    assert!(a.allowed, "{a:#?}");
}

/// A harness with only the validating webhook of the fixture's manifests.
fn validating_only(f: &Fixture, w: &super::WebhookServer) -> AdmissionHarness {
    let text = std::fs::read_to_string(f.manifests().join("webhooks.yaml")).unwrap();
    let docs: Vec<&str> = text
        .split("\n---\n")
        .filter(|d| d.contains("kind: ValidatingWebhookConfiguration"))
        .collect();
    AdmissionHarness::new(docs[0], w.addr)
}

#[test]
fn a_forged_signature_is_denied() {
    let f = Fixture::new();
    let real = f.push("shop/web", "real", 3);
    let target = f.push("shop/web", "v1", 4);
    f.sign("shop/web", &real, &["dev"]);
    f.sign("shop/web", &target, &["ci", "prod"]);
    // dev's envelope of the real image, its payload rewritten to name the target: the
    // signature no longer matches what it signs
    let h = f.reg.http();
    let referrers = h.get(&format!("/v2/shop/web/referrers/{real}")).json();
    let sig = referrers["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let (manifest, _) = crate::trust::get_json(&h, "shop/web", &sig);
    let layer = &manifest["layers"][0];
    let envelope = h.get(&format!(
        "/v2/shop/web/blobs/{}",
        layer["digest"].as_str().unwrap()
    ));
    let mut jws: Value = envelope.json();
    use base64::Engine;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: Value =
        serde_json::from_slice(&url.decode(jws["payload"].as_str().unwrap()).unwrap()).unwrap();
    let (target_manifest, size) = crate::trust::get_json(&h, "shop/web", target.as_ref());
    let _ = target_manifest;
    payload["targetArtifact"]["digest"] = json!(target.to_string());
    payload["targetArtifact"]["size"] = json!(size);
    jws["payload"] = json!(url.encode(serde_json::to_vec(&payload).unwrap()));
    let forged = serde_json::to_vec(&jws).unwrap();
    let forged_digest = h.push_blob("shop/web", &forged);
    let mut m = manifest.clone();
    m["layers"][0]["digest"] = json!(forged_digest.to_string());
    m["layers"][0]["size"] = json!(forged.len());
    m["subject"] = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": target.to_string(),
        "size": size,
    });
    let bytes = serde_json::to_vec(&m).unwrap();
    let d = Digest::sha256_of(&bytes);
    h.put_manifest(
        "shop/web",
        d.as_ref(),
        "application/vnd.oci.image.manifest.v1+json",
        &bytes,
    )
    .expect_status(201, "push the forged signature");
    let w = f.serve("");
    let api = f.harness(&w);
    let a = api.admit(
        &review(
            WorkloadKind::Deployment,
            "prod-shop",
            &format!("{}:v1", f.repo("shop/web")),
        )
        .build(),
    );
    assert_denied(&a, &["shop/web", "dev"]);
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn an_expired_certificate_without_a_timestamp_is_denied() {
    berth_test_support::requires_tool!("openssl");
    let f = Fixture::new();
    let pki = tempfile::tempdir().unwrap();
    let expires = now_secs() + 20;
    crate::trust_tsa::short_lived_certificate(pki.path(), expires);
    let (key, crt) = (pki.path().join("short.key"), pki.path().join("short.crt"));
    f.berth(&[
        "key",
        "import",
        "short",
        "--key",
        key.to_str().unwrap(),
        "--cert",
        crt.to_str().unwrap(),
    ]);
    let store = f.trust_store().join("x509/ca/short");
    std::fs::create_dir_all(&store).unwrap();
    write_file(store.join("short.crt"), &std::fs::read(&crt).unwrap());
    f.write_policy(
        &[json!({
            "name": "release",
            "registryScopes": [format!("{}/*", f.reg.host())],
            "namespaces": ["release"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:short"],
            "requirement": {"allOf": ["release"]},
        })],
        &[("release", "short")],
    );
    let digest = f.push("shop/rel", "v1", 5);
    f.sign("shop/rel", &digest, &["short"]);
    // verdicts are cached for a second only, so the second review verifies afresh
    let w = f.serve("[cache]\nttl = \"1s\"");
    let api = f.harness(&w);
    let image = format!("{}:v1", f.repo("shop/rel"));
    let a = api.admit(&review(WorkloadKind::Pod, "release", &image).build());
    assert!(
        a.allowed || now_secs() >= expires,
        "before expiry ({}s left): {a:#?}",
        expires.saturating_sub(now_secs())
    );
    assert!(wait_until(Duration::from_secs(60), || now_secs() > expires + 2));
    let a = api.admit(&review(WorkloadKind::Pod, "release", &image).build());
    assert_denied(&a, &["shop/rel"]);
    let msg = a.message.unwrap_or_default();
    assert!(
        msg.contains("not valid at") || msg.contains("expired"),
        "{msg}"
    );
}

#[test]
fn a_moved_tag_keeps_the_pinned_digest_and_the_new_one_is_verified_afresh() {
    let f = Fixture::new();
    let first = f.push("shop/web", "v1", 6);
    f.sign("shop/web", &first, &ROLES);
    let w = f.serve("");
    let api = f.harness(&w);
    let tagged = format!("{}:v1", f.repo("shop/web"));
    let a = api.admit(&review(WorkloadKind::Deployment, "prod-shop", &tagged).build());
    assert!(a.allowed, "{a:#?}");
    let pinned = first_image(WorkloadKind::Deployment, &a);
    assert!(pinned.ends_with(&format!("@{first}")), "{pinned}");
    // the tag moves to an unsigned image
    let second = f.push("shop/web", "v1", 7);
    assert_ne!(first, second);
    // what was pinned stays pinned and admitted (a ReplicaSet's Pod, say)
    let pod = api.admit(&review(WorkloadKind::Pod, "prod-shop", &pinned).build());
    assert!(pod.allowed, "{pod:#?}");
    assert_eq!(first_image(WorkloadKind::Pod, &pod), pinned);
    // the tag now names the new digest, which is verified afresh and denied
    let b = api.admit(&review(WorkloadKind::Deployment, "prod-shop", &tagged).build());
    assert_denied(&b, &["shop/web"]);
    // signed, it is admitted and pinned to the new digest
    f.sign("shop/web", &second, &ROLES);
    let c = api.admit(&review(WorkloadKind::Deployment, "prod-shop", &tagged).build());
    assert!(c.allowed, "{c:#?}");
    assert!(first_image(WorkloadKind::Deployment, &c).ends_with(&format!("@{second}")));
}

#[test]
fn an_unreachable_registry_is_denied_within_the_deadline() {
    let f = Fixture::new();
    // a registry that accepts connections and never answers
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = silent.local_addr().unwrap().to_string();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    // the production rule covers both registries
    f.write_policy(
        &[json!({
            "name": "elsewhere",
            "registryScopes": [format!("{host}/*"), format!("{closed}/*")],
            "namespaces": ["prod-*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ROLES.iter().map(|r| format!("ca:{r}")).collect::<Vec<_>>(),
            "requirement": {"allOf": ROLES},
        })],
        &[],
    );
    let w = f.serve_with_registry("timeout = \"3s\"", &host);
    let api = f.harness(&w);
    let image = format!("{host}/shop/web:v1");
    let start = Instant::now();
    let a = api.admit(&review(WorkloadKind::Pod, "prod-shop", &image).build());
    let took = start.elapsed();
    eprintln!("unreachable registry: denied after {took:?}");
    // denied by the webhook itself (not by the API server giving up), at its deadline
    assert!(a.calls.iter().all(|c| c.result.is_ok()), "{a:#?}");
    assert_denied(&a, &["did not finish within"]);
    assert!(
        took < Duration::from_secs(5),
        "took {took:?}, the configured deadline is 3 s"
    );
    assert!(
        took >= Duration::from_millis(2500),
        "denied before the deadline, without waiting for the registry? {took:?}"
    );
    drop(w);
    // the API server's own `?timeout=` lowers the deadline: timeoutSeconds 2 in the webhook
    // configurations, the webhook's default deadline (9 s) → denied by the webhook in < 2 s
    let w = f.serve_with_registry("", &host);
    let text = std::fs::read_to_string(f.manifests().join("webhooks.yaml")).unwrap();
    let short = text.replace("timeoutSeconds: 10", "timeoutSeconds: 2");
    assert_ne!(short, text);
    let api = AdmissionHarness::new(&short, w.addr);
    let a = api.admit(&review(WorkloadKind::Pod, "prod-shop", &image).build());
    eprintln!(
        "unreachable registry, ?timeout=2s: denied after {:?}",
        a.elapsed
    );
    assert!(
        a.calls
            .iter()
            .all(|c| c.result.is_ok() && c.target.ends_with("?timeout=2s")),
        "{a:#?}"
    );
    assert_denied(&a, &["did not finish within"]);
    assert!(a.elapsed < Duration::from_secs(2), "{:?}", a.elapsed);
    // and a closed port: denied at once
    let a = api.admit(
        &review(
            WorkloadKind::Pod,
            "prod-shop",
            &format!("{closed}/shop/web:v1"),
        )
        .build(),
    );
    assert_denied(&a, &["shop/web"]);
    drop(silent);
}

#[test]
fn audit_mode_admits_with_warnings_and_namespaces_without_rules_are_denied() {
    let f = Fixture::new();
    let digest = f.push("shop/web", "v1", 8);
    f.sign("shop/web", &digest, &["dev"]);
    let image = format!("{}:v1", f.repo("shop/web"));
    // enforce: a namespace no rule names is denied by default
    let w = f.serve("");
    let api = f.harness(&w);
    let a = api.admit(&review(WorkloadKind::Pod, "team-a", &image).build());
    assert_denied(&a, &["shop/web"]);
    // excluded namespaces: the API server does not call the webhook (namespaceSelector)
    for ns in ["kube-system", "berth-system"] {
        let a = api.admit(&review(WorkloadKind::Pod, ns, &image).build());
        assert!(a.allowed && a.calls.is_empty(), "{ns}: {a:#?}");
    }
    // and the webhook itself admits them unchanged when asked anyway (its exclude list)
    let text = std::fs::read_to_string(f.manifests().join("webhooks.yaml")).unwrap();
    let unselective = AdmissionHarness::new(&strip_namespace_selectors(&text), w.addr);
    let a = unselective.admit(&review(WorkloadKind::Pod, "berth-system", &image).build());
    assert!(a.allowed && a.calls.len() == 2, "{a:#?}");
    assert_eq!(first_image(WorkloadKind::Pod, &a), image);
    drop(w);
    // audit: the same reviews are admitted, with warnings naming the image
    let w = f.serve("mode = \"audit\"");
    let api = f.harness(&w);
    for ns in ["team-a", "prod-shop"] {
        let a = api.admit(&review(WorkloadKind::Pod, ns, &image).build());
        assert!(a.allowed, "{ns}: {a:#?}");
        assert!(
            a.warnings.iter().any(|w| w.contains("shop/web")),
            "{ns}: no warning: {:?}",
            a.warnings
        );
    }
}

/// The webhook configurations without their namespaceSelector.
fn strip_namespace_selectors(text: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.trim_start() == "namespaceSelector:" {
            skipping = true;
            continue;
        }
        if skipping && (line.starts_with("      ") || line.trim().is_empty()) {
            continue;
        }
        skipping = false;
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn a_rotated_certificate_is_served_at_the_next_handshake() {
    let f = Fixture::new();
    let w = f.serve("");
    let api = f.harness(&w);
    let leaf = first_certificate;
    let before = api.handshake().expect("handshake");
    assert_eq!(
        before[0].as_ref(),
        leaf(&std::fs::read(f.certs().join("tls.crt")).unwrap())
    );
    // a new serving certificate (same CA: the caBundle stays valid), written in place
    f.make_certs(&[]);
    let new_leaf = leaf(&std::fs::read(f.certs().join("tls.crt")).unwrap());
    assert_ne!(before[0].as_ref(), new_leaf.as_slice());
    let mut last = Vec::new();
    let served = wait_until(Duration::from_secs(30), || {
        last = api.handshake().expect("handshake after rotation");
        last[0].as_ref() == new_leaf.as_slice()
    });
    assert!(served, "the old certificate is still served");
    // and reviews still pass through it, verified against the same caBundle
    let digest = f.push("shop/web", "v1", 9);
    f.sign("shop/web", &digest, &ROLES);
    let tagged = format!("{}:v1", f.repo("shop/web"));
    let a = api.admit(&review(WorkloadKind::Pod, "prod-shop", &tagged).build());
    assert!(a.allowed, "{a:#?}");
}

/// The first certificate of a PEM file, as DER.
fn first_certificate(pem: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let text = String::from_utf8_lossy(pem);
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

#[test]
fn updates_need_a_verdict_only_for_new_images_ephemeral_containers_included() {
    let f = Fixture::new();
    let signed = f.push("shop/web", "v1", 10);
    f.sign("shop/web", &signed, &ROLES);
    let unsigned = f.push("shop/debug", "v1", 11);
    let w = f.serve("");
    let api = f.harness(&w);
    let web = format!("{}:v1", f.repo("shop/web"));
    let debug = format!("{}:v1", f.repo("shop/debug"));
    let created = api.admit(&review(WorkloadKind::Deployment, "prod-shop", &web).build());
    assert!(created.allowed, "{created:#?}");
    let pinned = first_image(WorkloadKind::Deployment, &created);
    // an update adding an unsigned sidecar: denied, naming the sidecar's image only
    let up = ReviewBuilder::new(WorkloadKind::Deployment, "prod-shop", "app")
        .image(&pinned)
        .image(&debug)
        .update(created.object.clone());
    let a = api.admit(&up.build());
    assert_denied(&a, &["shop/debug"]);
    assert!(
        !a.message.unwrap().contains("shop/web@"),
        "the unchanged image"
    );
    // an update that leaves the images as they were: admitted
    let same = ReviewBuilder::new(WorkloadKind::Deployment, "prod-shop", "app")
        .image(&pinned)
        .update(created.object.clone());
    assert!(api.admit(&same.build()).allowed);
    // kubectl debug: an ephemeral container added through pods/ephemeralcontainers
    let pod = api.admit(&review(WorkloadKind::Pod, "prod-shop", &web).build());
    assert!(pod.allowed, "{pod:#?}");
    let pod_image = first_image(WorkloadKind::Pod, &pod);
    let debugging = |img: &str| {
        ReviewBuilder::new(WorkloadKind::Pod, "prod-shop", "app")
            .image(&pod_image)
            .ephemeral_image(img)
            .sub_resource("ephemeralcontainers")
            .update(pod.object.clone())
            .build()
    };
    assert_denied(&api.admit(&debugging(&debug)), &["shop/debug"]);
    f.sign("shop/debug", &unsigned, &ROLES);
    let a = api.admit(&debugging(&debug));
    assert!(a.allowed, "{a:#?}");
    let images = images_of(WorkloadKind::Pod, &a.object);
    assert!(
        images[1].0.contains("ephemeralContainers")
            && images[1].1.ends_with(&format!("@{unsigned}")),
        "{images:?}"
    );
}

/// A rule that selects namespaces by label (the webhook reads labels from its
/// `namespace_labels` file): it applies in a namespace carrying the label whatever its name,
/// and `default = "allow"` admits what no rule covers.
#[test]
fn rules_select_namespaces_by_label_and_the_default_can_allow() {
    let f = Fixture::new();
    let digest = f.push("shop/web", "v1", 12);
    f.sign("shop/web", &digest, &["dev", "ci"]);
    f.write_policy(
        &[json!({
            "name": "gold",
            "registryScopes": [format!("{}/*", f.reg.host())],
            "namespaceSelector": {"matchLabels": {"tier": "gold"}},
            "signatureVerification": {"level": "strict"},
            "trustStores": ROLES.iter().map(|r| format!("ca:{r}")).collect::<Vec<_>>(),
            "requirement": {"allOf": ROLES},
        })],
        &[],
    );
    let labels = f.dir().join("namespaces.json");
    write_file(
        &labels,
        br#"{"payments": {"tier": "gold"}, "team-a": {"tier": "bronze"}}"#,
    );
    let w = f.serve(&format!(
        "namespace_labels = {labels:?}\ndefault = \"allow\""
    ));
    let api = f.harness(&w);
    let image = format!("{}:v1", f.repo("shop/web"));
    // labelled gold: the rule applies and prod is missing
    let a = api.admit(&review(WorkloadKind::Deployment, "payments", &image).build());
    assert_denied(&a, &["gold", "prod"]);
    // no rule covers team-a (bronze): allowed by the configured default
    let a = api.admit(&review(WorkloadKind::Deployment, "team-a", &image).build());
    assert!(a.allowed, "{a:#?}");
    // prod signs: the gold namespace admits it, pinned
    f.sign("shop/web", &digest, &["prod"]);
    let a = api.admit(&review(WorkloadKind::Deployment, "payments", &image).build());
    assert!(a.allowed, "{a:#?}");
    assert!(first_image(WorkloadKind::Deployment, &a).ends_with(&format!("@{digest}")));
}

/// 1,000 junk signature manifests on an image (anyone with push rights can add them): the
/// review is answered within the deadline, and the webhook's registry round trips stay
/// bounded by `max_signatures`, whatever the outcome.
#[test]
fn a_thousand_junk_signatures_are_bounded_work() {
    const JUNK: usize = 1000;
    let f = Fixture::new();
    let digest = f.push("shop/web", "v1", 13);
    f.sign("shop/web", &digest, &ROLES);
    let h = f.reg.http();
    let (_, size) = crate::trust::get_json(&h, "shop/web", digest.as_ref());
    let junk = berth_test_support::random_bytes(1313, 200);
    let junk_digest = h.push_blob("shop/web", &junk);
    let empty = h.push_blob("shop/web", b"{}");
    for i in 0..JUNK {
        let m = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.cncf.notary.signature", "digest": empty.to_string(), "size": 2},
            "layers": [{"mediaType": "application/jose+json", "digest": junk_digest.to_string(), "size": junk.len()}],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest.to_string(), "size": size},
            "annotations": {"junk": i.to_string()},
        }))
        .unwrap();
        let d = Digest::sha256_of(&m);
        h.put_manifest(
            "shop/web",
            d.as_ref(),
            "application/vnd.oci.image.manifest.v1+json",
            &m,
        )
        .expect_status(201, "push a junk signature");
    }
    let max = 100;
    let w = f.serve(&format!("max_signatures = {max}"));
    let api = f.harness(&w);
    let a = api.admit(
        &review(
            WorkloadKind::Pod,
            "prod-shop",
            &format!("{}:v1", f.repo("shop/web")),
        )
        .build(),
    );
    eprintln!(
        "{JUNK} junk signatures: {} in {:?}: {:?}",
        if a.allowed { "admitted" } else { "denied" },
        a.elapsed,
        a.message
    );
    assert!(a.calls.iter().all(|c| c.result.is_ok()), "{a:#?}");
    assert!(a.elapsed < Duration::from_secs(10), "{:?}", a.elapsed);
    // the good signatures may sort after the first hundred: then the denial says so
    if !a.allowed {
        assert_denied(&a, &["not evaluated"]);
    }
    // the webhook's own count of registry round trips
    let ca = std::fs::read(f.certs().join("ca.crt")).unwrap();
    let metrics = berth_test_support::Http::new(&format!("https://{}", w.addr), Some(&ca))
        .get("/metrics")
        .text();
    let trips: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("berth_admission_registry_seconds_count"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    eprintln!("registry round trips: {trips}");
    assert!(trips > 0.0, "{metrics}");
    assert!(
        trips <= (2 * max + 20) as f64,
        "{trips} registry round trips for {JUNK} junk signatures (max_signatures = {max})"
    );
}
