//! The state every request handler can reach: the storage layer, configuration, the
//! authorizer and metrics, with the checks handlers share (authorization, free space).

use axum::http::{HeaderMap, header};

use crate::auth::{Access, Action, Authorizer, Decision};
use crate::config::Config;
use crate::error::{ErrorKind, RegistryError, Result};
use crate::metrics::Metrics;
use crate::storage::{DiskCache, Driver, Registry};

/// Everything a request handler can reach.
#[derive(Debug)]
pub struct App<D: Driver> {
    pub(crate) storage: Registry<D>,
    pub(crate) config: Config,
    pub(crate) auth: Authorizer,
    pub(crate) metrics: Metrics,
    pub(crate) tls: bool,
}

impl<D: Driver> App<D> {
    pub fn new(driver: D, config: Config, auth: Authorizer, tls: bool) -> App<D> {
        let mut storage = Registry::with_cache(driver, config.storage.cache.limits());
        if let Some(dir) = config.storage.disk_cache_dir() {
            match DiskCache::open(&dir, config.storage.cache.disk_max_bytes) {
                Ok(disk) => storage = storage.with_disk_cache(disk),
                // a replica without its disk tier is slower, not wrong
                Err(e) => tracing::warn!("blob cache on disk off: {e}"),
            }
        }
        let metrics = Metrics::with_storage_cache(
            storage.cache().stats(),
            storage.disk_cache().map(DiskCache::stats),
        );
        App {
            storage,
            config,
            auth,
            metrics,
            tls,
        }
    }

    pub fn driver(&self) -> &D {
        self.storage.driver()
    }

    /// The storage layer handlers call.
    pub fn storage(&self) -> &Registry<D> {
        &self.storage
    }

    pub fn auth_enabled(&self) -> bool {
        self.auth.enabled()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `scheme://host[:port]` as the client addressed us, for challenge realms.
    pub(crate) fn base_url(&self, headers: &HeaderMap) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| self.config.server.listen.to_string());
        format!("{scheme}://{host}")
    }

    /// Ask the authorizer; turn a refusal into the spec's 401/403.
    pub(crate) fn authorize(&self, headers: &HeaderMap, access: &Access) -> Result<()> {
        if !self.auth.enabled() {
            return Ok(());
        }
        match self
            .auth
            .authorize(headers, &self.base_url(headers), access)
        {
            Decision::Allow(_) => Ok(()),
            Decision::Challenge {
                www_authenticate,
                message,
            } => Err(RegistryError::new(ErrorKind::Unauthorized, message)
                .header(header::WWW_AUTHENTICATE, &www_authenticate)),
            Decision::Deny { message } => Err(RegistryError::new(ErrorKind::Denied, message)),
        }
    }

    /// Refuse a write with 503 UNAVAILABLE and `Retry-After` when the storage has less free
    /// space than `storage.min_free_bytes`, so no client fills the disk and the registry
    /// keeps room for manifests, links and its own state.
    pub(crate) fn check_free_space(&self) -> Result<()> {
        self.check_free_space_while_writing(None, 0)
    }

    /// [`App::check_free_space`] for a request that has sent `written` bytes to storage
    /// since `baseline` was measured: writes are queued, so the space they will take is
    /// counted from the baseline rather than from what the filesystem reports so far.
    pub(crate) fn check_free_space_while_writing(
        &self,
        baseline: Option<u64>,
        written: u64,
    ) -> Result<()> {
        let reserve = self.config.storage.min_free_bytes;
        if reserve == 0 {
            return Ok(());
        }
        let now = self.storage.driver().available_bytes();
        let projected = baseline.map(|b| b.saturating_sub(written));
        let free = match (now, projected) {
            (Some(n), Some(p)) => Some(n.min(p)),
            (n, p) => n.or(p),
        };
        match free {
            Some(free) if free < reserve => Err(RegistryError::storage_full(format!(
                "the registry's storage has {free} bytes free, less than its reserve of {reserve} bytes (storage.min_free_bytes); writes are refused until space is freed, retry later"
            ))
            .detail(serde_json::json!({ "available": free, "reserve": reserve }))),
            _ => Ok(()),
        }
    }

    /// Whether the caller may pull from `name` (used for cross-repository mounts).
    pub(crate) fn may_pull(&self, headers: &HeaderMap, name: &str) -> bool {
        self.authorize(
            headers,
            &Access::Repository {
                name: name.to_owned(),
                actions: vec![Action::Pull],
            },
        )
        .is_ok()
    }
}
