//! Registry credentials from a Docker-compatible `config.json` and from the `auth.json` of
//! podman, skopeo and buildah (containers/image), with credential helpers.
//!
//! Follows the docker CLI (`cli/config/configfile`, `cli/config/credentials`):
//! - `auths.<key>.auth` is `base64("user:password")`; `identitytoken` beside it is an
//!   OAuth2 refresh token used instead of the password;
//! - `credHelpers.<host>` names a helper for one registry, `credsStore` one for all others;
//!   a helper is the executable `docker-credential-<name>`, run as `get`/`store`/`erase`
//!   with the server URL (or a JSON record) on stdin, as the docker-credential-helpers
//!   protocol says; a `Username` of `<token>` means the secret is an identity token;
//! - keys are compared by host: `https://reg.example/v1/` matches `reg.example`, and Docker
//!   Hub is stored under `https://index.docker.io/v1/` and matches `docker.io`,
//!   `index.docker.io` and `registry-1.docker.io`.
//!
//! A containers `auth.json` ([`FileKind::Containers`]) is read as containers/image reads it
//! (`pkg/docker/config/config.go`, `findCredentialsInFile`): `credHelpers.<registry>` first;
//! then exact keys from the most specific to the registry (`reg/ns/repo`, `reg/ns`, `reg`,
//! so one repository can have its own account); then keys normalised to a host, where only
//! a URL key (`https://reg/v1/`) loses its path and `docker.io`/`registry-1.docker.io`/
//! `index.docker.io` are one. An entry without a user and password (or identity token)
//! does not count. [`CredentialChain`] asks several files in order; the first with
//! credentials wins.
//!
//! Files are written atomically with mode 0600, keeping every key berth does not know.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::{Map, Value};

use crate::secret::Secret;

/// Docker Hub's key in `config.json` and for credential helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// What a helper answers when it has no credentials for a server.
const HELPER_NOT_FOUND: &str = "credentials not found in native keychain";
/// The `Username` a helper returns when the secret is an identity token.
const TOKEN_USERNAME: &str = "<token>";
/// Longest piece of helper output kept in an error.
const MAX_HELPER_OUTPUT: usize = 256;

/// Credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password (or personal access token), sent as Basic auth or to the
    /// token endpoint.
    Basic { username: String, password: Secret },
    /// An OAuth2 refresh token (docker's `identitytoken`), exchanged at the token endpoint.
    IdentityToken { username: String, token: Secret },
}

impl Credential {
    /// The user name, when there is one worth showing.
    pub fn username(&self) -> &str {
        match self {
            Credential::Basic { username, .. } | Credential::IdentityToken { username, .. } => {
                username
            }
        }
    }
}

/// Where credentials come from. Implemented by [`CredentialsConfig`] (docker's
/// `config.json`) and [`StaticCredentials`]; called from a blocking thread, at most once per
/// registry per [`Client`](crate::Client).
pub trait CredentialProvider: Send + Sync + std::fmt::Debug {
    /// Credentials for `registry` (`host[:port]`, `docker.io` for Docker Hub); `Ok(None)`
    /// means anonymous.
    fn get(&self, registry: &str) -> Result<Option<Credential>, CredentialsError>;

    /// Credentials for `repository` on `registry`, for providers with per-repository
    /// entries (an `auth.json` key `registry/namespace/repo`); the default is
    /// [`get`](Self::get). `repository` is `None` for registry-wide requests (`/v2/`).
    fn get_for_repository(
        &self,
        registry: &str,
        repository: Option<&str>,
    ) -> Result<Option<Credential>, CredentialsError> {
        let _ = repository;
        self.get(registry)
    }
}

/// Several credential sources asked in order (docker's `config.json`, then the
/// containers `auth.json` files); the first that has credentials wins. An error stops the
/// lookup, naming the file.
#[derive(Debug, Clone, Default)]
pub struct CredentialChain {
    sources: Vec<std::sync::Arc<dyn CredentialProvider>>,
}

impl CredentialChain {
    /// No sources: anonymous.
    pub fn new() -> CredentialChain {
        CredentialChain::default()
    }

    /// Ask `source` after the sources already added.
    pub fn then(mut self, source: std::sync::Arc<dyn CredentialProvider>) -> CredentialChain {
        self.sources.push(source);
        self
    }
}

impl CredentialProvider for CredentialChain {
    fn get(&self, registry: &str) -> Result<Option<Credential>, CredentialsError> {
        self.get_for_repository(registry, None)
    }

    fn get_for_repository(
        &self,
        registry: &str,
        repository: Option<&str>,
    ) -> Result<Option<Credential>, CredentialsError> {
        for source in &self.sources {
            if let Some(c) = source.get_for_repository(registry, repository)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }
}

/// Credentials given directly (`--username/--password`, tests), by registry host.
#[derive(Debug, Clone, Default)]
pub struct StaticCredentials {
    entries: HashMap<String, Credential>,
}

impl StaticCredentials {
    /// No credentials.
    pub fn new() -> StaticCredentials {
        StaticCredentials::default()
    }

    /// Use `credential` for `registry`.
    pub fn with(mut self, registry: &str, credential: Credential) -> StaticCredentials {
        self.entries.insert(normalize_host(registry), credential);
        self
    }
}

impl CredentialProvider for StaticCredentials {
    fn get(&self, registry: &str) -> Result<Option<Credential>, CredentialsError> {
        Ok(self.entries.get(&normalize_host(registry)).cloned())
    }
}

/// What failed while reading or writing credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("failed to read credentials file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse credentials file {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("credentials file {path} is not a JSON object (or its `{key}` is not)")]
    NotAnObject { path: PathBuf, key: &'static str },
    #[error("invalid `auth` for {key} in {path}: {reason}")]
    InvalidAuth {
        path: PathBuf,
        key: String,
        reason: &'static str,
    },
    #[error("invalid credential helper name {name:?} in {path}")]
    InvalidHelper { path: PathBuf, name: String },
    #[error("credential helper docker-credential-{helper} not found in {dirs:?}")]
    HelperNotFound { helper: String, dirs: Vec<PathBuf> },
    #[error("failed to run docker-credential-{helper} {action}")]
    HelperRun {
        helper: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("docker-credential-{helper} {action} for {server} failed ({status}): {output}")]
    HelperFailed {
        helper: String,
        action: &'static str,
        server: String,
        status: String,
        output: String,
    },
    #[error("docker-credential-{helper} get for {server} printed invalid JSON")]
    HelperOutput {
        helper: String,
        server: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the credential lookup did not complete: {reason}")]
    Interrupted { reason: String },
    #[error("failed to write credentials file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: berth_fsutil::FsError,
    },
}

/// Which tool's rules a credentials file follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileKind {
    /// Docker's `config.json`: keys are registries (`auths`, `credHelpers`, `credsStore`).
    #[default]
    Docker,
    /// The containers `auth.json` (podman, skopeo, buildah): keys may name a namespace or
    /// repository (`reg/ns/repo`); `credHelpers` only.
    Containers,
}

/// Docker's client configuration file (or a containers `auth.json`) and where its
/// credential helpers live.
///
/// The caller chooses the path (`$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`; `$REGISTRY_AUTH_FILE`, …); this library reads no environment
/// variables.
#[derive(Debug, Clone)]
pub struct CredentialsConfig {
    /// The `config.json` file; a missing file means no credentials.
    pub path: PathBuf,
    /// Directories searched for `docker-credential-<name>`; empty means the process's
    /// `PATH` (as `std::process::Command` resolves names).
    pub helper_dirs: Vec<PathBuf>,
    /// How keys are matched.
    pub kind: FileKind,
}

impl CredentialsConfig {
    /// Docker's configuration at `path`, with helpers found on the process's `PATH`.
    pub fn new(path: impl Into<PathBuf>) -> CredentialsConfig {
        CredentialsConfig {
            path: path.into(),
            helper_dirs: Vec::new(),
            kind: FileKind::Docker,
        }
    }

    /// A containers `auth.json` at `path` (read only: `berth login` writes docker's file).
    pub fn containers(path: impl Into<PathBuf>) -> CredentialsConfig {
        CredentialsConfig {
            kind: FileKind::Containers,
            ..CredentialsConfig::new(path)
        }
    }

    /// Look for credential helpers in these directories only.
    pub fn with_helper_dirs(mut self, dirs: Vec<PathBuf>) -> CredentialsConfig {
        self.helper_dirs = dirs;
        self
    }

    /// Store credentials for `registry` (`docker login`): in its credential helper when one
    /// is configured (leaving an empty `auths` entry in the file, as docker does), else as
    /// `auths.<key>.auth`.
    pub fn login(
        &self,
        registry: &str,
        username: &str,
        password: &Secret,
    ) -> Result<(), CredentialsError> {
        let mut root = self.load()?;
        let key = config_key(registry);
        let helper = self.helper_for(&root, registry)?;
        let entry = match &helper {
            Some(h) => {
                let record = serde_json::json!({
                    "ServerURL": key,
                    "Username": username,
                    "Secret": password.expose(),
                });
                self.run_helper(h, "store", &key, record.to_string().as_bytes())?;
                Map::new()
            }
            None => {
                let mut m = Map::new();
                let auth = STANDARD.encode(format!("{username}:{}", password.expose()));
                m.insert("auth".into(), Value::String(auth));
                m
            }
        };
        let auths = self.object_mut(&mut root, "auths")?;
        auths.retain(|k, _| k == &key || !same_registry(k, registry));
        auths.insert(key, Value::Object(entry));
        self.save(&root)
    }

    /// Forget the credentials for `registry` (`docker logout`): erase them from its helper
    /// and remove its `auths` entries. Returns whether anything was removed.
    pub fn logout(&self, registry: &str) -> Result<bool, CredentialsError> {
        let mut root = self.load()?;
        let key = config_key(registry);
        let mut removed = false;
        if let Some(h) = self.helper_for(&root, registry)? {
            match self.run_helper(&h, "erase", &key, key.as_bytes()) {
                Ok(_) => removed = true,
                Err(CredentialsError::HelperFailed { output, .. })
                    if output.trim() == HELPER_NOT_FOUND => {}
                Err(e) => return Err(e),
            }
        }
        let auths = self.object_mut(&mut root, "auths")?;
        let before = auths.len();
        auths.retain(|k, _| !same_registry(k, registry));
        if auths.len() != before {
            removed = true;
            self.save(&root)?;
        }
        Ok(removed)
    }

    /// The parsed file; `{}` when it does not exist or is empty.
    fn load(&self) -> Result<Value, CredentialsError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Value::Object(Map::new()));
            }
            Err(source) => {
                return Err(CredentialsError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Map::new()));
        }
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|source| CredentialsError::Parse {
                path: self.path.clone(),
                source,
            })?;
        if !v.is_object() {
            return Err(CredentialsError::NotAnObject {
                path: self.path.clone(),
                key: "(root)",
            });
        }
        Ok(v)
    }

    /// `root[key]` as an object, created when missing.
    fn object_mut<'a>(
        &self,
        root: &'a mut Value,
        key: &'static str,
    ) -> Result<&'a mut Map<String, Value>, CredentialsError> {
        let not_object = || CredentialsError::NotAnObject {
            path: self.path.clone(),
            key,
        };
        let map = root.as_object_mut().ok_or_else(not_object)?;
        map.entry(key)
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or_else(not_object)
    }

    /// Write the file atomically, mode 0600, through a symlink as docker does.
    fn save(&self, root: &Value) -> Result<(), CredentialsError> {
        let dest = match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.file_type().is_symlink() => {
                std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone())
            }
            _ => self.path.clone(),
        };
        let mut data = serde_json::to_vec_pretty(root).unwrap_or_default();
        data.push(b'\n');
        write_private(&dest, &data).map_err(|source| CredentialsError::Write { path: dest, source })
    }

    /// The helper configured for `registry`: `credHelpers` by host, else `credsStore`.
    fn helper_for(&self, root: &Value, registry: &str) -> Result<Option<String>, CredentialsError> {
        if self.kind == FileKind::Containers {
            let name = root
                .get("credHelpers")
                .and_then(Value::as_object)
                .and_then(|m| m.get(registry))
                .and_then(Value::as_str);
            return self.checked_helper(name);
        }
        let by_host = root
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|m| {
                m.get(&config_key(registry)).or_else(|| {
                    m.iter()
                        .find(|(k, _)| same_registry(k, registry))
                        .map(|(_, v)| v)
                })
            })
            .and_then(Value::as_str);
        let name = by_host.or_else(|| root.get("credsStore").and_then(Value::as_str));
        self.checked_helper(name)
    }

    /// A helper name from the file, refused when it could name another program.
    fn checked_helper(&self, name: Option<&str>) -> Result<Option<String>, CredentialsError> {
        match name {
            None | Some("") => Ok(None),
            Some(n) if n.contains('/') || n.contains('\0') => {
                Err(CredentialsError::InvalidHelper {
                    path: self.path.clone(),
                    name: n.to_owned(),
                })
            }
            Some(n) => Ok(Some(n.to_owned())),
        }
    }

    fn helper_program(&self, helper: &str) -> Result<PathBuf, CredentialsError> {
        let name = format!("docker-credential-{helper}");
        if self.helper_dirs.is_empty() {
            return Ok(PathBuf::from(name));
        }
        self.helper_dirs
            .iter()
            .map(|d| d.join(&name))
            .find(|p| p.is_file())
            .ok_or_else(|| CredentialsError::HelperNotFound {
                helper: helper.to_owned(),
                dirs: self.helper_dirs.clone(),
            })
    }

    /// Run `docker-credential-<helper> <action>` with `input` on stdin; its stdout on success.
    fn run_helper(
        &self,
        helper: &str,
        action: &'static str,
        server: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, CredentialsError> {
        let run_err = |source| CredentialsError::HelperRun {
            helper: helper.to_owned(),
            action,
            source,
        };
        let mut child = Command::new(self.helper_program(helper)?)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(run_err)?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading its input is judged by its exit status.
            let _ = stdin.write_all(input);
        }
        let out = child.wait_with_output().map_err(run_err)?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let text = if out.stdout.is_empty() {
            &out.stderr
        } else {
            &out.stdout
        };
        let mut output = String::from_utf8_lossy(text).trim().to_owned();
        if output.len() > MAX_HELPER_OUTPUT {
            let cut = (0..=MAX_HELPER_OUTPUT)
                .rev()
                .find(|i| output.is_char_boundary(*i))
                .unwrap_or(0);
            output.truncate(cut);
            output.push('…');
        }
        Err(CredentialsError::HelperFailed {
            helper: helper.to_owned(),
            action,
            server: server.to_owned(),
            status: out.status.to_string(),
            output,
        })
    }

    fn get_from_helper(
        &self,
        helper: &str,
        registry: &str,
    ) -> Result<Option<Credential>, CredentialsError> {
        let key = config_key(registry);
        let stdout = match self.run_helper(helper, "get", &key, key.as_bytes()) {
            Ok(out) => out,
            Err(CredentialsError::HelperFailed { output, .. })
                if output.trim() == HELPER_NOT_FOUND =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        #[derive(serde::Deserialize)]
        struct HelperCreds {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let c: HelperCreds =
            serde_json::from_slice(&stdout).map_err(|source| CredentialsError::HelperOutput {
                helper: helper.to_owned(),
                server: key,
                source,
            })?;
        Ok(make_credential(c.username, c.secret, None))
    }

    fn get_from_file(
        &self,
        root: &Value,
        registry: &str,
        repository: Option<&str>,
    ) -> Result<Option<Credential>, CredentialsError> {
        let Some(auths) = root.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        let found = match self.kind {
            FileKind::Docker => {
                let key = config_key(registry);
                auths
                    .get_key_value(&key)
                    .or_else(|| auths.iter().find(|(k, _)| same_registry(k, registry)))
            }
            FileKind::Containers => containers_keys(registry, repository)
                .iter()
                .find_map(|k| auths.get_key_value(k.as_str()))
                .or_else(|| {
                    let want = containers_normalize(registry);
                    auths.iter().find(|(k, _)| containers_normalize(k) == want)
                }),
        };
        let Some((k, entry)) = found else {
            return Ok(None);
        };
        let field = |name: &str| {
            entry
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let (mut username, mut password) = (field("username"), field("password"));
        let auth = field("auth");
        if !auth.is_empty() {
            let invalid = |reason| CredentialsError::InvalidAuth {
                path: self.path.clone(),
                key: k.clone(),
                reason,
            };
            let decoded = STANDARD
                .decode(auth.trim())
                .or_else(|_| STANDARD_NO_PAD.decode(auth.trim()))
                .map_err(|_| invalid("not base64"))?;
            let text = String::from_utf8(decoded).map_err(|_| invalid("not UTF-8"))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| invalid("no `:` between user and password"))?;
            username = u.to_owned();
            password = p.trim_end_matches('\0').to_owned();
        }
        let identity = Some(field("identitytoken")).filter(|t| !t.is_empty());
        Ok(make_credential(username, password, identity))
    }
}

impl CredentialProvider for CredentialsConfig {
    fn get(&self, registry: &str) -> Result<Option<Credential>, CredentialsError> {
        self.get_for_repository(registry, None)
    }

    fn get_for_repository(
        &self,
        registry: &str,
        repository: Option<&str>,
    ) -> Result<Option<Credential>, CredentialsError> {
        let root = self.load()?;
        let found = match self.helper_for(&root, registry)? {
            Some(h) => self.get_from_helper(&h, registry)?,
            None => self.get_from_file(&root, registry, repository)?,
        };
        // containers/image moves on to the next file unless the entry has a user and a
        // password, or an identity token.
        Ok(found.filter(|c| {
            self.kind == FileKind::Docker
                || match c {
                    Credential::Basic { username, password } => {
                        !username.is_empty() && !password.expose().is_empty()
                    }
                    Credential::IdentityToken { .. } => true,
                }
        }))
    }
}

/// The exact `auth.json` keys for `repository` on `registry`, most specific first:
/// `reg/ns/repo`, `reg/ns`, `reg` (containers/image `authKeyLookupOrder`).
fn containers_keys(registry: &str, repository: Option<&str>) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(repo) = repository {
        let mut name = format!("{registry}/{repo}");
        loop {
            keys.push(name.clone());
            match name.rfind('/') {
                Some(i) if i > registry.len() => name.truncate(i),
                _ => break,
            }
        }
    }
    keys.push(registry.to_owned());
    keys
}

/// An `auth.json` key as a registry host for the fallback match (containers/image
/// `normalizeAuthFileKey`): a URL loses its scheme and path, a plain key is kept whole
/// (so `reg/ns` never matches the registry `reg`), Docker Hub's names are one.
fn containers_normalize(key: &str) -> String {
    let stripped = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"));
    let host = match stripped {
        Some(rest) => rest.split('/').next().unwrap_or(rest),
        None => key,
    };
    match host {
        "registry-1.docker.io" | "docker.io" | "index.docker.io" => "docker.io".to_owned(),
        h => h.to_owned(),
    }
}

fn make_credential(
    username: String,
    secret: String,
    identity: Option<String>,
) -> Option<Credential> {
    if let Some(token) = identity {
        return Some(Credential::IdentityToken {
            username,
            token: Secret::new(token),
        });
    }
    if username == TOKEN_USERNAME && !secret.is_empty() {
        return Some(Credential::IdentityToken {
            username,
            token: Secret::new(secret),
        });
    }
    if username.is_empty() && secret.is_empty() {
        return None;
    }
    Some(Credential::Basic {
        username,
        password: Secret::new(secret),
    })
}

/// Write `data` to `dest` atomically with mode 0600.
fn write_private(dest: &Path, data: &[u8]) -> Result<(), berth_fsutil::FsError> {
    use std::os::unix::fs::PermissionsExt;
    let mut f = berth_fsutil::AtomicFile::create(dest)?;
    let temp = f.temp_path().to_owned();
    let write_err = |source| berth_fsutil::FsError::Write {
        path: temp.clone(),
        source,
    };
    if let Some(file) = f.file() {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(write_err)?;
    }
    f.write_all(data).map_err(write_err)?;
    f.commit()?;
    Ok(())
}

/// The key docker uses for `registry` in `config.json` and with helpers: the host, or
/// [`DOCKER_HUB_KEY`] for Docker Hub.
pub fn config_key(registry: &str) -> String {
    let host = normalize_host(registry);
    if host == "docker.io" {
        DOCKER_HUB_KEY.to_owned()
    } else {
        host
    }
}

/// The registry host a `config.json` key or a registry name designates: scheme and path
/// removed (docker's `ConvertToHostname`), Docker Hub's aliases mapped to `docker.io`.
pub fn normalize_host(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_owned(),
        _ => host,
    }
}

fn same_registry(key: &str, registry: &str) -> bool {
    normalize_host(key) == normalize_host(registry)
}

#[cfg(test)]
mod tests;
