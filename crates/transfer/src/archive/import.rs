//! `berth import`: a root filesystem (a tar archive, plain or gzip, or a directory) becomes
//! a one-layer image in the store, as `docker import` and `podman import` make one: a
//! gzip-compressed OCI layer, a config with its `rootfs.diff_ids`, one history entry and
//! the platform asked for (the host's by default).
//!
//! One pass: the tar stream is hashed (the diff_id), compressed and hashed again (the
//! layer digest) into an unnamed temporary file beside the store, whose digest is then
//! known, so the store's verifying writer takes it from there; nothing is held in memory.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use berth_oci::{Algorithm, Digest, Digester, Platform, media_type};
use berth_store::{ImageRecord, Store};
use serde_json::json;

use crate::{Result, TransferError};

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The history entry's comment (`--message`).
    pub message: Option<String>,
    /// The platform the image says it is for (default: this machine's).
    pub platform: Platform,
    /// The image config's `config` object (Entrypoint, Cmd, User, Env, Labels, …), as
    /// `docker import --change` sets it; empty: none.
    pub config: serde_json::Map<String, serde_json::Value>,
    /// The time the config and its history entry say (default: now); a fixed time
    /// (`SOURCE_DATE_EPOCH`) makes two imports of the same tar the same image.
    pub created: Option<SystemTime>,
}

impl Default for ImportOptions {
    fn default() -> ImportOptions {
        ImportOptions {
            message: None,
            platform: Platform::host(),
            config: serde_json::Map::new(),
            created: None,
        }
    }
}

/// What an import recorded.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The image's manifest.
    pub digest: Digest,
    /// Its config: the image id docker and podman show.
    pub config: Digest,
    /// The layer's diff_id (the digest of the uncompressed tar).
    pub diff_id: Digest,
    /// The name it was recorded under.
    pub name: String,
}

/// Hashes what passes through to `inner`.
struct Hashing<W> {
    inner: W,
    digester: Digester,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type Chain = Hashing<flate2::write::GzEncoder<Hashing<BufWriter<File>>>>;

fn src_err<'a>(
    source_path: &'a Path,
    action: &'static str,
) -> impl Fn(io::Error) -> TransferError + 'a {
    move |source| TransferError::Import {
        source_path: source_path.to_owned(),
        action,
        source,
    }
}

/// Import `source` (a tar file, plain or gzip-compressed, or a directory) into `store`
/// as the image `name` (a normalised reference). Blocking.
pub fn import_blocking(
    store: &Store,
    source: &Path,
    name: &str,
    opts: &ImportOptions,
) -> Result<Imported> {
    let lease = store
        .lease(&format!("import {} as {name}", source.display()))
        .map_err(|source| TransferError::Lease {
            source: Box::new(source),
        })?;
    let ingester = store.ingester(&lease);
    let temp = tempfile::tempfile_in(store.root()).map_err(|e| TransferError::Io {
        action: "create a temporary file in",
        path: store.root().to_owned(),
        source: e,
    })?;
    let mut chain: Chain = Hashing {
        inner: flate2::write::GzEncoder::new(
            Hashing {
                inner: BufWriter::with_capacity(1 << 20, temp),
                digester: Digester::new(Algorithm::Sha256),
            },
            flate2::Compression::default(),
        ),
        digester: Digester::new(Algorithm::Sha256),
    };
    let meta = std::fs::metadata(source).map_err(src_err(source, "read"))?;
    if meta.is_dir() {
        tar_dir(source, &mut chain)?;
    } else {
        copy_tar(source, &mut chain)?;
    }
    let Hashing { inner, digester } = chain;
    let diff_id = digester.finalize();
    let Hashing { inner, digester } = inner.finish().map_err(src_err(source, "compress"))?;
    let layer_size = digester.bytes_hashed();
    let layer_digest = digester.finalize();
    let mut temp = inner
        .into_inner()
        .map_err(|e| src_err(source, "compress")(e.into_error()))?;
    temp.rewind().map_err(src_err(source, "compress"))?;
    let mut w = ingester.writer(
        &format!("import-{}", layer_digest.hex()),
        &layer_digest,
        Some(layer_size),
    )?;
    w.write_from(&mut temp).map_err(|e| TransferError::Io {
        action: "write the imported layer into the store at",
        path: store.root().to_owned(),
        source: e,
    })?;
    w.commit()?;

    let now = berth_oci::timefmt::rfc3339_nano(opts.created.unwrap_or_else(SystemTime::now));
    let p = &opts.platform;
    let mut history = json!({
        "created": now,
        "created_by": format!("berth import {}", source.display()),
    });
    if let Some(m) = &opts.message {
        history["comment"] = json!(m);
    }
    let mut config = json!({
        "created": now,
        "architecture": p.architecture,
        "os": p.os,
        "config": opts.config,
        "rootfs": { "type": "layers", "diff_ids": [diff_id.as_str()] },
        "history": [history],
    });
    if let Some(v) = &p.variant {
        config["variant"] = json!(v);
    }
    let config = encode(&config)?;
    let config_digest = ingester.put_bytes(&config, None)?;
    let manifest = encode(&json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "config": {
            "mediaType": media_type::OCI_CONFIG,
            "digest": config_digest.as_str(),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": media_type::OCI_LAYER_GZIP,
            "digest": layer_digest.as_str(),
            "size": layer_size,
        }],
    }))?;
    let digest = ingester.put_bytes(&manifest, None)?;
    store.put_image(ImageRecord {
        name: name.to_owned(),
        digest: digest.clone(),
        media_type: media_type::OCI_MANIFEST.to_owned(),
        size: manifest.len() as u64,
        platform: Some(p.to_string()),
        pulled_at: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    })?;
    drop(lease);
    Ok(Imported {
        digest,
        config: config_digest,
        diff_id,
        name: name.to_owned(),
    })
}

fn encode(v: &serde_json::Value) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| TransferError::Io {
        action: "encode",
        path: PathBuf::from("the imported image's metadata"),
        source: io::Error::other(e),
    })
}

/// Copy the tar file `path` (gunzipped when it is gzip) into `w`, after checking that it
/// starts with a tar header.
fn copy_tar(path: &Path, w: &mut impl Write) -> Result<()> {
    let mut f = File::open(path).map_err(src_err(path, "open"))?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(src_err(path, "read"))?;
    f.rewind().map_err(src_err(path, "read"))?;
    let mut r: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(io::BufReader::new(f)))
    } else {
        Box::new(f)
    };
    let mut first = [0u8; 512];
    r.read_exact(&mut first)
        .map_err(|_| TransferError::NotATar {
            source_path: path.to_owned(),
        })?;
    let header = tar::Header::from_byte_slice(&first);
    let sum_ok = header.cksum().is_ok_and(|c| c == checksum(&first));
    if !sum_ok {
        return Err(TransferError::NotATar {
            source_path: path.to_owned(),
        });
    }
    w.write_all(&first).map_err(src_err(path, "compress"))?;
    io::copy(&mut r, w).map_err(src_err(path, "read"))?;
    Ok(())
}

/// A tar header's checksum: its bytes summed with the checksum field as spaces.
fn checksum(block: &[u8; 512]) -> u32 {
    block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum()
}

/// Write the tree under `root` as a tar into `w`: sorted, symlinks kept as links, the
/// second and later names of a file as hard links to the first, owners, modes, times and
/// extended attributes (`security.capability` among them, as PAX `SCHILY.xattr.` records,
/// which GNU tar, Go's archive/tar and the unpacker read) as they are; sockets skipped
/// (tar has no type for them).
fn tar_dir(root: &Path, w: &mut impl Write) -> Result<()> {
    let mut builder = tar::Builder::new(w);
    builder.follow_symlinks(false);
    let mut stack = vec![(root.to_owned(), String::new())];
    let mut links: std::collections::HashMap<(u64, u64), String> = std::collections::HashMap::new();
    while let Some((dir, prefix)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(src_err(&dir, "read the directory"))?
            .collect::<io::Result<_>>()
            .map_err(src_err(&dir, "read the directory"))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        // depth first, in name order: push in reverse
        let mut subdirs = Vec::new();
        for e in entries {
            let path = e.path();
            let name = e.file_name();
            let Some(name) = name.to_str() else {
                return Err(TransferError::Import {
                    source_path: path,
                    action: "name (the name is not UTF-8)",
                    source: io::Error::from(io::ErrorKind::InvalidData),
                });
            };
            let rel = format!("{prefix}{name}");
            let ft = e.file_type().map_err(src_err(&path, "read"))?;
            if ft.is_socket() {
                continue;
            }
            let meta = e.metadata().map_err(src_err(&path, "read"))?;
            // a second name of a file already written becomes a hard link to the first
            if ft.is_file() && meta.nlink() > 1 {
                match links.entry((meta.dev(), meta.ino())) {
                    std::collections::hash_map::Entry::Occupied(first) => {
                        let mut h = tar::Header::new_gnu();
                        h.set_metadata(&meta);
                        h.set_entry_type(tar::EntryType::Link);
                        h.set_size(0);
                        builder
                            .append_link(&mut h, &rel, first.get())
                            .map_err(src_err(&path, "archive"))?;
                        continue;
                    }
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(rel.clone());
                    }
                }
            }
            append_xattrs(&mut builder, &path, &rel)?;
            if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
                append_special(&mut builder, &path, &meta, &rel)?;
            } else {
                builder
                    .append_path_with_name(&path, &rel)
                    .map_err(src_err(&path, "archive"))?;
            }
            if ft.is_dir() {
                subdirs.push((path, format!("{rel}/")));
            }
        }
        // visit each subdirectory right after its siblings, in name order
        stack.extend(subdirs.into_iter().rev());
    }
    builder.into_inner().map_err(src_err(root, "archive"))?;
    Ok(())
}

/// A device node or fifo as entry `rel`. (tar 0.4's `append_path_with_name` names such an
/// entry by its source path instead of the name it is given, and refuses the absolute path.)
fn append_special(
    builder: &mut tar::Builder<impl Write>,
    path: &Path,
    meta: &std::fs::Metadata,
    rel: &str,
) -> Result<()> {
    let ft = meta.file_type();
    let mut h = tar::Header::new_gnu();
    h.set_metadata(meta);
    h.set_entry_type(if ft.is_char_device() {
        tar::EntryType::Char
    } else if ft.is_block_device() {
        tar::EntryType::Block
    } else {
        tar::EntryType::Fifo
    });
    h.set_size(0);
    let dev = meta.rdev();
    h.set_device_major(rustix::fs::major(dev))
        .and_then(|()| h.set_device_minor(rustix::fs::minor(dev)))
        .map_err(src_err(path, "archive"))?;
    builder
        .append_data(&mut h, rel, io::empty())
        .map_err(src_err(path, "archive"))
}

/// The PAX header carrying the extended attributes of `path` (none: nothing is written),
/// placed before its entry `rel`.
fn append_xattrs(builder: &mut tar::Builder<impl Write>, path: &Path, rel: &str) -> Result<()> {
    let err = src_err(path, "read the extended attributes of");
    let mut names = vec![0u8; 64 << 10];
    let n = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => n,
        // a filesystem without xattrs has none to keep
        Err(e) if e == rustix::io::Errno::NOTSUP => return Ok(()),
        Err(e) => return Err(err(e.into())),
    };
    let mut records = Vec::new();
    for name in names.get(..n).unwrap_or_default().split(|b| *b == 0) {
        if name.is_empty() {
            continue;
        }
        let mut value = vec![0u8; 64 << 10];
        let len = match rustix::fs::lgetxattr(path, name, &mut value[..]) {
            Ok(len) => len,
            // removed meanwhile
            Err(e) if e == rustix::io::Errno::NODATA => continue,
            Err(e) => return Err(err(e.into())),
        };
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(name);
        pax_record(&mut records, &key, value.get(..len).unwrap_or_default());
    }
    if records.is_empty() {
        return Ok(());
    }
    let mut h = tar::Header::new_ustar();
    let pax_name = format!("PaxHeaders/{}", rel.rsplit('/').next().unwrap_or(rel));
    h.set_path(&pax_name).map_err(src_err(path, "archive"))?;
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_mode(0o644);
    h.set_size(records.len() as u64);
    h.set_cksum();
    builder
        .append(&h, &records[..])
        .map_err(src_err(path, "archive"))?;
    Ok(())
}

/// One PAX record, `LEN KEY=VALUE\n`, where LEN counts the whole record, itself included.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}
