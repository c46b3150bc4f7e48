//! Network configurations (SPEC.md, "Section 1: Network configuration format"): parsing and
//! validating `.conflist` files, converting a single-plugin `.conf` into a list as libcni's
//! `ConfListFromConf` does, and finding a network by name in configuration directories.
//!
//! Lookup, as containerd's go-cni: the directories in the order given (berth's own first,
//! then `/etc/cni/net.d`), in each the `.conflist`, `.conf` and `.json` files in lexical
//! order; the first file whose network has that name wins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{CniError, Result};
use crate::version::{CURRENT, SUPPORTED, Version};

/// The file extensions of network configurations.
pub const CONFIG_EXTENSIONS: [&str; 3] = ["conflist", "conf", "json"];

/// A network configuration list: the plugins to run, in order, for one network.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfigList {
    /// The network's name (unique on the host).
    pub name: String,
    /// The versions of the configuration that berth speaks (`cniVersion` and `cniVersions`),
    /// highest first; never empty. The first is used unless a plugin does not support it.
    pub versions: Vec<Version>,
    /// Runtimes must not call CHECK on this network.
    pub disable_check: bool,
    /// Runtimes must not call GC on this network.
    pub disable_gc: bool,
    /// Plugins come only from `plugins`, not from the sibling `<dir>/<name>/*.conf` files.
    pub load_only_inlined_plugins: bool,
    pub plugins: Vec<PluginConfig>,
    /// The list as JSON, with any plugins loaded from the sibling directory: what the result
    /// cache keeps, so that DEL works after the file changed or went away.
    pub bytes: Vec<u8>,
    /// Where it was read from (`None` for bytes given directly).
    pub origin: Option<PathBuf>,
}

/// One plugin of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The plugin binary's name (`type`).
    pub plugin_type: String,
    /// Capabilities the plugin declares (`capabilities`): only these capability arguments
    /// reach it, in `runtimeConfig`.
    pub capabilities: BTreeMap<String, bool>,
    /// The whole object, passed through to the plugin (unknown keys preserved).
    pub raw: Map<String, Value>,
}

impl NetworkConfigList {
    /// The version to use, before asking the plugins: the highest the configuration and
    /// berth share.
    pub fn cni_version(&self) -> Version {
        self.versions.first().copied().unwrap_or(CURRENT)
    }

    /// Parse a `.conflist`, or a single-plugin `.conf` (an object with a `type` and no
    /// `plugins`), converted to a list of one. `origin` names the source in errors.
    /// Plugins in a sibling directory are not loaded: see [`NetworkConfigList::from_file`].
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<NetworkConfigList> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| invalid(origin, "", e))?;
        let Value::Object(obj) = value else {
            return Err(invalid(
                origin,
                "",
                "the configuration is not a JSON object",
            ));
        };
        if obj.contains_key("type") && !obj.contains_key("plugins") {
            return Self::from_single(obj, origin);
        }
        Self::from_list(obj, origin, Vec::new())
    }

    /// Read a configuration file; a list that does not set `loadOnlyInlinedPlugins` also gets
    /// the plugins in `<dir>/<name>/*.conf` appended (SPEC.md 1.1, `plugins`).
    pub fn from_file(path: &Path) -> Result<NetworkConfigList> {
        let bytes = std::fs::read(path).map_err(|source| CniError::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        let origin = path.display().to_string();
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(&origin, "", e))?;
        let Value::Object(obj) = value else {
            return Err(invalid(
                &origin,
                "",
                "the configuration is not a JSON object",
            ));
        };
        let mut list = if obj.contains_key("type") && !obj.contains_key("plugins") {
            Self::from_single(obj, &origin)?
        } else {
            let inlined_only = read_bool(&obj, "loadOnlyInlinedPlugins", &origin)?;
            let mut extra = Vec::new();
            if !inlined_only
                && let (Some(dir), Some(Value::String(name))) = (path.parent(), obj.get("name"))
                && valid_name(name)
            {
                extra = sibling_plugins(&dir.join(name))?;
            }
            Self::from_list(obj, &origin, extra)?
        };
        list.origin = Some(path.to_owned());
        Ok(list)
    }

    fn from_single(obj: Map<String, Value>, origin: &str) -> Result<NetworkConfigList> {
        let mut list = Map::new();
        for key in ["name", "cniVersion"] {
            if let Some(v) = obj.get(key) {
                list.insert(key.to_owned(), v.clone());
            }
        }
        list.insert("plugins".to_owned(), Value::Array(vec![Value::Object(obj)]));
        Self::from_list(list, origin, Vec::new())
    }

    fn from_list(
        mut obj: Map<String, Value>,
        origin: &str,
        extra: Vec<(String, Map<String, Value>)>,
    ) -> Result<NetworkConfigList> {
        let name = match obj.get("name") {
            None => return Err(invalid(origin, "name", "missing")),
            Some(Value::String(s)) if valid_name(s) => s.clone(),
            Some(Value::String(s)) => {
                return Err(invalid(
                    origin,
                    "name",
                    format!(
                        "{s:?} is not a network name (a letter or digit, then letters, digits, '_', '.' or '-')"
                    ),
                ));
            }
            Some(v) => return Err(invalid(origin, "name", format!("{v} is not a string"))),
        };
        let versions = config_versions(&obj, origin)?;
        let disable_check = read_bool(&obj, "disableCheck", origin)?;
        let disable_gc = read_bool(&obj, "disableGC", origin)?;
        let load_only_inlined_plugins = read_bool(&obj, "loadOnlyInlinedPlugins", origin)?;
        let mut raw_plugins = match obj.get("plugins") {
            None if load_only_inlined_plugins => {
                return Err(invalid(
                    origin,
                    "plugins",
                    "missing, and loadOnlyInlinedPlugins is true",
                ));
            }
            None => Vec::new(),
            Some(Value::Array(a)) if a.is_empty() => {
                return Err(invalid(origin, "plugins", "the list is empty"));
            }
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("plugins[{i}]"), p.clone()))
                .collect(),
            Some(v) => {
                return Err(invalid(
                    origin,
                    "plugins",
                    format!("{} is not a list", kind(v)),
                ));
            }
        };
        let appended = !extra.is_empty();
        raw_plugins.extend(extra.into_iter().map(|(f, m)| (f, Value::Object(m))));
        if raw_plugins.is_empty() {
            return Err(invalid(origin, "plugins", "the network has no plugins"));
        }
        let mut plugins = Vec::with_capacity(raw_plugins.len());
        for (field, p) in &raw_plugins {
            plugins.push(PluginConfig::from_value(p, origin, field)?);
        }
        if appended {
            obj.insert(
                "plugins".to_owned(),
                Value::Array(raw_plugins.into_iter().map(|(_, v)| v).collect()),
            );
        }
        let bytes = serde_json::to_vec(&obj).map_err(|e| invalid(origin, "", e))?;
        Ok(NetworkConfigList {
            name,
            versions,
            disable_check,
            disable_gc,
            load_only_inlined_plugins,
            plugins,
            bytes,
            origin: None,
        })
    }
}

impl PluginConfig {
    fn from_value(v: &Value, origin: &str, field: &str) -> Result<PluginConfig> {
        let Value::Object(raw) = v else {
            return Err(invalid(
                origin,
                field,
                format!("{} is not an object", kind(v)),
            ));
        };
        let plugin_type = match raw.get("type") {
            None => return Err(invalid(origin, &format!("{field}.type"), "missing")),
            Some(Value::String(t)) if valid_plugin_type(t) => t.clone(),
            Some(Value::String(t)) => {
                return Err(invalid(
                    origin,
                    &format!("{field}.type"),
                    format!("{t:?} is not a plugin binary name (no '/', not empty, '.' or '..')"),
                ));
            }
            Some(v) => {
                return Err(invalid(
                    origin,
                    &format!("{field}.type"),
                    format!("{} is not a string", kind(v)),
                ));
            }
        };
        let mut capabilities = BTreeMap::new();
        match raw.get("capabilities") {
            None | Some(Value::Null) => {}
            Some(Value::Object(caps)) => {
                for (k, v) in caps {
                    let Value::Bool(b) = v else {
                        return Err(invalid(
                            origin,
                            &format!("{field}.capabilities.{k}"),
                            format!("{} is not true or false", kind(v)),
                        ));
                    };
                    capabilities.insert(k.clone(), *b);
                }
            }
            Some(v) => {
                return Err(invalid(
                    origin,
                    &format!("{field}.capabilities"),
                    format!("{} is not an object", kind(v)),
                ));
            }
        }
        if let Some(ipam) = raw.get("ipam")
            && !ipam.is_null()
        {
            match ipam.get("type") {
                Some(Value::String(t)) if valid_plugin_type(t) => {}
                Some(Value::String(t)) => {
                    return Err(invalid(
                        origin,
                        &format!("{field}.ipam.type"),
                        format!("{t:?} is not a plugin binary name"),
                    ));
                }
                _ if !ipam.is_object() => {
                    return Err(invalid(
                        origin,
                        &format!("{field}.ipam"),
                        format!("{} is not an object", kind(ipam)),
                    ));
                }
                _ => {}
            }
        }
        Ok(PluginConfig {
            plugin_type,
            capabilities,
            raw: raw.clone(),
        })
    }
}

/// The configuration versions berth speaks, highest first: `cniVersion` and `cniVersions`;
/// entries above the version berth implements are skipped (libcni does the same), one that
/// is not a version at all is an error.
fn config_versions(obj: &Map<String, Value>, origin: &str) -> Result<Vec<Version>> {
    let mut all = Vec::new();
    match obj.get("cniVersion") {
        None => {}
        Some(Value::String(s)) => match Version::parse(s) {
            Some(v) => all.push((v, "cniVersion".to_owned())),
            None => {
                return Err(invalid(
                    origin,
                    "cniVersion",
                    format!("{s:?} is not a version"),
                ));
            }
        },
        Some(v) => {
            return Err(invalid(
                origin,
                "cniVersion",
                format!("{} is not a string", kind(v)),
            ));
        }
    }
    match obj.get("cniVersions") {
        None => {}
        Some(Value::Array(a)) => {
            for (i, e) in a.iter().enumerate() {
                let field = format!("cniVersions[{i}]");
                let Value::String(s) = e else {
                    return Err(invalid(
                        origin,
                        &field,
                        format!("{} is not a string", kind(e)),
                    ));
                };
                match Version::parse(s) {
                    Some(v) => all.push((v, field)),
                    None => return Err(invalid(origin, &field, format!("{s:?} is not a version"))),
                }
            }
        }
        Some(v) => {
            return Err(invalid(
                origin,
                "cniVersions",
                format!("{} is not a list", kind(v)),
            ));
        }
    }
    let Some((_, first_field)) = all.first().cloned() else {
        return Err(invalid(
            origin,
            "cniVersion",
            "missing (and no cniVersions)",
        ));
    };
    let mut versions: Vec<Version> = all
        .iter()
        .map(|(v, _)| *v)
        .filter(|v| v.is_supported())
        .collect();
    versions.sort_unstable_by(|a, b| b.cmp(a));
    versions.dedup();
    if versions.is_empty() {
        let listed: Vec<String> = all.iter().map(|(v, _)| v.to_string()).collect();
        let speaks: Vec<String> = SUPPORTED.iter().map(Version::to_string).collect();
        return Err(invalid(
            origin,
            &first_field,
            format!(
                "berth speaks CNI versions {}, none of {}",
                speaks.join(", "),
                listed.join(", ")
            ),
        ));
    }
    Ok(versions)
}

/// `true`/`false`, or the strings "true"/"false" (any case), as libcni reads these flags.
fn read_bool(obj: &Map<String, Value>, key: &str, origin: &str) -> Result<bool> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(invalid(origin, key, format!("{v} is not true or false"))),
    }
}

/// The plugin objects in `<dir>/*.conf`, lexical order (SPEC.md 1.1 aggregation).
fn sibling_plugins(dir: &Path) -> Result<Vec<(String, Map<String, Value>)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CniError::ReadConfig {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf") && p.is_file())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let origin = f.display().to_string();
        let bytes = std::fs::read(&f).map_err(|source| CniError::ReadConfig {
            path: f.clone(),
            source,
        })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => out.push((origin, m)),
            Ok(_) => {
                return Err(invalid(
                    &origin,
                    "",
                    "the plugin configuration is not a JSON object",
                ));
            }
            Err(e) => return Err(invalid(&origin, "", e)),
        }
    }
    Ok(out)
}

/// The configuration files of `dir` in lexical order (none when it does not exist).
pub fn config_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CniError::ReadConfig {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| CONFIG_EXTENSIONS.contains(&x))
                && p.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The network named `name` from the first file that defines it, searching `dirs` in order.
/// Files that cannot be parsed are skipped; when no file defines the network they are named
/// in the error, since one of them may have been meant.
pub fn load(dirs: &[PathBuf], name: &str) -> Result<NetworkConfigList> {
    let mut broken = Vec::new();
    for dir in dirs {
        for file in config_files(dir)? {
            match NetworkConfigList::from_file(&file) {
                Ok(list) if list.name == name => return Ok(list),
                Ok(_) => {}
                Err(e) => broken.push(berth_errdefs::error_chain(&e)),
            }
        }
    }
    Err(CniError::NetworkNotFound {
        name: name.to_owned(),
        dirs: dirs.to_vec(),
        broken,
    })
}

/// Every network in `dirs`, the first of each name (as [`load`] would find it), and the
/// files that could not be read with why.
pub fn load_all(dirs: &[PathBuf]) -> Result<(Vec<NetworkConfigList>, Vec<CniError>)> {
    let mut lists: Vec<NetworkConfigList> = Vec::new();
    let mut broken = Vec::new();
    for dir in dirs {
        for file in config_files(dir)? {
            match NetworkConfigList::from_file(&file) {
                Ok(list) if lists.iter().any(|l| l.name == list.name) => {}
                Ok(list) => lists.push(list),
                Err(e) => broken.push(e),
            }
        }
    }
    Ok((lists, broken))
}

/// A network name or container id as the spec allows: a letter or digit, then letters,
/// digits, `_`, `.` or `-`.
pub(crate) fn valid_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_plugin_type(t: &str) -> bool {
    !t.is_empty() && t != "." && t != ".." && !t.contains(['/', '\\', '\0'])
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn invalid(origin: &str, field: &str, reason: impl std::fmt::Display) -> CniError {
    CniError::InvalidConfig {
        origin: origin.to_owned(),
        field: if field.is_empty() {
            "(whole file)".to_owned()
        } else {
            field.to_owned()
        },
        reason: reason.to_string(),
    }
}
