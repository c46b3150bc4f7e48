//! Writing image archives, one entry after another into a temporary file that is renamed
//! into place only when the whole archive is written (`berth_fsutil::AtomicFile`): a failed
//! save leaves no partial file.
//!
//! The layout is podman's (containers/image `docker/internal/tarfile/writer.go`, `oci/archive`):
//! - docker-archive: `<diff_id hex>.tar` uncompressed layers, `<config hex>.json`, the
//!   legacy `<chain id>/{VERSION,json,layer.tar → ../<diff_id hex>.tar}` folders, then
//!   `manifest.json` and `repositories`. Entries are mode 0444, owned by 0:0, dated 1970.
//! - oci-archive: `oci-layout`, `blobs/<alg>/<hex>`, then `index.json`, whose entries carry
//!   the image names as `org.opencontainers.image.ref.name`.
//!
//! A compressed layer becomes uncompressed in a docker-archive (the format holds only
//! tars whose digest is the diff_id): it is decompressed as it streams in, its tar entry
//! written with a provisional size that is patched once the end is reached (the output is
//! a file, so the header is rewritten in place), and the result checked against the
//! config's diff_id. Every blob written is hashed on the way and checked against its
//! descriptor.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use berth_distribution::Descriptor;
use berth_fsutil::AtomicFile;
use berth_oci::{Digest, Digester, media_type};
use serde_json::json;
use tokio::io::AsyncWrite;

use super::{ArchiveFormat, DOCKER_LAYER_TAR, MAX_METADATA_BYTES, REF_NAME};
use crate::local::digest_of;
use crate::progress::BlobProgress;
use crate::side::Src;
use crate::{CopyOptions, ManifestBlob, Progress, Put, Result, TransferError};

const BLOCK: u64 = 512;

/// A tar file being written.
struct TarWriter {
    file: AtomicFile,
    dest: PathBuf,
    offset: u64,
}

fn header(name: &str, size: u64, kind: tar::EntryType, mode: u32) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)?;
    h.set_size(size);
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_device_major(0)?;
    h.set_device_minor(0)?;
    seal(&mut h);
    Ok(h)
}

/// Write the header's checksum as Go's `archive/tar` does (six octal digits, NUL, space),
/// so that berth's archives are podman's byte for byte.
fn seal(h: &mut tar::Header) {
    let bytes = h.as_mut_bytes();
    bytes[148..156].fill(b' ');
    let sum: u32 = bytes.iter().map(|b| u32::from(*b)).sum();
    let field = format!("{sum:06o}\0 ");
    bytes[148..156].copy_from_slice(field.as_bytes());
}

impl TarWriter {
    fn create(dest: &Path) -> Result<TarWriter> {
        let file = AtomicFile::create(dest).map_err(|source| TransferError::CreateArchive {
            path: dest.to_owned(),
            source,
        })?;
        Ok(TarWriter {
            file,
            dest: dest.to_owned(),
            offset: 0,
        })
    }

    fn err(&self, entry: &str) -> impl Fn(io::Error) -> TransferError + '_ {
        let entry = entry.to_owned();
        move |source| TransferError::WriteArchive {
            path: self.dest.clone(),
            entry: entry.clone(),
            source,
        }
    }

    fn raw(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.offset += data.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let rem = self.offset % BLOCK;
        if rem != 0 {
            let zeros = [0u8; BLOCK as usize];
            let n = usize::try_from(BLOCK - rem).unwrap_or(0);
            self.raw(zeros.get(..n).unwrap_or_default())?;
        }
        Ok(())
    }

    fn bytes(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let h = header(name, data.len() as u64, tar::EntryType::Regular, 0o444)
            .map_err(self.err(name))?;
        (|| {
            self.raw(h.as_bytes())?;
            self.raw(data)?;
            self.pad()
        })()
        .map_err(self.err(name))
    }

    fn symlink(&mut self, name: &str, target: &str) -> Result<()> {
        let mut h = header(name, 0, tar::EntryType::Symlink, 0).map_err(self.err(name))?;
        h.set_link_name(target).map_err(self.err(name))?;
        seal(&mut h);
        self.raw(h.as_bytes()).map_err(self.err(name))
    }

    fn dir(&mut self, name: &str) -> Result<()> {
        let h = header(name, 0, tar::EntryType::Directory, 0o755).map_err(self.err(name))?;
        self.raw(h.as_bytes()).map_err(self.err(name))
    }

    /// Start a file entry whose size is not known yet; returns where its header is.
    fn begin(&mut self, name: &str) -> Result<u64> {
        let at = self.offset;
        let h = header(name, 0, tar::EntryType::Regular, 0o444).map_err(self.err(name))?;
        self.raw(h.as_bytes()).map_err(self.err(name))?;
        Ok(at)
    }

    /// End the entry begun at `at`: pad it and write its real size into its header.
    fn end(&mut self, name: &str, at: u64) -> Result<u64> {
        let size = self.offset - at - BLOCK;
        let h = header(name, size, tar::EntryType::Regular, 0o444).map_err(self.err(name))?;
        (|| {
            self.pad()?;
            self.file.flush()?;
            let file = self
                .file
                .file()
                .ok_or_else(|| io::Error::other("the archive file is closed"))?;
            file.write_all_at(h.as_bytes(), at)
        })()
        .map_err(self.err(name))?;
        Ok(size)
    }

    fn finish(mut self) -> Result<()> {
        self.raw(&[0u8; 2 * BLOCK as usize])
            .map_err(self.err("the end-of-archive blocks"))?;
        let dest = self.dest.clone();
        self.file
            .commit()
            .map_err(|source| TransferError::CreateArchive { path: dest, source })?;
        Ok(())
    }
}

/// Bytes written into the open entry, hashed and counted on the way.
struct EntrySink<'a> {
    tar: &'a mut TarWriter,
    digester: Digester,
    progress: Option<Arc<dyn BlobProgress>>,
}

impl Write for EntrySink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tar.raw(buf)?;
        self.digester.update(buf);
        if let Some(p) = &self.progress {
            p.inc(buf.len() as u64);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A synchronous writer as the sink of a [`crate::Provider::fetch`], driven with
/// `block_on` from a thread that may block.
struct SyncSink<W>(W);

impl<W: Write + Unpin> AsyncWrite for SyncSink<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.0.write(buf))
    }
    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.0.flush())
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The archive's JSON metadata, encoded.
fn encode(dest: &Path, v: &impl serde::Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| TransferError::WriteArchive {
        path: dest.to_owned(),
        entry: "metadata".into(),
        source: io::Error::other(e),
    })
}

/// An entry of `manifest.json`, its fields in the order docker and podman write them.
#[derive(Debug, serde::Serialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// What to write: an image at a source, and the names it gets in the archive.
pub(crate) struct SaveImage {
    pub src: Src,
    pub names: Vec<String>,
    /// Where it comes from, for errors.
    pub label: String,
}

/// The manifest of one platform (or, in an oci-archive with `all_platforms`, the index).
struct Chosen {
    top: ManifestBlob,
    /// The image manifests under `top` (`top` itself when it is one).
    images: Vec<ManifestBlob>,
}

struct Saver<'a> {
    handle: tokio::runtime::Handle,
    tar: TarWriter,
    progress: &'a dyn Progress,
    written: HashSet<String>,
}

/// Write `images` into the archive `dest`; returns the top manifest digest of each.
/// Blocks: call from a thread that may (the async API uses `block_in_place`).
pub(crate) fn save(
    handle: tokio::runtime::Handle,
    images: &[SaveImage],
    dest: &Path,
    format: ArchiveFormat,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<Vec<Digest>> {
    if opts.referrers && format == ArchiveFormat::Docker {
        return Err(TransferError::ArchiveCannotHoldReferrers {
            path: dest.to_owned(),
        });
    }
    let mut s = Saver {
        handle,
        tar: TarWriter::create(dest)?,
        progress,
        written: HashSet::new(),
    };
    let mut digests = Vec::new();
    let mut docker_entries = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut oci_index = Vec::new();
    if format == ArchiveFormat::Oci {
        s.tar
            .bytes("oci-layout", br#"{"imageLayoutVersion": "1.0.0"}"#)?;
        s.tar.dir("blobs/")?;
        s.tar.dir("blobs/sha256/")?;
    }
    for image in images {
        let chosen = s.choose(image, format, opts)?;
        digests.push(chosen.top.digest.clone());
        match format {
            ArchiveFormat::Oci => {
                for m in &chosen.images {
                    let info = crate::parse(m)?;
                    for d in info.referenced_blobs() {
                        s.oci_blob(&image.src, d)?;
                    }
                    s.oci_bytes(&m.bytes, &m.digest)?;
                }
                s.oci_bytes(&chosen.top.bytes, &chosen.top.digest)?;
                let mut desc = json!({
                    "mediaType": chosen.top.media_type,
                    "digest": chosen.top.digest.as_str(),
                    "size": chosen.top.bytes.len(),
                });
                if image.names.is_empty() {
                    oci_index.push(desc);
                } else {
                    for n in &image.names {
                        desc["annotations"] = json!({ REF_NAME: n });
                        oci_index.push(desc.clone());
                    }
                }
                if opts.referrers {
                    s.oci_referrers(image, &chosen.top.digest, &mut oci_index)?;
                }
            }
            ArchiveFormat::Docker => {
                let (entry, last_layer) = s.docker_image(image, &chosen.top)?;
                for n in &image.names {
                    if let Some((repo, tag)) = split_tag(n) {
                        repositories
                            .entry(repo.to_owned())
                            .or_default()
                            .insert(tag.to_owned(), last_layer.clone());
                    }
                }
                docker_entries.push(entry);
            }
        }
    }
    match format {
        ArchiveFormat::Oci => {
            let index = json!({ "schemaVersion": 2, "manifests": oci_index });
            s.tar.bytes("index.json", &encode(dest, &index)?)?;
        }
        ArchiveFormat::Docker => {
            s.tar
                .bytes("manifest.json", &encode(dest, &docker_entries)?)?;
            s.tar.bytes("repositories", &encode(dest, &repositories)?)?;
        }
    }
    s.tar.finish()?;
    Ok(digests)
}

/// `repo` and `tag` of a name `repo:tag` (not of a digest reference).
fn split_tag(name: &str) -> Option<(&str, &str)> {
    if name.contains('@') {
        return None;
    }
    let (repo, tag) = name.rsplit_once(':')?;
    (!tag.contains('/')).then_some((repo, tag))
}

impl Saver<'_> {
    fn choose(
        &self,
        image: &SaveImage,
        format: ArchiveFormat,
        opts: &CopyOptions,
    ) -> Result<Chosen> {
        let src = &image.src;
        let top = self
            .handle
            .block_on(src.top())
            .map_err(|e| TransferError::ReadImage {
                image: image.label.clone(),
                source: Box::new(e),
            })?;
        let info = crate::parse(&top)?;
        if !crate::is_index(&top, &info) {
            return Ok(Chosen {
                images: vec![top.clone()],
                top,
            });
        }
        if opts.all_platforms && format == ArchiveFormat::Oci {
            let mut images = Vec::new();
            for child in &info.manifests {
                let m = self.handle.block_on(src.manifest(child))?;
                let child_info = crate::parse(&m)?;
                if crate::is_index(&m, &child_info) {
                    return Err(TransferError::NestedIndex {
                        image: image.label.clone(),
                        index: top.digest.clone(),
                        child: m.digest,
                    });
                }
                images.push(m);
            }
            return Ok(Chosen { top, images });
        }
        let p = &opts.platform;
        let desc = p
            .select(&top.bytes)
            .ok_or_else(|| TransferError::NoPlatform {
                image: image.label.clone(),
                platform: p.clone(),
            })?;
        let child = self.handle.block_on(src.manifest(&desc))?;
        Ok(Chosen {
            images: vec![child.clone()],
            top: child,
        })
    }

    /// Read a small blob (a config) whole, verified.
    fn small(&self, src: &Src, desc: &Descriptor) -> Result<Vec<u8>> {
        let digest = digest_of(desc)?;
        if desc.size() > MAX_METADATA_BYTES {
            return Err(TransferError::BlobTooLarge {
                digest,
                size: desc.size(),
                limit: MAX_METADATA_BYTES,
            });
        }
        let mut buf = Vec::new();
        self.handle.block_on(src.provider().fetch(desc, &mut buf))?;
        let mut d = Digester::new(digest.algorithm());
        d.update(&buf);
        d.verify(&digest, Some(desc.size()))
            .map_err(|source| TransferError::Verify {
                digest: digest.clone(),
                source,
            })?;
        Ok(buf)
    }

    /// The referrers of `subject` and theirs (as [`crate::copy`] follows them: at most
    /// [`crate::MAX_REFERRER_DEPTH`] deep and [`crate::MAX_REFERRERS`] in all), written with
    /// their content and listed untagged in `index.json`, where `load` and OCI layout
    /// readers find them by their `subject`.
    fn oci_referrers(
        &mut self,
        image: &SaveImage,
        subject: &Digest,
        oci_index: &mut Vec<serde_json::Value>,
    ) -> Result<()> {
        let src = &image.src;
        let mut seen = HashSet::new();
        let mut queue = std::collections::VecDeque::from([(subject.clone(), 0usize)]);
        while let Some((subject, depth)) = queue.pop_front() {
            if depth >= crate::MAX_REFERRER_DEPTH {
                continue;
            }
            for desc in self.handle.block_on(src.referrers(&subject))? {
                let digest = digest_of(&desc)?;
                if !seen.insert(digest.clone()) {
                    continue;
                }
                if seen.len() > crate::MAX_REFERRERS {
                    return Err(TransferError::TooManyReferrers {
                        subject,
                        limit: crate::MAX_REFERRERS,
                    });
                }
                let m = self.handle.block_on(src.manifest(&desc)).map_err(|e| {
                    TransferError::ReadReferrer {
                        digest: digest.clone(),
                        source: Box::new(e),
                    }
                })?;
                let info = crate::parse(&m)?;
                if crate::is_index(&m, &info) {
                    for child in &info.manifests {
                        let c = self.handle.block_on(src.manifest(child))?;
                        for d in crate::parse(&c)?.referenced_blobs() {
                            self.oci_blob(src, d)?;
                        }
                        self.oci_bytes(&c.bytes, &c.digest)?;
                    }
                } else {
                    for d in info.referenced_blobs() {
                        self.oci_blob(src, d)?;
                    }
                }
                self.oci_bytes(&m.bytes, &m.digest)?;
                let mut entry = json!({
                    "mediaType": m.media_type,
                    "digest": m.digest.as_str(),
                    "size": m.bytes.len(),
                });
                if let Some(t) = &info.artifact_type {
                    entry["artifactType"] = json!(t);
                }
                oci_index.push(entry);
                queue.push_back((digest, depth + 1));
            }
        }
        Ok(())
    }

    fn oci_bytes(&mut self, bytes: &[u8], digest: &Digest) -> Result<()> {
        let name = format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex());
        if self.written.insert(name.clone()) {
            self.tar.bytes(&name, bytes)?;
        }
        Ok(())
    }

    /// Copy blob `desc` into `blobs/<alg>/<hex>` as it is, checking it on the way.
    fn oci_blob(&mut self, src: &Src, desc: &Descriptor) -> Result<()> {
        let digest = digest_of(desc)?;
        let name = format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex());
        if self.written.contains(&name) {
            self.progress.exists(&digest);
            return Ok(());
        }
        let bar = self.progress.blob(&digest, desc.size());
        let at = self.tar.begin(&name)?;
        let dest = self.tar.dest.clone();
        let mut sink = EntrySink {
            tar: &mut self.tar,
            digester: Digester::new(digest.algorithm()),
            progress: Some(bar.clone()),
        };
        fetch(&self.handle, src, desc, &mut sink, &dest)?;
        let EntrySink { digester, .. } = sink;
        verify(digester, &digest, desc.size())?;
        self.tar.end(&name, at)?;
        self.written.insert(name);
        bar.done(Put::Copied);
        Ok(())
    }

    /// One image of a docker-archive: its layers (uncompressed), config and legacy
    /// folders; returns its `manifest.json` entry and its top layer's legacy id.
    fn docker_image(
        &mut self,
        image: &SaveImage,
        top: &ManifestBlob,
    ) -> Result<(ManifestItem, String)> {
        let info = crate::parse(top)?;
        let config_desc = info
            .config
            .as_ref()
            .ok_or_else(|| TransferError::NotAnImage {
                image: image.label.clone(),
            })?;
        let config = self.small(&image.src, config_desc)?;
        let config_digest = digest_of(config_desc)?;
        let v: serde_json::Value =
            serde_json::from_slice(&config).map_err(|e| TransferError::BadConfig {
                digest: config_digest.clone(),
                reason: format!("not JSON: {e}"),
            })?;
        let diff_ids: Vec<Digest> = v["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().and_then(|s| Digest::parse(s).ok()))
                    .collect()
            })
            .unwrap_or_default();
        if diff_ids.len() != info.layers.len() {
            return Err(TransferError::BadConfig {
                digest: config_digest,
                reason: format!(
                    "it lists {} diff_ids for {} layers",
                    diff_ids.len(),
                    info.layers.len()
                ),
            });
        }
        let mut layer_names = Vec::new();
        for (desc, diff_id) in info.layers.iter().zip(&diff_ids) {
            let name = format!("{}.tar", diff_id.hex());
            self.docker_layer(&image.src, desc, diff_id, &name)?;
            layer_names.push(name);
        }
        let config_name = format!("{}.json", config_digest.hex());
        if self.written.insert(config_name.clone()) {
            self.tar.bytes(&config_name, &config)?;
        }
        // the legacy folders, as containers/image writes them
        let mut chain: Option<Digest> = None;
        let mut last = String::new();
        for (i, diff_id) in diff_ids.iter().enumerate() {
            let next = match &chain {
                None => diff_id.clone(),
                Some(c) => {
                    Digest::sha256_of(format!("{} {}", c.as_str(), diff_id.as_str()).as_bytes())
                }
            };
            let mut layer_config = serde_json::Map::new();
            if !last.is_empty() {
                layer_config.insert("parent".into(), json!(last));
            }
            if i + 1 == diff_ids.len() {
                for attr in [
                    "architecture",
                    "config",
                    "container",
                    "container_config",
                    "created",
                    "docker_version",
                    "os",
                ] {
                    layer_config.insert(
                        attr.into(),
                        v.get(attr).cloned().unwrap_or(serde_json::Value::Null),
                    );
                }
            }
            // the id is the digest of this config with the chain id in it (and no id yet),
            // so that a layer repeated at another depth gets another folder
            layer_config.insert("layer_id".into(), json!(next.as_str()));
            let id = Digest::sha256_of(&go_json(&layer_config)).hex().to_owned();
            layer_config.remove("layer_id");
            layer_config.insert("id".into(), json!(id));
            if self.written.insert(format!("{id}/")) {
                self.tar.symlink(
                    &format!("{id}/layer.tar"),
                    &format!("../{}.tar", diff_id.hex()),
                )?;
                self.tar.bytes(&format!("{id}/VERSION"), b"1.0")?;
                self.tar
                    .bytes(&format!("{id}/json"), &go_json(&layer_config))?;
            }
            last = id;
            chain = Some(next);
        }
        let entry = ManifestItem {
            config: config_name,
            repo_tags: image.names.clone(),
            layers: layer_names,
        };
        Ok((entry, last))
    }

    /// A layer as an uncompressed tar named `name`, checked against `diff_id`.
    fn docker_layer(
        &mut self,
        src: &Src,
        desc: &Descriptor,
        diff_id: &Digest,
        name: &str,
    ) -> Result<()> {
        let digest = digest_of(desc)?;
        if self.written.contains(name) {
            self.progress.exists(&digest);
            return Ok(());
        }
        let mt = desc.media_type().to_string();
        let gzip = match mt.as_str() {
            media_type::OCI_LAYER_TAR | DOCKER_LAYER_TAR => false,
            media_type::OCI_LAYER_GZIP | media_type::DOCKER_LAYER_GZIP => true,
            other => {
                return Err(TransferError::UnsupportedLayer {
                    digest,
                    media_type: other.to_owned(),
                });
            }
        };
        let bar = self.progress.blob(&digest, desc.size());
        let at = self.tar.begin(name)?;
        let handle = self.handle.clone();
        let dest = self.tar.dest.clone();
        let uncompressed = EntrySink {
            tar: &mut self.tar,
            digester: Digester::new(diff_id.algorithm()),
            progress: None,
        };
        let digester = if gzip {
            // hash the compressed bytes too: they must be the descriptor's
            let mut sink = Tee {
                inner: flate2::write::GzDecoder::new(uncompressed),
                digester: Digester::new(digest.algorithm()),
                progress: bar.clone(),
            };
            fetch(&handle, src, desc, &mut sink, &dest)?;
            let Tee {
                inner, digester, ..
            } = sink;
            verify(digester, &digest, desc.size())?;
            let entry = inner.finish().map_err(|source| TransferError::Decompress {
                digest: digest.clone(),
                source,
            })?;
            entry.digester
        } else {
            let mut sink = EntrySink {
                progress: Some(bar.clone()),
                ..uncompressed
            };
            fetch(&handle, src, desc, &mut sink, &dest)?;
            let EntrySink { digester, .. } = sink;
            if digester.bytes_hashed() != desc.size() {
                return Err(TransferError::Verify {
                    digest,
                    source: berth_oci::DigestError::SizeMismatch {
                        expected: desc.size(),
                        actual: digester.bytes_hashed(),
                    },
                });
            }
            digester
        };
        digester
            .verify(diff_id, None)
            .map_err(|source| TransferError::DiffIdMismatch {
                layer: digest.clone(),
                diff_id: diff_id.clone(),
                source: Box::new(source),
            })?;
        self.tar.end(name, at)?;
        self.written.insert(name.to_owned());
        bar.done(Put::Copied);
        Ok(())
    }
}

/// Stream blob `desc` from `src` into `w`: read straight from the file where the source has
/// one on this machine (the store, a layout), in 1 MiB reads; else through the source's
/// async fetch, driven from this blocking thread.
fn fetch(
    handle: &tokio::runtime::Handle,
    src: &Src,
    desc: &Descriptor,
    w: &mut (impl Write + Unpin + Send),
    dest: &Path,
) -> Result<()> {
    let digest = digest_of(desc)?;
    let Some(path) = src.provider().local_path(&digest) else {
        return handle.block_on(src.provider().fetch(desc, &mut SyncSink(w)));
    };
    let read_err = |source| TransferError::Io {
        action: "read blob",
        path: path.clone(),
        source,
    };
    let mut f = std::fs::File::open(&path).map_err(read_err)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match io::Read::read(&mut f, &mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        w.write_all(buf.get(..n).unwrap_or_default())
            .map_err(|source| TransferError::WriteArchive {
                path: dest.to_owned(),
                entry: digest.to_string(),
                source,
            })?;
    }
}

/// JSON as Go's `encoding/json` writes a map: keys sorted (serde_json's map is), and `<`,
/// `>`, `&`, U+2028 and U+2029 escaped, so the legacy ids match podman's byte for byte.
fn go_json(map: &serde_json::Map<String, serde_json::Value>) -> Vec<u8> {
    let plain = serde_json::Value::Object(map.clone()).to_string();
    let mut out = String::with_capacity(plain.len());
    for c in plain.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.into_bytes()
}

/// Check what was hashed against the descriptor's digest and size.
fn verify(digester: Digester, digest: &Digest, size: u64) -> Result<()> {
    digester
        .verify(digest, Some(size))
        .map_err(|source| TransferError::Verify {
            digest: digest.clone(),
            source,
        })
}

/// Hashes and counts what passes through to `inner`.
struct Tee<W> {
    inner: W,
    digester: Digester,
    progress: Arc<dyn BlobProgress>,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let done = buf.get(..n).unwrap_or_default();
        self.digester.update(done);
        self.progress.inc(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
