//! Where berth keeps its data: `--data`, else `$XDG_DATA_HOME/berth`, else `/var/lib/berth`
//! for root, else `~/.local/share/berth`.

#![expect(
    clippy::disallowed_methods,
    reason = "binaries read the environment; libraries take configuration as arguments"
)]
use std::path::PathBuf;
use std::sync::Arc;

use berth_distribution::{CredentialChain, CredentialsConfig};

pub fn data_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(d) = flag {
        return Ok(d);
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("berth"));
    }
    if crate::rootless::caller_euid() == 0 {
        return Ok(PathBuf::from("/var/lib/berth"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/berth")),
        None => anyhow::bail!(
            "cannot choose a data directory: HOME and XDG_DATA_HOME are unset\nhint: pass --data DIR"
        ),
    }
}

/// Docker's client configuration: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn docker_config() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("config.json"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".docker/config.json")),
        None => anyhow::bail!(
            "cannot find docker's config.json: HOME and DOCKER_CONFIG are unset\nhint: set DOCKER_CONFIG to a directory"
        ),
    }
}

/// The containers `auth.json` files podman, skopeo and buildah read, in the order
/// containers/image reads them (`getAuthFilePaths`): `$REGISTRY_AUTH_FILE` alone when set
/// (as their `--authfile`); else `$XDG_RUNTIME_DIR/containers/auth.json` (or
/// `/run/containers/$UID/auth.json` without `XDG_RUNTIME_DIR`), then
/// `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/containers/auth.json`).
pub fn containers_auth_files() -> Vec<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(f) = var("REGISTRY_AUTH_FILE") {
        return vec![PathBuf::from(f)];
    }
    let mut files = vec![match var("XDG_RUNTIME_DIR") {
        Some(d) => PathBuf::from(d).join("containers/auth.json"),
        None => PathBuf::from(format!(
            "/run/containers/{}/auth.json",
            crate::rootless::caller_euid()
        )),
    }];
    if let Some(d) = var("XDG_CONFIG_HOME") {
        files.push(PathBuf::from(d).join("containers/auth.json"));
    } else if let Some(h) = var("HOME") {
        files.push(PathBuf::from(h).join(".config/containers/auth.json"));
    }
    files
}

/// Where registry credentials come from: docker's `config.json` (which `berth login`
/// writes) first, then the containers `auth.json` files.
pub fn credentials() -> anyhow::Result<CredentialChain> {
    let mut chain = CredentialChain::new().then(Arc::new(CredentialsConfig::new(docker_config()?)));
    for f in containers_auth_files() {
        chain = chain.then(Arc::new(CredentialsConfig::containers(f)));
    }
    Ok(chain)
}

/// Where runtimes given by name (`--runtime runc`) are looked for: `PATH`, then the sbin
/// directories root's `PATH` has (runc is `/usr/sbin/runc` on Debian).
pub fn search_path() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    dirs.extend(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from));
    dirs
}

/// The caller's environment, for `-e KEY` without a value (as docker's client reads its own).
pub fn host_env() -> std::collections::BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// berth's configuration directory: `$XDG_CONFIG_HOME/berth`, else `/etc/berth` for root,
/// else `~/.config/berth` (networks live in its `networks/`).
pub fn config_dir() -> anyhow::Result<PathBuf> {
    xdg_dir(
        "XDG_CONFIG_HOME",
        "/etc/berth",
        ".config/berth",
        "configuration",
    )
}

/// `$VAR/berth`, else `root_path` for root, else `~/home_rel`.
fn xdg_dir(var: &str, root_path: &str, home_rel: &str, what: &str) -> anyhow::Result<PathBuf> {
    if let Some(x) = std::env::var_os(var).filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("berth"));
    }
    if crate::rootless::caller_euid() == 0 {
        return Ok(PathBuf::from(root_path));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(home_rel)),
        None => anyhow::bail!("cannot choose a {what} directory: HOME and {var} are unset"),
    }
}

/// berth's cache directory: `$XDG_CACHE_HOME/berth`, else `/var/cache/berth` for root, else
/// `~/.cache/berth` (CRLs live in its `crl/`).
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    xdg_dir(
        "XDG_CACHE_HOME",
        "/var/cache/berth",
        ".cache/berth",
        "cache",
    )
}

/// Where CNI plugins are looked for: `$CNI_PATH` (colon-separated) when set, else Debian's
/// `/usr/lib/cni` and the upstream `/opt/cni/bin`.
pub fn cni_plugin_dirs() -> Vec<PathBuf> {
    match std::env::var_os("CNI_PATH").filter(|p| !p.is_empty()) {
        Some(p) => std::env::split_paths(&p).collect(),
        None => vec![PathBuf::from("/usr/lib/cni"), PathBuf::from("/opt/cni/bin")],
    }
}

/// The `AWS_*` variables and `HOME`, which the S3 driver reads credentials and settings
/// from as the AWS CLI does.
pub fn aws_env() -> berth_registry::storage::s3::AwsEnv {
    berth_registry::storage::s3::AwsEnv {
        vars: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("AWS_"))
            .collect(),
        home: std::env::var_os("HOME").map(PathBuf::from),
    }
}
