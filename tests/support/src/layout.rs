//! An OCI image-layout fixture builder (image-spec "image-layout.md"): blobs under
//! `blobs/sha256/`, `oci-layout`, and an `index.json` naming each tagged entry with
//! `org.opencontainers.image.ref.name`, as skopeo's `oci:<dir>:<tag>` reads it.
//!
//! Layers are gzip streams made of *stored* (uncompressed) deflate blocks around random
//! bytes: valid gzip, so tools that sniff compression (skopeo) copy them unchanged instead
//! of recompressing, yet incompressible and cheap to make.

use std::path::{Path, PathBuf};

use berth_oci::Digest;
use serde_json::{Value, json};

use crate::fs::write_file;
use crate::rng::random_bytes;

pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The empty descriptor's media type (image-spec "Guidance for an Empty Descriptor").
pub const ARTIFACT_EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A content descriptor, with the optional fields the fixtures use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// `{"os":…,"architecture":…}` for an index entry.
    pub platform: Option<Value>,
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, data: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: Digest::sha256_of(data),
            size: data.len() as u64,
            platform: None,
            artifact_type: None,
        }
    }

    /// The same descriptor with a platform (for an index entry).
    pub fn with_platform(mut self, os: &str, architecture: &str) -> Descriptor {
        self.platform = Some(json!({ "os": os, "architecture": architecture }));
        self
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "mediaType": self.media_type,
            "digest": self.digest.to_string(),
            "size": self.size,
        });
        if let Some(p) = &self.platform {
            v["platform"] = p.clone();
        }
        if let Some(a) = &self.artifact_type {
            v["artifactType"] = json!(a);
        }
        v
    }
}

/// One image layer: its blob (gzip) and its diff ID (digest of the uncompressed content).
#[derive(Debug, Clone)]
pub struct Layer {
    pub data: Vec<u8>,
    pub diff_id: Digest,
}

impl Layer {
    /// `len` random bytes from `seed`, wrapped as a stored-block gzip stream.
    pub fn random(seed: u64, len: usize) -> Layer {
        let payload = random_bytes(seed, len);
        Layer {
            diff_id: Digest::sha256_of(&payload),
            data: gzip_stored(&payload),
        }
    }

    /// An uncompressed tar archive as a layer (wrapped as a stored-block gzip stream).
    pub fn from_tar(tar: &[u8]) -> Layer {
        Layer {
            diff_id: Digest::sha256_of(tar),
            data: gzip_stored(tar),
        }
    }

    pub fn digest(&self) -> Digest {
        Digest::sha256_of(&self.data)
    }
}

/// A minimal image configuration for `os`/`architecture` over `layers`.
pub fn image_config(os: &str, architecture: &str, layers: &[Layer]) -> Value {
    json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": architecture,
        "os": os,
        "config": { "Env": ["PATH=/usr/bin:/bin"] },
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
        },
    })
}

/// An OCI image layout on disk, built up one blob and one `index.json` entry at a time.
#[derive(Debug)]
pub struct OciLayout {
    dir: PathBuf,
    index: Vec<Value>,
}

impl OciLayout {
    /// Create an empty layout in `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> OciLayout {
        let dir = dir.into();
        std::fs::create_dir_all(dir.join("blobs/sha256"))
            .unwrap_or_else(|e| panic!("failed to create {}: {e}", dir.display()));
        write_file(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#);
        let layout = OciLayout {
            dir,
            index: Vec::new(),
        };
        layout.write_index();
        layout
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `oci:<dir>:<tag>` for skopeo.
    pub fn skopeo_ref(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }

    /// Store `data` as a blob and describe it.
    pub fn blob(&self, media_type: &str, data: &[u8]) -> Descriptor {
        let desc = Descriptor::new(media_type, data);
        write_file(blob_path(&self.dir, &desc.digest), data);
        desc
    }

    fn json_blob(&self, media_type: &str, v: &Value) -> Descriptor {
        let bytes = serde_json::to_vec(v).expect("fixture JSON serialises");
        self.blob(media_type, &bytes)
    }

    /// Store an image: its layers, its config and its manifest; returns the manifest's
    /// descriptor (not yet tagged: see [`OciLayout::tag`]).
    pub fn image(&mut self, layers: &[Layer], config: &Value) -> Descriptor {
        let config = self.json_blob(MEDIA_CONFIG, config);
        let layers: Vec<Value> = layers
            .iter()
            .map(|l| self.blob(MEDIA_LAYER_GZIP, &l.data).to_json())
            .collect();
        self.json_blob(
            MEDIA_MANIFEST,
            &json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_MANIFEST,
                "config": config.to_json(),
                "layers": layers,
            }),
        )
    }

    /// Store an image index over `manifests` (give them platforms with
    /// [`Descriptor::with_platform`]).
    pub fn index(&mut self, manifests: &[Descriptor]) -> Descriptor {
        self.json_blob(
            MEDIA_INDEX,
            &json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_INDEX,
                "manifests": manifests.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
            }),
        )
    }

    /// Store an artifact manifest (image-spec "Guidelines for Artifact Usage": an image
    /// manifest with `artifactType`, the empty config, `blobs` as layers) whose `subject` is
    /// `subject`.
    pub fn artifact(
        &mut self,
        subject: &Descriptor,
        artifact_type: &str,
        blobs: &[(&str, &[u8])],
    ) -> Descriptor {
        let empty = self.blob(ARTIFACT_EMPTY_CONFIG, b"{}");
        let layers: Vec<Value> = blobs
            .iter()
            .map(|(mt, data)| self.blob(mt, data).to_json())
            .collect();
        let mut subject_json = subject.to_json();
        if let Some(o) = subject_json.as_object_mut() {
            o.remove("platform");
        }
        let mut d = self.json_blob(
            MEDIA_MANIFEST,
            &json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_MANIFEST,
                "artifactType": artifact_type,
                "config": empty.to_json(),
                "layers": layers,
                "subject": subject_json,
                "annotations": { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" },
            }),
        );
        d.artifact_type = Some(artifact_type.to_owned());
        d
    }

    /// Name `desc` as `tag` in `index.json`.
    pub fn tag(&mut self, desc: &Descriptor, tag: &str) {
        let mut entry = desc.to_json();
        entry["annotations"] = json!({ REF_NAME: tag });
        self.index.push(entry);
        self.write_index();
    }

    fn write_index(&self) {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": self.index,
        });
        write_file(
            self.dir.join("index.json"),
            &serde_json::to_vec_pretty(&index).expect("index serialises"),
        );
    }

    /// The bytes of a blob in the layout at `dir`; panics when it is missing.
    pub fn read_blob(dir: &Path, digest: &Digest) -> Vec<u8> {
        let p = blob_path(dir, digest);
        std::fs::read(&p).unwrap_or_else(|e| panic!("failed to read blob {}: {e}", p.display()))
    }

    /// Every blob digest in the layout at `dir` (by file name), sorted.
    pub fn blob_digests(dir: &Path) -> Vec<Digest> {
        let mut out: Vec<Digest> = std::fs::read_dir(dir.join("blobs/sha256"))
            .unwrap_or_else(|e| panic!("failed to list blobs of {}: {e}", dir.display()))
            .flatten()
            .filter_map(|e| {
                Digest::parse(&format!("sha256:{}", e.file_name().to_string_lossy())).ok()
            })
            .collect();
        out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        out
    }

    /// The descriptor `index.json` of the layout at `dir` names `tag`, if any.
    pub fn resolve_tag(dir: &Path, tag: &str) -> Option<Value> {
        let raw = std::fs::read(dir.join("index.json")).ok()?;
        let index: Value = serde_json::from_slice(&raw).ok()?;
        index["manifests"]
            .as_array()?
            .iter()
            .find(|m| m["annotations"][REF_NAME].as_str() == Some(tag))
            .cloned()
    }
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs")
        .join(digest.algorithm().as_str())
        .join(digest.hex())
}

/// A gzip stream (RFC 1952) holding `payload` in stored deflate blocks (RFC 1951 §3.2.4).
pub fn gzip_stored(payload: &[u8]) -> Vec<u8> {
    const MAX_BLOCK: usize = 65535;
    let blocks = payload.len().div_ceil(MAX_BLOCK).max(1);
    let mut out = Vec::with_capacity(payload.len() + blocks * 5 + 18);
    // magic, deflate, no flags, mtime 0, no extra flags, OS unknown
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    let mut chunks: Vec<&[u8]> = payload.chunks(MAX_BLOCK).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    for (i, c) in chunks.iter().enumerate() {
        out.push(u8::from(i == last)); // BFINAL, BTYPE=00
        let len = c.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn stored_gzip_frames_blocks_and_trailer() {
        let payload = random_bytes(1, 70_000);
        let gz = gzip_stored(&payload);
        assert_eq!(&gz[..3], &[0x1f, 0x8b, 8]);
        // two blocks: 65535 + 4465 bytes, 5 bytes of framing each
        assert_eq!(gz.len(), 10 + 70_000 + 2 * 5 + 8);
        assert_eq!(gz[10], 0, "first block is not final");
        assert_eq!(gz[10 + 5 + 65535], 1, "second block is final");
        assert_eq!(gzip_stored(b"").len(), 10 + 5 + 8);
    }

    #[test]
    fn stored_gzip_decompresses_with_gzip() {
        crate::requires_tool!("gzip");
        let dir = tempfile::tempdir().expect("tempdir");
        for len in [0usize, 1, 65535, 65536, 200_000] {
            let payload = random_bytes(len as u64, len);
            let path = dir.path().join(format!("{len}.gz"));
            crate::write_file(&path, &gzip_stored(&payload));
            let out = std::process::Command::new("gzip")
                .arg("-dc")
                .arg(&path)
                .output()
                .expect("run gzip");
            assert!(
                out.status.success(),
                "gzip -dc: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.stdout == payload, "gzip -dc of {len} bytes differs");
        }
    }
}
