//! `berth-cni`: the runtime side of CNI (SPEC.md v1.1), as containerd's go-cni and libcni
//! (`libcni/api.go`) do it.
//!
//! It owns: network configuration lists (`.conflist`, and single-plugin `.conf` files
//! converted to lists) found by name in configuration directories; running each plugin
//! binary with the `CNI_*` parameters and its request on stdin — `name`, the negotiated
//! `cniVersion`, `prevResult` chained from plugin to plugin on ADD and taken from the cache
//! on DEL and CHECK, `runtimeConfig` holding only the capabilities a plugin declares; the
//! plugins' results read in any version from 0.3.0 on as the 1.0 type; and the result cache
//! (`<cache dir>/results/<network>-<container>-<ifname>`, libcni's format, written
//! atomically) that makes DEL work after a restart or a killed engine.
//!
//! It does not own: network namespaces (the engine makes and removes them), writing
//! conflists for `berth network create` (the engine), or any plugin: the standard ones
//! (Debian's `containernetworking-plugins`) do the networking.
//!
//! The decision a reader must know: everything a later DEL needs — the configuration, the
//! arguments and the result — is in the cache file, never only in memory, so an ADD that
//! succeeded can always be undone, and an ADD that failed is undone (DEL) before its error is
//! returned. Synchronous: a plugin call is a process with a bounded wait.

mod cache;
mod conf;
mod config;
mod error;
mod exec;
mod result;
mod version;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};

pub use cache::{Attachment, CACHE_KIND, entry_path, results_dir};
pub use conf::{Bandwidth, PortMapping, RuntimeConf};
pub use config::{
    CONFIG_EXTENSIONS, NetworkConfigList, PluginConfig, config_files, load, load_all,
};
pub use error::{CniError, PluginError, Result};
pub use result::{CniResult, Dns, Interface, IpConfig, Route, parse_cidr};
pub use version::{CURRENT, SUPPORTED, Version};

/// The default bound on one plugin call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The plugin directory of Debian's `containernetworking-plugins`.
pub const DEBIAN_PLUGIN_DIR: &str = "/usr/lib/cni";

/// The system's network configuration directory, searched after berth's own.
pub const SYSTEM_CONFIG_DIR: &str = "/etc/cni/net.d";

/// Runs CNI plugins for network configuration lists and keeps the result cache.
///
/// Lifecycle of an attachment: [`Cni::add`] (on failure it has already undone itself), any
/// number of [`Cni::check`], then [`Cni::del`] — which may be repeated, and which works from
/// the cache alone ([`Cni::cached_attachments`] + [`Cni::del_attachment`]) when the caller
/// lost its own state. Calls for different containers may run in parallel; the caller must
/// not run two for the same container at once (SPEC.md, "Lifecycle & Ordering").
#[derive(Debug)]
pub struct Cni {
    plugin_dirs: Vec<PathBuf>,
    cache_dir: PathBuf,
    timeout: Duration,
    /// VERSION answers by plugin path, valid while the binary is unchanged; loaded from
    /// and saved to [`VERSIONS_FILE`] in the cache directory (`None`: not read yet).
    versions: Mutex<Option<HashMap<PathBuf, VersionAnswer>>>,
}

/// The file in the cache directory that keeps the plugins' VERSION answers between
/// processes: each `berth run` is a new process, and asking every plugin of a list for its
/// versions before each ADD would cost one plugin run per plugin (a Go binary's start, some
/// milliseconds each).
pub const VERSIONS_FILE: &str = "versions.json";

/// A plugin binary's identity (device, inode, size, mtime in nanoseconds: a replaced or
/// upgraded binary changes it) and its VERSION answer's `supportedVersions`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct VersionAnswer {
    binary: (u64, u64, u64, u64),
    supported: Vec<String>,
}

/// The identity [`VersionAnswer`] is valid for; `None` when the binary cannot be read.
fn binary_identity(path: &Path) -> Option<(u64, u64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = path.metadata().ok()?;
    let mtime = m
        .modified()
        .ok()?
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some((m.dev(), m.ino(), m.size(), u64::try_from(mtime).ok()?))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Command {
    Add,
    Del,
    Check,
    Gc,
    Status,
}

impl Command {
    fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Gc => "GC",
            Command::Status => "STATUS",
        }
    }
}

impl Cni {
    /// Plugins are searched in `plugin_dirs` (in order; also the plugins' `CNI_PATH`), and
    /// results cached under `cache_dir` (libcni's default is `/var/lib/cni`).
    pub fn new(plugin_dirs: Vec<PathBuf>, cache_dir: impl Into<PathBuf>) -> Cni {
        Cni {
            plugin_dirs,
            cache_dir: cache_dir.into(),
            timeout: DEFAULT_TIMEOUT,
            versions: Mutex::new(None),
        }
    }

    /// Bound each plugin call by `timeout` (default [`DEFAULT_TIMEOUT`]); a plugin that takes
    /// longer is killed with what it started.
    pub fn with_timeout(mut self, timeout: Duration) -> Cni {
        self.timeout = timeout;
        self
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    fn cni_path(&self) -> String {
        self.plugin_dirs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }

    fn find(&self, network: &str, plugin_type: &str) -> Result<PathBuf> {
        exec::find_plugin(plugin_type, &self.plugin_dirs).ok_or_else(|| CniError::PluginNotFound {
            network: network.to_owned(),
            plugin: plugin_type.to_owned(),
            dirs: self.plugin_dirs.clone(),
        })
    }

    /// The specification versions the plugin `plugin_type` supports (its VERSION answer).
    /// Answers are remembered while the binary is unchanged (same device, inode, size and
    /// mtime), in memory and in [`VERSIONS_FILE`], so that a new process does not ask again.
    pub fn plugin_versions(&self, network: &str, plugin_type: &str) -> Result<Vec<String>> {
        let path = self.find(network, plugin_type)?;
        let identity = binary_identity(&path);
        {
            let mut known = self.versions.lock().unwrap_or_else(|e| e.into_inner());
            let known = known.get_or_insert_with(|| self.read_versions());
            if let (Some(a), Some(id)) = (known.get(&path), identity)
                && a.binary == id
            {
                return Ok(a.supported.clone());
            }
        }
        let stdin = json!({ "cniVersion": CURRENT.to_string() }).to_string();
        let inv = exec::Invocation {
            command: "VERSION",
            ..Default::default()
        };
        let out = self.run(network, plugin_type, &path, &inv, stdin.as_bytes())?;
        let bad = |reason: String| CniError::BadOutput {
            network: network.to_owned(),
            plugin: plugin_type.to_owned(),
            command: "VERSION",
            reason,
            stdout: String::from_utf8_lossy(&out).into_owned(),
        };
        let v: Value = serde_json::from_slice(&out).map_err(|e| bad(e.to_string()))?;
        let supported = match v.get("supportedVersions") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad(format!("supportedVersions holds {s}, not a string")))
                })
                .collect::<Result<Vec<_>>>()?,
            // a plugin older than VERSION's supportedVersions (spec 0.1.0)
            None => vec!["0.1.0".to_owned()],
            Some(other) => return Err(bad(format!("supportedVersions is {other}, not a list"))),
        };
        if let Some(binary) = identity {
            let mut known = self.versions.lock().unwrap_or_else(|e| e.into_inner());
            let known = known.get_or_insert_with(HashMap::new);
            known.insert(
                path,
                VersionAnswer {
                    binary,
                    supported: supported.clone(),
                },
            );
            // best effort: a cache that cannot be written only costs the next process a
            // VERSION run
            let _ = self.write_versions(known);
        }
        Ok(supported)
    }

    /// The answers [`VERSIONS_FILE`] holds (none when it is missing or unreadable).
    fn read_versions(&self) -> HashMap<PathBuf, VersionAnswer> {
        std::fs::read(self.cache_dir.join(VERSIONS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write_versions(&self, known: &HashMap<PathBuf, VersionAnswer>) -> Result<()> {
        berth_fsutil::create_dir_all_durable(&self.cache_dir)
            .map_err(|source| CniError::WriteCache { source })?;
        let data = serde_json::to_vec(known).unwrap_or_default();
        berth_fsutil::atomic_write(self.cache_dir.join(VERSIONS_FILE), &data)
            .map_err(|source| CniError::WriteCache { source })
    }

    /// The version to run `list` with: the highest of the list's versions that every plugin
    /// supports (SPEC.md, "Version considerations"); an error naming the plugin that
    /// supports none of them.
    pub fn negotiate(&self, list: &NetworkConfigList) -> Result<Version> {
        let mut candidates = list.versions.clone();
        let mut first_refusal = None;
        for p in &list.plugins {
            let supported = self.plugin_versions(&list.name, &p.plugin_type)?;
            let parsed: Vec<Version> = supported.iter().filter_map(|s| Version::parse(s)).collect();
            let before = candidates.first().copied();
            candidates.retain(|v| parsed.contains(v));
            if first_refusal.is_none() && candidates.first().copied() != before {
                first_refusal = Some((p.plugin_type.clone(), supported.clone()));
            }
            if candidates.is_empty() {
                let (plugin, supported) =
                    first_refusal.unwrap_or((p.plugin_type.clone(), supported));
                return Err(CniError::VersionUnsupported {
                    network: list.name.clone(),
                    wanted: list
                        .versions
                        .iter()
                        .map(Version::to_string)
                        .collect::<Vec<_>>()
                        .join(" or "),
                    plugin,
                    supported,
                });
            }
        }
        Ok(candidates
            .first()
            .copied()
            .unwrap_or_else(|| list.cni_version()))
    }

    /// The request a plugin gets on stdin (SPEC.md, "Deriving request configuration from
    /// plugin configuration"): its configuration with `name` and `cniVersion` set,
    /// `capabilities` removed, `prevResult` when given, and `runtimeConfig` holding the
    /// capability arguments of `rt` that the plugin declares.
    pub fn request(
        list: &NetworkConfigList,
        plugin: &PluginConfig,
        version: Version,
        prev: Option<&CniResult>,
        rt: Option<&RuntimeConf>,
    ) -> Vec<u8> {
        let mut obj = plugin.raw.clone();
        obj.insert("name".to_owned(), Value::String(list.name.clone()));
        obj.insert("cniVersion".to_owned(), Value::String(version.to_string()));
        obj.remove("capabilities");
        if let Some(prev) = prev {
            obj.insert("prevResult".to_owned(), prev.to_json(version));
        }
        if let Some(rt) = rt {
            let rc: Map<String, Value> = plugin
                .capabilities
                .iter()
                .filter(|(_, on)| **on)
                .filter_map(|(cap, _)| {
                    rt.capability_args
                        .get(cap)
                        .map(|v| (cap.clone(), v.clone()))
                })
                .collect();
            if !rc.is_empty() {
                obj.insert("runtimeConfig".to_owned(), Value::Object(rc));
            }
            if !rt.config_ips.is_empty() {
                // beside whatever else the list's own `args` holds
                let args = obj
                    .entry("args")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !args.is_object() {
                    *args = Value::Object(Map::new());
                }
                if let Some(args) = args.as_object_mut() {
                    let cni = args
                        .entry("cni")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if !cni.is_object() {
                        *cni = Value::Object(Map::new());
                    }
                    if let Some(cni) = cni.as_object_mut() {
                        cni.insert("ips".to_owned(), serde_json::json!(rt.config_ips));
                    }
                }
            }
        }
        serde_json::to_vec(&obj).unwrap_or_default()
    }

    /// Run one plugin; its stdout on success, its error otherwise.
    fn run(
        &self,
        network: &str,
        plugin_type: &str,
        path: &Path,
        inv: &exec::Invocation<'_>,
        stdin: &[u8],
    ) -> Result<Vec<u8>> {
        let out = exec::run(path, &self.cni_path(), inv, stdin, self.timeout, network)?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // the error JSON is on stdout (skel prints it there); some plugins use stderr
        for stream in [&out.stdout, &out.stderr] {
            if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(stream)
                && (m.contains_key("code") || m.contains_key("msg"))
                && let Ok(error) = serde_json::from_value::<PluginError>(Value::Object(m))
            {
                return Err(CniError::Plugin {
                    network: network.to_owned(),
                    plugin: plugin_type.to_owned(),
                    command: inv.command,
                    error: Box::new(error),
                    stderr: if std::ptr::eq(stream, &out.stderr) {
                        String::new()
                    } else {
                        stderr
                    },
                });
            }
        }
        Err(CniError::PluginFailed {
            network: network.to_owned(),
            plugin: plugin_type.to_owned(),
            command: inv.command,
            status: out.status.to_string(),
            output: format!(
                "{}{}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                if out.stdout.is_empty() || out.stderr.is_empty() {
                    ""
                } else {
                    "\n"
                },
                stderr.trim()
            ),
        })
    }

    fn run_attached(
        &self,
        list: &NetworkConfigList,
        plugin: &PluginConfig,
        cmd: Command,
        version: Version,
        prev: Option<&CniResult>,
        rt: &RuntimeConf,
    ) -> Result<Vec<u8>> {
        let path = self.find(&list.name, &plugin.plugin_type)?;
        let stdin = Self::request(list, plugin, version, prev, Some(rt));
        let inv = exec::Invocation {
            command: cmd.as_str(),
            container_id: Some(&rt.container_id),
            netns: (!rt.netns.is_empty()).then_some(rt.netns.as_str()),
            ifname: Some(&rt.ifname),
            args: rt.cni_args(),
        };
        self.run(&list.name, &plugin.plugin_type, &path, &inv, &stdin)
    }

    /// Attach the container: ADD through every plugin in order, each getting the previous
    /// one's result; the final result is cached and returned. If a plugin fails, DEL runs
    /// through the whole list (plugins must accept DEL of what they never added) before the
    /// error is returned, so a failed ADD leaves nothing behind.
    pub fn add(&self, list: &NetworkConfigList, rt: &RuntimeConf) -> Result<CniResult> {
        validate(list, rt, true)?;
        let version = self.negotiate(list)?;
        let mut prev: Option<CniResult> = None;
        for plugin in &list.plugins {
            let step = self
                .run_attached(list, plugin, Command::Add, version, prev.as_ref(), rt)
                .and_then(|out| {
                    parse_result(&out).map_err(|reason| CniError::BadOutput {
                        network: list.name.clone(),
                        plugin: plugin.plugin_type.clone(),
                        command: "ADD",
                        reason,
                        stdout: String::from_utf8_lossy(&out).into_owned(),
                    })
                });
            match step {
                Ok(r) => prev = Some(r),
                Err(e) => return Err(self.roll_back(list, rt, version, prev.as_ref(), e)),
            }
        }
        let result = prev.unwrap_or_default();
        let att = Attachment {
            network: list.name.clone(),
            container_id: rt.container_id.clone(),
            ifname: rt.ifname.clone(),
            netns: rt.netns.clone(),
            args: rt.args.clone(),
            capability_args: rt.capability_args.clone(),
            config: list.bytes.clone(),
            result: Some(result.to_json(version)),
            path: PathBuf::new(),
        };
        if let Err(e) = cache::write(&self.cache_dir, &att) {
            return Err(self.roll_back(list, rt, version, Some(&result), e));
        }
        Ok(result)
    }

    fn roll_back(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
        version: Version,
        prev: Option<&CniResult>,
        add: CniError,
    ) -> CniError {
        let prev = prev.filter(|_| version.has_check());
        for plugin in list.plugins.iter().rev() {
            if let Err(e) = self.run_attached(list, plugin, Command::Del, version, prev, rt) {
                return CniError::RollbackFailed {
                    add: Box::new(add),
                    source: Box::new(e),
                };
            }
        }
        add
    }

    /// The cached attachment of the container to `network` on `ifname`, if any.
    pub fn cached(
        &self,
        network: &str,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<Attachment>> {
        check_param("network name", network)?;
        check_param("container id", container_id)?;
        check_ifname(ifname)?;
        cache::read(&cache::entry_path(
            &self.cache_dir,
            network,
            container_id,
            ifname,
        ))
    }

    /// Every cached attachment (of `container_id` only, when given): what a restarted engine
    /// must DEL for containers it no longer has. Unreadable entries are skipped here; they
    /// are reported by [`Cni::gc`].
    pub fn cached_attachments(&self, container_id: Option<&str>) -> Result<Vec<Attachment>> {
        cache::list(&self.cache_dir, container_id).map(|(a, _)| a)
    }

    /// Detach the container: DEL through the plugins in reverse order, each getting the
    /// cached ADD result as `prevResult`; then the cache entry goes. The capability
    /// arguments, `CNI_ARGS` and namespace of the ADD are used where `rt` leaves them empty.
    /// Detaching what is not attached (again) succeeds, as plugins must accept it.
    pub fn del(&self, list: &NetworkConfigList, rt: &RuntimeConf) -> Result<()> {
        validate(list, rt, false)?;
        let path = cache::entry_path(&self.cache_dir, &list.name, &rt.container_id, &rt.ifname);
        // a corrupt entry must not block the cleanup: DEL without prevResult (as libcni)
        let cached = cache::read(&path).ok().flatten();
        let mut rt = rt.clone();
        let mut cached_result = None;
        if let Some(c) = &cached {
            if rt.capability_args.is_empty() {
                rt.capability_args = c.capability_args.clone();
            }
            if rt.args.is_empty() {
                rt.args = c.args.clone();
            }
            if rt.netns.is_empty() {
                rt.netns = c.netns.clone();
            }
            cached_result = c.result.as_ref().and_then(|r| CniResult::from_json(r).ok());
        }
        let version = match cached_result
            .as_ref()
            .and_then(|r| Version::parse(&r.cni_version))
            .filter(|v| v.is_supported())
        {
            Some(v) => v,
            None => self.negotiate(list).unwrap_or_else(|_| list.cni_version()),
        };
        let prev = cached_result.as_ref().filter(|_| version.has_check());
        for plugin in list.plugins.iter().rev() {
            self.run_attached(list, plugin, Command::Del, version, prev, &rt)?;
        }
        cache::remove(&path)
    }

    /// DEL an attachment from its cache entry alone (the configuration it was added with).
    pub fn del_attachment(&self, att: &Attachment) -> Result<()> {
        let list = NetworkConfigList::from_bytes(&att.config, &att.path.display().to_string())?;
        let rt = RuntimeConf {
            container_id: att.container_id.clone(),
            netns: att.netns.clone(),
            ifname: att.ifname.clone(),
            args: att.args.clone(),
            capability_args: att.capability_args.clone(),
            config_ips: Vec::new(),
        };
        self.del(&list, &rt)
    }

    /// Re-run the last plugin of an attachment with new capability arguments (such as a new
    /// `bandwidth`), keeping the cache true. CNI has no UPDATE, and neither ADD over an
    /// existing ADD nor DEL of one plugin of a chain is in the spec; this is the narrow way a
    /// runtime can do it with the plugins as they are:
    ///
    /// 1. DEL of that plugin alone, with the cached result as `prevResult` and the cached
    ///    capability arguments (what its ADD had);
    /// 2. `prepare(cached result)`: the caller undoes what the plugin's DEL leaves to the
    ///    removal of the interfaces (the bandwidth plugin's qdiscs on the host veth) and
    ///    returns the `prevResult` the plugin's ADD first had (the cached result without
    ///    what the plugin added to it);
    /// 3. ADD of that plugin alone with the new capability arguments and that `prevResult`;
    /// 4. the cache entry rewritten with the new capability arguments and the new result, so
    ///    a later DEL of the whole list undoes exactly what is there.
    ///
    /// The plugin must be the list's last (its result is the attachment's). When the new ADD
    /// fails, it is undone (DEL, then `prepare` again) and the cache records the attachment
    /// without the plugin's capabilities (it is now unset), before the error is returned.
    pub fn readd(
        &self,
        att: &Attachment,
        plugin_type: &str,
        capability_args: Map<String, Value>,
        mut prepare: impl FnMut(&CniResult) -> std::result::Result<CniResult, String>,
    ) -> Result<CniResult> {
        let list = NetworkConfigList::from_bytes(&att.config, &att.path.display().to_string())?;
        let Some(plugin) = list.plugins.last().filter(|p| p.plugin_type == plugin_type) else {
            return Err(CniError::NotLastPlugin {
                network: list.name.clone(),
                plugin: plugin_type.to_owned(),
            });
        };
        let path = cache::entry_path(
            &self.cache_dir,
            &att.network,
            &att.container_id,
            &att.ifname,
        );
        let cached = att
            .result
            .as_ref()
            .map(CniResult::from_json)
            .transpose()
            .map_err(|reason| CniError::CorruptCache {
                path: path.clone(),
                reason,
            })?
            .ok_or_else(|| CniError::NotAttached {
                network: att.network.clone(),
                container_id: att.container_id.clone(),
                ifname: att.ifname.clone(),
                path: path.clone(),
            })?;
        let version = Version::parse(&cached.cni_version)
            .filter(|v| v.is_supported())
            .unwrap_or_else(|| list.cni_version());
        let old = RuntimeConf {
            container_id: att.container_id.clone(),
            netns: att.netns.clone(),
            ifname: att.ifname.clone(),
            args: att.args.clone(),
            capability_args: att.capability_args.clone(),
            config_ips: Vec::new(),
        };
        validate(&list, &old, true)?;
        let prepare_err = |reason: String| CniError::Prepare {
            network: list.name.clone(),
            plugin: plugin_type.to_owned(),
            reason,
        };
        self.run_attached(&list, plugin, Command::Del, version, Some(&cached), &old)?;
        let prev = prepare(&cached).map_err(prepare_err)?;
        let new = RuntimeConf {
            capability_args,
            ..old.clone()
        };
        let added = self
            .run_attached(&list, plugin, Command::Add, version, Some(&prev), &new)
            .and_then(|out| {
                parse_result(&out).map_err(|reason| CniError::BadOutput {
                    network: list.name.clone(),
                    plugin: plugin_type.to_owned(),
                    command: "ADD",
                    reason,
                    stdout: String::from_utf8_lossy(&out).into_owned(),
                })
            });
        let (result, capability_args, failed) = match added {
            Ok(r) => (r, new.capability_args.clone(), None),
            Err(e) => {
                let undone = self
                    .run_attached(&list, plugin, Command::Del, version, Some(&prev), &new)
                    .and_then(|_| prepare(&prev).map_err(prepare_err));
                let e = match undone {
                    Ok(_) => e,
                    Err(source) => CniError::RollbackFailed {
                        add: Box::new(e),
                        source: Box::new(source),
                    },
                };
                // the plugin's capabilities are unset now: the cache says so
                let mut caps = new.capability_args.clone();
                for (cap, on) in &plugin.capabilities {
                    if *on {
                        caps.remove(cap);
                    }
                }
                (prev.clone(), caps, Some(e))
            }
        };
        let entry = Attachment {
            capability_args,
            result: Some(result.to_json(version)),
            path: PathBuf::new(),
            ..att.clone()
        };
        cache::write(&self.cache_dir, &entry)?;
        match failed {
            Some(e) => Err(e),
            None => Ok(result),
        }
    }

    /// CHECK the attachment: every plugin in order with the cached ADD result as
    /// `prevResult`; the first failure is returned. Nothing to do when the list sets
    /// `disableCheck`.
    pub fn check(&self, list: &NetworkConfigList, rt: &RuntimeConf) -> Result<()> {
        validate(list, rt, true)?;
        if list.disable_check {
            return Ok(());
        }
        let path = cache::entry_path(&self.cache_dir, &list.name, &rt.container_id, &rt.ifname);
        let cached = cache::read(&path)?;
        let Some(result) = cached.as_ref().and_then(|c| c.result.as_ref()) else {
            return Err(CniError::NotAttached {
                network: list.name.clone(),
                container_id: rt.container_id.clone(),
                ifname: rt.ifname.clone(),
                path,
            });
        };
        let result = CniResult::from_json(result).map_err(|reason| CniError::CorruptCache {
            path: path.clone(),
            reason,
        })?;
        let version = Version::parse(&result.cni_version)
            .filter(|v| v.is_supported())
            .unwrap_or_else(|| list.cni_version());
        if !version.has_check() {
            return Err(CniError::CommandUnsupported {
                network: list.name.clone(),
                version: version.to_string(),
                command: "CHECK",
            });
        }
        for plugin in &list.plugins {
            self.run_attached(list, plugin, Command::Check, version, Some(&result), rt)?;
        }
        Ok(())
    }

    /// Garbage-collect the network (SPEC.md, "Garbage-collecting a network"), as libcni:
    /// DEL every cached attachment to it that is not in `valid` (`(container id, ifname)`),
    /// then, when the plugins speak 1.1.0, GC through each plugin with the valid list. Goes
    /// on past failures and returns them all. Nothing to do when the list sets `disableGC`.
    pub fn gc(&self, list: &NetworkConfigList, valid: &[(String, String)]) -> Result<()> {
        if list.disable_gc {
            return Ok(());
        }
        let (cached, mut errors) = cache::list(&self.cache_dir, None)?;
        for att in cached.iter().filter(|a| a.network == list.name) {
            if valid
                .iter()
                .any(|(c, i)| *c == att.container_id && *i == att.ifname)
            {
                continue;
            }
            if let Err(e) = self.del_attachment(att) {
                errors.push(e);
            }
        }
        match self.negotiate(list) {
            Ok(version) if version.has_gc_and_status() => {
                let attachments: Vec<Value> = valid
                    .iter()
                    .map(|(c, i)| json!({"containerID": c, "ifname": i}))
                    .collect();
                for plugin in &list.plugins {
                    let mut req = plugin.clone();
                    req.raw.insert(
                        "cni.dev/valid-attachments".to_owned(),
                        Value::Array(attachments.clone()),
                    );
                    if let Err(e) = self.run_unattached(list, &req, Command::Gc, version) {
                        errors.push(e);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CniError::Gc {
                network: list.name.clone(),
                errors,
            })
        }
    }

    /// STATUS of every plugin (SPEC.md, "STATUS"): `Ok(true)` when all are ready, `Ok(false)`
    /// when the plugins do not speak 1.1.0 and so cannot be asked, the first plugin's error
    /// otherwise (code 50: cannot serve ADD; 51: existing containers may be affected).
    pub fn status(&self, list: &NetworkConfigList) -> Result<bool> {
        let version = self.negotiate(list)?;
        if !version.has_gc_and_status() {
            return Ok(false);
        }
        for plugin in &list.plugins {
            self.run_unattached(list, plugin, Command::Status, version)?;
        }
        Ok(true)
    }

    fn run_unattached(
        &self,
        list: &NetworkConfigList,
        plugin: &PluginConfig,
        cmd: Command,
        version: Version,
    ) -> Result<Vec<u8>> {
        let path = self.find(&list.name, &plugin.plugin_type)?;
        let stdin = Self::request(list, plugin, version, None, None);
        let inv = exec::Invocation {
            command: cmd.as_str(),
            ..Default::default()
        };
        self.run(&list.name, &plugin.plugin_type, &path, &inv, &stdin)
    }
}

fn parse_result(out: &[u8]) -> std::result::Result<CniResult, String> {
    let v: Value = serde_json::from_slice(out).map_err(|e| format!("not JSON: {e}"))?;
    CniResult::from_json(&v)
}

fn validate(list: &NetworkConfigList, rt: &RuntimeConf, needs_netns: bool) -> Result<()> {
    check_param("network name", &list.name)?;
    check_param("container id", &rt.container_id)?;
    check_ifname(&rt.ifname)?;
    if needs_netns && rt.netns.is_empty() {
        return Err(CniError::InvalidParameter {
            what: "network namespace",
            value: String::new(),
            reason: "ADD and CHECK need the path of the container's network namespace",
        });
    }
    for (k, v) in &rt.args {
        if k.is_empty() || k.contains(['=', ';']) || v.contains(';') {
            return Err(CniError::InvalidParameter {
                what: "CNI_ARGS pair",
                value: format!("{k}={v}"),
                reason: "keys must be non-empty without '=' or ';', values without ';'",
            });
        }
    }
    Ok(())
}

fn check_param(what: &'static str, value: &str) -> Result<()> {
    if config::valid_name(value) {
        Ok(())
    } else {
        Err(CniError::InvalidParameter {
            what,
            value: value.to_owned(),
            reason: "must be a letter or digit, then letters, digits, '_', '.' or '-'",
        })
    }
}

/// An interface name the kernel takes: 1–15 bytes, not `.` or `..`, no `/`, `:` or
/// whitespace (libcni's `ValidateInterfaceName`).
fn check_ifname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(CniError::InvalidParameter {
            what: "interface name",
            value: name.to_owned(),
            reason: "must be 1 to 15 bytes, not '.' or '..', without '/', ':' or whitespace",
        })
    }
}

#[cfg(test)]
mod tests;
