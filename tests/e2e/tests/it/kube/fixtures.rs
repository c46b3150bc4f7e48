//! berth-admission reads real Kubernetes objects: the Kubernetes API's own round-trip
//! fixtures (k8s.io/api `testdata/HEAD`, every field of every type filled in) and the objects
//! kubectl makes (`kubectl create … --dry-run=client -o json`, `kubectl run`, and hand-written
//! manifests through `kubectl create -f`, client- and server-side dry runs), each wrapped into
//! an AdmissionReview whose envelope is k8s.io/api's own AdmissionReview fixture, decoded by
//! `berth_admission::review::decode`, and its images found by `berth_admission::objects` at
//! the JSON pointers where Kubernetes keeps them.

use std::path::{Path, PathBuf};

use berth_admission::objects::{self, ImageField};
use berth_admission::review::{self, AdmissionRequest, GroupVersionKind, Operation};
use berth_test_support::{
    K8S_API_TESTDATA_ENV, KubeApiServer, WorkloadKind, k8s_api_testdata, kubectl_client,
    requires_tool, skip_or_fail,
};
use serde_json::{Value, json};

/// k8s.io/api's testdata, or `None` after skipping (a failure under
/// `BERTH_TEST_REQUIRE_TOOLS=1`).
fn testdata() -> Option<PathBuf> {
    let dir = k8s_api_testdata();
    if dir.is_none()
        && skip_or_fail(&format!(
            "k8s.io/api's testdata is not in Go's module cache (scripts/test downloads it; or set {K8S_API_TESTDATA_ENV})"
        ))
    {
        return None;
    }
    dir
}

fn fixture(dir: &Path, name: &str) -> Value {
    let path = dir.join(format!("{name}.json"));
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The k8s.io/api fixture of a workload kind (`apps.v1.Deployment`, `core.v1.Pod`).
fn fixture_name(w: WorkloadKind) -> String {
    let (group, version, kind) = w.gvk();
    let group = if group.is_empty() { "core" } else { group };
    format!("{group}.{version}.{kind}")
}

fn workload(kind: &str) -> WorkloadKind {
    WorkloadKind::ALL
        .into_iter()
        .find(|w| w.gvk().2 == kind)
        .unwrap_or_else(|| panic!("no workload kind {kind}"))
}

/// The AdmissionReview the API server would send for `object`: k8s.io/api's own
/// AdmissionReview fixture (every request field present) with the type, names, operation
/// and objects of this request.
fn review_around(
    envelope: &Value,
    w: WorkloadKind,
    object: &Value,
    old: Option<&Value>,
    uid: &str,
) -> Vec<u8> {
    let mut review = envelope.clone();
    review
        .as_object_mut()
        .expect("an AdmissionReview is an object")
        .remove("response");
    let (group, version, kind) = w.gvk();
    let r = &mut review["request"];
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": w.resource()});
    r["uid"] = json!(uid);
    r["kind"] = gvk.clone();
    r["requestKind"] = gvk;
    r["resource"] = gvr.clone();
    r["requestResource"] = gvr;
    // a subresource request (pods/status, …) is not a workload's creation
    r.as_object_mut().map(|m| m.remove("subResource"));
    r.as_object_mut().map(|m| m.remove("requestSubResource"));
    r["name"] = object["metadata"]["name"].clone();
    r["namespace"] = json!("team-a");
    r["object"] = object.clone();
    r["dryRun"] = json!(false);
    match old {
        None => {
            r["operation"] = json!("CREATE");
            r["oldObject"] = Value::Null;
            r["options"] = json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"});
        }
        Some(old) => {
            r["operation"] = json!("UPDATE");
            r["oldObject"] = old.clone();
            r["options"] = json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"});
        }
    }
    serde_json::to_vec(&review).expect("json")
}

fn decode(body: &[u8]) -> AdmissionRequest {
    review::decode(body).unwrap_or_else(|e| {
        panic!(
            "berth-admission refused a well-formed AdmissionReview: {e}\n{}",
            String::from_utf8_lossy(body)
        )
    })
}

/// (pointer, image) of each image berth found.
fn found(fields: &[ImageField]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|f| (f.pointer.clone(), f.image.clone()))
        .collect()
}

/// Every string-valued `image` field anywhere in `v` (spec and status alike), rewritten to
/// `reg.example/img<N>:<pointer-derived tag>` so that each is unique; returns their
/// (pointer, new value).
fn label_images(v: &mut Value, pointer: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                let p = format!("{pointer}/{k}");
                if k == "image" && child.is_string() {
                    let image = format!("reg.example/img{}:t", out.len());
                    *child = json!(image);
                    out.push((p, image));
                } else {
                    label_images(child, &p, out);
                }
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter_mut().enumerate() {
                label_images(child, &format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn k8s_api_admission_review_fixture_decodes_with_every_request_field() {
    let Some(dir) = testdata() else { return };
    let envelope = fixture(&dir, "admission.k8s.io.v1.AdmissionReview");
    let sent = &envelope["request"];

    // As published, `operation` holds a placeholder ("operationValue"), which no API server
    // sends: berth refuses it (400, never allowed) instead of guessing.
    let as_published = serde_json::to_vec(&envelope).unwrap();
    let err = review::decode(&as_published)
        .expect_err("an unknown operation must not decode")
        .to_string();
    assert!(err.contains("operationValue"), "{err}");

    for (op, want) in [
        ("CREATE", Operation::Create),
        ("UPDATE", Operation::Update),
        ("DELETE", Operation::Delete),
        ("CONNECT", Operation::Connect),
    ] {
        let mut review = envelope.clone();
        review["request"]["operation"] = json!(op);
        let req = decode(&serde_json::to_vec(&review).unwrap());
        assert_eq!(req.operation, want);
        // every field the API server sends, read under Kubernetes' own names
        assert_eq!(req.uid, sent["uid"].as_str().unwrap());
        let gvk = |v: &Value| GroupVersionKind {
            group: v["group"].as_str().unwrap().into(),
            version: v["version"].as_str().unwrap().into(),
            kind: v["kind"].as_str().unwrap().into(),
        };
        assert_eq!(req.kind, gvk(&sent["kind"]));
        assert_eq!(req.request_kind.as_ref(), Some(&gvk(&sent["requestKind"])));
        assert_eq!(req.resource.resource, sent["resource"]["resource"]);
        assert_eq!(req.resource.group, sent["resource"]["group"]);
        assert_eq!(req.resource.version, sent["resource"]["version"]);
        let rr = req.request_resource.as_ref().expect("requestResource");
        assert_eq!(rr.resource, sent["requestResource"]["resource"]);
        assert_eq!(req.sub_resource.as_deref(), sent["subResource"].as_str());
        assert_eq!(
            req.request_sub_resource.as_deref(),
            sent["requestSubResource"].as_str()
        );
        assert_eq!(req.name.as_deref(), sent["name"].as_str());
        assert_eq!(req.namespace.as_deref(), sent["namespace"].as_str());
        assert_eq!(req.user_info.username, sent["userInfo"]["username"]);
        assert_eq!(req.user_info.uid, sent["userInfo"]["uid"]);
        assert_eq!(req.user_info.groups, ["groupsValue"]);
        assert_eq!(req.user_info.extra["extraKey"], ["extraValue"]);
        assert_eq!(req.object.as_ref(), Some(&sent["object"]));
        assert_eq!(req.old_object.as_ref(), Some(&sent["oldObject"]));
        assert_eq!(req.dry_run, Some(true));
        assert_eq!(req.options.as_ref(), Some(&sent["options"]));
        // a CustomType has no pod spec: no images, no error
        assert_eq!(
            objects::images(&req.kind, req.object.as_ref().unwrap()).unwrap(),
            []
        );
    }
}

#[test]
fn k8s_api_admission_review_fixture_response_fields_are_the_ones_berth_writes() {
    let Some(dir) = testdata() else { return };
    let envelope = fixture(&dir, "admission.k8s.io.v1.AdmissionReview");
    let theirs = &envelope["response"];
    // berth reads Kubernetes' response (the fields it does not model, status.metadata and
    // status.details, are left out)…
    let parsed: review::AdmissionResponse =
        serde_json::from_value(theirs.clone()).expect("the fixture's response parses");
    assert_eq!(parsed.uid, "uidValue");
    assert!(parsed.allowed);
    assert_eq!(parsed.patch.as_deref(), Some("BA=="));
    assert_eq!(parsed.patch_type.as_deref(), Some("patchTypeValue"));
    assert_eq!(parsed.warnings, ["warningsValue"]);
    assert_eq!(
        parsed.audit_annotations["auditAnnotationsKey"],
        "auditAnnotationsValue"
    );
    let status = parsed.status.as_ref().expect("status");
    assert_eq!(status.code, Some(6));
    assert_eq!(status.message, "messageValue");
    assert_eq!(status.reason, "reasonValue");

    // …and writes nothing Kubernetes would not read: every field of a full berth answer,
    // envelope included, is a field of the fixture.
    let mut full = review::AdmissionResponse::deny("uidValue", "denied: why");
    full.warnings.push("a warning".into());
    full.audit_annotations.insert("k".into(), "v".into());
    let full = full.with_patch(&[review::PatchOp::replace(
        "/spec/containers/0/image",
        "reg.example/a@sha256:00",
    )]);
    let ours = serde_json::to_value(review::ReviewResponse::new(full)).unwrap();
    let mut missing = Vec::new();
    fields_not_in(&ours, &envelope, "", &mut missing);
    assert!(
        missing.is_empty(),
        "berth writes fields k8s.io/api's AdmissionReview does not have: {missing:?}\n{ours}"
    );
    assert_eq!(ours["response"]["patchType"], "JSONPatch");
}

/// The paths of `ours` (array indices collapsed) that `theirs` does not have.
fn fields_not_in(ours: &Value, theirs: &Value, path: &str, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                // map-valued fields (auditAnnotations, labels) have free keys
                let free = b.len() == 1 && b.keys().all(|k| k.ends_with("Key"));
                match (b.get(k), free) {
                    (Some(t), _) => fields_not_in(v, t, &format!("{path}/{k}"), out),
                    (None, true) => {}
                    (None, false) => out.push(format!("{path}/{k}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if let Some(t) = b.first() {
                for v in a {
                    fields_not_in(v, t, &format!("{path}/*"), out);
                }
            }
        }
        _ => {}
    }
}

#[test]
fn k8s_api_webhook_configuration_fixtures_have_every_field_deploy_kubernetes_uses() {
    let Some(dir) = testdata() else { return };
    let text = std::fs::read_to_string(
        berth_test_support::workspace_root().join("deploy/kubernetes/webhooks.yaml"),
    )
    .expect("deploy/kubernetes/webhooks.yaml");
    let mut seen = Vec::new();
    for doc in berth_test_support::yaml_documents(&text) {
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        if !kind.ends_with("WebhookConfiguration") {
            continue;
        }
        let theirs = fixture(&dir, &format!("admissionregistration.k8s.io.v1.{kind}"));
        assert_eq!(doc["apiVersion"], theirs["apiVersion"]);
        let mut missing = Vec::new();
        fields_not_in(&doc, &theirs, "", &mut missing);
        assert!(
            missing.is_empty(),
            "deploy/kubernetes/webhooks.yaml's {kind} has fields that {kind} does not: {missing:?}"
        );
        seen.push(kind);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration"
        ]
    );
}

#[test]
fn k8s_api_workload_fixtures_have_their_container_images_found_and_no_other() {
    let Some(dir) = testdata() else { return };
    let envelope = fixture(&dir, "admission.k8s.io.v1.AdmissionReview");
    for w in WorkloadKind::ALL {
        let name = fixture_name(w);
        let mut object = fixture(&dir, &name);
        let mut labelled = Vec::new();
        label_images(&mut object, "", &mut labelled);
        // the fixture fills every list of the pod spec, and statuses name images too
        let want: Vec<(String, String)> = labelled
            .iter()
            .filter(|(p, _)| {
                ["containers", "initContainers", "ephemeralContainers"]
                    .iter()
                    .any(|l| {
                        p.strip_prefix(&format!("{}/{l}/", w.pod_spec_pointer()))
                            .and_then(|rest| rest.strip_suffix("/image"))
                            .is_some_and(|i| i.parse::<usize>().is_ok())
                    })
            })
            .cloned()
            .collect();
        assert_eq!(want.len(), 3, "{name}: {labelled:?}");
        assert!(
            labelled.len() > want.len() || w != WorkloadKind::Pod,
            "the Pod fixture's status names images too: {labelled:?}"
        );
        let req = decode(&review_around(&envelope, w, &object, None, "u-1"));
        assert_eq!(req.uid, "u-1");
        let images = objects::images(&req.kind, req.object.as_ref().unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut got = found(&images);
        got.sort();
        // and the image volumes (`volumes[].image.reference`): OCI images mounted into the pod
        let mut want = want;
        let volumes_ptr = format!("{}/volumes", w.pod_spec_pointer());
        let volumes = object.pointer(&volumes_ptr).and_then(Value::as_array);
        for (i, v) in volumes.into_iter().flatten().enumerate() {
            if let Some(r) = v.pointer("/image/reference").and_then(Value::as_str) {
                want.push((format!("{volumes_ptr}/{i}/image/reference"), r.to_string()));
            }
        }
        assert_eq!(
            want.len(),
            4,
            "{name}: the fixture's image volume is an image too"
        );
        want.sort();
        assert_eq!(got, want, "{name}");
        for f in &images {
            assert_eq!(object.pointer(&f.pointer), Some(&json!(f.image)));
        }
    }
}

#[test]
fn kubectl_generated_workloads_have_their_images_at_the_right_pointers() {
    requires_tool!("kubectl");
    let Some(dir) = testdata() else { return };
    let envelope = fixture(&dir, "admission.k8s.io.v1.AdmissionReview");
    // kubectl's generators need no API server
    let cases: [(&str, Vec<&str>, Vec<&str>); 3] = [
        (
            "Deployment",
            vec![
                "create",
                "deployment",
                "web",
                "--image=reg.example/shop/web:1.0",
                "--image=reg.example/shop/sidecar@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            ],
            vec![
                "/spec/template/spec/containers/0/image",
                "/spec/template/spec/containers/1/image",
            ],
        ),
        (
            "Job",
            vec![
                "create",
                "job",
                "migrate",
                "--image=reg.example/shop/migrate:2",
            ],
            vec!["/spec/template/spec/containers/0/image"],
        ),
        (
            "CronJob",
            vec![
                "create",
                "cronjob",
                "report",
                "--image=reg.example/shop/report:3",
                "--schedule=*/5 * * * *",
            ],
            vec!["/spec/jobTemplate/spec/template/spec/containers/0/image"],
        ),
    ];
    for (kind, args, pointers) in cases {
        let mut all = args.clone();
        all.extend(["--dry-run=client", "-o", "json"]);
        let object: Value = serde_json::from_slice(&kubectl_client(&all)).unwrap();
        assert_eq!(object["kind"], kind);
        let images: Vec<&str> = args
            .iter()
            .filter_map(|a| a.strip_prefix("--image="))
            .collect();
        let want: Vec<(String, String)> = pointers
            .iter()
            .zip(&images)
            .map(|(p, i)| ((*p).to_owned(), (*i).to_owned()))
            .collect();
        let w = workload(kind);
        let req = decode(&review_around(&envelope, w, &object, None, kind));
        let got = objects::images(&req.kind, req.object.as_ref().unwrap()).unwrap();
        assert_eq!(found(&got), want, "{kind}: {object}");

        // UPDATE: the API server sends the old object too; only a changed image needs a
        // verdict.
        let mut changed = object.clone();
        let first = pointers[0];
        *changed.pointer_mut(first).unwrap() = json!("reg.example/shop/other:9");
        let req = decode(&review_around(
            &envelope,
            w,
            &changed,
            Some(&object),
            "u-update",
        ));
        assert_eq!(req.operation, Operation::Update);
        let new = objects::new_images(
            &req.kind,
            req.object.as_ref().unwrap(),
            req.old_object.as_ref(),
        )
        .unwrap();
        assert_eq!(
            found(&new),
            [(first.to_owned(), "reg.example/shop/other:9".to_owned())],
            "{kind}"
        );
    }
}

/// Minimal manifests of the kinds kubectl has no generator for, with an init container
/// where the kind allows one.
fn hand_written(kind: &str) -> Value {
    let template = json!({
        "metadata": {"labels": {"app": "x"}},
        "spec": {
            "initContainers": [{"name": "init", "image": "reg.example/shop/init:1"}],
            "containers": [{"name": "main", "image": "reg.example/shop/main:1"}],
        },
    });
    let selector = json!({"matchLabels": {"app": "x"}});
    let (api_version, spec) = match kind {
        "StatefulSet" => (
            "apps/v1",
            json!({"serviceName": "x", "selector": selector, "template": template}),
        ),
        "DaemonSet" | "ReplicaSet" => (
            "apps/v1",
            json!({"selector": selector, "template": template}),
        ),
        "ReplicationController" => (
            "v1",
            json!({"selector": {"app": "x"}, "template": template}),
        ),
        _ => panic!("no manifest for {kind}"),
    };
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x"},
        "spec": spec,
    })
}

#[test]
fn kubectl_run_and_hand_written_workloads_through_a_real_api_server_have_their_images_found() {
    requires_tool!("etcd", "kube-apiserver", "kubectl");
    let Some(dir) = testdata() else { return };
    let envelope = fixture(&dir, "admission.k8s.io.v1.AdmissionReview");
    let kube = KubeApiServer::start();
    kube.kubectl(&["create", "namespace", "team-a"]);

    // `kubectl run` (a Pod): client-side, and as the API server would store it (defaulted)
    for dry_run in ["--dry-run=client", "--dry-run=server"] {
        let object: Value = serde_json::from_slice(&kube.kubectl(&[
            "run",
            "web",
            "--namespace=team-a",
            "--image=reg.example/shop/web:1.0",
            "--restart=Never",
            dry_run,
            "-o",
            "json",
        ]))
        .unwrap();
        let req = decode(&review_around(
            &envelope,
            workload("Pod"),
            &object,
            None,
            "pod",
        ));
        let got = objects::images(&req.kind, req.object.as_ref().unwrap()).unwrap();
        assert_eq!(
            found(&got),
            [(
                "/spec/containers/0/image".to_owned(),
                "reg.example/shop/web:1.0".to_owned()
            )],
            "{dry_run}: {object}"
        );
    }

    for kind in [
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
    ] {
        let manifest = serde_json::to_vec(&hand_written(kind)).unwrap();
        for dry_run in ["--dry-run=client", "--dry-run=server"] {
            let out = kube.try_kubectl_with(
                &["create", "--namespace=team-a", dry_run, "-o", "json"],
                &manifest,
            );
            assert!(
                out.status.success(),
                "kubectl create {kind} {dry_run}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let object: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(object["kind"], kind);
            let req = decode(&review_around(
                &envelope,
                workload(kind),
                &object,
                None,
                kind,
            ));
            let got = objects::images(&req.kind, req.object.as_ref().unwrap()).unwrap();
            assert_eq!(
                found(&got),
                [
                    (
                        "/spec/template/spec/containers/0/image".to_owned(),
                        "reg.example/shop/main:1".to_owned()
                    ),
                    (
                        "/spec/template/spec/initContainers/0/image".to_owned(),
                        "reg.example/shop/init:1".to_owned()
                    ),
                ],
                "{kind} {dry_run}: {object}"
            );
        }
    }
}
