//! Running a signer against a registry ([`run_signer`]): push test images, give the signer a
//! test key and certificate chain, run its command for each image, find what it pushed (the
//! referrers API, else the `sha256-<hex>` referrers tag index, else any tag whose manifest
//! names the image as its `subject`), and judge each signature with
//! [`check_signature`].
//!
//! The signer's command is a shell command line with placeholders, each replaced by a
//! shell-quoted value: `{image}` (`HOST/REPO@sha256:…`), `{key}` (the private key, PKCS#8
//! PEM), `{cert}` (the chain, PEM, leaf first, ending at the test root) and `{config}` (a
//! fresh directory that is also the command's `XDG_CONFIG_HOME`, holding notation's
//! `notation/signingkeys.json` with the key as `conformance`, its default). So:
//!
//! - berth ([`berth_command`]): `berth key import conformance --force --key {key} --cert {cert}
//!   && berth sign --key conformance --envelope jws {image}`
//! - notation ([`NOTATION_COMMAND`]): `notation sign --insecure-registry --key conformance
//!   {image}` (add `--signature-format cose` for COSE)
//!
//! The command runs in its own process group with a deadline; at the deadline the group is
//! killed ([`berth_fsutil::wait_or_kill_group`]).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_distribution::{BytesSource, Client, RawRequest, Repository};
use berth_oci::Digest;
use berth_oci::oci_spec::image::{Descriptor, MediaType};
use berth_trust::certgen;
use berth_trust::keys::{KeySpec, SigningKey, chain_pem};
use bytes::Bytes;
use http::Method;
use serde::Serialize;
use serde_json::json;

use super::signer::{HowPushed, RuleResult, check_signature};

/// Name the test key has in the signer's configuration.
pub const KEY_NAME: &str = "conformance";
/// notation as the signer (the key is in the `{config}` it is given).
pub const NOTATION_COMMAND: &str = "notation sign --insecure-registry --key conformance {image}";

/// berth as the signer: the test key imported into the run's key store, then `berth sign`
/// with the envelope format given (`jws` or `cose`). `berth` is the binary's path.
pub fn berth_command(berth: &Path, envelope: &str) -> String {
    let b = quote(&berth.to_string_lossy());
    format!(
        "{b} key import {KEY_NAME} --force --key {{key}} --cert {{cert}} && {b} sign --key {KEY_NAME} --envelope {envelope} {{image}}"
    )
}
/// Largest signature manifest or envelope read.
const MAX_READ: usize = 4 << 20;
/// Most referrers of one image judged.
const MAX_SIGNATURES: usize = 16;

/// What to run and where.
#[derive(Debug, Clone)]
pub struct SignerOptions {
    pub client: Client,
    /// `host[:port]`.
    pub registry: String,
    /// The repository the test images are pushed to.
    pub repository: String,
    /// The signer's command line, with `{image}`, `{key}`, `{cert}`, `{config}`.
    pub command: String,
    /// An empty directory the caller owns (and removes): the key, the chain, the signer's
    /// configuration and its output go there.
    pub work_dir: PathBuf,
    /// How long one signer run may take.
    pub timeout: Duration,
    /// The signing key's kind (EC P-256 or P-384: berth generates no RSA keys).
    pub key_spec: KeySpec,
}

/// Why a signer could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("invalid repository {name:?} for the signer checks")]
    Repository {
        name: String,
        #[source]
        source: Box<berth_distribution::Error>,
    },
    #[error("failed to make the test key and certificates")]
    TestPki(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("failed to write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: berth_fsutil::FsError,
    },
    #[error("failed to push the test image {what} to {registry}")]
    Push {
        what: String,
        registry: String,
        #[source]
        source: Box<berth_distribution::Error>,
    },
}

/// One test image and what the signer did with it.
#[derive(Debug, Clone, Serialize)]
pub struct SignedImage {
    /// `HOST/REPO@DIGEST`, what `{image}` was.
    pub reference: String,
    /// The image's descriptor: what a signature's `subject` and `targetArtifact` must be.
    pub subject: Descriptor,
    /// The command as run (placeholders replaced).
    pub command: String,
    /// The exit code (`None`: killed at the deadline or by a signal).
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Why no signature could be judged, if none could.
    pub error: Option<String>,
    pub signatures: Vec<CheckedSignature>,
}

/// One signature found for an image, judged.
#[derive(Debug, Clone, Serialize)]
pub struct CheckedSignature {
    /// The signature manifest's digest.
    pub digest: String,
    pub how_pushed: HowPushed,
    pub rules: Vec<RuleResult>,
}

/// The test key material given to the signer.
struct TestPki {
    key: PathBuf,
    cert: PathBuf,
    config: PathBuf,
}

fn write(path: &Path, data: &[u8]) -> Result<(), SignerError> {
    berth_fsutil::atomic_write(path, data).map_err(|source| SignerError::Write {
        path: path.to_owned(),
        source,
    })
}

fn make_pki(dir: &Path, spec: KeySpec) -> Result<TestPki, SignerError> {
    let pki = |e: Box<dyn std::error::Error + Send + Sync>| SignerError::TestPki(e);
    let key = SigningKey::generate(spec).map_err(|e| pki(Box::new(e)))?;
    let (leaf, ca, _ca_key) = certgen::generate_test_ca("berth conformance signer", &key, 2)
        .map_err(|e| pki(Box::new(e)))?;
    let out = TestPki {
        key: dir.join("signing-key.pem"),
        cert: dir.join("signing-chain.pem"),
        config: dir.join("config"),
    };
    write(&out.key, key.to_pkcs8_pem().as_bytes())?;
    write(&out.cert, chain_pem(&[leaf, ca]).as_bytes())?;
    let keys = json!({
        "default": KEY_NAME,
        "keys": [{"name": KEY_NAME, "keyPath": out.key, "certPath": out.cert}],
    });
    let notation = out.config.join("notation");
    berth_fsutil::create_dir_all_durable(&notation).map_err(|source| SignerError::Write {
        path: notation.clone(),
        source,
    })?;
    write(
        &notation.join("signingkeys.json"),
        keys.to_string().as_bytes(),
    )?;
    Ok(out)
}

/// `s` quoted for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The command line with its placeholders replaced.
pub fn expand(command: &str, image: &str, key: &Path, cert: &Path, config: &Path) -> String {
    command
        .replace("{image}", &quote(image))
        .replace("{key}", &quote(&key.to_string_lossy()))
        .replace("{cert}", &quote(&cert.to_string_lossy()))
        .replace("{config}", &quote(&config.to_string_lossy()))
}

/// Test images, pushed: an image manifest and an index over it (a signer must sign either
/// as it is: its media type is part of what is signed).
async fn push_images(o: &SignerOptions, repo: &Repository) -> Result<Vec<Descriptor>, SignerError> {
    let push_err = |what: &str| {
        let what = what.to_owned();
        let registry = o.registry.clone();
        move |source| SignerError::Push {
            what,
            registry,
            source: Box::new(source),
        }
    };
    let layer = Bytes::from(crate::data::random_bytes(1024));
    let layer_d = Digest::sha256_of(&layer);
    let config = Bytes::from(
        json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer_d.to_string()]},
        })
        .to_string(),
    );
    let config_d = Digest::sha256_of(&config);
    for (d, b) in [(&layer_d, &layer), (&config_d, &config)] {
        o.client
            .push_blob(repo, d, b.len() as u64, BytesSource(b.clone()))
            .await
            .map_err(push_err("blob"))?;
    }
    let image = json!({
        "schemaVersion": 2,
        "mediaType": crate::data::OCI_MANIFEST,
        "config": {"mediaType": crate::data::OCI_CONFIG, "digest": config_d.to_string(), "size": config.len()},
        "layers": [{"mediaType": crate::data::OCI_LAYER, "digest": layer_d.to_string(), "size": layer.len()}],
    })
    .to_string();
    let image_d = Digest::sha256_of(image.as_bytes());
    o.client
        .put_manifest(
            repo,
            image_d.as_str(),
            image.as_bytes(),
            crate::data::OCI_MANIFEST,
        )
        .await
        .map_err(push_err("image manifest"))?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": crate::data::OCI_INDEX,
        "manifests": [{
            "mediaType": crate::data::OCI_MANIFEST, "digest": image_d.to_string(), "size": image.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    })
    .to_string();
    let index_d = Digest::sha256_of(index.as_bytes());
    o.client
        .put_manifest(
            repo,
            index_d.as_str(),
            index.as_bytes(),
            crate::data::OCI_INDEX,
        )
        .await
        .map_err(push_err("image index"))?;
    let desc = |mt: MediaType, len: usize, d: &Digest| -> Result<Descriptor, SignerError> {
        let digest: berth_oci::oci_spec::image::Digest = d.as_str().parse().map_err(|e| {
            SignerError::TestPki(Box::new(std::io::Error::other(format!("digest {d}: {e}"))))
        })?;
        Ok(Descriptor::new(mt, len as u64, digest))
    };
    Ok(vec![
        desc(MediaType::ImageManifest, image.len(), &image_d)?,
        desc(MediaType::ImageIndex, index.len(), &index_d)?,
    ])
}

/// Run `line` through `sh -c` with `XDG_CONFIG_HOME=config`, its output in files of `dir`
/// named after `n`; (exit code, stdout, stderr), or why it could not run.
async fn run_command(
    line: &str,
    config: &Path,
    dir: &Path,
    n: usize,
    timeout: Duration,
) -> Result<(Option<i32>, String, String), String> {
    let out_path = dir.join(format!("signer-{n}.stdout"));
    let err_path = dir.join(format!("signer-{n}.stderr"));
    let open = |p: &Path| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
            .map_err(|e| format!("failed to create {}: {e}", p.display()))
    };
    let (stdout, stderr) = (open(&out_path)?, open(&err_path)?);
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(line)
        .env("XDG_CONFIG_HOME", config)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    let status = tokio::task::spawn_blocking(move || -> Result<Option<i32>, String> {
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("failed to start sh: {e}"))?;
        match berth_fsutil::wait_or_kill_group(&mut child, timeout) {
            Ok(Some(s)) => Ok(s.code()),
            Ok(None) => Err(format!(
                "the signer did not finish within {timeout:?}: killed"
            )),
            Err(e) => Err(format!("failed to wait for the signer: {e}")),
        }
    })
    .await
    .map_err(|e| format!("the signer's waiter failed: {e}"))??;
    let read = |p: &Path| {
        let mut s = std::fs::read(p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let mut end = s.len().min(16 << 10);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s
    };
    Ok((status, read(&out_path), read(&err_path)))
}

/// GET `target`: the body of a `200`, else what came back (a status, or the transport
/// error).
async fn fetch(
    o: &SignerOptions,
    repo: &Repository,
    target: String,
    accept: &str,
) -> Result<Bytes, String> {
    let mut req = RawRequest::new(Method::GET, target.clone());
    if let Ok(v) = http::HeaderValue::from_str(accept) {
        req.headers.insert(http::header::ACCEPT, v);
    }
    req.scopes = vec![format!("repository:{}:pull", repo.name())];
    match o.client.exchange(&o.registry, req, MAX_READ).await {
        Ok(r) if r.status == 200 => Ok(r.body),
        Ok(r) => Err(format!("GET {target}: {}", r.status)),
        Err(e) => Err(format!("GET {target}: {}", berth_errdefs::error_chain(&e))),
    }
}

/// [`fetch`], any failure as `None` (looking for what is there).
async fn get(o: &SignerOptions, repo: &Repository, target: String, accept: &str) -> Option<Bytes> {
    fetch(o, repo, target, accept).await.ok()
}

fn manifests_of(index: &[u8]) -> Vec<String> {
    serde_json::from_slice::<serde_json::Value>(index)
        .ok()
        .and_then(|v| v.get("manifests").and_then(|m| m.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|d| d.get("digest").and_then(|d| d.as_str()).map(str::to_owned))
        .collect()
}

/// The signatures of `subject`: (manifest digest, how it was found).
async fn find(
    o: &SignerOptions,
    repo: &Repository,
    subject: &Digest,
    skip_tags: &[String],
) -> Vec<(String, HowPushed)> {
    let path = |rest: &str| format!("/v2/{}/{rest}", repo.name());
    let tag = berth_distribution::referrers_tag(subject);
    for (target, how) in [
        (
            path(&format!("referrers/{subject}")),
            HowPushed::ReferrersApi,
        ),
        (path(&format!("manifests/{tag}")), HowPushed::TagFallback),
    ] {
        if let Some(b) = get(o, repo, target, crate::data::OCI_INDEX).await {
            let found = manifests_of(&b);
            if !found.is_empty() {
                return found.into_iter().map(|d| (d, how.clone())).collect();
            }
        }
    }
    // listed by neither: any tag whose manifest names the image as its subject
    let mut out = Vec::new();
    let Some(list) = get(o, repo, path("tags/list"), "application/json").await else {
        return out;
    };
    let tags: Vec<String> = serde_json::from_slice::<serde_json::Value>(&list)
        .ok()
        .and_then(|v| v.get("tags").and_then(|t| t.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .filter(|t| *t != tag && !skip_tags.contains(t))
        .take(64)
        .collect();
    for t in tags {
        if let Some(m) = get(
            o,
            repo,
            path(&format!("manifests/{t}")),
            crate::data::OCI_MANIFEST,
        )
        .await
        {
            let names_subject = serde_json::from_slice::<serde_json::Value>(&m)
                .ok()
                .is_some_and(|v| v["subject"]["digest"] == subject.as_str());
            if names_subject {
                out.push((
                    Digest::sha256_of(&m).to_string(),
                    HowPushed::NotListed(format!("under the tag {t}")),
                ));
            }
        }
    }
    out
}

/// The manifest and envelope of signature `digest`, or why they could not be read.
async fn fetch_signature(
    o: &SignerOptions,
    repo: &Repository,
    digest: &str,
) -> Result<(Bytes, Bytes), String> {
    let path = |rest: &str| format!("/v2/{}/{rest}", repo.name());
    let manifest = fetch(
        o,
        repo,
        path(&format!("manifests/{digest}")),
        crate::data::OCI_MANIFEST,
    )
    .await
    .map_err(|e| format!("failed to read the signature manifest {digest}: {e}"))?;
    let layer = serde_json::from_slice::<serde_json::Value>(&manifest)
        .ok()
        .and_then(|v| v["layers"][0]["digest"].as_str().map(str::to_owned));
    let envelope = match layer {
        Some(l) => fetch(o, repo, path(&format!("blobs/{l}")), "*/*")
            .await
            .map_err(|e| format!("failed to read the envelope of {digest}: {e}"))?,
        // judged with an empty envelope: the layer rules say what is wrong
        None => Bytes::new(),
    };
    Ok((manifest, envelope))
}

/// Push the test images to the registry, run the signer on each and judge every signature
/// it pushed. Failures of the signer are results; an error means nothing could be run.
#[tracing::instrument(level = "info", skip_all, fields(registry = %o.registry, repository = %o.repository))]
pub async fn run_signer(o: &SignerOptions) -> Result<Vec<SignedImage>, SignerError> {
    let repo =
        Repository::new(&o.registry, &o.repository).map_err(|source| SignerError::Repository {
            name: o.repository.clone(),
            source: Box::new(source),
        })?;
    let pki = make_pki(&o.work_dir, o.key_spec)?;
    let images = push_images(o, &repo).await?;
    let mut out = Vec::new();
    for (n, subject) in images.into_iter().enumerate() {
        let digest = subject.digest().to_string();
        let reference = format!("{}/{}@{digest}", o.registry, o.repository);
        let line = expand(&o.command, &reference, &pki.key, &pki.cert, &pki.config);
        let mut img = SignedImage {
            reference,
            subject,
            command: line.clone(),
            exit_code: None,
            stdout: String::new(),
            stderr: String::new(),
            error: None,
            signatures: Vec::new(),
        };
        match run_command(&line, &pki.config, &o.work_dir, n, o.timeout).await {
            Ok((code, stdout, stderr)) => {
                img.exit_code = code;
                img.stdout = stdout;
                img.stderr = stderr;
                if code != Some(0) {
                    img.error = Some(format!(
                        "the signer exited with {}",
                        code.map_or("a signal".into(), |c| c.to_string())
                    ));
                }
            }
            Err(e) => img.error = Some(e),
        }
        let Ok(subject_digest) = Digest::parse(&digest) else {
            out.push(img);
            continue;
        };
        let found = find(o, &repo, &subject_digest, &[]).await;
        for (sig, how) in found.into_iter().take(MAX_SIGNATURES) {
            match fetch_signature(o, &repo, &sig).await {
                Ok((manifest, envelope)) => img.signatures.push(CheckedSignature {
                    digest: sig,
                    rules: check_signature(&manifest, &envelope, &img.subject, &how),
                    how_pushed: how,
                }),
                Err(e) => {
                    img.error.get_or_insert(e);
                }
            }
        }
        if img.signatures.is_empty() && img.error.is_none() {
            img.error = Some("the signer pushed no signature of the image (none listed by the referrers API, the referrers tag index or any tag)".into());
        }
        out.push(img);
    }
    Ok(out)
}
