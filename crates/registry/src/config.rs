//! Registry configuration: a TOML file (`--config FILE`) whose every key has a locked-down
//! default; command-line flags override it.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:5000"
//! tls_cert = "/etc/berth/tls.crt"       # both or neither
//! tls_key = "/etc/berth/tls.key"
//! insecure_anonymous = false            # allow a non-loopback listener without auth
//! metrics_listen = "127.0.0.1:9090"     # serve /metrics here instead, without auth; loopback
//!                                       # only (unset: /metrics on `listen`, behind auth)
//!
//! [storage]
//! root = "/var/lib/berth/registry"      # created 0700; every file in it is 0600
//! delete_enabled = true                 # false: DELETE answers 405 UNSUPPORTED
//! max_manifest_bytes = 4194304          # larger manifests are refused with 413
//! max_upload_bytes = 10737418240        # larger blob uploads: 413 SIZE_INVALID, data removed
//! min_free_bytes = 268435456            # below this much free space (statvfs of the root),
//!                                       # uploads and manifest pushes get 503 UNAVAILABLE
//!                                       # with Retry-After; 0 turns the check off
//!                                       # (filesystem only: object storage has no limit)
//! driver = "filesystem"                 # or "s3": every replica on one bucket is one registry
//!
//! [storage.s3]                          # with driver = "s3"
//! bucket = "registry"
//! region = "us-east-1"                  # unset: AWS_REGION, else us-east-1
//! endpoint = "https://s3.example.com"   # an S3-compatible service (unset: AWS)
//! prefix = "berth"                      # keys under this prefix
//! path_style = false                    # true: endpoint/bucket/key (most self-hosted services)
//! allow_http = false                    # true allows an http:// endpoint
//! ca_file = "/etc/berth/s3-ca.pem"      # extra CA certificates for the endpoint
//! part_size = 8388608                   # multipart part size, 5 MiB to 5 GiB
//! read_ahead = 4                        # a large read's ranged GETs (a part, at most
//!                                       # 16 MiB, each) fetched at once ahead of the one
//!                                       # sent; 0: one GET per object; at most 32
//! read_ahead_below = 256                # MiB/s: a large read goes ranged only when its
//!                                       # first window came slower (one connection
//!                                       # capped, as on AWS); faster, the rest is one GET
//!                                       # (a server nearby); 0: always ranged
//! redirect = false                      # blob GETs redirect to presigned URLs
//! # credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN), else
//! # ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE), else web identity or
//! # instance metadata
//!
//! [storage.cache]                       # in-process read cache of blob data only (sizes,
//!                                       # and bytes of small blobs: manifests, configs);
//!                                       # never tags or links, so replicas stay consistent
//! max_bytes = 67108864                  # total, each entry charged 256 bytes + content;
//!                                       # 0 turns the cache off
//! max_entries = 65536                   # entries; 0 turns the cache off
//! max_entry_bytes = 4194304             # larger content is not kept (its size is); 0: sizes only
//! disk_max_bytes = 1073741824           # with driver = "s3": larger blobs' bytes kept on this
//!                                       # machine's disk as GETs stream them, so hot layers are
//!                                       # served from here; a blob over a quarter of it is not
//!                                       # kept; 0 turns the disk tier off
//! disk_dir = "/var/cache/berth-blobs"   # where (unset: <data>/registry/blobcache); one process
//!                                       # per directory, emptied at every start
//!
//! [gc]
//! grace_secs = 3600                     # never collect a blob younger than this
//! upload_expiry_secs = 3600             # uploads idle longer than this are abandoned: removed
//!                                       # by `berth registry gc` and by the server itself
//! upload_purge_interval_secs = 600      # how often the server removes abandoned uploads
//!                                       # (0: never; `berth registry gc` still does)
//!
//! [auth]
//! htpasswd = "/etc/berth/htpasswd"      # enables auth (basic and bearer tokens), which
//!                                       # `/metrics` then requires too (any valid user)
//! ```
//!
//! An upload that fails while writing (storage full, I/O error, over `max_upload_bytes`)
//! is removed at once; one whose client went away mid-request stays resumable until it has
//! been idle for `upload_expiry_secs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::auth::AuthConfig;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
pub const DEFAULT_MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 10 * 1024 * 1024 * 1024;
pub const DEFAULT_MIN_FREE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub gc: GcConfig,
    pub auth: AuthConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub insecure_anonymous: bool,
    /// A separate loopback-only listener for `/metrics` (then not served on `listen`).
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            tls_cert: None,
            tls_key: None,
            insecure_anonymous: false,
            metrics_listen: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Where the registry keeps its data; the binary fills this in from the data directory.
    pub root: Option<PathBuf>,
    pub delete_enabled: bool,
    pub max_manifest_bytes: u64,
    /// The largest blob one upload session may hold.
    pub max_upload_bytes: u64,
    /// Free space (bytes) below which writes are refused with 503; 0 disables the check.
    pub min_free_bytes: u64,
    /// Where blobs and manifests live.
    pub driver: DriverKind,
    /// The bucket, with `driver = "s3"`.
    pub s3: Option<crate::storage::s3::S3Config>,
    /// The read cache of blob data (`[storage.cache]`).
    pub cache: CacheConfig,
}

/// `storage.driver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// Files under the data directory.
    #[default]
    Filesystem,
    /// An S3-compatible bucket (`[storage.s3]`), which several replicas may share.
    S3,
}

/// `[storage.cache]`: the bounds of [`crate::storage::cache::BlobCache`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub max_bytes: u64,
    pub max_entries: usize,
    pub max_entry_bytes: u64,
    /// The disk tier's bound (`crate::storage::disk_cache`), over object storage only; 0: off.
    pub disk_max_bytes: u64,
    /// The disk tier's directory (unset: `<root>/blobcache`).
    pub disk_dir: Option<PathBuf>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig::from(crate::storage::CacheLimits::default())
    }
}

impl From<crate::storage::CacheLimits> for CacheConfig {
    fn from(l: crate::storage::CacheLimits) -> Self {
        CacheConfig {
            max_bytes: l.max_bytes,
            max_entries: l.max_entries,
            max_entry_bytes: l.max_entry_bytes,
            disk_max_bytes: crate::storage::disk_cache::DEFAULT_MAX_BYTES,
            disk_dir: None,
        }
    }
}

impl CacheConfig {
    pub fn limits(&self) -> crate::storage::CacheLimits {
        crate::storage::CacheLimits {
            max_bytes: self.max_bytes,
            max_entries: self.max_entries,
            max_entry_bytes: self.max_entry_bytes,
        }
    }
}

impl StorageConfig {
    /// Where the disk tier of the read cache lives, when it is on: only over object
    /// storage (a filesystem root is local already), with a bound, and a directory given or
    /// a root to put it under.
    pub fn disk_cache_dir(&self) -> Option<PathBuf> {
        if self.driver != DriverKind::S3 || self.cache.disk_max_bytes == 0 {
            return None;
        }
        self.cache
            .disk_dir
            .clone()
            .or_else(|| self.root.as_ref().map(|r| r.join("blobcache")))
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            root: None,
            delete_enabled: true,
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
            driver: DriverKind::Filesystem,
            s3: None,
            cache: CacheConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcConfig {
    pub grace_secs: u64,
    pub upload_expiry_secs: u64,
    pub upload_purge_interval_secs: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            grace_secs: 3600,
            upload_expiry_secs: 3600,
            upload_purge_interval_secs: 600,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Check the combination of settings: refuse what would expose an open registry.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (&self.server.tls_cert, &self.server.tls_key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "tls_cert and tls_key must be given together".into(),
                ));
            }
            _ => {}
        }
        if self.storage.max_manifest_bytes < DEFAULT_MAX_MANIFEST_BYTES {
            return Err(ConfigError::Invalid(format!(
                "max_manifest_bytes must be at least {DEFAULT_MAX_MANIFEST_BYTES} (distribution-spec: registries should accept manifests of at least 4 MiB)"
            )));
        }
        match (self.storage.driver, &self.storage.s3) {
            (DriverKind::S3, None) => {
                return Err(ConfigError::Invalid(
                    "storage.driver = \"s3\" needs a [storage.s3] table naming at least the bucket"
                        .into(),
                ));
            }
            (DriverKind::S3, Some(s3)) => s3.validate().map_err(ConfigError::Invalid)?,
            (DriverKind::Filesystem, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "[storage.s3] is set but storage.driver is \"filesystem\"; set storage.driver = \"s3\" to use the bucket".into(),
                ));
            }
            (DriverKind::Filesystem, None) => {}
        }
        if self.storage.max_upload_bytes == 0 {
            return Err(ConfigError::Invalid(
                "storage.max_upload_bytes must be positive".into(),
            ));
        }
        if self.gc.upload_expiry_secs == 0 {
            return Err(ConfigError::Invalid(
                "gc.upload_expiry_secs must be positive: 0 would remove uploads in progress".into(),
            ));
        }
        if self.gc.grace_secs < crate::storage::gc::MIN_GRACE.as_secs() {
            return Err(ConfigError::Invalid(format!(
                "gc.grace_secs = {} is below the minimum of {} seconds that keeps concurrent pushes safe",
                self.gc.grace_secs,
                crate::storage::gc::MIN_GRACE.as_secs()
            )));
        }
        if let Some(m) = self.server.metrics_listen
            && !m.ip().is_loopback()
        {
            return Err(ConfigError::Invalid(format!(
                "metrics_listen = {m} is not a loopback address; metrics are served there without authentication; \
                 hint: use 127.0.0.1:PORT, or leave it unset to serve /metrics behind authentication"
            )));
        }
        let loopback = self.server.listen.ip().is_loopback();
        if !loopback && self.auth.htpasswd.is_none() && !self.server.insecure_anonymous {
            return Err(ConfigError::Invalid(format!(
                "refusing to listen on non-loopback address {} without authentication; \
                 hint: pass --htpasswd FILE, or --insecure-anonymous to serve anyone anonymously",
                self.server.listen
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_locked_down() {
        let c = Config::default();
        assert_eq!(c.server.listen.to_string(), DEFAULT_LISTEN);
        assert!(c.validate().is_ok());
        let mut open = c.clone();
        open.server.listen = "0.0.0.0:5000".parse().unwrap();
        let err = open.validate().unwrap_err().to_string();
        assert!(err.contains("without authentication"), "{err}");
        open.server.insecure_anonymous = true;
        assert!(open.validate().is_ok());
    }

    #[test]
    fn parses_toml_and_refuses_unknown_keys() {
        let c: Config = toml::from_str(
            "[server]\nlisten = \"127.0.0.1:6000\"\n[storage]\ndelete_enabled = false\n",
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 6000);
        assert!(!c.storage.delete_enabled);
        assert!(toml::from_str::<Config>("[server]\nlisten_typo = 1\n").is_err());
    }

    #[test]
    fn storage_and_metrics_settings_are_checked() {
        let c: Config = toml::from_str(
            "[server]\nmetrics_listen = \"127.0.0.1:9090\"\n[storage]\nmax_upload_bytes = 1048576\nmin_free_bytes = 0\n[gc]\nupload_expiry_secs = 60\nupload_purge_interval_secs = 0\n",
        )
        .unwrap();
        assert!(c.validate().is_ok());
        assert_eq!(c.storage.max_upload_bytes, 1 << 20);
        let mut bad = c.clone();
        bad.server.metrics_listen = Some("0.0.0.0:9090".parse().unwrap());
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("not a loopback address"), "{err}");
        let mut bad = c.clone();
        bad.storage.max_upload_bytes = 0;
        assert!(bad.validate().is_err());
        let mut bad = c;
        bad.gc.upload_expiry_secs = 0;
        assert!(bad.validate().is_err());
    }

    #[test]
    fn storage_cache_table_parses_and_defaults_on() {
        let d = Config::default().storage.cache.limits();
        assert_eq!(d, crate::storage::CacheLimits::default());
        assert_eq!((d.max_bytes, d.max_entry_bytes), (64 << 20, 4 << 20));
        let c: Config =
            toml::from_str("[storage.cache]\nmax_bytes = 0\nmax_entry_bytes = 1024\n").unwrap();
        assert_eq!(c.storage.cache.max_bytes, 0);
        assert_eq!(c.storage.cache.max_entry_bytes, 1024);
        assert_eq!(c.storage.cache.max_entries, d.max_entries);
        assert!(toml::from_str::<Config>("[storage.cache]\nmax_byte = 1\n").is_err());
    }

    #[test]
    fn the_disk_tier_is_on_over_object_storage_only() {
        let mut c = Config::default();
        c.storage.root = Some(PathBuf::from("/data/registry"));
        assert_eq!(c.storage.cache.disk_max_bytes, 1 << 30);
        assert_eq!(
            c.storage.disk_cache_dir(),
            None,
            "a filesystem root is local"
        );
        c.storage.driver = DriverKind::S3;
        assert_eq!(
            c.storage.disk_cache_dir(),
            Some(PathBuf::from("/data/registry/blobcache"))
        );
        let t: Config = toml::from_str(
            "[storage]\ndriver = \"s3\"\n[storage.s3]\nbucket = \"b\"\n[storage.cache]\ndisk_dir = \"/cache\"\ndisk_max_bytes = 5\n",
        )
        .unwrap();
        assert_eq!(t.storage.disk_cache_dir(), Some(PathBuf::from("/cache")));
        assert_eq!(t.storage.cache.disk_max_bytes, 5);
        let off: Config = toml::from_str(
            "[storage]\ndriver = \"s3\"\n[storage.s3]\nbucket = \"b\"\n[storage.cache]\ndisk_max_bytes = 0\n",
        )
        .unwrap();
        assert_eq!(off.storage.disk_cache_dir(), None);
    }

    #[test]
    fn s3_read_ahead_defaults_to_four_and_is_bounded() {
        let parse = |extra: &str| {
            toml::from_str::<Config>(&format!(
                "[storage]\ndriver = \"s3\"\n[storage.s3]\nbucket = \"b\"\n{extra}"
            ))
            .unwrap()
        };
        let c = parse("");
        assert_eq!(c.storage.s3.as_ref().map(|s| s.read_ahead), Some(4));
        assert_eq!(c.storage.s3.as_ref().map(|s| s.read_ahead_below), Some(256));
        // S3Config::new is the table that names only the bucket
        assert_eq!(
            format!("{:?}", c.storage.s3),
            format!("{:?}", Some(crate::storage::s3::S3Config::new("b")))
        );
        assert!(c.validate().is_ok());
        let always = parse(
            "read_ahead_below = 0
",
        );
        assert_eq!(
            always.storage.s3.as_ref().map(|s| s.read_ahead_below),
            Some(0)
        );
        assert!(parse("read_ahead = 0\n").validate().is_ok());
        assert!(parse("read_ahead = 32\n").validate().is_ok());
        let err = parse("read_ahead = 33\n")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("storage.s3.read_ahead = 33"), "{err}");
    }

    #[test]
    fn small_manifest_limit_refused() {
        let mut c = Config::default();
        c.storage.max_manifest_bytes = 1024;
        assert!(c.validate().is_err());
    }
}
