//! Loading and validating a bundle's `config.json` (runtime-spec "Configuration").
//!
//! Validation refuses, before anything is created, what runc refuses: a missing root or
//! process, duplicate namespaces, user-namespace mappings without a user namespace (and the
//! reverse), a hostname without a UTS namespace, sysctls that would change the host, time
//! offsets without a time namespace, masked or read-only paths without a mount namespace
//! (and, beyond runc, which would change the host's `/`, a rootfs propagation without one).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use berth_runtime_spec::{LinuxNamespaceType, Spec};

/// What is wrong with the bundle.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid {field} in config.json: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A loaded, validated bundle.
#[derive(Debug, Clone)]
pub(crate) struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute root filesystem path.
    pub rootfs: PathBuf,
    pub spec: Spec,
}

/// Load `<dir>/config.json` and validate it.
pub(crate) fn load_bundle(dir: &Path) -> Result<Bundle, SpecError> {
    let dir = std::path::absolute(dir).map_err(|source| SpecError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let path = dir.join("config.json");
    let data = std::fs::read(&path).map_err(|source| SpecError::Read {
        path: path.clone(),
        source,
    })?;
    let spec: Spec = serde_json::from_slice(&data).map_err(|source| SpecError::Parse {
        path: path.clone(),
        source,
    })?;
    let root = spec
        .root
        .as_ref()
        .ok_or_else(|| invalid("root", "root must be specified"))?;
    let rootfs = if root.path.is_absolute() {
        root.path.clone()
    } else {
        dir.join(&root.path)
    };
    let meta = std::fs::metadata(&rootfs).map_err(|source| SpecError::Read {
        path: rootfs.clone(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(invalid(
            "root.path",
            format!("rootfs {} is not a directory", rootfs.display()),
        ));
    }
    validate(&spec)?;
    Ok(Bundle { dir, rootfs, spec })
}

/// Parse the bytes of a `config.json` (`path` names it in errors) and validate them: what
/// [`load_bundle`] checks of the config itself, without a bundle directory or rootfs. Never
/// panics, whatever the bytes (the `config` fuzz target holds it to that).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn parse_config(data: &[u8], path: &Path) -> Result<Spec, SpecError> {
    let spec: Spec = serde_json::from_slice(data).map_err(|source| SpecError::Parse {
        path: path.to_owned(),
        source,
    })?;
    validate(&spec)?;
    Ok(spec)
}

/// Namespace types the config creates or joins.
pub(crate) fn namespace_types(spec: &Spec) -> Vec<LinuxNamespaceType> {
    spec.linux
        .as_ref()
        .and_then(|l| l.namespaces.as_ref())
        .map(|ns| ns.iter().map(|n| n.typ).collect())
        .unwrap_or_default()
}

/// Check a config for what the runtime refuses (see the module docs).
pub(crate) fn validate(spec: &Spec) -> Result<(), SpecError> {
    let v = &spec.version;
    if !v.starts_with("1.") {
        return Err(invalid(
            "ociVersion",
            format!("unsupported version {v:?} (1.x expected)"),
        ));
    }
    let process = spec
        .process
        .as_ref()
        .ok_or_else(|| invalid("process", "process must be specified"))?;
    if process.args.as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args", "args must not be empty"));
    }
    if !process.cwd.is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("cwd {} is not an absolute path", process.cwd.display()),
        ));
    }
    let linux = spec
        .linux
        .as_ref()
        .ok_or_else(|| invalid("linux", "linux section must be specified"))?;
    let mut seen = HashSet::new();
    for ns in linux.namespaces.as_deref().unwrap_or_default() {
        if !seen.insert(ns.typ) {
            return Err(invalid(
                "linux.namespaces",
                format!("duplicate namespace {}", ns.typ),
            ));
        }
        if let Some(p) = &ns.path
            && !p.is_absolute()
        {
            return Err(invalid(
                "linux.namespaces",
                format!("namespace path {} is not absolute", p.display()),
            ));
        }
    }
    let new_userns = linux
        .namespaces
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|n| n.typ == LinuxNamespaceType::User && n.path.is_none());
    let has = |t| seen.contains(&t);
    let has_maps = linux.uid_mappings.as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings.as_ref().is_some_and(|m| !m.is_empty());
    if new_userns && !has_maps {
        return Err(invalid(
            "linux.uidMappings",
            "user namespaces enabled, but no mappings found",
        ));
    }
    if has_maps && !has(LinuxNamespaceType::User) {
        return Err(invalid(
            "linux.uidMappings",
            "user namespaces not enabled in config",
        ));
    }
    if spec.hostname.as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(invalid(
            "hostname",
            "unable to set hostname without a private UTS namespace",
        ));
    }
    if spec.domainname.as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(invalid(
            "domainname",
            "unable to set domainname without a private UTS namespace",
        ));
    }
    if linux.time_offsets.as_ref().is_some_and(|t| !t.is_empty()) {
        if !has(LinuxNamespaceType::Time) {
            return Err(invalid(
                "linux.timeOffsets",
                "time offsets specified without a time namespace",
            ));
        }
        for clock in linux.time_offsets.iter().flat_map(|t| t.keys()) {
            if clock != "monotonic" && clock != "boottime" {
                return Err(invalid(
                    "linux.timeOffsets",
                    format!("unknown clock {clock:?}"),
                ));
            }
        }
    }
    if let Some(p) = &linux.rootfs_propagation
        && !matches!(
            p.as_str(),
            "" | "private"
                | "rprivate"
                | "slave"
                | "rslave"
                | "shared"
                | "rshared"
                | "unbindable"
                | "runbindable"
        )
    {
        return Err(invalid(
            "linux.rootfsPropagation",
            format!("unknown propagation {p:?}"),
        ));
    }
    if !has(LinuxNamespaceType::Mount) {
        // runc's rule: masked and read-only paths are mounts over /proc and /sys, which
        // would be made in the runtime's own mount namespace (the host's)
        for (field, list) in [
            ("linux.maskedPaths", &linux.masked_paths),
            ("linux.readonlyPaths", &linux.readonly_paths),
        ] {
            if list.as_ref().is_some_and(|l| !l.is_empty()) {
                return Err(invalid(
                    field,
                    "unable to restrict sys entries without a private MNT namespace (hint: add \
                     {\"type\": \"mount\"} to linux.namespaces, or empty linux.maskedPaths \
                     and linux.readonlyPaths)",
                ));
            }
        }
        // runc would apply it to the runtime's own `/`, changing the host's propagation
        if linux
            .rootfs_propagation
            .as_ref()
            .is_some_and(|p| !p.is_empty())
        {
            return Err(invalid(
                "linux.rootfsPropagation",
                "unable to set the rootfs propagation without a private MNT namespace: it would \
                 change the runtime's own mount namespace (hint: add {\"type\": \"mount\"} to \
                 linux.namespaces, or remove linux.rootfsPropagation)",
            ));
        }
    }
    for key in linux.sysctl.iter().flat_map(|s| s.keys()) {
        validate_sysctl(key, &seen, spec)?;
    }
    for m in spec.mounts.as_deref().unwrap_or_default() {
        if m.destination.as_os_str().is_empty() {
            return Err(invalid("mounts", "mount destination must not be empty"));
        }
    }
    Ok(())
}

/// runc's sysctl rules: only sysctls namespaced by a namespace the container owns.
fn validate_sysctl(
    key: &str,
    ns: &HashSet<LinuxNamespaceType>,
    spec: &Spec,
) -> Result<(), SpecError> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let key_dots = key.replace('/', ".");
    if key_dots.contains("..") || key_dots.starts_with('.') {
        return Err(invalid("linux.sysctl", format!("invalid sysctl {key:?}")));
    }
    let need = |t: LinuxNamespaceType, what: &str| {
        if ns.contains(&t) {
            Ok(())
        } else {
            Err(invalid(
                "linux.sysctl",
                format!(
                    "sysctl {key:?} is not allowed as it conflicts with the host's {what} namespace"
                ),
            ))
        }
    };
    if IPC.contains(&key_dots.as_str()) || key_dots.starts_with("fs.mqueue.") {
        return need(LinuxNamespaceType::Ipc, "ipc");
    }
    if key_dots.starts_with("net.") {
        return need(LinuxNamespaceType::Network, "network");
    }
    if key_dots == "kernel.hostname" || key_dots == "kernel.domainname" {
        need(LinuxNamespaceType::Uts, "uts")?;
        if key_dots == "kernel.hostname" && spec.hostname.as_ref().is_some_and(|h| !h.is_empty()) {
            return Err(invalid(
                "linux.sysctl",
                "sysctl kernel.hostname conflicts with the config's hostname",
            ));
        }
        return Ok(());
    }
    Err(invalid(
        "linux.sysctl",
        format!("sysctl {key:?} is not in a separate kernel namespace"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"},
            "hostname": "h",
            "linux": {"namespaces": [{"type": "pid"}, {"type": "uts"}, {"type": "mount"}]}
        })
    }

    fn check(v: serde_json::Value) -> Result<(), SpecError> {
        validate(&serde_json::from_value::<Spec>(v).unwrap())
    }

    #[test]
    fn accepts_a_plain_config() {
        check(base()).unwrap();
    }

    /// The config fuzz target's seeds are real configs (`runc spec`, `crun spec`,
    /// `berth-runtime spec`, rootless ones, one using most fields): all accepted, so the
    /// fuzzer starts past validation.
    #[test]
    fn the_fuzz_seed_configs_are_accepted() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/config");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let data = std::fs::read(&p).unwrap();
            if let Err(err) = parse_config(&data, &p) {
                panic!("{}: {err:?}", p.display());
            }
            n += 1;
        }
        assert!(n >= 6, "{n} seeds in {}", dir.display());
    }

    #[test]
    fn parse_config_parses_then_validates_and_names_the_file() {
        let path = Path::new("/b/config.json");
        let ok = serde_json::to_vec(&base()).unwrap();
        assert_eq!(
            parse_config(&ok, path).unwrap().hostname.as_deref(),
            Some("h")
        );
        let err = parse_config(b"{not json", path).unwrap_err();
        assert!(
            matches!(&err, SpecError::Parse { path: p, .. } if p == path),
            "{err:?}"
        );
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
        let err = parse_config(&serde_json::to_vec(&v).unwrap(), path).unwrap_err();
        assert!(matches!(err, SpecError::Invalid { .. }), "{err:?}");
    }

    #[test]
    fn refuses_what_runc_refuses() {
        let mut v = base();
        v["ociVersion"] = "2.0.0".into();
        assert!(check(v).is_err());
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "pid"}]);
        assert!(check(v).is_err(), "duplicate namespace");
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
        assert!(check(v).is_err(), "hostname without uts");
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "user"}, {"type": "uts"}]);
        assert!(check(v).is_err(), "userns without mappings");
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        assert!(check(v).is_err(), "net sysctl without netns");
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"});
        assert!(check(v).is_err(), "host sysctl");
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "uts"}]);
        v["linux"]["maskedPaths"] = serde_json::json!(["/proc/kcore"]);
        let err = check(v).unwrap_err().to_string();
        assert!(
            err.contains("unable to restrict sys entries without a private MNT namespace"),
            "{err}"
        );
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "uts"}]);
        v["linux"]["readonlyPaths"] = serde_json::json!(["/proc/sys"]);
        assert!(
            check(v).is_err(),
            "readonly paths without a mount namespace"
        );
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "uts"}]);
        v["linux"]["rootfsPropagation"] = "rslave".into();
        assert!(
            check(v).is_err(),
            "rootfsPropagation without a mount namespace"
        );
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "uts"}]);
        v["linux"]["maskedPaths"] = serde_json::json!([]);
        assert!(check(v).is_ok(), "no mount namespace, nothing to restrict");
        let mut v = base();
        v["linux"]["namespaces"] =
            serde_json::json!([{"type": "uts"}, {"type": "mount", "path": "/proc/1/ns/mnt"}]);
        v["linux"]["maskedPaths"] = serde_json::json!(["/proc/kcore"]);
        assert!(
            check(v).is_ok(),
            "a joined mount namespace is private to the container"
        );
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert!(check(v).is_err(), "empty args");
        let v = serde_json::json!({"ociVersion": "1.0.0", "linux": {"namespaces": [{"type": "bogus"}]}});
        assert!(
            serde_json::from_value::<Spec>(v).is_err(),
            "unknown namespace type"
        );
    }
}
