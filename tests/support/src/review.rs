//! AdmissionReview `admission.k8s.io/v1` requests as the Kubernetes API server sends them to
//! a webhook, for a Pod and for each kind with a pod template: every field of the request
//! (`uid`, `kind`, `resource`, `subResource`, `requestKind`, `requestResource`,
//! `requestSubResource`, `name`, `namespace`, `operation`, `userInfo`, `object`, `oldObject`,
//! `dryRun`, `options`), and objects as they are after the API server's defaulting (what a
//! webhook sees: `imagePullPolicy`, `terminationMessagePath`, `restartPolicy`, …).

use serde_json::{Value, json};

/// The kinds whose images the webhook checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    Job,
    CronJob,
    ReplicationController,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 8] = [
        WorkloadKind::Pod,
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::ReplicaSet,
        WorkloadKind::Job,
        WorkloadKind::CronJob,
        WorkloadKind::ReplicationController,
    ];

    /// (group, version, kind).
    pub fn gvk(self) -> (&'static str, &'static str, &'static str) {
        match self {
            WorkloadKind::Pod => ("", "v1", "Pod"),
            WorkloadKind::ReplicationController => ("", "v1", "ReplicationController"),
            WorkloadKind::Deployment => ("apps", "v1", "Deployment"),
            WorkloadKind::StatefulSet => ("apps", "v1", "StatefulSet"),
            WorkloadKind::DaemonSet => ("apps", "v1", "DaemonSet"),
            WorkloadKind::ReplicaSet => ("apps", "v1", "ReplicaSet"),
            WorkloadKind::Job => ("batch", "v1", "Job"),
            WorkloadKind::CronJob => ("batch", "v1", "CronJob"),
        }
    }

    /// The resource (plural, lowercase) the API server names in `resource`.
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "pods",
            WorkloadKind::ReplicationController => "replicationcontrollers",
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
            WorkloadKind::DaemonSet => "daemonsets",
            WorkloadKind::ReplicaSet => "replicasets",
            WorkloadKind::Job => "jobs",
            WorkloadKind::CronJob => "cronjobs",
        }
    }

    /// The JSON pointer of the PodSpec in the object.
    pub fn pod_spec_pointer(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "/spec",
            WorkloadKind::CronJob => "/spec/jobTemplate/spec/template/spec",
            _ => "/spec/template/spec",
        }
    }

    fn api_version(self) -> String {
        match self.gvk() {
            ("", v, _) => v.to_string(),
            (g, v, _) => format!("{g}/{v}"),
        }
    }
}

/// A container of a PodSpec, defaulted as the API server defaults it.
fn container(name: &str, image: &str) -> Value {
    let pull = if image.contains('@') || !image.ends_with(":latest") && image.contains(':') {
        "IfNotPresent"
    } else {
        "Always"
    };
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": pull,
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    })
}

/// An AdmissionReview request under construction: [`ReviewBuilder::new`], images, then
/// [`ReviewBuilder::build`].
#[derive(Debug, Clone)]
pub struct ReviewBuilder {
    kind: WorkloadKind,
    namespace: String,
    name: String,
    containers: Vec<(String, String)>,
    init_containers: Vec<(String, String)>,
    ephemeral_containers: Vec<(String, String)>,
    pull_secrets: Vec<String>,
    old_object: Option<Value>,
    dry_run: bool,
    sub_resource: Option<String>,
    user: (String, Vec<String>),
    uid: String,
}

static NEXT_UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A request uid in Kubernetes' form (a UUID), different for every request of the process.
pub fn new_uid() -> String {
    let n = NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pid = u64::from(std::process::id());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        pid & 0xffff_ffff,
        (n >> 32) & 0xffff,
        (n >> 20) & 0xfff,
        (n >> 8) & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

impl ReviewBuilder {
    /// A CREATE of `kind` named `name` in `namespace`, by `kubernetes-admin`, with no
    /// container yet.
    pub fn new(kind: WorkloadKind, namespace: &str, name: &str) -> ReviewBuilder {
        ReviewBuilder {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
            containers: Vec::new(),
            init_containers: Vec::new(),
            ephemeral_containers: Vec::new(),
            pull_secrets: Vec::new(),
            old_object: None,
            dry_run: false,
            sub_resource: None,
            user: (
                "kubernetes-admin".to_string(),
                vec![
                    "kubeadm:cluster-admins".to_string(),
                    "system:authenticated".to_string(),
                ],
            ),
            uid: new_uid(),
        }
    }

    /// A container named `c0`, `c1`, … running `image`.
    pub fn image(mut self, image: &str) -> ReviewBuilder {
        let name = format!("c{}", self.containers.len());
        self.containers.push((name, image.to_string()));
        self
    }

    pub fn init_image(mut self, image: &str) -> ReviewBuilder {
        let name = format!("init{}", self.init_containers.len());
        self.init_containers.push((name, image.to_string()));
        self
    }

    pub fn ephemeral_image(mut self, image: &str) -> ReviewBuilder {
        let name = format!("debug{}", self.ephemeral_containers.len());
        self.ephemeral_containers.push((name, image.to_string()));
        self
    }

    /// `imagePullSecrets: [{name}]` in the PodSpec.
    pub fn pull_secret(mut self, name: &str) -> ReviewBuilder {
        self.pull_secrets.push(name.to_string());
        self
    }

    /// An UPDATE of `old` (the object as stored, e.g. an earlier [`ReviewBuilder::object`]).
    pub fn update(mut self, old: Value) -> ReviewBuilder {
        self.old_object = Some(old);
        self
    }

    /// `dryRun: true` (kubectl --dry-run=server).
    pub fn dry_run(mut self) -> ReviewBuilder {
        self.dry_run = true;
        self
    }

    /// A request for a subresource (`pods/ephemeralcontainers`: an UPDATE of it).
    pub fn sub_resource(mut self, sub: &str) -> ReviewBuilder {
        self.sub_resource = Some(sub.to_string());
        self
    }

    /// The requesting user (default `kubernetes-admin` in `kubeadm:cluster-admins`).
    pub fn user(mut self, name: &str, groups: &[&str]) -> ReviewBuilder {
        self.user = (
            name.to_string(),
            groups.iter().map(|g| (*g).to_string()).collect(),
        );
        self
    }

    pub fn uid(&self) -> &str {
        &self.uid
    }

    pub fn kind(&self) -> WorkloadKind {
        self.kind
    }

    /// The object, as the API server has it after defaulting.
    pub fn object(&self) -> Value {
        let list = |cs: &[(String, String)]| -> Vec<Value> {
            cs.iter().map(|(n, i)| container(n, i)).collect()
        };
        let mut pod_spec = json!({
            "containers": list(&self.containers),
            "restartPolicy": if matches!(self.kind, WorkloadKind::Job | WorkloadKind::CronJob) { "Never" } else { "Always" },
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
            "schedulerName": "default-scheduler",
        });
        if !self.init_containers.is_empty() {
            pod_spec["initContainers"] = Value::Array(list(&self.init_containers));
        }
        if !self.ephemeral_containers.is_empty() {
            pod_spec["ephemeralContainers"] = Value::Array(list(&self.ephemeral_containers));
        }
        if !self.pull_secrets.is_empty() {
            pod_spec["imagePullSecrets"] = self
                .pull_secrets
                .iter()
                .map(|n| json!({"name": n}))
                .collect();
        }
        let labels = json!({"app": self.name});
        let template = json!({
            "metadata": {"creationTimestamp": null, "labels": labels},
            "spec": pod_spec,
        });
        let selector = json!({"matchLabels": labels});
        let spec = match self.kind {
            WorkloadKind::Pod => {
                let mut s = pod_spec.clone();
                s["serviceAccountName"] = json!("default");
                s["enableServiceLinks"] = json!(true);
                s["preemptionPolicy"] = json!("PreemptLowerPriority");
                s["priority"] = json!(0);
                s
            }
            WorkloadKind::Deployment => json!({
                "replicas": 1, "selector": selector, "template": template,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            }),
            WorkloadKind::StatefulSet => json!({
                "replicas": 1, "selector": selector, "template": template, "serviceName": self.name,
                "podManagementPolicy": "OrderedReady",
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "revisionHistoryLimit": 10,
            }),
            WorkloadKind::DaemonSet => json!({
                "selector": selector, "template": template,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                "revisionHistoryLimit": 10,
            }),
            WorkloadKind::ReplicaSet => {
                json!({"replicas": 1, "selector": selector, "template": template})
            }
            WorkloadKind::ReplicationController => {
                json!({"replicas": 1, "selector": labels, "template": template})
            }
            WorkloadKind::Job => json!({
                "parallelism": 1, "completions": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
                "suspend": false, "podReplacementPolicy": "TerminatingOrFailed", "template": template,
            }),
            WorkloadKind::CronJob => json!({
                "schedule": "*/5 * * * *", "concurrencyPolicy": "Allow", "suspend": false,
                "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                "jobTemplate": {"metadata": {"creationTimestamp": null}, "spec": {
                    "backoffLimit": 6, "template": template,
                }},
            }),
        };
        let mut metadata = json!({
            "name": self.name,
            "namespace": self.namespace,
            "labels": labels,
            "creationTimestamp": null,
        });
        if let Some(old) = &self.old_object {
            // an update keeps the stored identity
            for k in ["uid", "resourceVersion", "creationTimestamp", "generation"] {
                if let Some(v) = old["metadata"].get(k) {
                    metadata[k] = v.clone();
                }
            }
        }
        let mut obj = json!({
            "apiVersion": self.kind.api_version(),
            "kind": self.kind.gvk().2,
            "metadata": metadata,
            "spec": spec,
        });
        if self.kind != WorkloadKind::Pod && self.kind != WorkloadKind::CronJob {
            obj["status"] = json!({});
        }
        obj
    }

    /// The whole AdmissionReview the API server POSTs.
    pub fn build(&self) -> Value {
        let (group, version, kind) = self.kind.gvk();
        let gvk = json!({"group": group, "version": version, "kind": kind});
        let gvr = json!({"group": group, "version": version, "resource": self.kind.resource()});
        let (operation, options) = match &self.old_object {
            None => (
                "CREATE",
                json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1",
                       "fieldManager": "kubectl-client-side-apply", "fieldValidation": "Strict"}),
            ),
            Some(_) => (
                "UPDATE",
                json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1",
                       "fieldManager": "kubectl-client-side-apply", "fieldValidation": "Strict"}),
            ),
        };
        let mut request = json!({
            "uid": self.uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": self.name,
            "namespace": self.namespace,
            "operation": operation,
            "userInfo": {
                "username": self.user.0,
                "uid": "0b3f1c8e-2a44-4a6e-9d1c-5b1f0c2d3e4f",
                "groups": self.user.1,
                "extra": {"authentication.kubernetes.io/credential-id": ["X509SHA256=00"]},
            },
            "object": self.object(),
            "oldObject": self.old_object.clone().unwrap_or(Value::Null),
            "dryRun": self.dry_run,
            "options": options,
        });
        if let Some(sub) = &self.sub_resource {
            request["subResource"] = json!(sub);
            request["requestSubResource"] = json!(sub);
        }
        json!({
            "kind": "AdmissionReview",
            "apiVersion": "admission.k8s.io/v1",
            "request": request,
        })
    }
}

/// The images of an object of `kind`, with the JSON pointer of each `image` field:
/// containers, then initContainers, then ephemeralContainers.
pub fn images_of(kind: WorkloadKind, object: &Value) -> Vec<(String, String)> {
    let spec_ptr = kind.pod_spec_pointer();
    let Some(spec) = object.pointer(spec_ptr) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for field in ["containers", "initContainers", "ephemeralContainers"] {
        for (i, c) in spec[field].as_array().into_iter().flatten().enumerate() {
            if let Some(image) = c["image"].as_str() {
                out.push((format!("{spec_ptr}/{field}/{i}/image"), image.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_images_where_the_api_server_puts_them() {
        for kind in WorkloadKind::ALL {
            let b = ReviewBuilder::new(kind, "ns", "app")
                .image("reg.test/a:v1")
                .init_image("reg.test/b@sha256:00")
                .dry_run();
            let review = b.build();
            let req = &review["request"];
            for field in [
                "uid",
                "kind",
                "resource",
                "requestKind",
                "requestResource",
                "name",
                "namespace",
                "operation",
                "userInfo",
                "object",
                "oldObject",
                "dryRun",
                "options",
            ] {
                assert!(req.get(field).is_some(), "{kind:?}: no {field}");
            }
            assert_eq!(req["kind"]["kind"], kind.gvk().2);
            assert_eq!(req["dryRun"], true);
            assert_eq!(req["object"]["kind"], kind.gvk().2);
            let images = images_of(kind, &req["object"]);
            assert_eq!(
                images,
                vec![
                    (
                        format!("{}/containers/0/image", kind.pod_spec_pointer()),
                        "reg.test/a:v1".to_string()
                    ),
                    (
                        format!("{}/initContainers/0/image", kind.pod_spec_pointer()),
                        "reg.test/b@sha256:00".to_string()
                    ),
                ],
                "{kind:?}"
            );
            // an update carries the old object and keeps its identity
            let mut old = b.object();
            old["metadata"]["uid"] = json!("u-1");
            let up = ReviewBuilder::new(kind, "ns", "app")
                .image("reg.test/a:v2")
                .update(old.clone())
                .build();
            assert_eq!(up["request"]["operation"], "UPDATE");
            assert_eq!(up["request"]["oldObject"], old);
            assert_eq!(up["request"]["object"]["metadata"]["uid"], "u-1");
            assert_eq!(up["request"]["options"]["kind"], "UpdateOptions");
        }
        assert_ne!(new_uid(), new_uid());
    }
}
