//! notation's own test vectors as verifier cases: the OCI layouts of notation's end-to-end
//! tests (`notation/test/e2e/testdata/registry/oci_layout/`: one subject image with
//! signatures notation made — valid, several, expired, corrupted, by an expired
//! certificate), pushed to the registry as they are, each with the trust store notation's
//! tests give it (`config/localkeys/`) and a strict policy. The expected verdicts are those
//! notation's tests assert (`test/e2e/suite/command/verify.go`).
//!
//! The vectors are read where they are (the `shared/vectors/notation` directory); nothing of
//! them is copied into the repository.

use std::path::Path;

use berth_distribution::{BytesSource, Client, Repository};
use berth_oci::Digest;
use serde_json::Value;

use super::Error;
use super::corpus::Stores;
use super::verifier::{Case, Expect, policy};
use super::{describe_certificate, describe_envelope};
use crate::model::{InputItem, Workflow};

/// Each layout, its signer's certificate, and the verdict notation's tests expect.
const LAYOUTS: [(&str, &str, Expect, &str); 5] = [
    (
        "e2e-valid-signature",
        "e2e.crt",
        Expect::Accept,
        "MUST accept: a valid JWS signature by notation, its self-signed certificate in the trust store.",
    ),
    (
        "e2e-valid-multiple-signatures",
        "e2e.crt",
        Expect::Accept,
        "MUST accept: several signatures of one image, one of them valid and trusted, satisfy the policy.",
    ),
    (
        "e2e-expired-signature",
        "e2e.crt",
        Expect::Refuse,
        "MUST refuse: the signature's io.cncf.notary.expiry has passed; strict enforces expiry.",
    ),
    (
        "e2e-invalid-signature",
        "e2e.crt",
        Expect::Refuse,
        "MUST refuse: the envelope's signature does not verify (integrity).",
    ),
    (
        "e2e-with-expired-cert",
        "expired_e2e.crt",
        Expect::Refuse,
        "MUST refuse: the signing certificate has expired and there is no timestamp; strict enforces the authentic timestamp.",
    ),
];

fn bad(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Vectors {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The cases of notation's vectors under `root` (`shared/vectors/notation`).
pub(crate) async fn cases(
    client: &Client,
    registry: &str,
    namespace: &str,
    root: &Path,
) -> Result<Vec<Case>, Error> {
    let e2e = root.join("notation/test/e2e/testdata");
    let mut cases = Vec::new();
    for (name, cert, expect, required) in LAYOUTS {
        let layout = e2e.join("registry/oci_layout").join(name);
        let cert_path = e2e.join("config/localkeys").join(cert);
        let pem = std::fs::read(&cert_path).map_err(|e| bad(&cert_path, e))?;
        let certs = berth_trust::Certificate::parse_many(&pem).map_err(|e| bad(&cert_path, e))?;
        let repository = format!("{namespace}/vectors/{name}");
        let (subject, envelopes) = push_layout(client, registry, &repository, &layout).await?;
        let image = format!("{registry}/{repository}@{subject}");
        let mut input = vec![InputItem {
            label: "image".into(),
            text: format!("{image}\n(notation's OCI layout {name}, pushed as it is)"),
        }];
        for (bytes, format) in envelopes {
            input.push(InputItem {
                label: "signature envelope".into(),
                text: describe_envelope(&bytes, format),
            });
        }
        let policy = policy(
            &format!("{registry}/{repository}"),
            "strict",
            None,
            &["ca:e2e"],
            &["*"],
        );
        input.push(InputItem {
            label: "trust policy".into(),
            text: super::corpus::pretty(&policy),
        });
        for c in &certs {
            input.push(InputItem {
                label: format!("trust store ca:e2e ({cert})"),
                text: describe_certificate(c),
            });
        }
        cases.push(Case {
            id: format!("vectors.{name}"),
            title: format!("notation's vector {name}"),
            workflow: Workflow::Vectors,
            doc: "trust-store-trust-policy",
            anchor: "steps",
            expect,
            required: required.to_owned(),
            image,
            policy,
            stores: Stores::from([("ca:e2e".to_owned(), certs)]),
            input,
        });
    }
    Ok(cases)
}

/// Pushes every blob of the layout, then its manifests by digest (those without a
/// `subject` first, so a signature's subject exists when it arrives), then its tags.
/// Returns the digest of the image tagged `v1` and the signature envelopes found.
async fn push_layout(
    client: &Client,
    registry: &str,
    repository: &str,
    layout: &Path,
) -> Result<(Digest, Vec<(Vec<u8>, berth_trust::EnvelopeFormat)>), Error> {
    let push = |what: String| {
        let registry = registry.to_owned();
        move |e: berth_distribution::Error| Error::Push {
            what,
            registry,
            source: Box::new(e),
        }
    };
    let repo = Repository::new(registry, repository).map_err(push(repository.to_owned()))?;
    let index_path = layout.join("index.json");
    let index: Value =
        serde_json::from_slice(&std::fs::read(&index_path).map_err(|e| bad(&index_path, e))?)
            .map_err(|e| bad(&index_path, e))?;
    let blobs = layout.join("blobs/sha256");
    let mut manifests = Vec::new();
    let mut envelopes = Vec::new();
    let entries = std::fs::read_dir(&blobs).map_err(|e| bad(&blobs, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| bad(&blobs, e))?;
        let path = entry.path();
        let data = std::fs::read(&path).map_err(|e| bad(&path, e))?;
        let digest = Digest::sha256_of(&data);
        if digest.hex() != entry.file_name().to_string_lossy() {
            return Err(bad(&path, format!("its content has the digest {digest}")));
        }
        let json: Option<Value> = serde_json::from_slice(&data).ok();
        let media_type = json
            .as_ref()
            .and_then(|j| j.get("mediaType"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        match media_type.as_deref() {
            Some(
                mt @ ("application/vnd.oci.image.manifest.v1+json"
                | "application/vnd.oci.image.index.v1+json"),
            ) => {
                let has_subject = json.as_ref().is_some_and(|j| j.get("subject").is_some());
                if let Some(layer) = json
                    .as_ref()
                    .and_then(|j| j.pointer("/layers/0/mediaType"))
                    .and_then(Value::as_str)
                    .and_then(|m| berth_trust::EnvelopeFormat::from_media_type(m).ok())
                {
                    envelopes.push((layer, json.clone()));
                }
                manifests.push((has_subject, digest, mt.to_owned(), data));
            }
            _ => {
                client
                    .push_blob(&repo, &digest, data.len() as u64, BytesSource(data.into()))
                    .await
                    .map_err(push(format!("blob {digest} of {}", layout.display())))?;
            }
        }
    }
    // Images, then the signatures naming them, then indexes (the referrers tag index) that
    // list those.
    manifests.sort_by_key(|(has_subject, _, media_type, _)| {
        (media_type.ends_with("index.v1+json"), *has_subject)
    });
    for (_, digest, media_type, data) in &manifests {
        client
            .put_manifest(&repo, digest.as_ref(), data, media_type)
            .await
            .map_err(push(format!("manifest {digest} of {}", layout.display())))?;
    }
    let mut subject = None;
    for m in index["manifests"].as_array().into_iter().flatten() {
        let (Some(digest), Some(tag)) = (
            m["digest"].as_str(),
            m.pointer("/annotations/org.opencontainers.image.ref.name")
                .and_then(Value::as_str),
        ) else {
            continue;
        };
        let Some((_, _, media_type, data)) =
            manifests.iter().find(|(_, d, ..)| d.to_string() == digest)
        else {
            return Err(bad(&index_path, format!("{digest} is not in blobs/")));
        };
        client
            .put_manifest(&repo, tag, data, media_type)
            .await
            .map_err(push(format!("tag {tag} of {}", layout.display())))?;
        if tag == "v1" {
            subject = Digest::parse(digest).ok();
        }
    }
    let subject = subject.ok_or_else(|| bad(&index_path, "no manifest is tagged v1"))?;
    let mut found = Vec::new();
    for (format, json) in envelopes {
        let Some(d) = json
            .as_ref()
            .and_then(|j| j.pointer("/layers/0/digest"))
            .and_then(Value::as_str)
            .and_then(|d| d.strip_prefix("sha256:"))
        else {
            continue;
        };
        if let Ok(bytes) = std::fs::read(blobs.join(d)) {
            found.push((bytes, format));
        }
    }
    Ok((subject, found))
}
