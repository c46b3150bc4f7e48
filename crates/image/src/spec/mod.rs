//! Image config → runtime config, locked down by default.
//!
//! [`build_spec`] turns an image's config ([`ImageConfig`], the OCI image-spec config and
//! Docker's, which share the shape) and the `berth run` flags ([`RunOptions`], with docker's
//! meanings) into a runtime [`Spec`], built on `berth-runtime-spec`'s locked-down default
//! ([`defaults::spec`]): Docker's seccomp profile, `noNewPrivileges`, a capability set
//! smaller than podman's ([`default_capabilities`]), Docker's masked and read-only paths,
//! every device denied, and a user namespace when the caller gives an id range
//! ([`idrange::pick_range`]). Every flag that opens something up is reported in
//! [`SpecNotes::opened`], for the CLI to print.

pub mod idrange;
pub mod resources;
pub mod user;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use berth_runtime_spec::defaults::{self, CAPABILITIES};
use berth_runtime_spec::{
    Capabilities, Capability, LinuxDeviceCgroup, LinuxIdMapping, LinuxNamespace,
    LinuxNamespaceType, LinuxSeccomp, LinuxSeccompAction, Mount, Root, Spec,
};
use serde::Deserialize;

pub use idrange::{IdRange, pick_range, subid_ranges};
pub use resources::{DEFAULT_PIDS_LIMIT, ResourceFlags, parse_bytes};
pub use user::{ResolvedUser, resolve_user};

/// docker's default `PATH` (moby `oci.DefaultPathEnv`), used when the image sets none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// podman 4's default capabilities (containers.conf), for comparison: berth's default is a
/// subset of these ([`default_capabilities`]).
pub const PODMAN_CAPABILITIES: [Capability; 11] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::NetBindService,
    Capability::Setfcap,
    Capability::Setgid,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysChroot,
];

/// berth's default capabilities: runtime-spec's locked-down set ([`CAPABILITIES`]) less
/// those podman's default does not grant either (CAP_AUDIT_WRITE): CAP_KILL and
/// CAP_NET_BIND_SERVICE. See docs/security.md.
pub fn default_capabilities() -> Capabilities {
    CAPABILITIES
        .into_iter()
        .filter(|c| PODMAN_CAPABILITIES.contains(c))
        .collect()
}

/// Syscalls the default profile denies beyond the Docker profile `defaults::seccomp` is
/// (moby 20.10's, which allows io_uring): moby 25 and podman's profile deny them too. io_uring
/// runs I/O the filter never sees (its operations are not system calls), and has been a
/// steady source of kernel privilege escalations.
pub const EXTRA_DENIED_SYSCALLS: [&str; 3] =
    ["io_uring_enter", "io_uring_register", "io_uring_setup"];

/// Paths masked beyond Docker's (`defaults::MASKED_PATHS`): podman's additions.
/// `/sys/dev/block` names every block device of the host with its major:minor.
pub const EXTRA_MASKED_PATHS: [&str; 2] = ["/sys/dev/block", "/sys/fs/selinux"];

/// Mount flags `/proc` gets, as docker and podman mount it (runtime-spec's example and
/// `defaults::mounts` give none).
pub const PROC_FLAGS: [&str; 3] = ["nosuid", "noexec", "nodev"];

/// Docker's default seccomp profile less [`EXTRA_DENIED_SYSCALLS`] (left to the default
/// action, ERRNO(EPERM)).
pub fn default_seccomp() -> LinuxSeccomp {
    let mut profile = defaults::seccomp::profile();
    for rule in &mut profile.syscalls.iter_mut().flatten() {
        if rule.action == LinuxSeccompAction::ScmpActAllow {
            rule.names
                .retain(|n| !EXTRA_DENIED_SYSCALLS.contains(&n.as_str()));
        }
    }
    if let Some(rules) = profile.syscalls.as_mut() {
        rules.retain(|r| !r.names.is_empty());
    }
    profile
}

/// What went wrong building a config.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("image config is not valid JSON of the OCI/Docker image config shape: {0}")]
    Config(#[source] serde_json::Error),
    #[error(
        "no command specified: the image has no Entrypoint or Cmd; give a command after the image name"
    )]
    NoCommand,
    #[error(
        "unable to find user {user:?}: no matching entry in image {image}'s /etc/passwd; give a numeric uid[:gid] or a user the image defines"
    )]
    NoSuchUser { user: String, image: String },
    #[error(
        "unable to find group {group:?}: no matching entry in image {image}'s /etc/group; give a numeric gid or a group the image defines"
    )]
    NoSuchGroup { group: String, image: String },
    #[error("reading {file} inside the root filesystem {root}: {source}")]
    UserDb {
        file: String,
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{flag} {path}: {source}: give an existing device node")]
    Device {
        flag: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// `config` of an image config: what a container of the image runs by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RootFs {
    #[serde(default, rename = "type")]
    pub typ: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One `history` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct History {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub empty_layer: Option<bool>,
}

/// An image config (OCI image-spec `application/vnd.oci.image.config.v1+json`, or Docker's
/// `container.image.v1+json`: the same fields). Unknown fields are ignored, `null`s read as
/// absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default, rename = "os.version")]
    pub os_version: Option<String>,
    #[serde(default, rename = "os.features")]
    pub os_features: Option<Vec<String>>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: Option<RootFs>,
    #[serde(default)]
    pub history: Option<Vec<History>>,
}

impl ImageConfig {
    /// Parse a config blob.
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, SpecError> {
        serde_json::from_slice(bytes).map_err(SpecError::Config)
    }

    fn container(&self) -> ContainerConfig {
        self.config.clone().unwrap_or_default()
    }
}

/// The container's network namespace as the spec states it (CNI networks — `run`'s default
/// bridge network among them — are attached by the engine to a pinned namespace the
/// container joins by path).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Network {
    /// A new network namespace with only loopback (`none`).
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// Join the namespace at this path (`ns:PATH`).
    Path(PathBuf),
}

/// `--userns`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Userns {
    /// A user namespace mapping container 0.. onto [`RunOptions::id_range`] (the default);
    /// without a range, no user namespace (reported).
    #[default]
    Auto,
    /// The host's user namespace: container root is host root (reported).
    Host,
}

/// `berth run`'s flags, with docker's meanings. Sizes are bytes ([`parse_bytes`]).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The image's name, for messages.
    pub image: String,
    /// The arguments after the image name: replace the image's Cmd.
    pub args: Vec<String>,
    /// `--entrypoint`: replaces the image's Entrypoint and drops its Cmd; `""` clears it.
    pub entrypoint: Option<String>,
    /// `-e KEY=VALUE` (or `KEY`: taken from [`host_env`](Self::host_env), skipped if unset).
    pub env: Vec<String>,
    /// The caller's environment, for `-e KEY` and env-file lines without a value (the CLI
    /// passes its own, as docker's does).
    pub host_env: BTreeMap<String, String>,
    /// `--env-file`: read before `-e`, which wins.
    pub env_files: Vec<PathBuf>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u user[:group]`, names or numbers.
    pub user: Option<String>,
    /// `--hostname` (the engine passes the container id when none is given).
    pub hostname: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `--read-only`.
    pub read_only: bool,
    /// `--tmpfs PATH[:OPTIONS]`.
    pub tmpfs: Vec<String>,
    /// `-v SRC:DST[:ro|rw]` (bind mounts; `-v DST` alone is an anonymous volume).
    pub volumes: Vec<String>,
    /// `--memory`, `--cpus`, `--pids-limit`, … (the cgroup limits).
    pub resources: ResourceFlags,
    /// `--cap-add` (`ALL` too).
    pub cap_add: Vec<String>,
    /// `--cap-drop` (`ALL` too).
    pub cap_drop: Vec<String>,
    /// `--security-opt seccomp=PROFILE.json|unconfined`, `no-new-privileges[=true|false]`.
    pub security_opt: Vec<String>,
    pub privileged: bool,
    /// `--init`: recorded; the engine provides the init.
    pub init: bool,
    pub stop_signal: Option<String>,
    pub network: Network,
    /// The network namespace `network` names was made for the container, owned by the user
    /// namespace the container runs in (berth's CNI and pasta networks): sysfs can be
    /// mounted there — the container's own interfaces under `/sys/class/net` — instead of
    /// the host's bound read-only.
    pub network_owned: bool,
    pub userns: Userns,
    /// The host ids container ids 0.. map to under `--userns=auto` (the engine allocates it
    /// with [`pick_range`]).
    pub id_range: Option<IdRange>,
    /// berth runs as root of an ordinary user's user namespace (rootless): the container
    /// shares it (its root is that user, not host root), sysfs is the host's bound read-only
    /// when the network namespace is not the container's own, and no default pids limit is
    /// set (the user may have no cgroup; limits asked for are passed on to the runtime).
    pub rootless: bool,
}

/// What the CLI prints and the engine needs besides the spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecNotes {
    /// One line per thing opened up beyond the locked-down default (`--privileged: …`).
    pub opened: Vec<String>,
    /// The image's `Volumes` not covered by a `-v` or `--tmpfs`: the engine creates an
    /// anonymous volume for each and bind-mounts it there.
    pub anonymous_volumes: Vec<PathBuf>,
    /// The named volumes of `-v NAME:DST`: the engine creates, fills and binds each.
    pub named_volumes: Vec<NamedVolume>,
    /// The signal `stop` sends (`SIGTERM` unless the image or `--stop-signal` says).
    pub stop_signal: String,
    pub labels: BTreeMap<String, String>,
    /// `ExposedPorts`, recorded (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// `--init` was asked for.
    pub init: bool,
    /// The image's labels not passed to the runtime as annotations: ones a runtime acts on.
    pub ignored_labels: Vec<String>,
}

const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV",
    "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
    "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS",
];

/// A stop signal as docker takes one (`TERM`, `SIGTERM`, `15`, `SIGRTMIN+3`), normalized to
/// `SIGNAME` or the number.
pub fn parse_signal(s: &str) -> Result<String, SpecError> {
    let bad = || {
        SpecError::Invalid(format!(
            "invalid signal: {s}: give a name (SIGTERM) or a number (15)"
        ))
    };
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n).then(|| n.to_string()).ok_or_else(bad);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let rt = ["RTMIN+", "RTMAX-"].iter().any(|p| {
        name.strip_prefix(p)
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| n <= 30)
    });
    if SIGNALS.contains(&name) || rt || name == "RTMIN" || name == "RTMAX" {
        Ok(format!("SIG{name}"))
    } else {
        Err(bad())
    }
}

/// Set or replace `KEY=VALUE` entries of `env` by key, keeping order (docker's
/// `ReplaceOrAppendEnvValues`).
fn merge_env(env: &mut Vec<String>, overrides: impl IntoIterator<Item = String>) {
    for kv in overrides {
        let key = kv
            .split_once('=')
            .map_or(kv.as_str(), |(k, _)| k)
            .to_owned();
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(slot) => *slot = kv,
            None => env.push(kv),
        }
    }
}

/// One `-e` or env-file entry as docker reads it: `KEY=VALUE`, or `KEY` from the caller's
/// environment (dropped when unset).
fn env_entry(
    raw: &str,
    origin: &str,
    host_env: &BTreeMap<String, String>,
) -> Result<Option<String>, SpecError> {
    let key = raw.split_once('=').map_or(raw, |(k, _)| k);
    if key.is_empty() {
        return Err(SpecError::Invalid(format!(
            "{origin}: invalid environment variable: {raw}"
        )));
    }
    if key.contains(char::is_whitespace) {
        return Err(SpecError::Invalid(format!(
            "{origin}: variable '{key}' contains whitespaces"
        )));
    }
    if raw.contains('=') {
        return Ok(Some(raw.to_owned()));
    }
    Ok(host_env.get(key).map(|v| format!("{key}={v}")))
}

/// The environment: docker's PATH, HOSTNAME and (with `-t`) TERM, then the image's Env, then
/// the env files, then `-e`; a later entry replaces an earlier one with the same key.
fn environment(
    image_env: &[String],
    hostname: &str,
    opts: &RunOptions,
) -> Result<Vec<String>, SpecError> {
    let mut env = vec![DEFAULT_PATH.to_owned(), format!("HOSTNAME={hostname}")];
    if opts.tty {
        env.push("TERM=xterm".to_owned());
    }
    merge_env(&mut env, image_env.iter().cloned());
    let mut user = Vec::new();
    for file in &opts.env_files {
        let mut text = String::new();
        std::fs::File::open(file)
            .and_then(|f| f.take(16 << 20).read_to_string(&mut text))
            .map_err(|source| SpecError::Read {
                what: "--env-file",
                path: file.clone(),
                source,
            })?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            user.extend(env_entry(
                line,
                &format!("--env-file {}", file.display()),
                &opts.host_env,
            )?);
        }
    }
    for e in &opts.env {
        user.extend(env_entry(e, "-e", &opts.host_env)?);
    }
    merge_env(&mut env, user);
    Ok(env)
}

/// The process's argv by docker's rules: `--entrypoint` replaces the image's Entrypoint and
/// drops its Cmd (`""` clears it); arguments replace the Cmd.
fn process_args(cfg: &ContainerConfig, opts: &RunOptions) -> Result<Vec<String>, SpecError> {
    let (entrypoint, cmd) = match &opts.entrypoint {
        Some(e) => (
            if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            },
            opts.args.clone(),
        ),
        None => (
            cfg.entrypoint.clone().unwrap_or_default(),
            if opts.args.is_empty() {
                cfg.cmd.clone().unwrap_or_default()
            } else {
                opts.args.clone()
            },
        ),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

fn cap_name(s: &str) -> Result<Capability, SpecError> {
    Capability::parse(s).ok_or_else(|| {
        SpecError::Invalid(format!(
            "unknown capability: {s:?}: see capabilities(7) (CAP_NET_ADMIN, NET_ADMIN, ALL)"
        ))
    })
}

/// `--cap-add`/`--cap-drop` over the default, by docker's rules (moby
/// `caps.TweakCapabilities`): dropping `ALL` keeps only the added; adding `ALL` grants
/// everything not dropped.
fn capabilities(opts: &RunOptions, notes: &mut Vec<String>) -> Result<Capabilities, SpecError> {
    if opts.privileged {
        return Ok(Capability::ALL.iter().copied().collect());
    }
    let is_all = |s: &String| s.eq_ignore_ascii_case("all") || s.eq_ignore_ascii_case("cap_all");
    let drop_all = opts.cap_drop.iter().any(is_all);
    let add_all = opts.cap_add.iter().any(is_all);
    let drops = opts
        .cap_drop
        .iter()
        .filter(|s| !is_all(s))
        .map(|s| cap_name(s))
        .collect::<Result<Capabilities, _>>()?;
    let adds = opts
        .cap_add
        .iter()
        .filter(|s| !is_all(s))
        .map(|s| cap_name(s))
        .collect::<Result<Capabilities, _>>()?;
    let base = default_capabilities();
    let mut caps: Capabilities = if add_all && !drop_all {
        Capability::ALL
            .iter()
            .copied()
            .filter(|c| !drops.contains(c))
            .collect()
    } else if drop_all {
        if add_all {
            Capability::ALL.iter().copied().collect()
        } else {
            Capabilities::new()
        }
    } else {
        base.iter()
            .copied()
            .filter(|c| !drops.contains(c))
            .collect()
    };
    if !add_all {
        caps.extend(adds.iter().copied());
    }
    let mut extra: Vec<&str> = caps
        .iter()
        .filter(|c| !base.contains(c))
        .map(|c| c.as_str())
        .collect();
    extra.sort_unstable();
    if add_all {
        notes.push("--cap-add ALL: every capability not dropped".to_owned());
    } else if !extra.is_empty() {
        notes.push(format!(
            "--cap-add: {} beyond the default set",
            extra.join(", ")
        ));
    }
    Ok(caps)
}

/// A `--security-opt seccomp=FILE` profile: the OCI form, or Docker's without conditional
/// rules (`includes`/`excludes`, which would silently open up if ignored).
fn seccomp_profile(path: &Path) -> Result<LinuxSeccomp, SpecError> {
    let read = |source| SpecError::Read {
        what: "seccomp profile",
        path: path.to_owned(),
        source,
    };
    let bytes = std::fs::read(path).map_err(read)?;
    let mut v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| SpecError::Invalid(format!("seccomp profile {}: {e}", path.display())))?;
    if let Some(syscalls) = v.get("syscalls").and_then(|s| s.as_array()) {
        for rule in syscalls {
            for key in ["includes", "excludes"] {
                if rule
                    .get(key)
                    .and_then(|c| c.as_object())
                    .is_some_and(|o| !o.is_empty())
                {
                    return Err(SpecError::Invalid(format!(
                        "seccomp profile {}: Docker's conditional rules ({key}) are not supported: write the rules out in the OCI form",
                        path.display()
                    )));
                }
            }
        }
    }
    if let Some(obj) = v.as_object_mut()
        && let Some(map) = obj.remove("archMap")
        && !obj.contains_key("architectures")
    {
        let arches: Vec<serde_json::Value> = map
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|a| {
                let sub = a
                    .get("subArchitectures")
                    .and_then(|s| s.as_array())
                    .cloned()
                    .unwrap_or_default();
                a.get("architecture").cloned().into_iter().chain(sub)
            })
            .collect();
        obj.insert("architectures".into(), arches.into());
    }
    serde_json::from_value(v)
        .map_err(|e| SpecError::Invalid(format!("seccomp profile {}: {e}", path.display())))
}

/// What a `-v` names: a host path bound, a named volume, or (a lone absolute path) an
/// anonymous volume.
enum VolumeArg {
    Bind(Mount),
    Named(NamedVolume),
    Anonymous(PathBuf),
}

/// A named volume (`-v NAME:DST[:ro]`): the engine creates it when missing, fills it from the
/// image when empty, and binds it at `destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedVolume {
    pub name: String,
    pub destination: PathBuf,
    pub read_only: bool,
}

/// Whether `name` is a valid local volume name (docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
pub fn valid_volume_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn volume_arg(spec: &str) -> Result<VolumeArg, SpecError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let bad = |why: &str| SpecError::Invalid(format!("-v {spec}: {why}"));
    let (src, dst, mode) = match parts.as_slice() {
        [d] if d.starts_with('/') => return Ok(VolumeArg::Anonymous(PathBuf::from(d))),
        [_] => return Err(bad("the destination must be an absolute path")),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => {
            return Err(bad(
                "invalid volume specification: expected SRC:DST[:ro|rw]",
            ));
        }
    };
    if !dst.starts_with('/') {
        return Err(bad("the destination must be an absolute path"));
    }
    let mut read_only = false;
    let mut modes = Vec::new();
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" | "rw" => {
                read_only = m == "ro";
                modes.push(m.to_owned());
            }
            _ => return Err(bad(&format!("unsupported mode {m:?}: use ro or rw"))),
        }
    }
    if !src.starts_with('/') {
        if !valid_volume_name(src) {
            return Err(bad(&format!(
                "{src:?} is not a valid volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+); a host \
                 path must be absolute"
            )));
        }
        return Ok(VolumeArg::Named(NamedVolume {
            name: src.to_owned(),
            destination: PathBuf::from(dst),
            read_only,
        }));
    }
    if std::fs::symlink_metadata(src).is_err() {
        return Err(bad(&format!("bind source path does not exist: {src}")));
    }
    let mut options = vec!["rbind".to_owned(), "rprivate".to_owned()];
    options.extend(modes);
    Ok(VolumeArg::Bind(Mount {
        destination: dst.into(),
        typ: Some("bind".into()),
        source: Some(src.into()),
        options: Some(options),
        ..Mount::default()
    }))
}

fn tmpfs_mount(spec: &str) -> Result<Mount, SpecError> {
    let (dst, opts) = spec.split_once(':').unwrap_or((spec, ""));
    if !dst.starts_with('/') {
        return Err(SpecError::Invalid(format!(
            "--tmpfs {spec}: the destination must be an absolute path"
        )));
    }
    let mut options: Vec<String> = ["noexec", "nosuid", "nodev"].map(String::from).to_vec();
    options.extend(opts.split(',').filter(|o| !o.is_empty()).map(String::from));
    Ok(Mount {
        destination: dst.into(),
        typ: Some("tmpfs".into()),
        source: Some("tmpfs".into()),
        options: Some(options),
        ..Mount::default()
    })
}

/// The runtime config for a container of `image` with its root filesystem at `rootfs`,
/// and what the CLI and the engine need to know besides ([`SpecNotes`]).
pub fn build_spec(
    image: &ImageConfig,
    rootfs: &Path,
    opts: &RunOptions,
) -> Result<(Spec, SpecNotes), SpecError> {
    use LinuxNamespaceType as Ns;
    let cfg = image.container();
    let mut opened = Vec::new();
    let mut spec = defaults::spec(defaults::Flavor::Locked, None, false);
    let args = process_args(&cfg, opts)?;
    let hostname = opts.hostname.clone().unwrap_or_else(|| "berth".to_owned());
    let env = environment(cfg.env.as_deref().unwrap_or_default(), &hostname, opts)?;
    let cwd = match opts
        .workdir
        .as_deref()
        .or(cfg.working_dir.as_deref())
        .filter(|w| !w.is_empty())
    {
        None => PathBuf::from("/"),
        Some(w) if w.starts_with('/') => PathBuf::from(w),
        Some(w) if opts.workdir.is_none() => Path::new("/").join(w),
        Some(w) => {
            return Err(SpecError::Invalid(format!(
                "-w {w}: the working directory is invalid, it needs to be an absolute path"
            )));
        }
    };
    let user = resolve_user(
        rootfs,
        opts.user.as_deref().or(cfg.user.as_deref()).unwrap_or(""),
        &opts.image,
    )?;
    let caps = capabilities(opts, &mut opened)?;
    let mut no_new_privs = !opts.privileged;
    let mut seccomp = (!opts.privileged).then(default_seccomp);
    for so in &opts.security_opt {
        let (key, value) = so.split_once(['=', ':']).unwrap_or((so.as_str(), ""));
        match (key, value) {
            ("no-new-privileges", "" | "true") => no_new_privs = true,
            ("no-new-privileges", "false") => {
                no_new_privs = false;
                opened.push("--security-opt no-new-privileges=false: setuid programs and file capabilities can raise privileges".into());
            }
            ("seccomp", "unconfined") => {
                seccomp = None;
                opened.push("--security-opt seccomp=unconfined: no seccomp filter".into());
            }
            ("seccomp", file) if !file.is_empty() => {
                seccomp = Some(seccomp_profile(Path::new(file))?);
                opened.push(format!(
                    "--security-opt seccomp={file}: a custom seccomp profile instead of the default"
                ));
            }
            _ => {
                return Err(SpecError::Invalid(format!(
                    "--security-opt {so}: unsupported: use seccomp=PROFILE.json|unconfined or no-new-privileges[=true|false]"
                )));
            }
        }
    }
    if opts.privileged {
        opened.push("--privileged: all capabilities, no seccomp, no masked or read-only paths, all devices allowed, /sys writable".into());
    }

    if let Some(p) = spec.process.as_mut() {
        p.terminal = Some(opts.tty);
        p.args = Some(args);
        p.env = Some(env);
        p.cwd = cwd;
        p.user.uid = user.uid;
        p.user.gid = user.gid;
        p.user.additional_gids = (!user.additional_gids.is_empty()).then_some(user.additional_gids);
        p.no_new_privileges = Some(no_new_privs);
        if let Some(c) = p.capabilities.as_mut() {
            c.bounding = Some(caps.clone());
            c.effective = Some(caps.clone());
            c.permitted = Some(caps);
            c.ambient = None;
            c.inheritable = None;
        }
    }
    spec.root = Some(Root {
        path: rootfs.to_owned(),
        readonly: Some(opts.read_only),
    });
    spec.hostname = Some(hostname);
    let (annotations, ignored_labels) = annotations(image, &cfg);
    spec.annotations = (!annotations.is_empty()).then_some(annotations);

    let mut mounts = spec.mounts.take().unwrap_or_else(defaults::mounts);
    let userns = match (opts.userns, opts.id_range) {
        (_, _) if opts.rootless => None,
        (Userns::Auto, Some(r)) => Some(r),
        (Userns::Auto, None) => {
            opened.push(
                "--userns=auto without an id range: no user namespace, container root is host root"
                    .into(),
            );
            None
        }
        (Userns::Host, _) => {
            opened.push("--userns=host: container root is host root".into());
            None
        }
    };
    for m in &mut mounts {
        if m.destination.as_os_str() == "/proc" && m.typ.as_deref() == Some("proc") {
            let o = m.options.get_or_insert_with(Vec::new);
            for f in PROC_FLAGS {
                if !o.iter().any(|x| x == f) {
                    o.push(f.to_owned());
                }
            }
        }
    }
    if opts.privileged {
        for m in &mut mounts {
            if m.destination.starts_with("/sys")
                && let Some(o) = m.options.as_mut()
            {
                o.retain(|o| o != "ro");
            }
        }
    }
    if (userns.is_some() || opts.rootless) && opts.network != Network::None && !opts.network_owned {
        // sysfs cannot be mounted in a user namespace that does not own the network
        // namespace (the host's, another container's, or one joined by `ns:PATH`): bind the
        // host's, read-only (as podman does)
        for m in &mut mounts {
            if m.destination.as_os_str() == "/sys" {
                m.typ = Some("bind".into());
                m.source = Some("/sys".into());
                m.options = Some(
                    ["rbind", "nosuid", "noexec", "nodev", "ro"]
                        .map(String::from)
                        .to_vec(),
                );
            }
        }
    }
    if let Some(r) = userns
        && r.size <= 5
    {
        // devpts' gid=5 (tty) is not mapped in so small a range: the kernel would refuse it
        for m in &mut mounts {
            if let Some(o) = m.options.as_mut() {
                o.retain(|o| !o.starts_with("gid=") && !o.starts_with("uid="));
            }
        }
    }
    let mut covered: Vec<PathBuf> = Vec::new();
    for t in &opts.tmpfs {
        let m = tmpfs_mount(t)?;
        covered.push(m.destination.clone());
        mounts.push(m);
    }
    let mut anonymous_volumes = Vec::new();
    let mut named_volumes = Vec::new();
    for v in &opts.volumes {
        match volume_arg(v)? {
            VolumeArg::Bind(m) => {
                covered.push(m.destination.clone());
                mounts.push(m);
            }
            VolumeArg::Named(n) => {
                covered.push(n.destination.clone());
                named_volumes.push(n);
            }
            VolumeArg::Anonymous(p) => anonymous_volumes.push(p),
        }
    }
    for vol in cfg.volumes.iter().flat_map(BTreeMap::keys) {
        let p = PathBuf::from(vol);
        if !covered.contains(&p) && !anonymous_volumes.contains(&p) {
            anonymous_volumes.push(p);
        }
    }
    spec.mounts = Some(mounts);

    if let Some(linux) = spec.linux.as_mut() {
        let mut namespaces: Vec<LinuxNamespace> = linux.namespaces.take().unwrap_or_default();
        namespaces.retain(|n| n.typ != Ns::Network && n.typ != Ns::User);
        match &opts.network {
            Network::None => namespaces.push(LinuxNamespace {
                typ: Ns::Network,
                path: None,
            }),
            Network::Host => opened.push("--network host: the host's network namespace".into()),
            Network::Path(p) => namespaces.push(LinuxNamespace {
                typ: Ns::Network,
                path: Some(p.clone()),
            }),
        }
        if let Some(r) = userns {
            namespaces.push(LinuxNamespace {
                typ: Ns::User,
                path: None,
            });
            let map = Some(vec![LinuxIdMapping {
                container_id: 0,
                host_id: r.host_start,
                size: r.size,
            }]);
            linux.uid_mappings = map.clone();
            linux.gid_mappings = map;
        }
        linux.namespaces = Some(namespaces);
        linux.seccomp = seccomp;
        if opts.privileged {
            linux.masked_paths = None;
            linux.readonly_paths = None;
        } else {
            let masked = linux.masked_paths.get_or_insert_with(Vec::new);
            for p in EXTRA_MASKED_PATHS {
                if !masked.iter().any(|m| m.as_str() == p) {
                    masked.push(p.to_owned());
                }
            }
        }
        let res = linux.resources.get_or_insert_with(Default::default);
        if opts.privileged {
            res.devices = Some(vec![LinuxDeviceCgroup {
                allow: true,
                access: Some("rwm".into()),
                ..Default::default()
            }]);
        }
        resources::apply(&opts.resources, opts.rootless, res)?;
    }

    let stop_signal = parse_signal(
        opts.stop_signal
            .as_deref()
            .or(cfg.stop_signal.as_deref())
            .unwrap_or("SIGTERM"),
    )?;
    let notes = SpecNotes {
        opened,
        anonymous_volumes,
        named_volumes,
        stop_signal,
        labels: cfg.labels.clone().unwrap_or_default(),
        exposed_ports: cfg
            .exposed_ports
            .iter()
            .flat_map(BTreeMap::keys)
            .cloned()
            .collect(),
        init: opts.init,
        ignored_labels,
    };
    Ok((spec, notes))
}

/// Label prefixes that runtimes act on (crun's `run.oci.*`, which can pick another handler
/// or send hook output to host files; its Wasm handler's `module.wasm.image/*`; runc's CRIU
/// configuration `org.criu.config`): an image's labels with them are not passed to the
/// runtime, as image-spec "conversion.md" allows for unsafe annotations.
const RUNTIME_LABEL_PREFIXES: &[&str] = &["run.oci.", "module.wasm.image/", "org.criu."];

/// The runtime config's annotations as image-spec "conversion.md" says: the implicit ones
/// from the image config (`org.opencontainers.image.os`, `.architecture`, `.variant`,
/// `.os.version`, `.os.features`, `.author`, `.created`, `.stopSignal`, `.exposedPorts`),
/// then `Config.Labels`, which take precedence; labels a runtime acts on are left out and
/// returned, for the caller to say so.
fn annotations(
    image: &ImageConfig,
    cfg: &ContainerConfig,
) -> (std::collections::HashMap<String, String>, Vec<String>) {
    let mut out = std::collections::HashMap::new();
    let implicit = [
        ("os", image.os.clone()),
        ("architecture", image.architecture.clone()),
        ("variant", image.variant.clone()),
        ("os.version", image.os_version.clone()),
        (
            "os.features",
            image.os_features.as_ref().map(|f| f.join(",")),
        ),
        ("author", image.author.clone()),
        ("created", image.created.clone()),
        ("stopSignal", cfg.stop_signal.clone()),
        // always, empty when the image declares none (as umoci): a reader then knows the
        // image declares no port, rather than nothing about its ports
        (
            "exposedPorts",
            Some(
                cfg.exposed_ports
                    .iter()
                    .flat_map(BTreeMap::keys)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ),
    ];
    for (key, value) in implicit {
        if let Some(v) = value {
            out.insert(format!("org.opencontainers.image.{key}"), v);
        }
    }
    let mut ignored = Vec::new();
    for (k, v) in cfg.labels.iter().flatten() {
        if RUNTIME_LABEL_PREFIXES.iter().any(|p| k.starts_with(p)) {
            ignored.push(k.clone());
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    (out, ignored)
}
