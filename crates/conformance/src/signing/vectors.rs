//! notation's own test vectors as verifier cases: the OCI layouts of notation's end-to-end
//! tests (`notation/test/e2e/testdata/registry/oci_layout/`: one subject image with
//! signatures notation made — valid, several, expired, corrupted, by an expired
//! certificate, timestamped, invalidly timestamped), pushed to the registry as they are,
//! each with the trust store notation's tests give it (`config/localkeys/`) and a strict
//! policy, or for the timestamped ones one of notation's own timestamp trust policies
//! (`config/trustpolicies/`) with the TSA root its tests use (`config/timestamp/`). The
//! expected verdicts are those notation's tests assert (`test/e2e/suite/command/verify.go`)
//! and, for the timestamped layouts (which notation's tests only inspect), those the
//! specification gives ([`VECTORS`] says why each).
//!
//! notation-go's timestamped envelopes (`verifier/testdata/timestamp/sigEnv/`) are not
//! presented: they sign a manifest (`sha256:c0669ef3…`, 528 bytes) that is not among the
//! vectors, so no registry can serve the image they are signatures of.
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

/// One vector case: notation's OCI layout `layout`, the trust anchor, the trust policy it is
/// verified under and the verdict expected.
struct Vector {
    /// The case's name (the layout's, and a suffix when the policy is not notation's).
    name: &'static str,
    layout: &'static str,
    anchor: Anchor,
    policy: VectorPolicy,
    expect: Expect,
    /// The specification section the verdict follows (document without `.md`, anchor).
    section: (&'static str, &'static str),
    required: &'static str,
}

/// Where the `ca:e2e` store's certificate comes from.
#[derive(Clone, Copy)]
enum Anchor {
    /// A certificate of notation's `config/localkeys/`.
    LocalKey(&'static str),
    /// The self-signed certificate the layout's signature carries (the timestamped layouts
    /// were signed by a throwaway `CN=testcert7` whose certificate is nowhere else).
    Envelope,
}

/// The trust policy a vector is verified under.
#[derive(Clone, Copy)]
enum VectorPolicy {
    /// strict, the `ca:e2e` store, any identity (what notation's verify tests configure).
    Strict,
    /// A policy file of notation's (`config/trustpolicies/`): `ca:e2e` and `tsa:e2e` stores,
    /// `registryScopes: ["*"]`, changed as [`Tweak`] says.
    File(&'static str, Tweak),
}

/// What is changed in notation's policy file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tweak {
    /// Nothing.
    None,
    /// `override: {expiry: log}`, so that only the timestamp decides.
    LogExpiry,
    /// `level: permissive`: the timestamp and expiry are logged, not enforced.
    Permissive,
}

const STEPS: (&str, &str) = ("trust-store-trust-policy", "steps");
const TIMESTAMP: (&str, &str) = (
    "trust-store-trust-policy",
    "timestamp-countersignature-verification-details",
);
const LEVELS: (&str, &str) = ("trust-store-trust-policy", "signature-verification-details");

/// notation's layouts and the verdicts notation's tests expect
/// (`test/e2e/suite/command/verify.go`). notation's tests only inspect the two timestamped
/// layouts; their verdicts here follow from the specification, the trust policies notation
/// ships beside them (`timestamp_trustpolicy.json`: `verifyTimestamp: always`;
/// `timestamp_after_cert_expiry_trustpolicy.json`: `afterCertExpiry`) and the vectors'
/// content: both are signed by a self-signed `CN=testcert7` valid from 2025-01-21T08:36:26Z
/// to 2025-01-22T08:36:26Z (expired now); the timestamped one carries an
/// `io.cncf.notary.expiry` of 2025-01-21T12:39:46Z and a token from a Microsoft TSA whose
/// root (Microsoft Identity Verification Root CA 2020) is not among the vectors, so not in
/// the `tsa:e2e` store (which holds the GlobalSign root notation's tests use); the invalidly
/// timestamped one has no expiry and a token of 8 bytes that is not CMS.
const VECTORS: [Vector; 9] = [
    Vector {
        name: "e2e-valid-signature",
        layout: "e2e-valid-signature",
        anchor: Anchor::LocalKey("e2e.crt"),
        policy: VectorPolicy::Strict,
        expect: Expect::Accept,
        section: STEPS,
        required: "MUST accept: a valid JWS signature by notation, its self-signed certificate in the trust store.",
    },
    Vector {
        name: "e2e-valid-multiple-signatures",
        layout: "e2e-valid-multiple-signatures",
        anchor: Anchor::LocalKey("e2e.crt"),
        policy: VectorPolicy::Strict,
        expect: Expect::Accept,
        section: STEPS,
        required: "MUST accept: several signatures of one image, one of them valid and trusted, satisfy the policy.",
    },
    Vector {
        name: "e2e-expired-signature",
        layout: "e2e-expired-signature",
        anchor: Anchor::LocalKey("e2e.crt"),
        policy: VectorPolicy::Strict,
        expect: Expect::Refuse,
        section: STEPS,
        required: "MUST refuse: the signature's io.cncf.notary.expiry has passed; strict enforces expiry.",
    },
    Vector {
        name: "e2e-invalid-signature",
        layout: "e2e-invalid-signature",
        anchor: Anchor::LocalKey("e2e.crt"),
        policy: VectorPolicy::Strict,
        expect: Expect::Refuse,
        section: STEPS,
        required: "MUST refuse: the envelope's signature does not verify (integrity).",
    },
    Vector {
        name: "e2e-with-expired-cert",
        layout: "e2e-with-expired-cert",
        anchor: Anchor::LocalKey("expired_e2e.crt"),
        policy: VectorPolicy::Strict,
        expect: Expect::Refuse,
        section: STEPS,
        required: "MUST refuse: the signing certificate has expired and there is no timestamp; strict enforces the authentic timestamp.",
    },
    Vector {
        name: "e2e-with-timestamped-signature-untrusted-tsa",
        layout: "e2e-with-timestamped-signature",
        anchor: Anchor::Envelope,
        policy: VectorPolicy::File("timestamp_trustpolicy.json", Tweak::LogExpiry),
        expect: Expect::Refuse,
        section: TIMESTAMP,
        required: "MUST refuse: the signing certificate expired on 2025-01-22, so only a trusted timestamp from its validity could make the chain valid; the token's TSA (Microsoft) chains to a root that is not in the policy's tsa store (Validate Authentic Timestamp, enforced at strict; expiry is overridden to log so that the timestamp alone decides).",
    },
    Vector {
        name: "e2e-with-timestamped-signature-permissive",
        layout: "e2e-with-timestamped-signature",
        anchor: Anchor::Envelope,
        policy: VectorPolicy::File("timestamp_trustpolicy.json", Tweak::Permissive),
        expect: Expect::Accept,
        section: LEVELS,
        required: "MUST accept: permissive enforces integrity and authenticity (both hold: the envelope verifies, its certificate is in the trust store) and only logs the authentic timestamp and expiry, which fail here.",
    },
    Vector {
        name: "e2e-with-invalid-timestamped-signature",
        layout: "e2e-with-invalid-timestamped-signature",
        anchor: Anchor::Envelope,
        policy: VectorPolicy::File("timestamp_after_cert_expiry_trustpolicy.json", Tweak::None),
        expect: Expect::Refuse,
        section: TIMESTAMP,
        required: "MUST refuse: the signing certificate has expired, so even with verifyTimestamp afterCertExpiry the timestamp countersignature must be validated — and it is 8 bytes that are not an RFC 3161 token (Validate Authentic Timestamp, enforced at strict).",
    },
    Vector {
        name: "e2e-with-invalid-timestamped-signature-permissive",
        layout: "e2e-with-invalid-timestamped-signature",
        anchor: Anchor::Envelope,
        policy: VectorPolicy::File(
            "timestamp_after_cert_expiry_trustpolicy.json",
            Tweak::Permissive,
        ),
        expect: Expect::Accept,
        section: LEVELS,
        required: "MUST accept: the timestamp countersignature is an unsigned attribute checked only by Validate Authentic Timestamp, which permissive logs; integrity and authenticity hold.",
    },
];

/// The TSA root notation's end-to-end tests put in the `tsa:e2e` store
/// (`config/timestamp/`).
const TSA_ROOT: &str = "globalsignTSARoot.cer";

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
    let read_certs = |path: &Path| {
        let data = std::fs::read(path).map_err(|e| bad(path, e))?;
        berth_trust::Certificate::parse_many(&data).map_err(|e| bad(path, e))
    };
    let mut cases = Vec::new();
    for v in &VECTORS {
        let layout = e2e.join("registry/oci_layout").join(v.layout);
        let repository = format!("{namespace}/vectors/{}", v.name);
        let (subject, envelopes) = push_layout(client, registry, &repository, &layout).await?;
        let (certs, cert_origin) = match v.anchor {
            Anchor::LocalKey(file) => (
                read_certs(&e2e.join("config/localkeys").join(file))?,
                file.to_owned(),
            ),
            Anchor::Envelope => {
                let root = envelopes
                    .iter()
                    .find_map(|(bytes, format)| {
                        berth_trust::Envelope::parse(bytes, format.media_type())
                            .ok()?
                            .certificate_chain
                            .pop()
                    })
                    .ok_or_else(|| bad(&layout, "no signature envelope with a certificate"))?;
                (vec![root], "the signature's own certificate".to_owned())
            }
        };
        let image = format!("{registry}/{repository}@{subject}");
        let mut input = vec![InputItem {
            label: "image".into(),
            text: format!(
                "{image}\n(notation's OCI layout {}, pushed as it is)",
                v.layout
            ),
        }];
        for (bytes, format) in envelopes {
            input.push(InputItem {
                label: "signature envelope".into(),
                text: describe_envelope(&bytes, format),
            });
        }
        let mut stores = Stores::from([("ca:e2e".to_owned(), certs)]);
        let (policy, origin) = match v.policy {
            VectorPolicy::Strict => (
                policy(
                    &format!("{registry}/{repository}"),
                    "strict",
                    None,
                    &["ca:e2e"],
                    &["*"],
                ),
                "strict, the ca:e2e store, any identity".to_owned(),
            ),
            VectorPolicy::File(file, tweak) => {
                let path = e2e.join("config/trustpolicies").join(file);
                let data = std::fs::read(&path).map_err(|e| bad(&path, e))?;
                let mut policy: Value = serde_json::from_slice(&data).map_err(|e| bad(&path, e))?;
                let mut origin = format!("notation's config/trustpolicies/{file}");
                let Some(verification) =
                    policy.pointer_mut("/trustPolicies/0/signatureVerification")
                else {
                    return Err(bad(&path, "no trustPolicies[0].signatureVerification"));
                };
                match tweak {
                    Tweak::None => {}
                    Tweak::LogExpiry => {
                        verification["override"] = serde_json::json!({ "expiry": "log" });
                        origin.push_str(", with expiry overridden to log");
                    }
                    Tweak::Permissive => {
                        verification["level"] = "permissive".into();
                        origin.push_str(", with level permissive");
                    }
                }
                let tsa = e2e.join("config/timestamp").join(TSA_ROOT);
                stores.insert("tsa:e2e".to_owned(), read_certs(&tsa)?);
                (policy, origin)
            }
        };
        input.push(InputItem {
            label: format!("trust policy ({origin})"),
            text: super::corpus::pretty(&policy),
        });
        for (store, certs) in &stores {
            let file = if store.starts_with("tsa:") {
                TSA_ROOT
            } else {
                cert_origin.as_str()
            };
            for c in certs {
                input.push(InputItem {
                    label: format!("trust store {store} ({file})"),
                    text: describe_certificate(c),
                });
            }
        }
        cases.push(Case {
            id: format!("vectors.{}", v.name),
            title: format!("notation's vector {}", v.name),
            workflow: Workflow::Vectors,
            doc: v.section.0,
            anchor: v.section.1,
            expect: v.expect,
            required: v.required.to_owned(),
            image,
            policy,
            stores,
            input,
            not_run: None,
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
