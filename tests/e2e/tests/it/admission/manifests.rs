//! deploy/kubernetes: every manifest parses as YAML and carries what the issue requires; and
//! `berth admission certs` fills them in consistently for any Service name and namespace.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use berth_test_support::{
    ReviewBuilder, Webhook, WebhookKind, WorkloadKind, berth_bin, label_selector_matches,
    workspace_root, yaml_documents,
};
use serde_json::{Value, json};

/// Every document of every file of `dir` named in its kustomization.yaml, by (kind, name).
fn load(dir: &Path) -> BTreeMap<(String, String), Value> {
    let kustomization =
        yaml_documents(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap());
    assert_eq!(kustomization[0]["kind"], "Kustomization");
    let listed: Vec<String> = kustomization[0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    // every manifest of the directory is listed, and every listed one exists
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    files.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, files, "kustomization.yaml resources");
    let mut out = BTreeMap::new();
    for f in &listed {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        for doc in yaml_documents(&text) {
            let kind = doc["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{f}: a document without kind"))
                .to_string();
            assert!(
                doc["apiVersion"].is_string(),
                "{f}: {kind} without apiVersion"
            );
            let name = doc["metadata"]["name"].as_str().unwrap().to_string();
            assert!(
                out.insert((kind.clone(), name.clone()), doc).is_none(),
                "{f}: {kind} {name} twice"
            );
        }
    }
    out
}

fn get<'a>(m: &'a BTreeMap<(String, String), Value>, kind: &str, name: &str) -> &'a Value {
    m.get(&(kind.to_string(), name.to_string()))
        .unwrap_or_else(|| panic!("no {kind} {name} in the manifests"))
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Check the whole deployment for Service `svc` in namespace `ns`.
fn check_manifests(dir: &Path, svc: &str, ns: &str) {
    let m = load(dir);
    assert_eq!(get(&m, "Namespace", ns)["metadata"]["name"], ns);
    for (kind, name) in m.keys() {
        let doc = get(&m, kind, name);
        if ![
            "Namespace",
            "ClusterRole",
            "ClusterRoleBinding",
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ]
        .contains(&kind.as_str())
        {
            assert_eq!(doc["metadata"]["namespace"], ns, "{kind} {name}");
        }
    }

    // RBAC: read Namespaces, get Secrets (imagePullSecrets), nothing written
    let sa = get(&m, "ServiceAccount", svc);
    let role = get(&m, "ClusterRole", svc);
    for rule in role["rules"].as_array().unwrap() {
        let verbs = strs(&rule["verbs"]);
        assert!(
            verbs.iter().all(|v| ["get", "list", "watch"].contains(v)),
            "a write verb: {rule}"
        );
        if strs(&rule["resources"]).contains(&"secrets") {
            assert_eq!(verbs, ["get"], "secrets: get only");
        }
    }
    assert!(
        role["rules"].as_array().unwrap().iter().any(
            |r| strs(&r["resources"]) == ["namespaces"] && strs(&r["verbs"]).contains(&"watch")
        )
    );
    // image_pull_secrets = true in config.toml needs exactly `get` on Secrets
    assert!(
        role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| strs(&r["resources"]) == ["secrets"] && strs(&r["verbs"]) == ["get"]),
        "the webhook may get Secrets: {role}"
    );
    let binding = get(&m, "ClusterRoleBinding", svc);
    assert_eq!(binding["roleRef"]["name"], svc);
    assert_eq!(binding["subjects"][0]["name"], sa["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["namespace"], ns);

    // the configuration: TOML the webhook reads, a policy berth accepts
    let cm = get(&m, "ConfigMap", &format!("{svc}-config"));
    let text = cm["data"]["config.toml"].as_str().unwrap();
    let config = berth_admission::Config::parse(text, Path::new("/"))
        .unwrap_or_else(|e| panic!("config.toml: {e}"));
    assert_eq!(config.default, berth_admission::config::DefaultAction::Deny);
    assert_eq!(config.mode, berth_admission::config::Mode::Enforce);
    assert!(
        config.image_pull_secrets.is_some(),
        "the deployed webhook reads imagePullSecrets"
    );
    let excluded = config.exclude_namespaces.clone().unwrap_or_default();
    assert!(
        excluded.iter().any(|n| n == ns) && excluded.iter().any(|n| n == "kube-system"),
        "{excluded:?}"
    );
    let policy_dir = tempfile::tempdir().unwrap();
    let policy = policy_dir.path().join("policy.json");
    berth_test_support::write_file(
        &policy,
        cm["data"]["policy.json"].as_str().unwrap().as_bytes(),
    );
    let out = Command::new(berth_bin())
        .args(["policy", "check", policy.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "policy.json: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // the TLS Secret
    let secret = get(&m, "Secret", &format!("{svc}-tls"));
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert!(secret["data"]["tls.crt"].is_string() && secret["data"]["tls.key"].is_string());

    // the Deployment
    let d = get(&m, "Deployment", svc);
    assert_eq!(d["spec"]["replicas"], 2);
    let pod_labels = &d["spec"]["template"]["metadata"]["labels"];
    let selector = &d["spec"]["selector"];
    let labels: BTreeMap<String, String> = serde_json::from_value(pod_labels.clone()).unwrap();
    assert!(label_selector_matches(selector, &labels));
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], svc);
    let anti = &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        [0]["podAffinityTerm"];
    assert_eq!(anti["topologyKey"], "kubernetes.io/hostname");
    assert!(label_selector_matches(&anti["labelSelector"], &labels));
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);
    assert!(sc["capabilities"]["add"].is_null());
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    for k in ["requests", "limits"] {
        assert!(
            c["resources"][k]["memory"].is_string(),
            "resources.{k}.memory"
        );
    }
    assert!(c["resources"]["requests"]["cpu"].is_string());
    let port = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "https")
        .expect("an https port");
    assert_eq!(port["containerPort"], 8443);
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let g = &c[probe]["httpGet"];
        assert_eq!(g["path"], path, "{probe}");
        assert_eq!(g["scheme"], "HTTPS", "{probe}");
        assert!(g["port"] == "https" || g["port"] == 8443, "{probe}");
    }
    let args = strs(&c["args"]);
    assert_eq!(&args[..3], ["admission", "serve", "--config"]);
    // every volume names an object of the manifests, and the config file is mounted
    for v in pod["volumes"].as_array().unwrap() {
        if let Some(name) = v["configMap"]["name"].as_str() {
            get(&m, "ConfigMap", name);
        }
        if let Some(name) = v["secret"]["secretName"].as_str() {
            get(&m, "Secret", name);
        }
    }
    let mounts = c["volumeMounts"].as_array().unwrap();
    let config_mount = mounts.iter().find(|v| v["name"] == "config").unwrap();
    assert!(args[3].starts_with(config_mount["mountPath"].as_str().unwrap()));
    // the policy is a key of the mounted ConfigMap, the trust store is its own mount
    let mount_of = |name: &str| {
        let m = mounts.iter().find(|v| v["name"] == name).unwrap();
        std::path::PathBuf::from(m["mountPath"].as_str().unwrap())
    };
    let policy_key = config.policy.strip_prefix(mount_of("config")).unwrap();
    assert!(
        cm["data"][policy_key.to_str().unwrap()].is_string(),
        "{policy_key:?}"
    );
    assert_eq!(config.trust_store, mount_of("truststore"));
    for key in ["tls_cert", "tls_key"] {
        let path = match key {
            "tls_cert" => config.tls_cert.clone(),
            _ => config.tls_key.clone(),
        }
        .unwrap();
        let tls = mounts.iter().find(|v| v["name"] == "tls").unwrap();
        assert!(
            path.starts_with(tls["mountPath"].as_str().unwrap()),
            "{key}: {}",
            path.display()
        );
    }

    // PodDisruptionBudget and Service select the webhook's pods
    let pdb = get(&m, "PodDisruptionBudget", svc);
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert!(label_selector_matches(&pdb["spec"]["selector"], &labels));
    let service = get(&m, "Service", svc);
    let sel: BTreeMap<String, String> =
        serde_json::from_value(service["spec"]["selector"].clone()).unwrap();
    assert!(sel.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let sp = &service["spec"]["ports"][0];
    assert_eq!(sp["port"], 443);
    assert!(sp["targetPort"] == "https" || sp["targetPort"] == 8443);

    // the webhook configurations
    let text = std::fs::read_to_string(dir.join("webhooks.yaml")).unwrap();
    let hooks = Webhook::from_manifests(&text);
    assert_eq!(hooks.len(), 2);
    for w in &hooks {
        let path = match w.kind {
            WebhookKind::Mutating => "/mutate",
            WebhookKind::Validating => "/validate",
        };
        assert_eq!(
            w.service,
            Some((svc.to_string(), ns.to_string(), path.to_string(), 443)),
            "{}",
            w.name
        );
        assert_eq!(w.failure_policy, "Fail", "{}", w.name);
        assert_eq!(w.side_effects, "None", "{}", w.name);
        assert_eq!(w.timeout_seconds, 10, "{}", w.name);
        assert_eq!(w.admission_review_versions, ["v1"], "{}", w.name);
        assert_eq!(
            w.reinvocation_policy.as_deref(),
            (w.kind == WebhookKind::Mutating).then_some("IfNeeded"),
            "{}",
            w.name
        );
        let ns_labels =
            |n: &str| BTreeMap::from([("kubernetes.io/metadata.name".to_string(), n.to_string())]);
        for excluded in [ns, "kube-system"] {
            assert!(
                !w.selects_namespace(&ns_labels(excluded)),
                "{}: {excluded}",
                w.name
            );
        }
        assert!(w.selects_namespace(&ns_labels("prod-shop")));
        // Pods and every kind with a pod template, created and updated; ephemeral containers
        for kind in WorkloadKind::ALL {
            let b = ReviewBuilder::new(kind, "prod-shop", "app").image("r.test/a:1");
            assert!(
                w.matches_rules(&b.build()["request"]),
                "{}: {kind:?}",
                w.name
            );
            let up = b.clone().update(b.object()).build();
            assert!(
                w.matches_rules(&up["request"]),
                "{}: UPDATE {kind:?}",
                w.name
            );
        }
        let eph = ReviewBuilder::new(WorkloadKind::Pod, "prod-shop", "app")
            .ephemeral_image("r.test/dbg:1")
            .sub_resource("ephemeralcontainers");
        let eph = eph.clone().update(eph.object()).build();
        assert!(
            w.matches_rules(&eph["request"]),
            "{}: ephemeralcontainers",
            w.name
        );
        let mut status = eph.clone();
        status["request"]["subResource"] = json!("status");
        assert!(
            !w.matches_rules(&status["request"]),
            "{}: pods/status",
            w.name
        );
    }
}

#[test]
fn deploy_manifests_parse_and_carry_what_the_issue_requires() {
    check_manifests(
        &workspace_root().join("deploy/kubernetes"),
        "berth-admission",
        "berth-system",
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn certs_fill_in_the_manifests_for_any_service_and_rotate_under_the_same_ca() {
    berth_test_support::requires_tool!("openssl");
    let tmp = tempfile::tempdir().unwrap();
    let (out, manifests) = (tmp.path().join("certs"), tmp.path().join("deploy"));
    let certs = |extra: &[&str]| {
        let o = Command::new(berth_bin())
            .args(["admission", "certs", "--out", out.to_str().unwrap()])
            .args(["--service", "hook", "--namespace", "hook-ns"])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8(o.stderr).unwrap(),
        )
    };
    let (bundle, err) = certs(&[
        "--dns",
        "127.0.0.1",
        "--manifests",
        manifests.to_str().unwrap(),
    ]);
    assert!(err.contains("made CA"), "{err}");
    let read = |n: &str| std::fs::read(out.join(n)).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(b64.decode(bundle.trim()).unwrap(), read("ca.crt"));
    assert_eq!(String::from_utf8(read("ca-bundle.b64")).unwrap(), bundle);
    for (f, want) in [
        ("tls.key", 0o600),
        ("ca.key", 0o600),
        ("tls.crt", 0o644),
        ("ca.crt", 0o644),
    ] {
        assert_eq!(mode(&out.join(f)), want, "{f}");
    }
    assert_eq!(mode(&manifests.join("secret.yaml")), 0o600);
    assert_eq!(mode(&out), 0o700, "a new --out directory");
    check_manifests(&manifests, "hook", "hook-ns");
    // the caBundle and the Secret hold what was written to --out
    let hooks =
        Webhook::from_manifests(&std::fs::read_to_string(manifests.join("webhooks.yaml")).unwrap());
    for w in &hooks {
        assert_eq!(w.ca_bundle, read("ca.crt"), "{}", w.name);
    }
    let m = load(&manifests);
    let secret = get(&m, "Secret", "hook-tls");
    for (k, f) in [("tls.crt", "tls.crt"), ("tls.key", "tls.key")] {
        assert_eq!(
            b64.decode(secret["data"][k].as_str().unwrap()).unwrap(),
            read(f),
            "{k}"
        );
    }
    // openssl agrees: a server certificate for the Service's names and the IP, nothing else
    let verify = |name_flag: &str, name: &str| {
        Command::new("openssl")
            .args([
                "verify",
                "-CAfile",
                "ca.crt",
                "-purpose",
                "sslserver",
                name_flag,
                name,
                "tls.crt",
            ])
            .current_dir(&out)
            .output()
            .unwrap()
            .status
            .success()
    };
    for n in [
        "hook.hook-ns.svc",
        "hook.hook-ns.svc.cluster.local",
        "hook",
        "hook.hook-ns",
    ] {
        assert!(verify("-verify_hostname", n), "{n}");
    }
    assert!(verify("-verify_ip", "127.0.0.1"));
    assert!(!verify(
        "-verify_hostname",
        "berth-admission.berth-system.svc"
    ));
    // again: a new serving certificate under the same CA, so the caBundle stays valid
    let (ca, crt) = (read("ca.crt"), read("tls.crt"));
    let (again, err) = certs(&[]);
    assert!(err.contains("reused CA"), "{err}");
    assert_eq!(again, bundle);
    assert_eq!(read("ca.crt"), ca);
    assert_ne!(read("tls.crt"), crt);
    assert!(verify("-verify_hostname", "hook.hook-ns.svc"));
    // --new-ca replaces it
    let (renewed, _) = certs(&["--new-ca"]);
    assert_ne!(renewed, bundle);
    assert_ne!(read("ca.crt"), ca);
    // --url: the URL's host is one of the certificate's names
    let by_url = tmp.path().join("by-url");
    certs(&[
        "--url",
        "https://127.0.0.2:9443",
        "--manifests",
        by_url.to_str().unwrap(),
    ]);
    assert!(verify("-verify_ip", "127.0.0.2"));
    // a serving certificate that would outlive its CA is refused, nothing written
    let before = read("tls.crt");
    let o = Command::new(berth_bin())
        .args([
            "admission",
            "certs",
            "--out",
            out.to_str().unwrap(),
            "--days",
            "5000",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("outlive its CA"));
    assert_eq!(read("tls.crt"), before);
    // names Kubernetes would refuse are refused
    let o = Command::new(berth_bin())
        .args([
            "admission",
            "certs",
            "--out",
            out.to_str().unwrap(),
            "--service",
            "Hook_1",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a valid Kubernetes name"));
}
