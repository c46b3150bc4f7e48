//! Generated test data: random content, so that no run sees another's blobs, and manifests
//! built over it. Every manifest is serialized once and pushed byte for byte.

use berth_oci::{Algorithm, Digest};
use bytes::Bytes;
use rand::RngCore;
use serde_json::json;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub(crate) const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// `artifactType` of the first test artifact.
pub(crate) const ARTIFACT_A: &str = "application/vnd.berth.conformance.a.v1";
/// `artifactType` of the second test artifact.
pub(crate) const ARTIFACT_B: &str = "application/vnd.berth.conformance.b.v1";
/// Manifests of this size must be accepted (distribution-spec: "Pushing Manifests").
pub(crate) const BIG_MANIFEST: usize = 4 << 20;

/// A blob and its digest.
#[derive(Debug, Clone)]
pub(crate) struct Blob {
    pub data: Bytes,
    pub digest: Digest,
}

impl Blob {
    pub(crate) fn new(data: impl Into<Bytes>) -> Blob {
        let data = data.into();
        let digest = Digest::sha256_of(&data);
        Blob { data, digest }
    }

    pub(crate) fn sha512(data: impl Into<Bytes>) -> Blob {
        let data = data.into();
        let digest = Digest::of(Algorithm::Sha512, &data);
        Blob { data, digest }
    }

    pub(crate) fn random(len: usize) -> Blob {
        Blob::new(random_bytes(len))
    }

    pub(crate) fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn descriptor(&self, media_type: &str) -> serde_json::Value {
        json!({"mediaType": media_type, "digest": self.digest.as_str(), "size": self.size()})
    }
}

/// A manifest: its bytes, digest and media type.
#[derive(Debug, Clone)]
pub(crate) struct Manifest {
    pub blob: Blob,
    pub media_type: &'static str,
}

impl Manifest {
    fn of(value: &serde_json::Value, media_type: &'static str) -> Manifest {
        Manifest {
            blob: Blob::new(serde_json::to_vec(value).unwrap_or_default()),
            media_type,
        }
    }

    pub(crate) fn digest(&self) -> &Digest {
        &self.blob.digest
    }

    pub(crate) fn descriptor(&self) -> serde_json::Value {
        self.blob.descriptor(self.media_type)
    }
}

pub(crate) fn random_bytes(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::rng().fill_bytes(&mut v);
    v
}

/// Lowercase hex of `n` random bytes.
pub(crate) fn random_hex(n: usize) -> String {
    random_bytes(n).iter().map(|b| format!("{b:02x}")).collect()
}

/// An image manifest over `config` and `layers`, with optional extras merged in.
pub(crate) fn image_manifest(
    config: &Blob,
    config_type: &str,
    layers: &[&Blob],
) -> serde_json::Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(config_type),
        "layers": layers.iter().map(|l| l.descriptor(OCI_LAYER)).collect::<Vec<_>>(),
    })
}

/// The content every check of a run shares, pushed by the setup step.
#[derive(Debug, Clone)]
pub(crate) struct Fixtures {
    /// Random, in every tag of the run: `conf-<run>`.
    pub run: String,
    pub layer: Blob,
    pub config: Blob,
    /// `{}`: the config and layer of artifacts.
    pub empty_json: Blob,
    pub image: Manifest,
    pub index: Manifest,
    /// Artifacts whose `subject` is `image`, of types [`ARTIFACT_A`] and [`ARTIFACT_B`].
    pub artifact_a: Manifest,
    pub artifact_b: Manifest,
}

impl Fixtures {
    pub(crate) fn generate() -> Fixtures {
        let run = random_hex(4);
        let layer = Blob::random(2048);
        let config = Blob::new(
            serde_json::to_vec(&json!({
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"run": run}},
                "rootfs": {"type": "layers", "diff_ids": [layer.digest.as_str()]},
            }))
            .unwrap_or_default(),
        );
        let empty_json = Blob::new(&b"{}"[..]);
        let image = Manifest::of(
            &image_manifest(&config, OCI_CONFIG, &[&layer]),
            OCI_MANIFEST,
        );
        let index = Manifest::of(
            &json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [{
                    "mediaType": OCI_MANIFEST,
                    "digest": image.digest().as_str(),
                    "size": image.blob.size(),
                    "platform": {"architecture": "amd64", "os": "linux"},
                }],
            }),
            OCI_INDEX,
        );
        let artifact = |artifact_type: &str| {
            let mut m = image_manifest(&empty_json, OCI_EMPTY, &[&empty_json]);
            m["layers"][0]["mediaType"] = json!(OCI_EMPTY);
            m["artifactType"] = json!(artifact_type);
            m["subject"] = image.descriptor();
            m["annotations"] = json!({"org.berth.conformance.run": run});
            Manifest::of(&m, OCI_MANIFEST)
        };
        let artifact_a = artifact(ARTIFACT_A);
        let artifact_b = artifact(ARTIFACT_B);
        Fixtures {
            run,
            layer,
            config,
            empty_json,
            image,
            index,
            artifact_a,
            artifact_b,
        }
    }

    /// The run's main tag.
    pub(crate) fn tag(&self) -> String {
        format!("conf-{}", self.run)
    }

    /// The run's tags, in lexical order (the main tag, then `-t1` … `-t4`).
    pub(crate) fn tags(&self) -> Vec<String> {
        let mut t = vec![self.tag()];
        t.extend((1..=4).map(|i| format!("{}-t{i}", self.tag())));
        t
    }

    /// An image manifest of exactly [`BIG_MANIFEST`] bytes (padded with an annotation).
    pub(crate) fn big_manifest(&self) -> Manifest {
        let mut m = image_manifest(&self.config, OCI_CONFIG, &[&self.layer]);
        m["annotations"] = json!({"org.berth.conformance.padding": ""});
        let base = serde_json::to_vec(&m).unwrap_or_default().len();
        let pad = BIG_MANIFEST.saturating_sub(base);
        m["annotations"]["org.berth.conformance.padding"] = json!("a".repeat(pad));
        Manifest::of(&m, OCI_MANIFEST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_consistent() {
        let f = Fixtures::generate();
        assert_eq!(f.big_manifest().blob.data.len(), BIG_MANIFEST);
        let art: serde_json::Value = serde_json::from_slice(&f.artifact_a.blob.data).unwrap();
        assert_eq!(art["subject"]["digest"], f.image.digest().as_str());
        assert_eq!(art["artifactType"], ARTIFACT_A);
        let tags = f.tags();
        let mut sorted = tags.clone();
        sorted.sort();
        assert_eq!(tags, sorted);
        assert!(
            Blob::sha512(&b"x"[..])
                .digest
                .as_str()
                .starts_with("sha512:")
        );
        assert_ne!(Fixtures::generate().run, f.run);
    }
}
