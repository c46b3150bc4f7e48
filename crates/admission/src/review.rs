//! `AdmissionReview` (`admission.k8s.io/v1`) as the API server sends and reads it, with
//! Kubernetes' own field names (`k8s.io/api/admission/v1/types.go`).
//!
//! - [`decode`] reads a request body: at most [`MAX_REVIEW_BYTES`] (the API server's own
//!   request limit is 3 MiB), `apiVersion: admission.k8s.io/v1` and `kind: AdmissionReview`
//!   only, a `request` with a non-empty `uid`. Whatever does not decode is answered `400` by the
//!   webhook, never allowed.
//! - [`AdmissionResponse`] is built by the webhook and wrapped by [`ReviewResponse::new`] in
//!   the `AdmissionReview` the API server expects back; it always echoes the request's `uid`.
//!
//! Fields the API server may add in later versions are ignored on input (it sends every field
//! it knows; a webhook that refused unknown ones would break on each upgrade).

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The only `apiVersion` read and written.
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The `kind` of the envelope.
pub const KIND: &str = "AdmissionReview";
/// Largest request body read: the API server refuses requests over 3 MiB, so a review (the
/// object and its old version, plus the envelope) fits in twice that.
pub const MAX_REVIEW_BYTES: usize = 7 * 1024 * 1024;
/// The only patch type the API server accepts.
pub const PATCH_TYPE_JSON_PATCH: &str = "JSONPatch";

/// Why a request body is not an `AdmissionReview` this webhook answers.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the AdmissionReview is {size} bytes, more than the {max} bytes accepted")]
    TooLarge { size: usize, max: usize },
    #[error("the body is not an AdmissionReview: {detail}")]
    Json { detail: String },
    #[error(
        "unsupported AdmissionReview apiVersion {found:?}; this webhook reads {API_VERSION} (set admissionReviewVersions: [\"v1\"] in the webhook configuration)"
    )]
    ApiVersion { found: String },
    #[error("the body's kind is {found:?}, not AdmissionReview")]
    Kind { found: String },
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("the AdmissionReview request has no uid")]
    NoUid,
}

/// The envelope as read: `request` is what a webhook is sent.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<AdmissionRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<AdmissionResponse>,
}

/// `metav1.GroupVersionKind`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

/// `metav1.GroupVersionResource`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct GroupVersionResource {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub resource: String,
}

/// `authenticationv1.UserInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct UserInfo {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// `admissionv1.Operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Operation {
    #[serde(rename = "CREATE")]
    Create,
    #[serde(rename = "UPDATE")]
    Update,
    #[serde(rename = "DELETE")]
    Delete,
    #[serde(rename = "CONNECT")]
    Connect,
}

/// `admissionv1.AdmissionRequest`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    /// Echoed in the response.
    pub uid: String,
    /// The type of the object (`{"group":"apps","version":"v1","kind":"Deployment"}`).
    pub kind: GroupVersionKind,
    pub resource: GroupVersionResource,
    /// `ephemeralcontainers` for `pods/ephemeralcontainers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_kind: Option<GroupVersionKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_resource: Option<GroupVersionResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sub_resource: Option<String>,
    /// Empty on CREATE when the name is generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub operation: Operation,
    #[serde(default)]
    pub user_info: UserInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_object: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// `CreateOptions`, `UpdateOptions`, … as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

/// `metav1.Status`, as much of it as a webhook answer carries.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct Status {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// `admissionv1.AdmissionResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Base64 of a JSONPatch (RFC 6902) document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
}

impl AdmissionResponse {
    /// Allowed, nothing else said.
    pub fn allow(uid: &str) -> AdmissionResponse {
        AdmissionResponse {
            uid: uid.to_string(),
            allowed: true,
            ..AdmissionResponse::default()
        }
    }

    /// Denied with a message (`403 Forbidden`, as the API server reports webhook denials).
    pub fn deny(uid: &str, message: impl Into<String>) -> AdmissionResponse {
        AdmissionResponse {
            uid: uid.to_string(),
            allowed: false,
            status: Some(Status {
                code: Some(403),
                message: message.into(),
                reason: "Forbidden".to_string(),
            }),
            ..AdmissionResponse::default()
        }
    }

    /// Sets the JSONPatch (encoded here: base64 of the JSON array), or none when `ops` is
    /// empty.
    pub fn with_patch(mut self, ops: &[PatchOp]) -> AdmissionResponse {
        if ops.is_empty() {
            self.patch = None;
            self.patch_type = None;
            return self;
        }
        // a Vec of plain structs always serialises
        let json = serde_json::to_vec(ops).unwrap_or_default();
        self.patch = Some(base64::engine::general_purpose::STANDARD.encode(json));
        self.patch_type = Some(PATCH_TYPE_JSON_PATCH.to_string());
        self
    }
}

/// One JSONPatch operation this webhook writes: a `replace` of a string (an image).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchOp {
    /// Always `"replace"`.
    pub op: String,
    /// A JSON pointer (RFC 6901).
    pub path: String,
    pub value: String,
}

impl PatchOp {
    pub fn replace(path: impl Into<String>, value: impl Into<String>) -> PatchOp {
        PatchOp {
            op: "replace".to_string(),
            path: path.into(),
            value: value.into(),
        }
    }
}

/// The answer's envelope: `{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
/// "response": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: AdmissionResponse,
}

impl ReviewResponse {
    pub fn new(response: AdmissionResponse) -> ReviewResponse {
        ReviewResponse {
            api_version: API_VERSION,
            kind: KIND,
            response,
        }
    }
}

/// Reads an `AdmissionReview` request body (see the module documentation).
pub fn decode(body: &[u8]) -> Result<AdmissionRequest, DecodeError> {
    if body.len() > MAX_REVIEW_BYTES {
        return Err(DecodeError::TooLarge {
            size: body.len(),
            max: MAX_REVIEW_BYTES,
        });
    }
    // The envelope first, so an old apiVersion is named as such rather than as a field that
    // does not parse.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        #[serde(default)]
        api_version: String,
        #[serde(default)]
        kind: String,
    }
    let head: Head = serde_json::from_slice(body).map_err(|e| DecodeError::Json {
        detail: e.to_string(),
    })?;
    if head.api_version != API_VERSION {
        return Err(DecodeError::ApiVersion {
            found: head.api_version,
        });
    }
    if head.kind != KIND {
        return Err(DecodeError::Kind { found: head.kind });
    }
    let review: AdmissionReview = serde_json::from_slice(body).map_err(|e| DecodeError::Json {
        detail: e.to_string(),
    })?;
    let request = review.request.ok_or(DecodeError::NoRequest)?;
    if request.uid.is_empty() {
        return Err(DecodeError::NoUid);
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request as the API server sends it for `kubectl run` (every field of the v1 type).
    pub(crate) const POD_CREATE: &str = r#"{
      "kind": "AdmissionReview",
      "apiVersion": "admission.k8s.io/v1",
      "request": {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "web",
        "namespace": "prod-eu",
        "operation": "CREATE",
        "userInfo": {"username": "admin", "uid": "014fbff9a07c", "groups": ["system:authenticated", "my-admin-group"], "extra": {"some-key": ["some-value1", "some-value2"]}},
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}},
        "oldObject": null,
        "dryRun": false,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        "someFutureField": {"ignored": true}
      }
    }"#;

    #[test]
    fn decodes_every_field_of_a_v1_request() {
        let r = decode(POD_CREATE.as_bytes()).unwrap();
        assert_eq!(r.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(r.kind.kind, "Pod");
        assert_eq!(r.resource.resource, "pods");
        assert_eq!(r.request_kind.as_ref().unwrap().version, "v1");
        assert_eq!(r.namespace.as_deref(), Some("prod-eu"));
        assert_eq!(r.operation, Operation::Create);
        assert_eq!(r.user_info.groups.len(), 2);
        assert_eq!(r.user_info.extra["some-key"].len(), 2);
        assert!(r.old_object.is_none());
        assert_eq!(r.dry_run, Some(false));
        assert_eq!(r.options.as_ref().unwrap()["kind"], "CreateOptions");
    }

    #[test]
    fn refuses_other_versions_kinds_and_junk() {
        let v1beta1 = POD_CREATE.replace("admission.k8s.io/v1\"", "admission.k8s.io/v1beta1\"");
        let e = decode(v1beta1.as_bytes()).unwrap_err();
        assert!(matches!(e, DecodeError::ApiVersion { .. }), "{e}");
        assert!(e.to_string().contains("admissionReviewVersions"), "{e}");
        let kind = POD_CREATE.replace("\"kind\": \"AdmissionReview\"", "\"kind\": \"Pod\"");
        assert!(matches!(
            decode(kind.as_bytes()),
            Err(DecodeError::Kind { .. })
        ));
        assert!(matches!(decode(b"{"), Err(DecodeError::Json { .. })));
        assert!(decode(b"[]").is_err());
        assert!(decode(b"null").is_err());
        let no_request = r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#;
        assert!(matches!(
            decode(no_request.as_bytes()),
            Err(DecodeError::NoRequest)
        ));
        let no_uid = POD_CREATE.replace("705ab4f5-6393-11e8-b7cc-42010a800002", "");
        assert!(matches!(decode(no_uid.as_bytes()), Err(DecodeError::NoUid)));
        let bad_op = POD_CREATE.replace("\"CREATE\"", "\"PATCH\"");
        assert!(matches!(
            decode(bad_op.as_bytes()),
            Err(DecodeError::Json { .. })
        ));
    }

    #[test]
    fn refuses_a_body_over_the_limit_before_parsing() {
        let big = vec![b' '; MAX_REVIEW_BYTES + 1];
        assert!(matches!(decode(&big), Err(DecodeError::TooLarge { .. })));
    }

    #[test]
    fn response_echoes_uid_and_encodes_the_patch() {
        let r = AdmissionResponse::deny("u1", "image x: denied");
        let v = serde_json::to_value(ReviewResponse::new(r)).unwrap();
        assert_eq!(v["apiVersion"], API_VERSION);
        assert_eq!(v["kind"], KIND);
        assert_eq!(v["response"]["uid"], "u1");
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["response"]["status"]["code"], 403);
        assert_eq!(v["response"]["status"]["message"], "image x: denied");
        assert!(v["response"].get("patch").is_none());

        let ops = [PatchOp::replace("/spec/containers/0/image", "a@sha256:00")];
        let r = AdmissionResponse::allow("u2").with_patch(&ops);
        let v = serde_json::to_value(ReviewResponse::new(r)).unwrap();
        assert_eq!(v["response"]["patchType"], "JSONPatch");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v["response"]["patch"].as_str().unwrap())
            .unwrap();
        let patch: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            patch,
            serde_json::json!([{"op": "replace", "path": "/spec/containers/0/image", "value": "a@sha256:00"}])
        );
        let r = AdmissionResponse::allow("u3").with_patch(&[]);
        assert!(r.patch.is_none() && r.patch_type.is_none());
    }
}
