//! Every container image of a Kubernetes object, with the JSON pointer (RFC 6901) of its
//! `image` field, which is where a mutating patch writes the pinned reference.
//!
//! Where pod specs are, by kind (the group is checked, the version is not: the fields are the
//! same in every served version):
//!
//! | kind (group) | pod spec |
//! | --- | --- |
//! | `Pod` (core) | `/spec` |
//! | `Deployment`, `StatefulSet`, `DaemonSet`, `ReplicaSet` (apps), `Job` (batch), `ReplicationController` (core) | `/spec/template/spec` |
//! | `CronJob` (batch) | `/spec/jobTemplate/spec/template/spec` |
//!
//! In a pod spec: `containers`, `initContainers`, `ephemeralContainers`, and image volumes
//! (`volumes[].image.reference`: an OCI image mounted read-only, accepted by default by
//! kube-apiserver 1.37 — an unsigned image must not ride into a signed Pod as a volume). The
//! `pods/ephemeralcontainers` subresource sends the whole Pod (kind `Pod`), so it is read the
//! same way; as an UPDATE, only the added ephemeral container's image is new.
//!
//! Any other kind has no images here (the webhook configuration decides what is sent). A
//! container without `image` is skipped (the API server's validation refuses it); an `image`
//! that is not a string is an error, never skipped.

use serde_json::Value;

use crate::review::GroupVersionKind;

/// Which list of the pod spec a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerList {
    Containers,
    InitContainers,
    EphemeralContainers,
    /// `volumes` whose source is `image` (the reference at `image/reference`).
    ImageVolumes,
}

impl ContainerList {
    pub const ALL: [ContainerList; 4] = [
        ContainerList::Containers,
        ContainerList::InitContainers,
        ContainerList::EphemeralContainers,
        ContainerList::ImageVolumes,
    ];

    /// The field name in a pod spec.
    pub fn field(self) -> &'static str {
        match self {
            ContainerList::Containers => "containers",
            ContainerList::InitContainers => "initContainers",
            ContainerList::EphemeralContainers => "ephemeralContainers",
            ContainerList::ImageVolumes => "volumes",
        }
    }

    /// Where the image reference is inside one entry of the list.
    fn image_field(self) -> &'static str {
        match self {
            ContainerList::ImageVolumes => "/image/reference",
            _ => "/image",
        }
    }
}

/// One image of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageField {
    /// The `image` as written.
    pub image: String,
    /// JSON pointer of the `image` field (`/spec/template/spec/containers/0/image`).
    pub pointer: String,
    /// The container's `name` (empty when it has none).
    pub container: String,
    pub list: ContainerList,
}

/// Why an object's images cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error("{pointer} is not {expected}")]
    Shape {
        pointer: String,
        expected: &'static str,
    },
}

/// The pod spec's pointer for an object of this kind, `None` for kinds without one.
pub fn pod_spec_pointer(kind: &GroupVersionKind) -> Option<&'static str> {
    match (kind.group.as_str(), kind.kind.as_str()) {
        ("", "Pod") => Some("/spec"),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job")
        | ("", "ReplicationController") => Some("/spec/template/spec"),
        ("batch", "CronJob") => Some("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

/// Every image of `object` (of type `kind`), in pod-spec order: containers, init containers,
/// ephemeral containers, image volumes.
pub fn images(kind: &GroupVersionKind, object: &Value) -> Result<Vec<ImageField>, ObjectError> {
    let Some(spec_ptr) = pod_spec_pointer(kind) else {
        return Ok(Vec::new());
    };
    let Some(spec) = object.pointer(spec_ptr) else {
        // a template without a spec has no containers (the API server refuses it anyway)
        return Ok(Vec::new());
    };
    if spec.is_null() {
        return Ok(Vec::new());
    }
    if !spec.is_object() {
        return Err(ObjectError::Shape {
            pointer: spec_ptr.to_string(),
            expected: "an object",
        });
    }
    let mut out = Vec::new();
    for list in ContainerList::ALL {
        let list_ptr = format!("{spec_ptr}/{}", list.field());
        let containers = match spec.get(list.field()) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(a)) => a,
            Some(_) => {
                return Err(ObjectError::Shape {
                    pointer: list_ptr,
                    expected: "an array",
                });
            }
        };
        for (i, entry) in containers.iter().enumerate() {
            let c_ptr = format!("{list_ptr}/{i}");
            let Some(c) = entry.as_object() else {
                return Err(ObjectError::Shape {
                    pointer: c_ptr,
                    expected: "an object",
                });
            };
            if list == ContainerList::ImageVolumes {
                match c.get("image") {
                    // a volume of another source (configMap, emptyDir, …)
                    None | Some(Value::Null) => continue,
                    Some(Value::Object(_)) => {}
                    Some(_) => {
                        return Err(ObjectError::Shape {
                            pointer: format!("{c_ptr}/image"),
                            expected: "an object",
                        });
                    }
                }
            }
            let field = list.image_field();
            let image = match entry.pointer(field) {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) => s.clone(),
                Some(_) => {
                    return Err(ObjectError::Shape {
                        pointer: format!("{c_ptr}{field}"),
                        expected: "a string",
                    });
                }
            };
            let container = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            out.push(ImageField {
                image,
                pointer: format!("{c_ptr}{field}"),
                container,
                list,
            });
        }
    }
    Ok(out)
}

/// The images of `object` that need a verdict: on UPDATE (`old` given), those whose image
/// string is not among the old object's images (an unchanged image was admitted when it was
/// set; see docs/admission.md, "Updates").
pub fn new_images(
    kind: &GroupVersionKind,
    object: &Value,
    old: Option<&Value>,
) -> Result<Vec<ImageField>, ObjectError> {
    let now = images(kind, object)?;
    let Some(old) = old.filter(|o| !o.is_null()) else {
        return Ok(now);
    };
    // An old object whose shape is broken admits nothing by comparison.
    let before: Vec<String> = images(kind, old)
        .unwrap_or_default()
        .into_iter()
        .map(|f| f.image)
        .collect();
    Ok(now
        .into_iter()
        .filter(|f| !before.contains(&f.image))
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn gvk(group: &str, kind: &str) -> GroupVersionKind {
        GroupVersionKind {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
        }
    }

    fn pod_spec() -> Value {
        json!({
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "web", "image": "nginx:1.25"}, {"name": "side", "image": "r.example/side@sha256:aa"}],
            "ephemeralContainers": [{"name": "debug", "image": "alpine"}]
        })
    }

    fn pointers(v: &[ImageField]) -> Vec<(&str, &str)> {
        v.iter()
            .map(|f| (f.pointer.as_str(), f.image.as_str()))
            .collect()
    }

    #[test]
    fn a_pod_has_containers_init_and_ephemeral_containers() {
        let pod = json!({"kind": "Pod", "spec": pod_spec()});
        let got = images(&gvk("", "Pod"), &pod).unwrap();
        assert_eq!(
            pointers(&got),
            [
                ("/spec/containers/0/image", "nginx:1.25"),
                ("/spec/containers/1/image", "r.example/side@sha256:aa"),
                ("/spec/initContainers/0/image", "busybox"),
                ("/spec/ephemeralContainers/0/image", "alpine"),
            ]
        );
        assert_eq!(got[0].container, "web");
        assert_eq!(got[2].list, ContainerList::InitContainers);
    }

    #[test]
    fn every_workload_kind_has_its_template() {
        let template = json!({"spec": {"template": {"spec": pod_spec()}}});
        for (group, kind) in [
            ("apps", "Deployment"),
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("apps", "ReplicaSet"),
            ("batch", "Job"),
            ("", "ReplicationController"),
        ] {
            let got = images(&gvk(group, kind), &template).unwrap();
            assert_eq!(got.len(), 4, "{kind}");
            assert_eq!(got[0].pointer, "/spec/template/spec/containers/0/image");
        }
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": pod_spec()}}}}});
        let got = images(&gvk("batch", "CronJob"), &cron).unwrap();
        assert_eq!(
            got[0].pointer,
            "/spec/jobTemplate/spec/template/spec/containers/0/image"
        );
        // a kind of another group is not a workload
        assert!(
            images(&gvk("example.com", "Deployment"), &template)
                .unwrap()
                .is_empty()
        );
        assert!(
            images(&gvk("", "ConfigMap"), &json!({"data": {}}))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn image_volumes_are_images_too() {
        let pod = json!({"spec": {
            "containers": [{"name": "web", "image": "nginx:1.25"}],
            "volumes": [
                {"name": "config", "configMap": {"name": "web"}},
                {"name": "models", "image": {"reference": "r.example/models:v2", "pullPolicy": "IfNotPresent"}},
            ],
        }});
        let got = images(&gvk("", "Pod"), &pod).unwrap();
        assert_eq!(
            pointers(&got),
            [
                ("/spec/containers/0/image", "nginx:1.25"),
                ("/spec/volumes/1/image/reference", "r.example/models:v2"),
            ]
        );
        assert_eq!(got[1].container, "models");
        assert_eq!(got[1].list, ContainerList::ImageVolumes);
        let e = images(
            &gvk("", "Pod"),
            &json!({"spec": {"volumes": [{"name": "m", "image": "x"}]}}),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "/spec/volumes/0/image is not an object");
        let e = images(
            &gvk("", "Pod"),
            &json!({"spec": {"volumes": [{"name": "m", "image": {"reference": 3}}]}}),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/spec/volumes/0/image/reference is not a string"
        );
    }

    #[test]
    fn a_wrong_shape_is_an_error_not_a_skip() {
        let k = gvk("", "Pod");
        let e = images(&k, &json!({"spec": {"containers": {"name": "x"}}})).unwrap_err();
        assert_eq!(e.to_string(), "/spec/containers is not an array");
        let e = images(&k, &json!({"spec": {"containers": [{"image": 7}]}})).unwrap_err();
        assert_eq!(e.to_string(), "/spec/containers/0/image is not a string");
        let e = images(&k, &json!({"spec": {"containers": ["nginx"]}})).unwrap_err();
        assert_eq!(e.to_string(), "/spec/containers/0 is not an object");
        let e = images(&k, &json!({"spec": 1})).unwrap_err();
        assert_eq!(e.to_string(), "/spec is not an object");
        // no image at all: nothing to verify
        assert!(
            images(&k, &json!({"spec": {"containers": [{"name": "x"}]}}))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn an_update_needs_a_verdict_only_for_changed_images() {
        let k = gvk("", "Pod");
        let old = json!({"spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}});
        let mut new = old.clone();
        new["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox"}]);
        let got = new_images(&k, &new, Some(&old)).unwrap();
        assert_eq!(
            pointers(&got),
            [("/spec/ephemeralContainers/0/image", "busybox")]
        );
        // CREATE: everything
        assert_eq!(new_images(&k, &new, None).unwrap().len(), 2);
        assert_eq!(new_images(&k, &new, Some(&Value::Null)).unwrap().len(), 2);
    }
}
