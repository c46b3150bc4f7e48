//! Registry credentials from a reviewed object's `imagePullSecrets`
//! (`[kubernetes] image_pull_secrets = true`): the Secrets the kubelet would pull the images
//! with, read by name from the API server for each review, and used for that review's
//! registry calls only, before the docker `config.json` of the configuration.
//!
//! What is read, and how it differs from the kubelet:
//! - the names in the pod spec's `imagePullSecrets` (a Pod's, or a workload's pod template's).
//!   For Pods, the API server's ServiceAccount admission plugin has already copied the service
//!   account's `imagePullSecrets` into the Pod before any webhook is called; for a pod
//!   template nothing does, so a template is verified with its own list only (the Pods the
//!   controller makes from it are reviewed again, with the service account's secrets);
//! - Secrets of type `kubernetes.io/dockerconfigjson` (key `.dockerconfigjson`, a
//!   `{"auths": {...}}` document) and `kubernetes.io/dockercfg` (key `.dockercfg`, the older
//!   document without `auths`); each entry's `auth` (base64 `user:password`) or
//!   `username`/`password`;
//! - entries are matched to a registry by host (`https://reg.example/v1/` is `reg.example`,
//!   Docker Hub's names are one). The kubelet also matches paths and `*.` wildcards and
//!   tries every matching credential in turn; here the first secret (in the Pod's order)
//!   with an entry for the host is the one used;
//! - a Secret that is missing, unreadable, of another type or malformed is skipped with a
//!   warning in the review's answer (`response.warnings`), as the kubelet skips it; the
//!   images are then verified with the other credentials, and a registry that refuses them
//!   denies the image.
//!
//! Secrets are not cached: every review that names secrets reads them again (in parallel,
//! under the review's deadline), so a deleted or rotated secret stops or starts counting at
//! once and no namespace's secret can serve another namespace's review. The registry clients
//! made for a set of credentials are kept a minute, keyed by a hash of exactly those
//! credentials ([`crate::verify::Verifier::with_pull_credentials`]): a review reuses one only
//! when its own secrets gave the very same user names and passwords.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_distribution::{Credential, Secret, normalize_host};
use serde_json::Value;

use crate::kube::{KubeApi, is_dns_subdomain};

/// The largest credentials document (decoded `.dockerconfigjson` or `.dockercfg`) accepted:
/// the API server's own limit on a Secret's data.
pub const MAX_SECRET_BYTES: usize = 1024 * 1024;
/// Pull secrets read per review at most; more are ignored with a warning.
pub const MAX_PULL_SECRETS: usize = 16;
/// The Secret type (and data key) of a docker `config.json`.
pub const DOCKER_CONFIG_JSON: (&str, &str) =
    ("kubernetes.io/dockerconfigjson", ".dockerconfigjson");
/// The Secret type (and data key) of the older `~/.dockercfg`.
pub const DOCKERCFG: (&str, &str) = ("kubernetes.io/dockercfg", ".dockercfg");

/// Why a Secret gives no credentials (said in a review's warning, after the secret's name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("is not a Secret as the API server sends them: {detail}")]
    NotASecret { detail: String },
    #[error(
        "has type {found:?}; registry credentials are read from Secrets of type kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg"
    )]
    WrongType { found: String },
    #[error("has no data key {key}")]
    MissingKey { key: &'static str },
    #[error("has a {key} over {MAX_SECRET_BYTES} bytes")]
    TooLarge { key: &'static str },
    #[error("has a {key} that is not valid base64")]
    Base64 { key: &'static str },
    #[error("has a {key} that is not a docker config: {detail}")]
    Config { key: &'static str, detail: String },
}

/// The credentials of a Secret as the API server answers `GET …/secrets/NAME`: registry
/// host → credential, in the document's order, the first entry for a host kept.
pub fn parse_secret(body: &[u8]) -> Result<Vec<(String, Credential)>, SecretError> {
    let not_a_secret = |detail: String| SecretError::NotASecret { detail };
    let v: Value = serde_json::from_slice(body).map_err(|e| not_a_secret(e.to_string()))?;
    if let Some(kind) = v.get("kind")
        && kind != "Secret"
    {
        return Err(not_a_secret(format!("its kind is {kind}")));
    }
    let found = v.get("type").and_then(Value::as_str).unwrap_or("Opaque");
    let (key, wrapped) = if found == DOCKER_CONFIG_JSON.0 {
        (DOCKER_CONFIG_JSON.1, true)
    } else if found == DOCKERCFG.0 {
        (DOCKERCFG.1, false)
    } else {
        return Err(SecretError::WrongType {
            found: found.to_string(),
        });
    };
    let encoded = v
        .get("data")
        .and_then(|d| d.get(key))
        .and_then(Value::as_str)
        .ok_or(SecretError::MissingKey { key })?;
    // checked before decoding: base64 is 4 bytes for every 3
    if encoded.len() > MAX_SECRET_BYTES.div_ceil(3) * 4 {
        return Err(SecretError::TooLarge { key });
    }
    let doc = STANDARD
        .decode(encoded.trim())
        .map_err(|_| SecretError::Base64 { key })?;
    if doc.len() > MAX_SECRET_BYTES {
        return Err(SecretError::TooLarge { key });
    }
    parse_docker_config(&doc, wrapped).map_err(|detail| SecretError::Config { key, detail })
}

/// `{"auths": {KEY: ENTRY}}` (`wrapped`) or `{KEY: ENTRY}` → (host, credential) pairs.
fn parse_docker_config(doc: &[u8], wrapped: bool) -> Result<Vec<(String, Credential)>, String> {
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        auth: Option<String>,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Wrapped {
        #[serde(default)]
        auths: serde_json::Map<String, Value>,
    }
    let entries: serde_json::Map<String, Value> = if wrapped {
        serde_json::from_slice::<Wrapped>(doc)
            .map_err(|e| e.to_string())?
            .auths
    } else {
        serde_json::from_slice(doc).map_err(|e| e.to_string())?
    };
    let mut out: Vec<(String, Credential)> = Vec::new();
    for (registry, entry) in entries {
        let e: Entry =
            serde_json::from_value(entry).map_err(|e| format!("entry {registry:?}: {e}"))?;
        let (mut username, mut password) = (
            e.username.unwrap_or_default(),
            e.password.unwrap_or_default(),
        );
        // as the kubelet (credentialprovider.DockerConfigEntry): `auth` wins when present
        if let Some(auth) = e.auth.filter(|a| !a.is_empty()) {
            let bytes = STANDARD
                .decode(auth.trim())
                .map_err(|_| format!("entry {registry:?}: auth is not valid base64"))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("entry {registry:?}: auth is not UTF-8"))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| format!("entry {registry:?}: auth is not user:password"))?;
            username = u.to_string();
            password = p.to_string();
        }
        if username.is_empty() && password.is_empty() {
            continue;
        }
        let host = normalize_host(&registry);
        if out.iter().any(|(h, _)| *h == host) {
            continue;
        }
        out.push((
            host,
            Credential::Basic {
                username,
                password: Secret::new(password),
            },
        ));
    }
    Ok(out)
}

/// The `imagePullSecrets[].name` of the pod spec at `pod_spec` (a JSON pointer) in `object`:
/// the valid names, in order, without repeats, at most [`MAX_PULL_SECRETS`]; and a warning
/// for each one that is skipped.
pub fn secret_names(object: &Value, pod_spec: &str) -> (Vec<String>, Vec<String>) {
    let mut names: Vec<String> = Vec::new();
    let mut warnings = Vec::new();
    let list = object
        .pointer(&format!("{pod_spec}/imagePullSecrets"))
        .and_then(Value::as_array);
    for item in list.into_iter().flatten() {
        let Some(name) = item.get("name").and_then(Value::as_str) else {
            continue;
        };
        // the API server accepts an empty name and the kubelet ignores it
        if name.is_empty() || names.iter().any(|n| n == name) {
            continue;
        }
        if !is_dns_subdomain(name) {
            warnings.push(format!(
                "berth: image pull secret {:?} ignored: not a valid Secret name",
                truncate(name, 64)
            ));
            continue;
        }
        if names.len() == MAX_PULL_SECRETS {
            warnings.push(format!(
                "berth: only the first {MAX_PULL_SECRETS} image pull secrets are read"
            ));
            break;
        }
        names.push(name.to_string());
    }
    (names, warnings)
}

fn truncate(s: &str, max: usize) -> &str {
    let mut cut = s.len().min(max);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// What the pull secrets of one review gave: their credentials by registry host (none when
/// no secret had any), and a warning for each secret skipped.
#[derive(Debug, Default)]
pub struct Found {
    pub credentials: Option<BTreeMap<String, Credential>>,
    pub warnings: Vec<String>,
}

/// Reads pull secrets from the API server with the webhook's service account.
#[derive(Debug, Clone)]
pub struct PullSecrets {
    api: KubeApi,
}

impl PullSecrets {
    pub fn new(api: KubeApi) -> PullSecrets {
        PullSecrets { api }
    }

    /// The credentials of the secrets `names` of `namespace`, read in parallel; the first
    /// secret (in `names`' order) with an entry for a registry gives that registry's.
    pub async fn read(&self, namespace: &str, names: &[String]) -> Found {
        let answers = futures_util::future::join_all(
            names.iter().map(|name| self.api.secret(namespace, name)),
        )
        .await;
        let mut by_host: BTreeMap<String, Credential> = BTreeMap::new();
        let mut warnings = Vec::new();
        for (name, answer) in names.iter().zip(answers) {
            let skipped =
                |why: String| format!("berth: image pull secret {namespace}/{name} ignored: {why}");
            match answer {
                Ok(Some(body)) => match parse_secret(&body) {
                    Ok(entries) if entries.is_empty() => {
                        warnings.push(skipped("it has no registry credentials".to_string()))
                    }
                    Ok(entries) => {
                        for (host, credential) in entries {
                            by_host.entry(host).or_insert(credential);
                        }
                    }
                    Err(e) => warnings.push(skipped(format!("it {e}"))),
                },
                Ok(None) => warnings.push(skipped("it does not exist".to_string())),
                Err(crate::kube::KubeError::Status { status: 403, .. }) => warnings.push(skipped(
                    "the webhook's service account may not get it (403: the API server's RBAC needs `get` on secrets, deploy/kubernetes/rbac.yaml)".to_string(),
                )),
                Err(e) => {
                    tracing::warn!(namespace, secret = %name, error = %berth_errdefs::error_chain(&e), "failed to read an image pull secret");
                    warnings.push(skipped(berth_errdefs::error_chain(&e)));
                }
            }
        }
        let credentials = (!by_host.is_empty()).then_some(by_host);
        Found {
            credentials,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(kind: &str, key: &str, doc: &[u8]) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "kind": "Secret", "apiVersion": "v1",
            "metadata": {"name": "regcred", "namespace": "prod", "resourceVersion": "7"},
            "type": kind,
            "data": {key: STANDARD.encode(doc)},
        }))
        .unwrap()
    }

    fn basic(c: &Credential) -> (&str, &str) {
        match c {
            Credential::Basic { username, password } => (username, password.expose()),
            Credential::IdentityToken { .. } => panic!("not basic"),
        }
    }

    #[test]
    fn reads_a_dockerconfigjson_secret() {
        let auth = STANDARD.encode("alice:s3:cret");
        let doc = format!(
            r#"{{"auths": {{"https://reg.example:5000/v1/": {{"auth": "{auth}", "username": "ignored"}},
                           "index.docker.io": {{"username": "bob", "password": "pw", "email": "b@x"}},
                           "empty.example": {{}}}}}}"#
        );
        let got = parse_secret(&secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            doc.as_bytes(),
        ))
        .unwrap();
        let hosts: Vec<&str> = got.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(hosts, ["reg.example:5000", "docker.io"]);
        assert_eq!(
            basic(&got[0].1),
            ("alice", "s3:cret"),
            "auth wins, split at the first colon"
        );
        assert_eq!(basic(&got[1].1), ("bob", "pw"));
        assert!(
            !format!("{got:?}").contains("s3:cret"),
            "the password is not in Debug"
        );
    }

    #[test]
    fn reads_a_dockercfg_secret() {
        let auth = STANDARD.encode("carol:pw");
        let doc = format!(r#"{{"reg.example": {{"auth": "{auth}", "email": "c@x"}}}}"#);
        let got = parse_secret(&secret(
            "kubernetes.io/dockercfg",
            ".dockercfg",
            doc.as_bytes(),
        ))
        .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "reg.example");
        assert_eq!(basic(&got[0].1), ("carol", "pw"));
        // a dockercfg document is not wrapped in "auths": one given as such names no
        // registry (the read then warns that the secret gave no credentials)
        let wrapped = br#"{"auths": {"reg.example": {"auth": "eDp5"}}}"#;
        assert!(
            parse_secret(&secret("kubernetes.io/dockercfg", ".dockercfg", wrapped))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn refuses_wrong_types_bad_base64_and_oversized_secrets() {
        let ok = br#"{"auths": {}}"#;
        let e = parse_secret(&secret("Opaque", ".dockerconfigjson", ok)).unwrap_err();
        assert_eq!(
            e,
            SecretError::WrongType {
                found: "Opaque".into()
            }
        );
        assert!(
            e.to_string().contains("kubernetes.io/dockerconfigjson"),
            "{e}"
        );
        let e =
            parse_secret(&secret("kubernetes.io/dockerconfigjson", ".dockercfg", ok)).unwrap_err();
        assert_eq!(
            e,
            SecretError::MissingKey {
                key: ".dockerconfigjson"
            }
        );
        let bad = br#"{"kind":"Secret","type":"kubernetes.io/dockerconfigjson","data":{".dockerconfigjson":"!!notbase64"}}"#;
        assert_eq!(
            parse_secret(bad).unwrap_err(),
            SecretError::Base64 {
                key: ".dockerconfigjson"
            }
        );
        let bad_auth = br#"{"auths": {"r": {"auth": "***"}}}"#;
        let e = parse_secret(&secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            bad_auth,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("auth is not valid base64"), "{e}");
        let no_colon = format!(
            r#"{{"auths": {{"r": {{"auth": "{}"}}}}}}"#,
            STANDARD.encode("x")
        );
        let e = parse_secret(&secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            no_colon.as_bytes(),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("user:password"), "{e}");
        // over the limit: just over it after decoding, and far over it before decoding
        let big = vec![b' '; MAX_SECRET_BYTES + 1];
        assert_eq!(
            parse_secret(&secret(
                "kubernetes.io/dockerconfigjson",
                ".dockerconfigjson",
                &big
            ))
            .unwrap_err(),
            SecretError::TooLarge {
                key: ".dockerconfigjson"
            }
        );
        let huge = vec![b' '; 2 * MAX_SECRET_BYTES];
        assert_eq!(
            parse_secret(&secret(
                "kubernetes.io/dockerconfigjson",
                ".dockerconfigjson",
                &huge
            ))
            .unwrap_err(),
            SecretError::TooLarge {
                key: ".dockerconfigjson"
            }
        );
        for junk in [&b"["[..], br#"{"kind":"ConfigMap"}"#, br#"[1]"#] {
            assert!(
                matches!(
                    parse_secret(junk),
                    Err(SecretError::NotASecret { .. }) | Err(SecretError::WrongType { .. })
                ),
                "{}",
                String::from_utf8_lossy(junk)
            );
        }
        let not_json = secret("kubernetes.io/dockerconfigjson", ".dockerconfigjson", b"{");
        assert!(matches!(
            parse_secret(&not_json),
            Err(SecretError::Config { .. })
        ));
    }

    #[test]
    fn reads_the_names_of_a_pod_and_of_a_template() {
        let pod = json!({"spec": {"imagePullSecrets": [
            {"name": "regcred"}, {"name": ""}, {}, {"name": "regcred"}, {"name": "../etc"}, {"name": "other"}
        ]}});
        let (names, warnings) = secret_names(&pod, "/spec");
        assert_eq!(names, ["regcred", "other"]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("\"../etc\""), "{warnings:?}");
        let deployment =
            json!({"spec": {"template": {"spec": {"imagePullSecrets": [{"name": "t"}]}}}});
        assert_eq!(secret_names(&deployment, "/spec/template/spec").0, ["t"]);
        assert!(secret_names(&json!({"spec": {}}), "/spec").0.is_empty());
        let many: Vec<Value> = (0..MAX_PULL_SECRETS + 3)
            .map(|i| json!({"name": format!("s{i}")}))
            .collect();
        let (names, warnings) = secret_names(&json!({"spec": {"imagePullSecrets": many}}), "/spec");
        assert_eq!(names.len(), MAX_PULL_SECRETS);
        assert_eq!(warnings.len(), 1);
    }
}
