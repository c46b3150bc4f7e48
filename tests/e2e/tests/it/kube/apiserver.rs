//! The fixture itself: the API server stores what kubectl creates, answers only the admin,
//! and is the Kubernetes release `scripts/test` builds.

use berth_test_support::{Http, KubeApiServer, requires_tool};
use serde_json::Value;

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

#[test]
fn kube_apiserver_stores_a_namespace_and_a_pod_created_through_kubectl() {
    requires_tool!("etcd", "kube-apiserver", "kubectl");
    let kube = KubeApiServer::start();
    eprintln!("kube-apiserver ready {:?} after start", kube.startup);

    let version = json(&kube.kubectl(&["version", "-o", "json"]));
    assert_eq!(
        version["serverVersion"]["gitVersion"], "v1.37.2",
        "the API server is the release scripts/test builds: {version}"
    );
    assert_eq!(version["clientVersion"]["gitVersion"], "v1.37.2");

    kube.kubectl(&["create", "namespace", "smoke"]);
    kube.kubectl(&[
        "run",
        "web",
        "--namespace=smoke",
        "--image=registry.example/team/web:1.0",
        "--restart=Never",
    ]);
    let pod = json(&kube.kubectl(&["get", "pod", "web", "--namespace=smoke", "-o", "json"]));
    assert_eq!(pod["metadata"]["namespace"], "smoke");
    assert_eq!(
        pod["spec"]["containers"][0]["image"],
        "registry.example/team/web:1.0"
    );
    // no scheduler and no kubelet: stored, never run
    assert_eq!(pod["status"]["phase"], "Pending", "{pod}");
    assert!(
        pod["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty())
    );

    let names = kube.kubectl(&["get", "namespaces", "-o", "name"]);
    assert!(
        String::from_utf8_lossy(&names)
            .lines()
            .any(|l| l == "namespace/smoke"),
        "{}",
        String::from_utf8_lossy(&names)
    );
}

#[test]
fn kube_apiserver_refuses_a_client_without_the_admin_certificate() {
    requires_tool!("etcd", "kube-apiserver", "kubectl");
    let kube = KubeApiServer::start();
    // Anonymous requests reach only what RBAC grants system:unauthenticated (/readyz and
    // the like): so authorization is real, and the admin's access comes from its certificate.
    let http = Http::new(&kube.url, Some(&kube.ca_pem()));
    let r = http.request("GET", "/api/v1/namespaces", &[], None);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("system:anonymous"), "{}", r.text());
    let r = http.request("GET", "/readyz", &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    // the same request with the admin's certificate (through kubectl) succeeds
    let raw = kube.kubectl(&["get", "--raw", "/api/v1/namespaces"]);
    assert!(String::from_utf8_lossy(&raw).contains("\"kube-system\""));
}
