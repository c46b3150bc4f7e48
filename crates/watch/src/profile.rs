//! The expected behaviour of an image: the executables its layers ship and what its config
//! declares (entrypoint, cmd, exposed ports, user, working directory).
//!
//! [`Profile::from_layers`] reads an image's layers as `berth-sbom` does (each decompressed
//! and hashed through [`berth_image::unpack::decompress`], its diff ID checked, streaming,
//! never unpacked to disk) and keeps, of every regular file that is executable (any x bit,
//! or an ELF or `#!` file), its path, mode, size and SHA-256. Whiteouts (image-spec
//! "layer.md", "Whiteouts") are applied as each layer ends: `.wh.NAME` deletes `NAME` and
//! everything under it from the lower layers, `.wh..wh..opq` everything the lower layers put
//! in its directory, and any entry of a later layer replaces what the lower layers had at its
//! path. A hardlink is its target's content at its own path.
//!
//! [`Profile::from_dirs`] gives the same view of a container whose image berth does not know
//! (a runc or crun container under containerd or podman): its overlay lower directories,
//! upper-most first, with overlayfs' own whiteouts (a 0/0 character device, or a file with
//! the `trusted.overlay.whiteout` xattr) and opaque directories (`trusted.overlay.opaque` =
//! `y`); the `user.overlay.*` names of a `userxattr` mount count the same.
//!
//! The set of content hashes is what decides drift: a copy of an image binary under another
//! name has the same hash, and is not drift. A profile serialises to JSON (schema
//! [`PROFILE_SCHEMA`]) so that it can be cached per image config digest.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_image::squash::{LayerEdits, clean};
use berth_image::unpack::{Limits, UnpackError, decompress};
use berth_oci::{Algorithm, Digest, Digester};
use serde::{Deserialize, Serialize};

/// The `schema` of a serialised [`Profile`].
pub const PROFILE_SCHEMA: &str = "berth.watch.profile/v1";

/// One executable file of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executable {
    /// The permission bits (`0o7777`), as the layer or the directory has them.
    pub mode: u32,
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: Digest,
    /// The diff ID of the layer that holds this version (`None` from directories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<Digest>,
}

/// A port the image config declares (`ExposedPorts`: `"80/tcp"`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Port {
    pub port: u16,
    /// `tcp` (the default when the key names none), `udp` or `sctp`.
    pub protocol: String,
}

/// What the image config says the container runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFacts {
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub exposed_ports: Vec<Port>,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub working_dir: String,
}

/// An image config (image-spec "config.md"), the fields a profile needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub facts: ImageFacts,
    /// `rootfs.diff_ids`, bottom layer first.
    pub diff_ids: Vec<Digest>,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    config: Option<ConfigSection>,
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Deserialize)]
struct ConfigSection {
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "ExposedPorts", default)]
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(rename = "User", default)]
    user: Option<String>,
    #[serde(rename = "WorkingDir", default)]
    working_dir: Option<String>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

impl ImageConfig {
    /// Parse an image config blob.
    pub fn from_json(data: &[u8]) -> Result<ImageConfig, ProfileError> {
        let file: ConfigFile =
            serde_json::from_slice(data).map_err(|source| ProfileError::Config {
                source: Box::new(source),
            })?;
        let mut facts = ImageFacts::default();
        if let Some(c) = file.config {
            facts.entrypoint = c.entrypoint.unwrap_or_default();
            facts.cmd = c.cmd.unwrap_or_default();
            facts.user = c.user.unwrap_or_default();
            facts.working_dir = c.working_dir.unwrap_or_default();
            for key in c.exposed_ports.unwrap_or_default().into_keys() {
                facts.exposed_ports.push(parse_port(&key)?);
            }
            facts.exposed_ports.sort();
        }
        Ok(ImageConfig {
            facts,
            diff_ids: file.rootfs.map(|r| r.diff_ids).unwrap_or_default(),
        })
    }
}

/// `"80/tcp"`, `"53/udp"`, `"8080"` (tcp).
pub(crate) fn parse_port(key: &str) -> Result<Port, ProfileError> {
    let (port, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
    let bad = || ProfileError::Port {
        key: key.to_owned(),
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    let protocol = protocol.to_ascii_lowercase();
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    Ok(Port { port, protocol })
}

/// One layer of an image: its blob, its media type and its diff ID, checked as it is read.
#[derive(Debug)]
pub struct LayerBlob<R> {
    pub reader: R,
    pub media_type: String,
    pub diff_id: Digest,
}

/// Why a profile could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    #[error("failed to parse the image config")]
    Config {
        #[source]
        source: Box<serde_json::Error>,
    },
    #[error(
        "the image config's ExposedPorts has the key {key:?}, which is not PORT[/tcp|udp|sctp]"
    )]
    Port { key: String },
    #[error("failed to read layer {index} ({diff_id})")]
    Layer {
        index: usize,
        diff_id: Digest,
        #[source]
        source: UnpackError,
    },
    #[error(
        "layer {index} has diff ID {actual}, the image config says {expected}; the blob does not match the image"
    )]
    DiffId {
        index: usize,
        expected: Digest,
        actual: Digest,
    },
    #[error("layer {index} ({diff_id}) has more than {limit} entries")]
    TooManyEntries {
        index: usize,
        diff_id: Digest,
        limit: u64,
    },
    #[error("failed to read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to parse the profile (schema {PROFILE_SCHEMA})")]
    Parse {
        #[source]
        source: Box<serde_json::Error>,
    },
    #[error(
        "the profile has schema {found:?}, this berth reads {PROFILE_SCHEMA}; hint: delete the cached profile to have it made again"
    )]
    Schema { found: String },
}

impl ProfileError {
    /// The class of the failure.
    pub fn kind(&self) -> berth_errdefs::ErrorKind {
        use berth_errdefs::ErrorKind;
        match self {
            ProfileError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            ProfileError::Io { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// The expected behaviour of an image (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// [`PROFILE_SCHEMA`].
    pub schema: String,
    /// The layers' diff IDs, bottom first (empty for a profile of directories).
    #[serde(default)]
    pub layers: Vec<Digest>,
    /// The directories read by [`Profile::from_dirs`], upper-most first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lower_dirs: Vec<PathBuf>,
    #[serde(default)]
    pub config: ImageFacts,
    /// Absolute path → the executable there.
    pub executables: BTreeMap<String, Executable>,
    /// The image's signed SBOM, when the container's engine kept one: the executables it
    /// lists are expected too ([`Profile::with_sbom`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<SbomFiles>,
    /// Content hash → the first path (in order) holding it; rebuilt on load.
    #[serde(skip)]
    by_hash: HashMap<Digest, String>,
    /// The same of the SBOM's files.
    #[serde(skip)]
    by_sbom_hash: HashMap<Digest, String>,
}

/// The executable files a signed SBOM of the image lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SbomFiles {
    /// The SBOM referrer's manifest digest.
    pub manifest: String,
    /// The subject of the identity whose signature the trust policy accepted.
    pub signer: String,
    /// Absolute path → SHA-256.
    pub files: BTreeMap<String, Digest>,
    /// Paths where the image's layers hold an executable whose content is not the one the
    /// SBOM lists there: the SBOM is not of this build. Such a path is expected by what
    /// the layers hold, as without an SBOM; the mismatch is logged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mismatched: Vec<String>,
}

impl Profile {
    fn new(
        layers: Vec<Digest>,
        lower_dirs: Vec<PathBuf>,
        config: ImageFacts,
        executables: BTreeMap<String, Executable>,
    ) -> Profile {
        let mut p = Profile {
            schema: PROFILE_SCHEMA.to_owned(),
            layers,
            lower_dirs,
            config,
            executables,
            sbom: None,
            by_hash: HashMap::new(),
            by_sbom_hash: HashMap::new(),
        };
        p.index();
        p
    }

    fn index(&mut self) {
        self.by_hash.clear();
        for (path, e) in &self.executables {
            self.by_hash
                .entry(e.sha256.clone())
                .or_insert_with(|| path.clone());
        }
        self.by_sbom_hash.clear();
        for (path, sha256) in self.sbom.iter().flat_map(|s| &s.files) {
            self.by_sbom_hash
                .entry(sha256.clone())
                .or_insert_with(|| path.clone());
        }
    }

    /// This profile with the executable files of the image's signed SBOM (`files`: path →
    /// SHA-256) also expected: an exec whose content one of them has is not drift. The paths
    /// where the layers hold other content are recorded in [`SbomFiles::mismatched`].
    pub fn with_sbom(
        mut self,
        manifest: String,
        signer: String,
        files: BTreeMap<String, Digest>,
    ) -> Profile {
        let mismatched = files
            .iter()
            .filter(|(path, sha256)| {
                self.executables
                    .get(path.as_str())
                    .is_some_and(|e| &e.sha256 != *sha256)
            })
            .map(|(path, _)| path.clone())
            .collect();
        self.sbom = Some(SbomFiles {
            manifest,
            signer,
            files,
            mismatched,
        });
        self.index();
        self
    }

    /// The path of an executable the image's signed SBOM lists with this content, if any.
    pub fn find_sbom_hash(&self, sha256: &Digest) -> Option<&str> {
        self.by_sbom_hash.get(sha256).map(String::as_str)
    }

    /// The profile of an image from its config and its layers (bottom first); each
    /// layer's diff ID is checked. See the module documentation.
    pub fn from_layers<R: Read>(
        config: &ImageFacts,
        layers: impl IntoIterator<Item = LayerBlob<R>>,
        limits: &Limits,
    ) -> Result<Profile, ProfileError> {
        let mut view = BTreeMap::new();
        let mut ids = Vec::new();
        for (index, layer) in layers.into_iter().enumerate() {
            let diff_id = layer.diff_id.clone();
            let span = tracing::debug_span!("profile_layer", index, diff_id = %diff_id);
            let _enter = span.enter();
            let changes = read_layer(index, layer, limits, &view)?;
            changes.apply(&mut view);
            ids.push(diff_id);
        }
        Ok(Profile::new(ids, Vec::new(), config.clone(), view))
    }

    /// The profile of the overlay lower directories `lower_dirs`, upper-most first (as
    /// overlayfs' `lowerdir=` lists them), with `config` when known (else default). See the
    /// module documentation.
    pub fn from_dirs(lower_dirs: &[PathBuf], config: ImageFacts) -> Result<Profile, ProfileError> {
        let mut view = BTreeMap::new();
        for dir in lower_dirs.iter().rev() {
            let changes = read_dir_layer(dir)?;
            changes.apply(&mut view);
        }
        Ok(Profile::new(Vec::new(), lower_dirs.to_vec(), config, view))
    }

    /// The path of an image executable with this content, if any (the first in path order).
    pub fn find_hash(&self, sha256: &Digest) -> Option<&str> {
        self.by_hash.get(sha256).map(String::as_str)
    }

    /// The executable at `path`, if the image ships one there.
    pub fn executable(&self, path: &str) -> Option<&Executable> {
        self.executables.get(path)
    }

    /// The profile as JSON (for a cache keyed by the image config digest).
    pub fn to_json(&self) -> Vec<u8> {
        // a map of plain strings and numbers: serialisation cannot fail
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A profile read back from [`Profile::to_json`]'s output.
    pub fn from_json(data: &[u8]) -> Result<Profile, ProfileError> {
        let mut p: Profile =
            serde_json::from_slice(data).map_err(|source| ProfileError::Parse {
                source: Box::new(source),
            })?;
        if p.schema != PROFILE_SCHEMA {
            return Err(ProfileError::Schema { found: p.schema });
        }
        p.index();
        Ok(p)
    }
}

const ELF_MAGIC: &[u8] = b"\x7fELF";
const SHEBANG: &[u8] = b"#!";

/// Whether a file with `mode` whose content starts with `head` is an executable.
fn is_executable(mode: u32, head: &[u8]) -> bool {
    mode & 0o111 != 0 || head.starts_with(ELF_MAGIC) || head.starts_with(SHEBANG)
}

/// Read `r` (whose first bytes are `head`, already read) through SHA-256.
fn hash_rest(head: &[u8], r: &mut dyn Read) -> io::Result<Digest> {
    let mut d = Digester::new(Algorithm::Sha256);
    d.write_all(head)?;
    io::copy(r, &mut d)?;
    Ok(d.finalize())
}

/// The first 4 bytes of `r` (fewer for a shorter file).
fn read_head(r: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(4);
    r.take(4).read_to_end(&mut head)?;
    Ok(head)
}

/// One layer's changes, applied to the lower view when the layer ends.
#[derive(Default)]
struct LayerChanges {
    files: BTreeMap<String, Executable>,
    edits: LayerEdits,
}

impl LayerChanges {
    fn apply(self, view: &mut BTreeMap<String, Executable>) {
        self.edits.apply(view);
        view.extend(self.files);
    }
}

fn read_layer<R: Read>(
    index: usize,
    layer: LayerBlob<R>,
    limits: &Limits,
    lower: &BTreeMap<String, Executable>,
) -> Result<LayerChanges, ProfileError> {
    let diff_id = layer.diff_id;
    let layer_err = |source| ProfileError::Layer {
        index,
        diff_id: diff_id.clone(),
        source,
    };
    let tar_err = |at_entry: Option<String>, source| {
        layer_err(UnpackError::Read {
            compression: "tar",
            at_entry,
            source,
        })
    };
    let stream = decompress(layer.reader, &layer.media_type, *limits).map_err(layer_err)?;
    let meter = stream.meter();
    let mut changes = LayerChanges::default();
    let mut archive = tar::Archive::new(stream);
    let mut last: Option<String> = None;
    let mut count: u64 = 0;
    {
        meter.headers();
        let entries = archive.entries().map_err(|e| tar_err(None, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| tar_err(last.clone(), e))?;
            meter.data();
            count += 1;
            if count > limits.max_entries {
                return Err(ProfileError::TooManyEntries {
                    index,
                    diff_id: diff_id.clone(),
                    limit: limits.max_entries,
                });
            }
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            last = Some(raw.clone());
            'entry: {
                let Some(path) = clean(&raw) else {
                    break 'entry;
                };
                if changes.edits.tar_whiteout(&path) {
                    break 'entry;
                }
                let kind = entry.header().entry_type();
                changes.edits.touch(path.clone(), kind.is_dir());
                if kind.is_hard_link() {
                    let target = entry
                        .link_name_bytes()
                        .and_then(|t| clean(&String::from_utf8_lossy(&t)));
                    if let Some(target) = target {
                        let found = changes.files.get(&target).or_else(|| lower.get(&target));
                        if let Some(found) = found.cloned() {
                            changes.files.insert(path, found);
                        }
                    }
                } else if kind.is_file() || kind == tar::EntryType::Continuous {
                    let mode = entry
                        .header()
                        .mode()
                        .map_err(|e| tar_err(last.clone(), e))?
                        & 0o7777;
                    let size = entry.size();
                    let head = read_head(&mut entry).map_err(|e| tar_err(last.clone(), e))?;
                    if is_executable(mode, &head) {
                        let sha256 =
                            hash_rest(&head, &mut entry).map_err(|e| tar_err(last.clone(), e))?;
                        changes.files.insert(
                            path,
                            Executable {
                                mode,
                                size,
                                sha256,
                                layer: Some(diff_id.clone()),
                            },
                        );
                    }
                }
            }
            // the rest of the entry's data is data, not headers
            io::copy(&mut entry, &mut io::sink()).map_err(|e| tar_err(last.clone(), e))?;
            meter.headers();
        }
    }
    let stream = archive.into_inner();
    let actual = stream.finish().map_err(layer_err)?;
    if actual != diff_id {
        return Err(ProfileError::DiffId {
            index,
            expected: diff_id,
            actual,
        });
    }
    Ok(changes)
}

/// overlayfs' xattr prefixes: `trusted.` (a mount as root) and `user.` (`userxattr`).
const OVERLAY_XATTR_PREFIXES: [&str; 2] = ["trusted.overlay.", "user.overlay."];

/// The value of the overlay xattr `name` (`opaque`, `whiteout`) on `path`, under either
/// prefix; `None` when neither is set (or xattrs are unsupported).
fn overlay_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    for prefix in OVERLAY_XATTR_PREFIXES {
        let mut buf = [0u8; 16];
        if let Ok(n) = rustix::fs::lgetxattr(path, format!("{prefix}{name}").as_str(), &mut buf) {
            return Some(buf[..n.min(buf.len())].to_vec());
        }
    }
    None
}

/// One overlay lower directory as a layer's changes.
fn read_dir_layer(root: &Path) -> Result<LayerChanges, ProfileError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ProfileError::Io { path, source }
    };
    let mut changes = LayerChanges::default();
    // the root itself may be opaque only in an upper directory, which this is not
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_owned(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let mut entries: Vec<fs::DirEntry> = fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .collect::<Result<_, _>>()
            .map_err(io_err(&dir))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let path = format!("{rel}/{}", name.to_string_lossy());
            let full = e.path();
            let meta = fs::symlink_metadata(&full).map_err(io_err(&full))?;
            let ty = meta.file_type();
            if ty.is_char_device() && meta.rdev() == 0 {
                changes.edits.whiteout(path);
                continue;
            }
            if ty.is_dir() {
                if overlay_xattr(&full, "opaque").is_some_and(|v| v.first() == Some(&b'y')) {
                    changes.edits.opaque(path.clone());
                }
                changes.edits.touch(path.clone(), true);
                stack.push((full, path));
                continue;
            }
            if ty.is_file() && meta.len() == 0 && overlay_xattr(&full, "whiteout").is_some() {
                changes.edits.whiteout(path);
                continue;
            }
            changes.edits.touch(path.clone(), false);
            if !ty.is_file() {
                continue;
            }
            let mode = meta.mode() & 0o7777;
            // O_NONBLOCK: should the file be swapped for a FIFO, the open does not hang
            let mut f = rustix::fs::open(
                &full,
                rustix::fs::OFlags::RDONLY
                    | rustix::fs::OFlags::CLOEXEC
                    | rustix::fs::OFlags::NONBLOCK,
                rustix::fs::Mode::empty(),
            )
            .map(fs::File::from)
            .map_err(|e| io_err(&full)(e.into()))?;
            let head = read_head(&mut f).map_err(io_err(&full))?;
            if is_executable(mode, &head) {
                let sha256 = hash_rest(&head, &mut f).map_err(io_err(&full))?;
                changes.files.insert(
                    path,
                    Executable {
                        mode,
                        size: meta.len(),
                        sha256,
                        layer: None,
                    },
                );
            }
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_x_bits_elf_or_shebang() {
        assert!(is_executable(0o755, b""));
        assert!(is_executable(0o100, b"abc"));
        assert!(is_executable(0o644, b"\x7fELF"));
        assert!(is_executable(0o600, b"#!/b"));
        assert!(!is_executable(0o644, b"\x7fEL"));
        assert!(!is_executable(0o644, b"hello"));
    }

    #[test]
    fn exposed_ports_parse_with_tcp_as_the_default() {
        assert_eq!(
            parse_port("80").unwrap(),
            Port {
                port: 80,
                protocol: "tcp".into()
            }
        );
        assert_eq!(parse_port("53/UDP").unwrap().protocol, "udp");
        assert!(matches!(
            parse_port("http/tcp"),
            Err(ProfileError::Port { .. })
        ));
        assert!(matches!(
            parse_port("80/icmp"),
            Err(ProfileError::Port { .. })
        ));
        assert!(matches!(
            parse_port("70000"),
            Err(ProfileError::Port { .. })
        ));
    }
}
