//! Registry credentials from a Pod's `imagePullSecrets` (`[kubernetes] image_pull_secrets =
//! true`), through a real kube-apiserver with RBAC: a berth registry that requires a user and
//! password (htpasswd), the webhook's ServiceAccount with a token the API server issued, the
//! ClusterRole of deploy/kubernetes/rbac.yaml (so the test grants exactly what the manifests
//! grant), and `kubectl create secret docker-registry` in the Pod's namespace.

use std::process::Output;
use std::time::Duration;

use berth_test_support::{
    KubeApiServer, RegistryOptions, requires_tool, wait_until, workspace_root, write_file,
};
use serde_json::json;

use super::webhook::{register, stderr, wait_effective};
use crate::admission::{Fixture, ROLES};

const SA: &str = "system:serviceaccount:berth-system:berth-admission";

/// `kubectl run NAME --image=IMAGE --restart=Never` in `namespace`, naming `secrets` as its
/// `imagePullSecrets`.
fn run_with_secrets(
    kube: &KubeApiServer,
    namespace: &str,
    name: &str,
    image: &str,
    secrets: &[&str],
) -> Output {
    let names: Vec<_> = secrets.iter().map(|s| json!({"name": s})).collect();
    let overrides = json!({"apiVersion": "v1", "spec": {"imagePullSecrets": names}}).to_string();
    kube.try_kubectl(&[
        "run",
        name,
        &format!("--namespace={namespace}"),
        &format!("--image={image}"),
        "--restart=Never",
        &format!("--overrides={overrides}"),
    ])
}

/// `kubectl create secret docker-registry NAME` for `server` in `namespace`.
fn docker_secret(kube: &KubeApiServer, namespace: &str, name: &str, server: &str, password: &str) {
    kube.kubectl(&[
        "create",
        "secret",
        "docker-registry",
        name,
        &format!("--namespace={namespace}"),
        &format!("--docker-server={server}"),
        "--docker-username=alice",
        &format!("--docker-password={password}"),
    ]);
}

/// `kubectl auth can-i VERB secrets` as the webhook's ServiceAccount in `namespace`.
fn sa_can(kube: &KubeApiServer, verb: &str, namespace: &str) -> bool {
    let out = kube.try_kubectl(&[
        "auth",
        "can-i",
        verb,
        "secrets",
        &format!("--namespace={namespace}"),
        &format!("--as={SA}"),
    ]);
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

#[test]
fn image_pull_secrets_give_a_review_the_credentials_of_its_own_namespace() {
    requires_tool!("etcd", "kube-apiserver", "kubectl", "htpasswd");
    let f = Fixture::with_registry(
        RegistryOptions::new().user("alice", "s3cret"),
        Some(("alice", "s3cret")),
    );
    let signed = f.push("shop/web", "v1", 21);
    f.sign("shop/web", &signed, &ROLES);
    let web = format!("{}:v1", f.repo("shop/web"));
    let server = f.reg.host();

    let kube = KubeApiServer::start();
    // the webhook's identity: its ServiceAccount and a token the API server issued for it;
    // no role bound to it yet
    kube.kubectl(&["create", "namespace", "berth-system"]);
    kube.kubectl(&[
        "create",
        "serviceaccount",
        "berth-admission",
        "--namespace=berth-system",
    ]);
    let token = kube.kubectl(&[
        "create",
        "token",
        "berth-admission",
        "--namespace=berth-system",
        "--duration=1h",
    ]);
    let token_file = f.dir().join("sa-token");
    write_file(&token_file, &token);
    let hook = f.serve(&format!(
        "[kubernetes]\nimage_pull_secrets = true\napi_server = {:?}\ntoken_file = {:?}\nca_file = {:?}\n",
        kube.url, token_file, kube.ca_cert
    ));
    register(&kube, &f, &hook, None);
    // anonymous, the registry refuses: a signed image is denied all the same
    wait_effective(&kube, &hook, &web);

    // The secret exists but the webhook may not read it (no RBAC rule yet): the API
    // server's 403 is the warning, and the image is denied.
    docker_secret(&kube, "prod-shop", "regcred", &server, "s3cret");
    assert!(!sa_can(&kube, "get", "prod-shop"));
    let out = run_with_secrets(&kube, "prod-shop", "web", &web, &["regcred"]);
    let msg = stderr(&out);
    assert!(
        !out.status.success(),
        "admitted with a secret it could not read"
    );
    assert!(
        msg.contains("Warning")
            && msg.contains(
                "prod-shop/regcred ignored: the webhook's service account may not get it (403"
            ),
        "{msg}"
    );
    assert!(msg.contains("authentication required"), "{msg}");

    // deploy/kubernetes/rbac.yaml: `get` on Secrets, nothing more
    let rbac = workspace_root().join("deploy/kubernetes/rbac.yaml");
    kube.kubectl(&["apply", "-f", rbac.to_str().unwrap()]);
    assert!(
        wait_until(Duration::from_secs(30), || sa_can(
            &kube,
            "get",
            "prod-shop"
        )),
        "rbac.yaml never let the webhook get Secrets"
    );
    assert!(!sa_can(&kube, "list", "prod-shop"), "list on Secrets");
    assert!(!sa_can(&kube, "watch", "prod-shop"), "watch on Secrets");

    // A secret the Pod names but that does not exist: a warning; the next one counts.
    let out = run_with_secrets(&kube, "prod-shop", "web", &web, &["missing", "regcred"]);
    let msg = stderr(&out);
    assert!(out.status.success(), "{msg}\n{}", hook.log());
    assert!(
        msg.contains("Warning") && msg.contains("prod-shop/missing ignored: it does not exist"),
        "{msg}"
    );

    // The credentials were read: admitted, stored pinned to the verified digest.
    let pod: serde_json::Value = serde_json::from_slice(&kube.kubectl(&[
        "get",
        "pod",
        "web",
        "--namespace=prod-shop",
        "-o",
        "json",
    ]))
    .unwrap();
    let stored = pod["spec"]["containers"][0]["image"].as_str().unwrap();
    assert_eq!(stored, format!("{web}@{signed}"));

    // A Pod of the same namespace naming no secret: nothing of the last review is reused.
    let out = run_with_secrets(&kube, "prod-shop", "bare", &web, &[]);
    let msg = stderr(&out);
    assert!(
        !out.status.success(),
        "credentials served a review without secrets"
    );
    assert!(msg.contains("authentication required"), "{msg}");

    // Another namespace naming the same secret: prod-shop's is not read for it.
    kube.kubectl(&["create", "namespace", "prod-other"]);
    let out = run_with_secrets(&kube, "prod-other", "web", &web, &["regcred"]);
    let msg = stderr(&out);
    assert!(!out.status.success(), "another namespace's secret was used");
    assert!(
        msg.contains("prod-other/regcred ignored: it does not exist"),
        "{msg}"
    );

    // Its own secret with a wrong password: the registry refuses, and berth says so.
    docker_secret(&kube, "prod-other", "regcred", &server, "wrong");
    let out = run_with_secrets(&kube, "prod-other", "web", &web, &["regcred"]);
    let msg = stderr(&out);
    assert!(!out.status.success(), "admitted with a wrong password");
    assert!(
        msg.contains("authentication failed for user \"alice\""),
        "{msg}"
    );

    // A Secret of another type gives nothing (a warning); the next one in the list counts.
    kube.kubectl(&[
        "create",
        "secret",
        "generic",
        "opaque",
        "--namespace=prod-other",
        "--from-literal=.dockerconfigjson={}",
    ]);
    docker_secret(&kube, "prod-other", "good", &server, "s3cret");
    let out = run_with_secrets(&kube, "prod-other", "web", &web, &["opaque", "good"]);
    let msg = stderr(&out);
    assert!(out.status.success(), "{msg}\n{}", hook.log());
    assert!(
        msg.contains("prod-other/opaque ignored: it has type \"Opaque\""),
        "{msg}"
    );
}
