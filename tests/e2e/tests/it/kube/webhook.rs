//! berth's admission webhook registered with a real kube-apiserver: the webhook configurations
//! `berth admission certs --url https://127.0.0.1:PORT --manifests` wrote (their `caBundle`
//! filled in, `clientConfig.url` since there is no Service routing without a cluster network)
//! calling `berth admission serve` on 127.0.0.1, and Pods and Deployments created through
//! kubectl in a namespace whose policy requires dev + CI + prod signatures. The API server
//! does everything itself: TLS against the `caBundle`, `?timeout=`, the JSON patch, the
//! validating call after the mutating one. Also: every manifest of deploy/kubernetes passes
//! the API server's validation (`kubectl apply -k … --dry-run=server`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use berth_test_support::{
    Digest, KubeApiServer, requires_tool, wait_until, workspace_root, write_file, yaml_documents,
};
use serde_json::{Value, json};

use crate::admission::{Fixture, ROLES, WebhookServer};

/// `berth admission certs --url https://ADDR --manifests DIR` (same CA, a new serving
/// certificate the running webhook reloads): the webhook configurations calling the webhook
/// at ADDR rather than through its Service. Returns their file, checked first.
fn webhooks_at(f: &Fixture, hook: &WebhookServer, timeout_seconds: Option<u32>) -> PathBuf {
    let dir = f.dir().join("manifests-url");
    let base = format!("https://{}", hook.addr);
    f.make_certs(&["--url", &base, "--manifests", dir.to_str().unwrap()]);
    let file = dir.join("webhooks.yaml");
    let mut text =
        std::fs::read_to_string(&file).expect("berth admission certs wrote webhooks.yaml");
    if let Some(t) = timeout_seconds {
        let shorter = text.replace("timeoutSeconds: 10", &format!("timeoutSeconds: {t}"));
        assert_ne!(shorter, text, "webhooks.yaml sets timeoutSeconds: 10");
        text = shorter;
        write_file(&file, text.as_bytes());
    }
    let mut urls = Vec::new();
    for doc in yaml_documents(&text) {
        for w in doc["webhooks"].as_array().into_iter().flatten() {
            let cc = &w["clientConfig"];
            assert!(cc["service"].is_null(), "a URL, not the Service: {cc}");
            assert!(
                cc["caBundle"].as_str().is_some_and(|b| !b.is_empty()),
                "the caBundle is filled in: {cc}"
            );
            urls.push(cc["url"].as_str().unwrap_or_default().to_owned());
        }
    }
    urls.sort();
    assert_eq!(urls, [format!("{base}/mutate"), format!("{base}/validate")]);
    file
}

pub(super) fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `kubectl run NAME --image=IMAGE --restart=Never` in prod-shop.
fn run_in(kube: &KubeApiServer, name: &str, image: &str, extra: &[&str]) -> Output {
    let image_flag = format!("--image={image}");
    let mut args = vec![
        "run",
        name,
        "--namespace=prod-shop",
        &image_flag,
        "--restart=Never",
    ];
    args.extend(extra);
    kube.try_kubectl(&args)
}

/// The namespace prod-shop and berth's webhook configurations (calling `hook`, with
/// `timeout_seconds` instead of the manifests' 10 when given), created in `kube`.
pub(super) fn register(
    kube: &KubeApiServer,
    f: &Fixture,
    hook: &WebhookServer,
    timeout_seconds: Option<u32>,
) {
    kube.kubectl(&["create", "namespace", "prod-shop"]);
    let webhooks = webhooks_at(f, hook, timeout_seconds);
    kube.kubectl(&["create", "-f", webhooks.to_str().unwrap()]);
}

/// The API server reads new webhook configurations asynchronously: wait (bounded) until a
/// server-side dry run of a Pod of `refused_image` in prod-shop is refused by a webhook.
pub(super) fn wait_effective(kube: &KubeApiServer, hook: &WebhookServer, refused_image: &str) {
    let mut last = None;
    let active = wait_until(Duration::from_secs(60), || {
        let out = run_in(kube, "probe", refused_image, &["--dry-run=server"]);
        let refused = !out.status.success() && stderr(&out).contains("admission webhook");
        last = Some(out);
        refused
    });
    let last = last.unwrap();
    assert!(
        active,
        "the webhooks never took effect; last try: {} {}\n{}",
        last.status,
        stderr(&last),
        hook.log()
    );
}

/// A registry with `shop/web:v1` signed by dev, CI and prod, `shop/tool:v1` unsigned and
/// `shop/batch:v1` signed by dev and CI only; `berth admission serve`; a real API server
/// with berth's webhooks registered and in effect, and the namespace `prod-shop` (whose rule
/// requires all three roles).
struct Cluster {
    // drop order: the API server before the webhook it calls
    kube: KubeApiServer,
    hook: WebhookServer,
    f: Fixture,
    /// The digest of `shop/web:v1`.
    signed: Digest,
    web: String,
    tool: String,
    batch: String,
}

impl Cluster {
    fn start() -> Cluster {
        let f = Fixture::new();
        let signed = f.push("shop/web", "v1", 11);
        f.sign("shop/web", &signed, &ROLES);
        f.push("shop/tool", "v1", 12);
        let partly = f.push("shop/batch", "v1", 13);
        f.sign("shop/batch", &partly, &["dev", "ci"]);
        let hook = f.serve("");
        let kube = KubeApiServer::start();
        eprintln!("kube-apiserver ready {:?} after start", kube.startup);
        register(&kube, &f, &hook, None);
        let c = Cluster {
            web: format!("{}:v1", f.repo("shop/web")),
            tool: format!("{}:v1", f.repo("shop/tool")),
            batch: format!("{}:v1", f.repo("shop/batch")),
            kube,
            hook,
            f,
            signed,
        };
        wait_effective(&c.kube, &c.hook, &c.tool);
        c
    }

    /// `kubectl run NAME --image=IMAGE --restart=Never` in prod-shop.
    fn run(&self, name: &str, image: &str, extra: &[&str]) -> Output {
        run_in(&self.kube, name, image, extra)
    }

    /// `kubectl get KIND NAME -o json` in prod-shop.
    fn get(&self, kind: &str, name: &str) -> Value {
        serde_json::from_slice(&self.kube.kubectl(&[
            "get",
            kind,
            name,
            "--namespace=prod-shop",
            "-o",
            "json",
        ]))
        .unwrap()
    }
}

#[test]
fn a_real_api_server_admits_only_signed_images_and_stores_them_pinned() {
    requires_tool!("etcd", "kube-apiserver", "kubectl");
    let c = Cluster::start();
    let Cluster {
        kube,
        hook,
        f,
        signed,
        web,
        tool,
        batch,
    } = &c;
    let run = |name: &str, image: &str, extra: &[&str]| c.run(name, image, extra);

    // An unsigned image: refused, with berth's words (image, rule, missing roles).
    let out = run("tool", tool, &[]);
    assert!(!out.status.success(), "an unsigned image was admitted");
    let msg = stderr(&out);
    assert!(
        msg.contains("denied the request") && msg.contains("shop/tool"),
        "{msg}"
    );
    assert!(msg.contains("production"), "{msg}");
    for role in ROLES {
        assert!(
            msg.contains(role),
            "the message names the missing {role}: {msg}"
        );
    }
    let pods = kube.kubectl(&["get", "pods", "--namespace=prod-shop", "-o", "name"]);
    assert!(
        String::from_utf8_lossy(&pods).trim().is_empty(),
        "nothing was stored: {}",
        String::from_utf8_lossy(&pods)
    );

    // Signed by dev and CI only: refused, naming prod.
    let out = run("batch", batch, &[]);
    assert!(
        !out.status.success(),
        "an image without prod's signature was admitted"
    );
    let msg = stderr(&out);
    assert!(msg.contains("prod"), "{msg}");
    assert!(!msg.contains("missing role(s): dev"), "{msg}");

    // Signed by dev, CI and prod: admitted, stored pinned to the digest that was verified.
    let out = run("web", web, &[]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), hook.log());
    let pod = c.get("pod", "web");
    let stored = pod["spec"]["containers"][0]["image"].as_str().unwrap();
    assert!(
        stored.starts_with(&f.repo("shop/web")) && stored.ends_with(&format!("@{signed}")),
        "the stored Pod runs the verified digest: {stored}"
    );

    // A Deployment: its pod template is pinned too.
    let out = kube.try_kubectl(&[
        "create",
        "deployment",
        "web",
        "--namespace=prod-shop",
        &format!("--image={web}"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deployment = c.get("deployment", "web");
    let stored = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert!(stored.ends_with(&format!("@{signed}")), "{stored}");
    let out = kube.try_kubectl(&[
        "create",
        "deployment",
        "tool",
        "--namespace=prod-shop",
        &format!("--image={tool}"),
    ]);
    assert!(!out.status.success(), "an unsigned Deployment was admitted");

    // The webhook's own namespace is never sent to it (namespaceSelector): it cannot lock
    // itself out.
    kube.kubectl(&["create", "namespace", "berth-system"]);
    let out = kube.try_kubectl(&[
        "run",
        "tool",
        "--namespace=berth-system",
        &format!("--image={tool}"),
        "--restart=Never",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // the API server called both endpoints, and never for berth-system
    let log = hook.log();
    assert!(
        log.contains(r#""endpoint":"mutate""#) && log.contains(r#""endpoint":"validate""#),
        "{log}"
    );
    assert!(!log.contains(r#""namespace":"berth-system""#), "{log}");
}

#[test]
fn updates_ephemeral_containers_and_a_stopped_webhook_through_a_real_api_server() {
    requires_tool!("etcd", "kube-apiserver", "kubectl");
    let c = Cluster::start();
    let pinned = |v: &Value, ptr: &str| {
        let image = v.pointer(ptr).and_then(Value::as_str).unwrap_or_default();
        assert!(
            image.ends_with(&format!("@{}", c.signed)),
            "{ptr} is pinned to the verified digest: {image}"
        );
    };
    let kubectl = |args: &[&str]| {
        let mut all = args.to_vec();
        all.push("--namespace=prod-shop");
        c.kube.try_kubectl(&all)
    };
    let template_image = "/spec/template/spec/containers/0/image";

    // UPDATE of a Deployment to an unsigned image: refused, the stored one unchanged.
    let web_flag = format!("--image={}", c.web);
    let out = kubectl(&["create", "deployment", "web", &web_flag]);
    assert!(out.status.success(), "{}", stderr(&out));
    pinned(&c.get("deployment", "web"), template_image);
    let out = kubectl(&["set", "image", "deployment/web", &format!("web={}", c.tool)]);
    assert!(
        !out.status.success(),
        "an update to an unsigned image was admitted"
    );
    assert!(stderr(&out).contains("shop/tool"), "{}", stderr(&out));
    pinned(&c.get("deployment", "web"), template_image);
    // an UPDATE that leaves the (pinned) image alone is admitted
    let out = kubectl(&["label", "deployment", "web", "tier=gold"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        c.get("deployment", "web")["metadata"]["labels"]["tier"],
        "gold"
    );
    // and an update to the signed tag is pinned again
    let out = kubectl(&["set", "image", "deployment/web", &format!("web={}", c.web)]);
    assert!(out.status.success(), "{}", stderr(&out));
    pinned(&c.get("deployment", "web"), template_image);

    // Ephemeral containers (`kubectl debug`, the pods/ephemeralcontainers subresource).
    let out = c.run("web", &c.web, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = kubectl(&[
        "debug",
        "web",
        &format!("--image={}", c.tool),
        "--container=dbg",
    ]);
    assert!(
        !out.status.success(),
        "an unsigned ephemeral container was admitted"
    );
    assert!(stderr(&out).contains("shop/tool"), "{}", stderr(&out));
    assert!(c.get("pod", "web")["spec"]["ephemeralContainers"].is_null());
    let out = kubectl(&["debug", "web", &web_flag, "--container=dbg"]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), c.hook.log());
    let pod = c.get("pod", "web");
    assert_eq!(pod["spec"]["ephemeralContainers"][0]["name"], "dbg");
    pinned(&pod, "/spec/ephemeralContainers/0/image");
    // berth reviewed both as UPDATEs of the Pod: refused the first, admitted the second
    let log = c.hook.log();
    let pod_updates: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(r#""kind":"Pod""#) && l.contains(r#""operation":"Update""#))
        .collect();
    assert!(
        pod_updates
            .iter()
            .any(|l| l.contains(r#""allowed":false"#) && l.contains("shop/tool"))
            && pod_updates.iter().any(|l| l.contains(r#""allowed":true"#)),
        "{log}"
    );

    // The webhook stops: failurePolicy Fail, so nothing is admitted (not even a signed
    // image), and the API server says why.
    let Cluster { kube, hook, f, .. } = c;
    drop(hook);
    let out = kube.try_kubectl(&[
        "run",
        "after",
        "--namespace=prod-shop",
        &web_flag,
        "--restart=Never",
    ]);
    assert!(!out.status.success(), "admitted while the webhook was down");
    assert!(
        stderr(&out).contains("failed calling webhook"),
        "{}",
        stderr(&out)
    );
    drop(f);
}

#[test]
fn an_unreachable_registry_is_denied_by_berth_within_the_api_servers_timeout() {
    requires_tool!("etcd", "kube-apiserver", "kubectl");
    let f = Fixture::new();
    // a registry that accepts connections and never answers, covered by the production rule
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = silent.local_addr().unwrap().to_string();
    f.write_policy(
        &[json!({
            "name": "silent",
            "registryScopes": [format!("{host}/*")],
            "namespaces": ["prod-*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ROLES.iter().map(|r| format!("ca:{r}")).collect::<Vec<_>>(),
            "requirement": {"allOf": ROLES},
        })],
        &[],
    );
    // berth's own deadline left at its default (above 2 s): only the API server's
    // `?timeout=2s` (timeoutSeconds: 2) can make it answer in time
    let hook = f.serve_with_registry("", &host);
    let kube = KubeApiServer::start();
    register(&kube, &f, &hook, Some(2));
    let image = format!("{host}/shop/web:v1");
    wait_effective(&kube, &hook, &image);

    let start = Instant::now();
    let out = run_in(&kube, "web", &image, &[]);
    let took = start.elapsed();
    eprintln!(
        "unreachable registry through kube-apiserver (timeoutSeconds 2): refused after {took:?}"
    );
    assert!(
        !out.status.success(),
        "admitted with the registry unreachable"
    );
    let msg = stderr(&out);
    // berth's answer (it names its deadline), not the API server giving up on the call
    assert!(msg.contains("did not finish within"), "{msg}");
    assert!(!msg.contains("context deadline exceeded"), "{msg}");
    assert!(!msg.contains("failed calling webhook"), "{msg}");
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} with timeoutSeconds 2"
    );
    drop(silent);
}

#[test]
fn every_deploy_kubernetes_manifest_passes_the_api_servers_validation() {
    requires_tool!("etcd", "kube-apiserver", "kubectl");
    let kube = KubeApiServer::start();
    let dir = workspace_root().join("deploy/kubernetes");
    // The namespaced objects need their Namespace to exist for a server-side dry run.
    kube.kubectl(&["create", "namespace", "berth-system"]);
    let out = kube.try_kubectl(&[
        "apply",
        "-k",
        dir.to_str().unwrap(),
        "--dry-run=server",
        "-o",
        "json",
    ]);
    assert!(
        out.status.success(),
        "kubectl apply -k deploy/kubernetes --dry-run=server: {}",
        stderr(&out)
    );
    let applied: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut got: Vec<String> = applied["items"]
        .as_array()
        .map(|items| items.iter().collect::<Vec<_>>())
        .unwrap_or_else(|| vec![&applied])
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    got.sort();
    // what the kustomization lists, read independently of kubectl
    let kustomization =
        yaml_documents(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap()).remove(0);
    let mut want = Vec::new();
    for file in kustomization["resources"].as_array().expect("resources") {
        let text = std::fs::read_to_string(dir.join(file.as_str().unwrap())).unwrap();
        for doc in yaml_documents(&text) {
            want.push(format!(
                "{}/{}",
                doc["kind"].as_str().unwrap(),
                doc["metadata"]["name"].as_str().unwrap()
            ));
        }
    }
    want.sort();
    assert_eq!(got, want, "every manifest was validated by the API server");
    assert!(
        want.iter().any(|k| k.starts_with("Deployment/")),
        "{want:?}"
    );
    assert!(
        want.iter()
            .any(|k| k.starts_with("ValidatingWebhookConfiguration/"))
            && want
                .iter()
                .any(|k| k.starts_with("MutatingWebhookConfiguration/")),
        "{want:?}"
    );
}
