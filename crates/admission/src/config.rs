//! The webhook's configuration: a TOML file (`berth admission serve --config FILE`); flags
//! override `listen` and the TLS files. Relative paths are relative to the file's directory.
//!
//! ```toml
//! listen = "0.0.0.0:8443"          # default
//! tls_cert = "tls.crt"             # reloaded when it changes; required unless listen is loopback
//! tls_key = "tls.key"
//! policy = "policy.json"           # berth.policy/v1 (required); with the trust store and the
//!                                  # labels, re-read every 10 s by `berth admission serve`
//! trust_store = "truststore"       # notation layout: x509/{ca,signingAuthority,tsa}/NAME (required)
//! default = "deny"                 # an image no rule applies to: deny (default) | allow
//! mode = "enforce"                 # enforce | audit (admit, report as warnings)
//! exclude_namespaces = ["berth-system", "kube-system", "kube-public", "kube-node-lease"]
//! namespace_labels = "namespaces.json"   # {"NAME": {"label": "value"}} for namespaceSelector rules
//! timeout = "9s"                   # the longest a review may take (the API server's ?timeout=
//!                                  # minus a margin lowers it)
//! max_signatures = 100             # signatures evaluated per image at most
//! [cache]
//! ttl = "10m"
//! max_entries = 100000
//! [kubernetes]                     # instead of namespace_labels: ask the API server
//! namespace_labels = true          # GET /api/v1/namespaces with the service account
//! image_pull_secrets = false       # default; true: registry credentials from the object's
//!                                  # imagePullSecrets (needs `get` on Secrets, see below)
//! api_server = "https://10.96.0.1:443"   # default: in the cluster, from KUBERNETES_SERVICE_HOST/PORT
//! token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token"   # default
//! ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"     # default
//! [registry]
//! docker_config = "config.json"    # registry credentials (docker's format)
//! ca_file = "ca.crt"               # more CA certificates for registries (PEM)
//! plain_http = ["127.0.0.1:5000"]  # registries reached over plain HTTP
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The default listen address: every interface (the API server reaches the webhook through a
/// Service), TLS required.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8443";
/// Namespaces never checked besides the webhook's own, as Kyverno's default resource filters:
/// the control plane's.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];
/// The webhook's own namespace when `POD_NAMESPACE` is not set.
pub const DEFAULT_OWN_NAMESPACE: &str = "berth-system";
/// The default longest review: under the API server's default (and maximum) 10 s and 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(9);
/// What is kept back from the API server's `?timeout=` so the answer arrives in time.
pub const TIMEOUT_MARGIN: Duration = Duration::from_millis(500);
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(600);
pub const DEFAULT_CACHE_ENTRIES: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read {what} {path}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid admission config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid admission config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("invalid namespace labels file {path}: {message}")]
    Labels { path: PathBuf, message: String },
}

/// What to do with an image no rule of the policy applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    #[default]
    Deny,
    Allow,
}

/// Whether denials are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    /// Admit everything, reporting what would have been denied as `response.warnings`.
    Audit,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    policy: Option<PathBuf>,
    trust_store: Option<PathBuf>,
    #[serde(default)]
    default: DefaultAction,
    #[serde(default)]
    mode: Mode,
    exclude_namespaces: Option<Vec<String>>,
    namespace_labels: Option<PathBuf>,
    timeout: Option<String>,
    max_signatures: Option<usize>,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    registry: RawRegistry,
    #[serde(default)]
    kubernetes: RawKubernetes,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKubernetes {
    #[serde(default)]
    namespace_labels: bool,
    #[serde(default)]
    image_pull_secrets: bool,
    api_server: Option<String>,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
}

/// The service account's token and the cluster's CA, where Kubernetes mounts them in a Pod.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
pub const SERVICE_ACCOUNT_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// Where the API server is and how to authenticate to it: for namespace labels
/// (`[kubernetes] namespace_labels = true`) and for image pull secrets
/// (`[kubernetes] image_pull_secrets = true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeLabels {
    /// `https://HOST:PORT`; `None`: the caller fills it in (in a cluster, from
    /// `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`).
    pub api_server: Option<String>,
    pub token_file: PathBuf,
    pub ca_file: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    ttl: Option<String>,
    max_entries: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    docker_config: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    #[serde(default)]
    plain_http: Vec<String>,
}

/// The checked configuration, paths made absolute against the file's directory.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub policy: PathBuf,
    pub trust_store: PathBuf,
    pub default: DefaultAction,
    pub mode: Mode,
    /// `None`: the defaults ([`SYSTEM_NAMESPACES`] and the webhook's own namespace, which the
    /// caller knows).
    pub exclude_namespaces: Option<Vec<String>>,
    pub namespace_labels: Option<PathBuf>,
    /// Namespace labels from the API server instead of a file.
    pub kube_labels: Option<KubeLabels>,
    /// Registry credentials from the reviewed object's `imagePullSecrets`, read from the API
    /// server (`[kubernetes] image_pull_secrets = true`; off by default because it needs
    /// `get` on Secrets in every namespace the webhook reviews).
    pub image_pull_secrets: Option<KubeLabels>,
    pub timeout: Duration,
    pub max_signatures: usize,
    pub cache_ttl: Duration,
    pub cache_max_entries: usize,
    pub docker_config: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub plain_http: Vec<String>,
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            what: "admission config",
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            ConfigError::Invalid { message, .. } => ConfigError::Invalid {
                path: path.to_path_buf(),
                message,
            },
            e => e,
        })
    }

    /// Parses config text whose relative paths are relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.message().to_string(),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: PathBuf::new(),
            message,
        };
        let abs = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let policy = raw
            .policy
            .map(abs)
            .ok_or_else(|| invalid("`policy` (the berth.policy/v1 file) is required".into()))?;
        let trust_store = raw.trust_store.map(abs).ok_or_else(|| {
            invalid("`trust_store` (the notation trust store directory) is required".into())
        })?;
        if raw.tls_cert.is_some() != raw.tls_key.is_some() {
            return Err(invalid(
                "`tls_cert` and `tls_key` go together: give both or neither".into(),
            ));
        }
        let listen = match raw.listen {
            Some(l) => l,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|_| invalid("bad default listen address".into()))?,
        };
        let timeout = match raw.timeout {
            Some(t) => parse_duration(&t).map_err(|e| invalid(format!("timeout: {e}")))?,
            None => DEFAULT_TIMEOUT,
        };
        if timeout.is_zero() || timeout > Duration::from_secs(30) {
            return Err(invalid(
                "timeout must be more than 0 and at most 30s (the API server waits 30s at most)"
                    .into(),
            ));
        }
        let cache_ttl = match raw.cache.ttl {
            Some(t) => parse_duration(&t).map_err(|e| invalid(format!("cache.ttl: {e}")))?,
            None => DEFAULT_CACHE_TTL,
        };
        if raw.kubernetes.namespace_labels && raw.namespace_labels.is_some() {
            return Err(invalid(
                "namespace labels come from a file (namespace_labels) or from the API server ([kubernetes] namespace_labels = true), not both".into(),
            ));
        }
        let kube_api = KubeLabels {
            api_server: raw.kubernetes.api_server.clone(),
            token_file: raw
                .kubernetes
                .token_file
                .clone()
                .map(abs)
                .unwrap_or_else(|| PathBuf::from(SERVICE_ACCOUNT_TOKEN)),
            ca_file: raw
                .kubernetes
                .ca_file
                .clone()
                .map(abs)
                .unwrap_or_else(|| PathBuf::from(SERVICE_ACCOUNT_CA)),
        };
        let kube_labels = raw.kubernetes.namespace_labels.then(|| kube_api.clone());
        let image_pull_secrets = raw.kubernetes.image_pull_secrets.then_some(kube_api);
        let max_signatures = raw
            .max_signatures
            .unwrap_or(berth_trust::repository::DEFAULT_MAX_SIGNATURES);
        if max_signatures == 0 {
            return Err(invalid("max_signatures must be at least 1".into()));
        }
        Ok(Config {
            listen,
            tls_cert: raw.tls_cert.map(abs),
            tls_key: raw.tls_key.map(abs),
            policy,
            trust_store,
            default: raw.default,
            mode: raw.mode,
            exclude_namespaces: raw.exclude_namespaces,
            namespace_labels: raw.namespace_labels.map(abs),
            kube_labels,
            image_pull_secrets,
            timeout,
            max_signatures,
            cache_ttl,
            cache_max_entries: raw.cache.max_entries.unwrap_or(DEFAULT_CACHE_ENTRIES),
            docker_config: raw.registry.docker_config.map(abs),
            ca_file: raw.registry.ca_file.map(abs),
            plain_http: raw.registry.plain_http,
        })
    }

    /// The namespaces never checked: the configured list, else [`SYSTEM_NAMESPACES`] and
    /// `own_namespace`.
    pub fn excluded(&self, own_namespace: &str) -> Vec<String> {
        match &self.exclude_namespaces {
            Some(l) => l.clone(),
            None => SYSTEM_NAMESPACES
                .iter()
                .map(|s| s.to_string())
                .chain(std::iter::once(own_namespace.to_string()))
                .collect(),
        }
    }
}

/// Namespace name → labels, as the mapping file gives them.
pub type NamespaceLabels = BTreeMap<String, BTreeMap<String, String>>;

/// Reads the namespace labels file (`{"NAME": {"label": "value"}}`).
pub fn load_namespace_labels(path: &Path) -> Result<NamespaceLabels, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        what: "namespace labels",
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ConfigError::Labels {
        path: path.to_path_buf(),
        message: format!("{e}; expected {{\"NAMESPACE\": {{\"LABEL\": \"VALUE\"}}}}"),
    })
}

/// A duration as Go writes them (`500ms`, `90s`, `10m`, `1h`, `1m30s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    berth_oci::timefmt::parse_go_duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_and_defaults() {
        let c = Config::parse(
            "policy = \"policy.json\"\ntrust_store = \"/etc/ts\"\ntls_cert = \"tls.crt\"\ntls_key = \"tls.key\"\n[cache]\nttl = \"2m\"\n[registry]\nplain_http = [\"127.0.0.1:5000\"]\n",
            Path::new("/etc/berth"),
        )
        .unwrap();
        assert_eq!(c.policy, Path::new("/etc/berth/policy.json"));
        assert_eq!(c.trust_store, Path::new("/etc/ts"));
        assert_eq!(c.tls_cert.as_deref(), Some(Path::new("/etc/berth/tls.crt")));
        assert_eq!(c.default, DefaultAction::Deny);
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(c.cache_ttl, Duration::from_secs(120));
        assert_eq!(c.cache_max_entries, DEFAULT_CACHE_ENTRIES);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.plain_http, ["127.0.0.1:5000"]);
        assert_eq!(c.image_pull_secrets, None, "off by default");
        assert_eq!(
            c.excluded("berth"),
            ["kube-system", "kube-public", "kube-node-lease", "berth"]
        );
    }

    #[test]
    fn refuses_what_it_does_not_know_or_cannot_use() {
        let base = Path::new("/");
        let ok = "policy = \"p\"\ntrust_store = \"t\"\n";
        for (extra, want) in [
            ("polcy = \"x\"\n", "unknown field"),
            ("default = \"maybe\"\n", "unknown variant"),
            ("tls_cert = \"c\"\n", "go together"),
            ("timeout = \"0s\"\n", "timeout must be"),
            ("timeout = \"31s\"\n", "timeout must be"),
            ("timeout = \"5parsecs\"\n", "unknown unit"),
            ("max_signatures = 0\n", "at least 1"),
            (
                "namespace_labels = \"n.json\"\n[kubernetes]\nnamespace_labels = true\n",
                "not both",
            ),
        ] {
            let e = Config::parse(&format!("{ok}{extra}"), base).unwrap_err();
            assert!(e.to_string().contains(want), "{extra}: {e}");
        }
        let e = Config::parse("trust_store = \"t\"\n", base).unwrap_err();
        assert!(e.to_string().contains("`policy`"), "{e}");
    }

    #[test]
    fn image_pull_secrets_use_the_api_server_settings() {
        let c = Config::parse(
            "policy = \"p\"\ntrust_store = \"t\"\n[kubernetes]\nimage_pull_secrets = true\napi_server = \"https://10.0.0.1:6443\"\ntoken_file = \"token\"\n",
            Path::new("/etc/berth"),
        )
        .unwrap();
        assert_eq!(c.kube_labels, None, "namespace labels stay off");
        let k = c.image_pull_secrets.unwrap();
        assert_eq!(k.api_server.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(k.token_file, Path::new("/etc/berth/token"));
        assert_eq!(k.ca_file, Path::new(SERVICE_ACCOUNT_CA));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("10").is_err(), "a unit is required");
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("m").is_err());
    }
}
