//! The S3-compatible object storage driver: registry replicas share one bucket.
//!
//! Requests are signed and spoken by `object_store`'s S3 client over berth's own transport
//! ([`transport`]: hyper + rustls with ring), so the TLS stack is the one the rest of berth
//! uses. Every path maps to the key `<prefix>/<path>`.
//!
//! The contract in [`super`] maps onto S3 like this:
//! - **Small files** (`put_content`, `get_content`) are single objects: S3 PUTs are atomic
//!   and, since 2020, strongly read-after-write consistent, which is the linearizability the
//!   contract asks for.
//! - **Appends.** S3 has none, and an in-flight multipart upload cannot be read, so an
//!   upload session's data could not be re-hashed by another replica. A file written by
//!   [`Driver::writer`] at `<dir>/<name>` is therefore a run of *segments*,
//!   `<dir>/+<name>/<offset>`, each an
//!   ordinary object holding the bytes one writer appended from that offset (written with
//!   `If-None-Match: *` when it is one PUT, so two replicas appending at the same offset
//!   cannot both succeed; a writer with more than `part_size` bytes streams its segment as a
//!   multipart upload of `part_size` parts). Any replica can stat, read and continue the file;
//!   `+` starts no component the storage layer builds, so segments never collide with paths,
//!   and a written file's key is never also a prefix (which filesystem-backed servers such
//!   as s3s-fs cannot store).
//! - **What a path is** (an object, a written file, a prefix, nothing): `stat` asks a HEAD
//!   first, not retried (a stored file is one request); whatever it does not answer is
//!   learnt from a listing of the written file's segments and then of its parent, which
//!   covers the other three and works on servers that cannot HEAD a prefix (s3s-fs answers
//!   500 for a key that is a directory on its disk, and keeps emptied directories). The
//!   layout keeps parents small (a blob's or link's parent holds one or two names).
//! - **A file stored whole costs no listing** to read, stat or move: a GET or a HEAD is
//!   tried first, and only when it finds no object are the written file's segments listed
//!   (their own prefix, not the parent's subtree). A listing is what a server may answer
//!   in time proportional to the bucket (moto walks every key), so the garbage collector,
//!   which stats and moves blob after blob, must not list to find a blob.
//! - **Fewer round trips where the storage layer knows more than a path says:**
//!   [`Driver::list_files`] of an upload session is one listing; [`Driver::writer_at`]
//!   trusts the size it is given (the segment's conditional create refuses a stale one);
//!   [`Driver::stat_stored`] is one HEAD.
//! - **Moves** are server-side copies (`CopyObject`) then deletes; a file of several segments
//!   (a chunked upload) is concatenated into one object as it is copied, through this process
//!   in `part_size` parts. A copy replaces the target whole, so a reader sees the old or the
//!   new content.
//! - **Adoption by reference.** An upload's data, once verified, becomes a blob without a
//!   copy when it is at least `part_size` bytes: [`Driver::adopt`] stores at the blob's key
//!   a small reference object naming the data's segments ([`reference`]), which every read,
//!   stat, move and redirect follows. A copy would send every byte through the server a
//!   second time (0.13–0.20 s of SeaweedFS's CPU per 64 MiB here); distribution's driver
//!   copies. Smaller data is copied: one request, and reads stay one GET.
//! - **Prefixes** are what S3 has: a "directory" exists while a key is under it.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, FuturesUnordered, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{
    GetOptions, GetRange, GetResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, RetryConfig, UploadPart,
};
use serde::Deserialize;

use super::{
    BoxReader, ByteStream, DResult, Driver, DriverError, DriverMetric, FileInfo, MetricKind,
    UploadWriter,
};

pub mod credentials;
mod ranged;
mod reference;
mod transport;

use ranged::Span;
use reference::Reference;

pub use credentials::AwsEnv;

/// The smallest part S3 accepts for every part of a multipart upload but the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// The largest part (and the largest object a single `CopyObject` copies).
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
pub const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;
/// How long a presigned blob URL stays valid (distribution's S3 driver: 20 minutes).
pub const REDIRECT_VALIDITY: Duration = Duration::from_secs(20 * 60);
/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;
/// Ranged GETs fetched ahead by one read, unless configured.
pub const DEFAULT_READ_AHEAD: usize = 4;
/// The most `read_ahead` may be.
pub const MAX_READ_AHEAD: usize = 32;
/// MiB a second below which a large read's first window sends the rest as ranged GETs:
/// above what S3 gives one connection (about 90 MB/s), below what a server on the same
/// machine or network sends one GET (600 MiB/s and more here).
pub const DEFAULT_READ_AHEAD_BELOW: u64 = 256;

/// `[storage.s3]` in the registry configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// Unset: `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// An S3-compatible service's URL (unset: AWS itself).
    pub endpoint: Option<String>,
    /// Every key is stored under this prefix.
    #[serde(default)]
    pub prefix: String,
    /// Path-style requests (`endpoint/bucket/key`) instead of virtual-hosted ones
    /// (`bucket.endpoint/key`), as most self-hosted services need.
    #[serde(default)]
    pub path_style: bool,
    /// Allow an `http://` endpoint (credentials and content then travel in clear).
    #[serde(default)]
    pub allow_http: bool,
    /// A PEM file of extra CA certificates for the endpoint's TLS, beside the system's.
    pub ca_file: Option<PathBuf>,
    /// Multipart part size in bytes.
    #[serde(default = "default_part_size")]
    pub part_size: u64,
    /// Answer blob GETs with a redirect to a presigned URL, so clients download from the
    /// object store directly.
    #[serde(default)]
    pub redirect: bool,
    /// Ranged GETs of a large read fetched at once ahead of the one being sent, each a
    /// part (at most 16 MiB) long, as AWS advises for large objects; 0 reads an object
    /// with one GET, as distribution does.
    #[serde(default = "default_read_ahead")]
    pub read_ahead: usize,
    /// MiB a second: a large read's first window is timed, and the rest is fetched as
    /// ranged GETs only when S3 sent it slower than this (one connection capped, as on
    /// AWS); as fast or faster (a server on the same machine or network, bound by its own
    /// CPU), the rest of each object is one GET. 0: nothing timed, every large read ranged
    /// from its first window.
    #[serde(default = "default_read_ahead_below")]
    pub read_ahead_below: u64,
}

fn default_part_size() -> u64 {
    DEFAULT_PART_SIZE
}

fn default_read_ahead() -> usize {
    DEFAULT_READ_AHEAD
}

fn default_read_ahead_below() -> u64 {
    DEFAULT_READ_AHEAD_BELOW
}

impl S3Config {
    /// A configuration of `bucket` with every other setting at its default, as a
    /// `[storage.s3]` table naming only the bucket reads.
    pub fn new(bucket: impl Into<String>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            region: None,
            endpoint: None,
            prefix: String::new(),
            path_style: false,
            allow_http: false,
            ca_file: None,
            part_size: DEFAULT_PART_SIZE,
            redirect: false,
            read_ahead: DEFAULT_READ_AHEAD,
            read_ahead_below: DEFAULT_READ_AHEAD_BELOW,
        }
    }

    /// What is wrong with this configuration, said so the operator can fix it.
    pub fn validate(&self) -> Result<(), String> {
        if self.bucket.is_empty() {
            return Err("storage.s3.bucket is empty: name the bucket the registry uses".into());
        }
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(format!(
                "storage.s3.part_size = {} is outside what S3 accepts ({MIN_PART_SIZE} to {MAX_PART_SIZE} bytes)",
                self.part_size
            ));
        }
        if self.read_ahead > MAX_READ_AHEAD {
            return Err(format!(
                "storage.s3.read_ahead = {} is more than {MAX_READ_AHEAD} ranged GETs at once for one read",
                self.read_ahead
            ));
        }
        if let Some(e) = &self.endpoint {
            let plain = e.starts_with("http://");
            if !plain && !e.starts_with("https://") {
                return Err(format!(
                    "storage.s3.endpoint {e:?} is not an http:// or https:// URL"
                ));
            }
            if plain && !self.allow_http {
                return Err(format!(
                    "storage.s3.endpoint {e:?} is plain http: credentials and content would travel in clear; use https, or set storage.s3.allow_http = true"
                ));
            }
        }
        if self.prefix.split('/').any(|c| c == "." || c == "..") {
            return Err(format!(
                "storage.s3.prefix {:?} has a . or .. component",
                self.prefix
            ));
        }
        Ok(())
    }
}

/// Objects in one bucket, under one prefix.
#[derive(Debug, Clone)]
pub struct S3Driver {
    store: Arc<AmazonS3>,
    /// The same client without retries, for HEADs whose failure a listing then explains.
    probe_store: Arc<AmazonS3>,
    prefix: Arc<str>,
    part_size: usize,
    redirect: bool,
    read_ahead: usize,
    /// `read_ahead_below` in bytes a second.
    split_below: u64,
    /// What the windows large reads fetch ahead may hold, across every read.
    read_budget: ranged::Budget,
    /// What timed large reads decided.
    read_decisions: ranged::Decisions,
}

/// A driver that cannot be built: what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum S3SetupError {
    #[error("invalid S3 storage configuration: {0}")]
    Config(String),
    #[error("failed to read the S3 CA file {path}")]
    CaFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Credentials(#[from] credentials::CredentialsError),
    #[error("failed to set up the S3 client")]
    Client(#[source] object_store::Error),
}

impl S3Driver {
    /// A driver for `config`, with credentials from the environment `env` holds
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), else the shared
    /// credentials file (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`, profile
    /// `AWS_PROFILE` or `default`), else object_store's chain (web identity, container and
    /// instance metadata).
    pub fn new(config: &S3Config, env: &AwsEnv) -> Result<S3Driver, S3SetupError> {
        config.validate().map_err(S3SetupError::Config)?;
        let extra_roots = match &config.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|source| S3SetupError::CaFile {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        let connector = transport::Connector::new(extra_roots.as_deref())
            .map_err(|e| S3SetupError::Config(e.to_string()))?;
        // AWS_* as the SDKs read them (region, keys, token, web identity); the file below
        // counts only when they hold no keys, and the configuration wins over both
        let mut b = AmazonS3Builder::new();
        for (k, v) in &env.vars {
            if let Ok(key) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                b = b.with_config(key, v);
            }
        }
        b = b
            .with_bucket_name(&config.bucket)
            .with_http_connector(connector)
            .with_retry(RetryConfig {
                max_retries: 5,
                retry_timeout: Duration::from_secs(60),
                ..RetryConfig::default()
            });
        if env.get("AWS_ACCESS_KEY_ID").is_none()
            && let Some(c) = credentials::from_shared_file(env)?
        {
            b = b
                .with_access_key_id(c.access_key_id)
                .with_secret_access_key(c.secret_access_key);
            if let Some(t) = c.session_token {
                b = b.with_token(t);
            }
        }
        let region = config
            .region
            .clone()
            .or_else(|| env.get("AWS_REGION").map(str::to_owned))
            .or_else(|| env.get("AWS_DEFAULT_REGION").map(str::to_owned))
            .unwrap_or_else(|| "us-east-1".to_owned());
        b = b
            .with_region(region)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_allow_http(config.allow_http);
        if let Some(e) = &config.endpoint {
            b = b.with_endpoint(e);
        }
        let probe_store = b
            .clone()
            .with_retry(RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            })
            .build()
            .map_err(S3SetupError::Client)?;
        let store = b.build().map_err(S3SetupError::Client)?;
        Ok(S3Driver {
            store: Arc::new(store),
            probe_store: Arc::new(probe_store),
            prefix: config.prefix.trim_matches('/').into(),
            // validated above to be at most 5 GiB
            part_size: usize::try_from(config.part_size).unwrap_or(usize::MAX),
            redirect: config.redirect,
            read_ahead: config.read_ahead,
            split_below: config.read_ahead_below.saturating_mul(1 << 20),
            read_budget: ranged::Budget::new(ranged::BUDGET_BYTES),
            read_decisions: ranged::Decisions::default(),
        })
    }

    /// Bytes the windows fetched ahead by large reads hold now, across every read of this
    /// driver and its clones.
    pub fn read_ahead_held(&self) -> u64 {
        ranged::BUDGET_BYTES.saturating_sub(self.read_budget.available_bytes())
    }

    /// How long a window of a ranged read is: a part, at most [`ranged::MAX_WINDOW`].
    fn window(&self) -> u64 {
        (self.part_size as u64).min(ranged::MAX_WINDOW)
    }

    /// One listing of the prefix: proves at start that the endpoint answers, the bucket
    /// exists and the credentials are accepted, rather than failing the first request.
    pub async fn check(&self) -> DResult<()> {
        let prefix = (!self.prefix.is_empty()).then(|| Key::from(&*self.prefix));
        self.store
            .list_with_delimiter(prefix.as_ref())
            .await
            .map(|_| ())
            .map_err(|e| DriverError::Backend {
                path: format!("{}/", self.prefix),
                source: Box::new(e),
            })
    }

    fn key(&self, path: &str) -> DResult<Key> {
        let invalid = |reason| DriverError::InvalidPath {
            path: path.to_owned(),
            reason,
        };
        if path.is_empty() {
            return Err(invalid("empty"));
        }
        for c in path.split('/') {
            if c.is_empty() || c == "." || c == ".." {
                return Err(invalid("not a plain relative path"));
            }
            if c.starts_with('+') {
                return Err(invalid("components starting with + are the driver's own"));
            }
        }
        let full = if self.prefix.is_empty() {
            path.to_owned()
        } else {
            format!("{}/{path}", self.prefix)
        };
        Key::parse(&full).map_err(|_| invalid("a character object storage keys cannot hold"))
    }

    /// Where the segments of the written file at `key` live: `<dir>/+<name>`.
    fn segments_dir(key: &Key) -> Key {
        let s = key.as_ref();
        match s.rsplit_once('/') {
            Some((dir, name)) => Key::from(format!("{dir}/+{name}")),
            None => Key::from(format!("+{s}")),
        }
    }

    fn segment_key(key: &Key, offset: u64) -> Key {
        Key::from(format!("{}/{offset:020}", Self::segments_dir(key)))
    }

    /// What is stored at `key`, from one listing of its parent.
    async fn probe(&self, path: &str, key: &Key) -> DResult<Probe> {
        let raw = key.as_ref();
        let (parent, name) = match raw.rsplit_once('/') {
            Some((dir, name)) => (Some(Key::from(dir)), name),
            None => (None, raw),
        };
        let listed = self
            .store
            .list_with_delimiter(parent.as_ref())
            .await
            .map_err(|e| backend(path, e))?;
        let written = format!("+{name}");
        let mut probe = Probe {
            object: listed
                .objects
                .into_iter()
                .find(|o| o.location.filename() == Some(name)),
            ..Probe::default()
        };
        for p in &listed.common_prefixes {
            match p.filename() {
                Some(n) if n == name => probe.dir = true,
                Some(n) if n == written => probe.written = true,
                _ => {}
            }
        }
        Ok(probe)
    }

    /// The segments of a written file, in offset order, checked to be contiguous; empty
    /// when there are none.
    async fn segments(&self, path: &str, key: &Key) -> DResult<Vec<Segment>> {
        let dir = Self::segments_dir(key);
        let metas: Vec<ObjectMeta> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| backend(path, e))?;
        contiguous(path, metas)
    }

    /// A stored object, or else a written file's segments, or else not found: one HEAD
    /// (not retried) for a file stored whole — every blob, link and record — and a listing
    /// of the segments only when the HEAD finds nothing there (a written file). A HEAD that
    /// fails otherwise (s3s-fs answers 500 for a key that is a directory on its disk; a
    /// transient error) leaves it to the listings, which are retried. Never a listing of
    /// the parent's whole subtree: on a server that lists by walking the bucket (moto),
    /// that made every move the garbage collector makes cost the bucket's size.
    async fn locate(&self, path: &str) -> DResult<(Key, Located)> {
        let key = self.key(path)?;
        match head(&self.probe_store, &key).await {
            Ok((meta, None)) => Ok((key, Located::Object(meta))),
            Ok((meta, Some((of, _)))) => {
                let l = self.load_reference(path, &key, meta, &of).await?;
                Ok((key, l))
            }
            Err(object_store::Error::NotFound { .. }) => self.locate_written(path, key).await,
            Err(_) => {
                let probe = self.probe(path, &key).await?;
                let located = self.located(path, &key, probe).await?;
                located.map(|l| (key, l)).ok_or_else(|| not_found(path))
            }
        }
    }

    /// A written file's segments, or else not found: for a path where no object is stored
    /// (a HEAD or GET of it just found none), one listing of the segments.
    async fn locate_written(&self, path: &str, key: Key) -> DResult<(Key, Located)> {
        let segs = self.segments(path, &key).await?;
        if segs.is_empty() {
            return Err(not_found(path));
        }
        Ok((key, Located::Segments(segs)))
    }

    async fn located(&self, path: &str, key: &Key, probe: Probe) -> DResult<Option<Located>> {
        if probe.object.is_some() {
            // a listing carries no metadata: whether the object is a reference, a HEAD says
            return match head(&self.store, key).await {
                Ok((meta, None)) => Ok(Some(Located::Object(meta))),
                Ok((meta, Some((of, _)))) => {
                    self.load_reference(path, key, meta, &of).await.map(Some)
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(backend(path, e)),
            };
        }
        if probe.written {
            let segs = self.segments(path, key).await?;
            if !segs.is_empty() {
                return Ok(Some(Located::Segments(segs)));
            }
        }
        Ok(None)
    }

    /// The reference object at `key` (a HEAD said so, naming `of`): its body read and its
    /// segments resolved.
    async fn load_reference(
        &self,
        path: &str,
        key: &Key,
        object: ObjectMeta,
        of: &str,
    ) -> DResult<Located> {
        let r = self.store.get(key).await.map_err(|e| backend(path, e))?;
        match reference::marked(&r.attributes) {
            Some((now_of, _)) if now_of == of => self.reference_from(path, r, object, of).await,
            // replaced since the HEAD (a move back, a new commit): what is there now
            Some((now_of, _)) => {
                let meta = r.meta.clone();
                self.reference_from(path, r, meta, &now_of).await
            }
            None => Ok(Located::Object(r.meta)),
        }
    }

    /// A reference object's body, from a GET of all of it.
    async fn reference_from(
        &self,
        path: &str,
        r: GetResult,
        object: ObjectMeta,
        of: &str,
    ) -> DResult<Located> {
        if r.meta.size > reference::MAX_LEN as u64 {
            return Err(corrupt(
                path,
                format!("a reference object of {} bytes", r.meta.size),
            ));
        }
        let body = r.bytes().await.map_err(|e| backend(path, e))?;
        let reference = Reference::parse(&body, of)
            .ok_or_else(|| corrupt(path, format!("a reference to {of} that does not parse")))?;
        let data_key = self.key(&reference.path)?;
        let segs = reference
            .segments
            .iter()
            .map(|&(offset, size)| Segment {
                offset,
                meta: ObjectMeta {
                    location: Self::segment_key(&data_key, offset),
                    last_modified: object.last_modified,
                    size,
                    e_tag: None,
                    version: None,
                },
            })
            .collect();
        Ok(Located::Referenced {
            object,
            reference,
            segs,
        })
    }

    /// Store `reference` at `key` (a new reference, or a moved one), replacing what is
    /// there whole.
    async fn put_reference(&self, path: &str, key: &Key, reference: &Reference) -> DResult<()> {
        let opts = PutOptions {
            attributes: reference.attributes(),
            ..PutOptions::default()
        };
        self.store
            .put_opts(key, PutPayload::from(reference.body()), opts)
            .await
            .map(|_| ())
            .map_err(|e| backend(path, e))
    }

    /// Stream `spans` as one reader, after `first` (a GET already answered, and how many
    /// bytes it brings): large reads as ranged GETs at once ([`ranged`]).
    fn chain(&self, path: &str, first: Option<(ByteStream, u64)>, spans: &[Span]) -> BoxReader {
        Box::pin(tokio_util::io::StreamReader::new(
            self.chain_stream(path, first, spans),
        ))
    }

    /// [`S3Driver::chain`] as owned chunks.
    fn chain_stream(
        &self,
        path: &str,
        first: Option<(ByteStream, u64)>,
        spans: &[Span],
    ) -> ByteStream {
        let plan = if self.read_ahead == 0 {
            ranged::Plan::whole()
        } else {
            ranged::Plan {
                window: self.window(),
                ahead: self.read_ahead,
                split_below: (self.split_below > 0).then_some(self.split_below),
            }
        };
        Box::pin(ranged::Ranged::new(
            self.store.clone(),
            path,
            self.read_budget.clone(),
            self.read_decisions.clone(),
            plan,
            first,
            spans,
        ))
    }

    /// A file stored whole (every blob) is one GET from `offset`, of its first window when
    /// reads go ahead ([`ranged`]: the rest follows as ranged GETs); a written file is found
    /// by the listing of its segments when that GET finds nothing, and an offset the server
    /// will not serve a range from (the end of an object, an empty object) is located first.
    async fn open_stream(&self, path: &str, offset: u64) -> DResult<(ByteStream, u64)> {
        let key = self.key(path)?;
        let ranged = self.read_ahead > 0;
        let range = if ranged {
            let window = self.window();
            Some(GetRange::Bounded(offset..(offset / window + 1) * window))
        } else {
            (offset > 0).then_some(GetRange::Offset(offset))
        };
        let opts = GetOptions {
            range,
            ..GetOptions::default()
        };
        let (key, located) = match self.store.get_opts(&key, opts).await {
            Ok(r) => match reference::marked(&r.attributes) {
                None => {
                    let size = r.meta.size;
                    let got = r.range.clone();
                    let s = r.into_stream().map_err(io::Error::other).boxed();
                    if got.end >= size {
                        return Ok((s, size));
                    }
                    let rest = [Span {
                        key,
                        start: got.end,
                        end: size,
                    }];
                    let first = Some((s, got.end - got.start));
                    return Ok((self.chain_stream(path, first, &rest), size));
                }
                // a reference read whole: its body is here
                Some((of, _)) if offset == 0 && r.range.end >= r.meta.size => {
                    let object = r.meta.clone();
                    let l = self.reference_from(path, r, object, &of).await?;
                    (key, l)
                }
                Some((of, _)) => {
                    let object = r.meta.clone();
                    drop(r);
                    let l = self.load_reference(path, &key, object, &of).await?;
                    (key, l)
                }
            },
            // no object: a written file's segments, or nothing
            Err(object_store::Error::NotFound { .. }) => self.locate_written(path, key).await?,
            // the server would not serve that range (an offset at the end, any range of an
            // empty object): look
            Err(_) if offset > 0 || ranged => self.locate(path).await?,
            Err(e) => return Err(backend(path, e)),
        };
        let size = located.size();
        if offset > size {
            return Err(DriverError::Io {
                path: path.to_owned(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("offset {offset} is past the end ({size} bytes)"),
                ),
            });
        }
        if offset == size {
            return Ok((Box::pin(stream::empty()), size));
        }
        Ok((
            self.chain_stream(path, None, &located.spans_from(&key, offset)),
            size,
        ))
    }

    /// Copy `from` (an object or segments, `size` bytes) into one object at `to`.
    async fn assemble(&self, path: &str, spans: Vec<Span>, size: u64, to: &Key) -> DResult<()> {
        if size <= self.part_size as u64 {
            let mut data = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
            let mut r = self.chain(path, None, &spans);
            read_into(&mut r, &mut data, path).await?;
            return self
                .store
                .put(to, PutPayload::from_bytes(data.freeze()))
                .await
                .map(|_| ())
                .map_err(|e| backend(path, e));
        }
        let mut upload = self
            .store
            .put_multipart_opts(to, PutMultipartOptions::default())
            .await
            .map_err(|e| backend(path, e))?;
        let copied = async {
            let mut r = self.chain(path, None, &spans);
            let mut inflight = FuturesUnordered::new();
            loop {
                let mut part = BytesMut::with_capacity(self.part_size);
                let done = fill(&mut r, &mut part, self.part_size, path).await?;
                if !part.is_empty() {
                    push_part(&mut inflight, upload.put_part(part.freeze().into()), path).await?;
                }
                if done {
                    break;
                }
            }
            while let Some(r) = inflight.next().await {
                r.map_err(|e| backend(path, e))?;
            }
            upload.complete().await.map_err(|e| backend(path, e))
        }
        .await;
        match copied {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = upload.abort().await;
                Err(e)
            }
        }
    }

    /// [`Driver::move_to`] of what [`S3Driver::locate`] found at `from`.
    async fn move_located(
        &self,
        from: &str,
        from_key: &Key,
        located: Located,
        to: &str,
    ) -> DResult<()> {
        let from_key = from_key.clone();
        let to_key = self.key(to)?;
        let size = located.size();
        match &located {
            // stored again, metadata and all, not copied by the server
            Located::Referenced { reference, .. } => {
                self.put_reference(from, &to_key, reference).await?
            }
            Located::Object(_) if size <= MAX_PART_SIZE => self
                .store
                .copy(&from_key, &to_key)
                .await
                .map_err(|e| backend(from, e))?,
            Located::Segments(segs) if segs.len() == 1 && size <= MAX_PART_SIZE => self
                .store
                .copy(&segs[0].meta.location, &to_key)
                .await
                .map_err(|e| backend(from, e))?,
            _ => {
                self.assemble(from, located.spans_from(&from_key, 0), size, &to_key)
                    .await?
            }
        }
        self.delete_keys(from, located.keys(&from_key)).await
    }

    /// Delete a file stored whole (a reference: the reference object alone), a written
    /// file's segments, or a prefix and everything under it.
    async fn delete_path(&self, path: &str) -> DResult<()> {
        let key = self.key(path)?;
        let probe = self.probe(path, &key).await?;
        let mut keys = Vec::new();
        if probe.dir {
            let under: Vec<Key> = self
                .store
                .list(Some(&key))
                .map_ok(|m| m.location)
                .try_collect()
                .await
                .map_err(|e| backend(path, e))?;
            keys.extend(under);
        }
        if probe.written {
            keys.extend(
                self.segments(path, &key)
                    .await?
                    .into_iter()
                    .map(|s| s.meta.location),
            );
        }
        if probe.object.is_some() {
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(not_found(path));
        }
        self.delete_keys(path, keys).await
    }

    async fn delete_keys(&self, path: &str, keys: Vec<Key>) -> DResult<()> {
        let s = stream::iter(keys.into_iter().map(Ok)).boxed();
        self.store
            .delete_stream(s)
            .try_collect::<Vec<_>>()
            .await
            .map(|_| ())
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(()),
                e => Err(backend(path, e)),
            })
    }
}

/// A written file's segments from their objects, in offset order, checked to be
/// contiguous; empty when there are none.
fn contiguous(path: &str, metas: Vec<ObjectMeta>) -> DResult<Vec<Segment>> {
    let mut segs = Vec::with_capacity(metas.len());
    for m in metas {
        let offset = m
            .location
            .filename()
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| corrupt(path, format!("unexpected object {}", m.location)))?;
        segs.push(Segment { offset, meta: m });
    }
    segs.sort_by_key(|s| s.offset);
    let mut next = 0;
    for s in &segs {
        if s.offset != next {
            return Err(corrupt(
                path,
                format!(
                    "segment at offset {} does not follow the data before it (which ends at {next})",
                    s.offset
                ),
            ));
        }
        next = s.offset + s.meta.size;
    }
    Ok(segs)
}

/// What a listing of a path's parent says is stored at it.
#[derive(Default)]
struct Probe {
    object: Option<ObjectMeta>,
    /// Keys under `<path>/`.
    dir: bool,
    /// A written file's segments under `<dir>/+<name>/`.
    written: bool,
}

struct Segment {
    offset: u64,
    meta: ObjectMeta,
}

enum Located {
    Object(ObjectMeta),
    Segments(Vec<Segment>),
    /// A reference object (`object`) standing for a written file's segments.
    Referenced {
        object: ObjectMeta,
        reference: Reference,
        segs: Vec<Segment>,
    },
}

impl Located {
    fn size(&self) -> u64 {
        match self {
            Located::Object(m) => m.size,
            Located::Segments(s) => s.last().map_or(0, |l| l.offset + l.meta.size),
            Located::Referenced { reference, .. } => reference.size,
        }
    }

    fn modified(&self) -> Option<SystemTime> {
        match self {
            Located::Object(m) => Some(m.last_modified.into()),
            Located::Segments(s) => s.iter().map(|s| s.meta.last_modified).max().map(Into::into),
            Located::Referenced { object, .. } => Some(object.last_modified.into()),
        }
    }

    /// The objects to read from `offset` on, each with where to start in it.
    fn spans_from(&self, key: &Key, offset: u64) -> Vec<Span> {
        match self {
            Located::Object(m) => vec![Span {
                key: key.clone(),
                start: offset,
                end: m.size,
            }],
            Located::Segments(segs) | Located::Referenced { segs, .. } => segs
                .iter()
                .filter(|s| s.offset + s.meta.size > offset && s.meta.size > 0)
                .map(|s| Span {
                    key: s.meta.location.clone(),
                    start: offset.saturating_sub(s.offset),
                    end: s.meta.size,
                })
                .collect(),
        }
    }

    /// Every object this file is made of (for a reference, the reference object alone:
    /// the segments it names belong to the written file).
    fn keys(&self, key: &Key) -> Vec<Key> {
        match self {
            Located::Object(_) | Located::Referenced { .. } => vec![key.clone()],
            Located::Segments(segs) => segs.iter().map(|s| s.meta.location.clone()).collect(),
        }
    }
}

/// A HEAD that reads the object's metadata too: its meta, and when it is a reference, the
/// written file it names and the content's size.
async fn head(
    store: &AmazonS3,
    key: &Key,
) -> Result<(ObjectMeta, Option<(String, Option<u64>)>), object_store::Error> {
    let opts = GetOptions {
        head: true,
        ..GetOptions::default()
    };
    let r = store.get_opts(key, opts).await?;
    let marked = reference::marked(&r.attributes);
    Ok((r.meta, marked))
}

/// What [`head`] says of a file stored whole, as [`FileInfo`].
fn stored_info(
    path: &str,
    meta: &ObjectMeta,
    marked: Option<(String, Option<u64>)>,
) -> DResult<FileInfo> {
    let size = match marked {
        None => meta.size,
        Some((_, Some(size))) => size,
        Some((of, None)) => {
            return Err(corrupt(
                path,
                format!("a reference to {of} without its size"),
            ));
        }
    };
    Ok(FileInfo {
        size,
        modified: Some(meta.last_modified.into()),
        is_dir: false,
    })
}

fn not_found(path: &str) -> DriverError {
    DriverError::NotFound {
        path: path.to_owned(),
    }
}

fn backend(path: &str, e: object_store::Error) -> DriverError {
    match e {
        object_store::Error::NotFound { .. } => not_found(path),
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            DriverError::AlreadyExists {
                path: path.to_owned(),
            }
        }
        e => DriverError::Backend {
            path: path.to_owned(),
            source: Box::new(e),
        },
    }
}

fn corrupt(path: &str, what: String) -> DriverError {
    DriverError::Io {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, what),
    }
}

async fn read_into(r: &mut BoxReader, buf: &mut BytesMut, path: &str) -> DResult<()> {
    use tokio::io::AsyncReadExt;
    loop {
        buf.reserve(64 * 1024);
        let n = r
            .read_buf(buf)
            .await
            .map_err(|e| DriverError::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
    }
}

/// Read into `buf` up to `limit` bytes; true at the end of the input.
async fn fill(r: &mut BoxReader, buf: &mut BytesMut, limit: usize, path: &str) -> DResult<bool> {
    use tokio::io::AsyncReadExt;
    while buf.len() < limit {
        let mut take = (&mut *r).take((limit - buf.len()) as u64);
        let n = take
            .read_buf(buf)
            .await
            .map_err(|e| DriverError::io(path, e))?;
        if n == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Queue a part, first waiting for one when [`PARTS_IN_FLIGHT`] are.
async fn push_part(
    inflight: &mut FuturesUnordered<UploadPart>,
    part: UploadPart,
    path: &str,
) -> DResult<()> {
    if inflight.len() >= PARTS_IN_FLIGHT
        && let Some(r) = inflight.next().await
    {
        r.map_err(|e| backend(path, e))?;
    }
    inflight.push(part);
    Ok(())
}

impl Driver for S3Driver {
    type Writer = S3Writer;

    /// One GET: files read whole are stored whole (see [`Driver::get_content`]).
    async fn get_content(&self, path: &str) -> DResult<Bytes> {
        let key = self.key(path)?;
        let r = self.store.get(&key).await.map_err(|e| backend(path, e))?;
        let Some((of, _)) = reference::marked(&r.attributes) else {
            return r.bytes().await.map_err(|e| backend(path, e));
        };
        let object = r.meta.clone();
        let located = self.reference_from(path, r, object, &of).await?;
        let mut data = BytesMut::with_capacity(usize::try_from(located.size()).unwrap_or(0));
        let mut reader = self.chain(path, None, &located.spans_from(&key, 0));
        read_into(&mut reader, &mut data, path).await?;
        Ok(data.freeze())
    }

    /// With `redirect = true`, a presigned GET of the object valid for
    /// [`REDIRECT_VALIDITY`] (as distribution's S3 driver; signed locally, no request).
    async fn redirect_url(&self, path: &str) -> DResult<Option<String>> {
        use object_store::signer::Signer;
        if !self.redirect {
            return Ok(None);
        }
        let mut key = self.key(path)?;
        // a reference: its one segment, or no redirect (the registry streams the segments)
        if let (meta, Some((of, _))) = head(&self.store, &key)
            .await
            .map_err(|e| backend(path, e))?
        {
            match self.load_reference(path, &key, meta, &of).await? {
                Located::Referenced { segs, .. } if segs.len() == 1 => {
                    key = segs[0].meta.location.clone();
                }
                Located::Object(_) => {}
                _ => return Ok(None),
            }
        }
        self.store
            .signed_url(http::Method::GET, &key, REDIRECT_VALIDITY)
            .await
            .map(|u| Some(u.to_string()))
            .map_err(|e| backend(path, e))
    }

    async fn put_content(&self, path: &str, data: Bytes) -> DResult<()> {
        let key = self.key(path)?;
        self.store
            .put(&key, PutPayload::from_bytes(data))
            .await
            .map(|_| ())
            .map_err(|e| backend(path, e))
    }

    /// `If-None-Match: *`: S3 (since 2024) and compatible servers refuse the PUT with 412
    /// when the key exists, atomically. A written file or a prefix at the path also counts
    /// as existing (checked first; neither is made where `put_new` is used).
    async fn put_new(&self, path: &str, data: Bytes) -> DResult<()> {
        let key = self.key(path)?;
        let probe = self.probe(path, &key).await?;
        if probe.object.is_some() || probe.written || probe.dir {
            return Err(DriverError::AlreadyExists {
                path: path.to_owned(),
            });
        }
        self.store
            .put_opts(
                &key,
                PutPayload::from_bytes(data),
                PutOptions::from(PutMode::Create),
            )
            .await
            .map(|_| ())
            .map_err(|e| backend(path, e))
    }

    /// See [`S3Driver::open_stream`].
    async fn reader(&self, path: &str, offset: u64) -> DResult<(BoxReader, u64)> {
        let (s, size) = self.open_stream(path, offset).await?;
        Ok((Box::pin(tokio_util::io::StreamReader::new(s)), size))
    }

    /// The owned chunks S3's responses bring, handed on as they come.
    async fn stream(&self, path: &str, offset: u64, _chunk: usize) -> DResult<(ByteStream, u64)> {
        self.open_stream(path, offset).await
    }

    /// Opens the file's next segment. A missing file is created, empty, if the writer
    /// commits with nothing written; a file that is one object (written whole, by
    /// `put_content` or `put_new`) first becomes its own first segment by a server-side
    /// copy, so appends follow all of it.
    ///
    /// The segments are listed first (the file a writer opens is usually written already);
    /// only when there are none is the object looked for, by a HEAD.
    async fn writer(&self, path: &str) -> DResult<S3Writer> {
        let key = self.key(path)?;
        let mut segs = self.segments(path, &key).await?;
        let object = if segs.is_empty() {
            match head(&self.probe_store, &key).await {
                Ok((_, Some(_))) => {
                    return Err(DriverError::InvalidPath {
                        path: path.to_owned(),
                        reason: "it holds a reference to another file's data, which cannot be appended to",
                    });
                }
                Ok((meta, None)) => Some(meta),
                Err(object_store::Error::NotFound { .. }) => None,
                // (s3s-fs's 500 on a directory, a transient error): the parent's listing
                Err(_) => self.probe(path, &key).await?.object,
            }
        } else {
            None
        };
        if let Some(meta) = object {
            let first = Self::segment_key(&key, 0);
            match self.store.copy(&key, &first).await {
                Ok(()) => {
                    self.delete_keys(path, vec![key.clone()]).await?;
                    segs = vec![Segment {
                        offset: 0,
                        meta: ObjectMeta {
                            location: first,
                            ..meta
                        },
                    }];
                }
                Err(e) => return Err(backend(path, e)),
            }
        }
        let start = segs.last().map_or(0, |l| l.offset + l.meta.size);
        // the empty file a writer that wrote nothing leaves: replaced by the first data
        let replace_empty = segs.len() == 1 && start == 0;
        Ok(S3Writer {
            trusted: false,
            missing: segs.is_empty(),
            store: self.store.clone(),
            path: path.to_owned(),
            key,
            start,
            replace_empty,
            buf: BytesMut::new(),
            written: 0,
            part_size: self.part_size,
            upload: None,
            inflight: FuturesUnordered::new(),
        })
    }

    /// No request: the next segment starts at `size`. Its conditional create is what
    /// refuses a stale `size` (every segment starts where the file ended when it was
    /// written, so the file grown since has a segment starting at exactly `size`); the empty
    /// file's marker at 0 is replaced as [`Driver::writer`] would.
    async fn writer_at(&self, path: &str, size: u64) -> DResult<S3Writer> {
        let key = self.key(path)?;
        Ok(S3Writer {
            trusted: true,
            missing: size == 0,
            store: self.store.clone(),
            path: path.to_owned(),
            key,
            start: size,
            replace_empty: false,
            buf: BytesMut::new(),
            written: 0,
            part_size: self.part_size,
            upload: None,
            inflight: FuturesUnordered::new(),
        })
    }

    /// One HEAD.
    async fn stat_stored(&self, path: &str) -> DResult<FileInfo> {
        let key = self.key(path)?;
        let (meta, marked) = head(&self.store, &key)
            .await
            .map_err(|e| backend(path, e))?;
        stored_info(path, &meta, marked)
    }

    /// One recursive listing of the directory (paged past 1000 keys): objects directly
    /// under it are files, a written file is summed from its segments, and a name with
    /// keys under it is a directory.
    async fn list_files(&self, path: &str) -> DResult<Vec<(String, FileInfo)>> {
        let key = self.key(path)?;
        let metas: Vec<ObjectMeta> = self
            .store
            .list(Some(&key))
            .try_collect()
            .await
            .map_err(|e| backend(path, e))?;
        let base = format!("{}/", key.as_ref());
        let mut files: BTreeMap<String, FileInfo> = BTreeMap::new();
        let mut written: BTreeMap<String, Vec<ObjectMeta>> = BTreeMap::new();
        let mut dirs: Vec<String> = Vec::new();
        for m in metas {
            let Some(rel) = m.location.as_ref().strip_prefix(base.as_str()) else {
                continue;
            };
            match rel.split_once('/') {
                None => {
                    files.insert(
                        rel.to_owned(),
                        FileInfo {
                            size: m.size,
                            modified: Some(m.last_modified.into()),
                            is_dir: false,
                        },
                    );
                }
                Some((first, rest)) => match first.strip_prefix('+') {
                    Some(name) if !rest.contains('/') => {
                        written.entry(name.to_owned()).or_default().push(m);
                    }
                    Some(_) => {}
                    None => dirs.push(first.to_owned()),
                },
            }
        }
        for (name, metas) in written {
            // an object stored whole at the same name wins, as `locate` decides
            if files.contains_key(&name) {
                continue;
            }
            let segs = Located::Segments(contiguous(&format!("{path}/{name}"), metas)?);
            files.insert(
                name,
                FileInfo {
                    size: segs.size(),
                    modified: segs.modified(),
                    is_dir: false,
                },
            );
        }
        for d in dirs {
            files.entry(d).or_insert(FileInfo {
                size: 0,
                modified: None,
                is_dir: true,
            });
        }
        if files.is_empty() {
            return Err(not_found(path));
        }
        Ok(files.into_iter().collect())
    }

    /// A HEAD first (not retried): a file stored whole — every blob, link and record — is
    /// one request, priced as a GET. Anything else (not found, a written file, a prefix, or
    /// a HEAD that failed, as s3s-fs's does on a key that is a directory on its disk) is
    /// decided by listings, which are retried.
    async fn stat(&self, path: &str) -> DResult<FileInfo> {
        let key = self.key(path)?;
        if let Ok((meta, marked)) = head(&self.probe_store, &key).await {
            return stored_info(path, &meta, marked);
        }
        let segs = self.segments(path, &key).await?;
        if !segs.is_empty() {
            let l = Located::Segments(segs);
            return Ok(FileInfo {
                size: l.size(),
                modified: l.modified(),
                is_dir: false,
            });
        }
        let probe = self.probe(path, &key).await?;
        let dir = probe.dir;
        match self.located(path, &key, probe).await? {
            Some(l) => Ok(FileInfo {
                size: l.size(),
                modified: l.modified(),
                is_dir: false,
            }),
            None if dir => Ok(FileInfo {
                size: 0,
                modified: None,
                is_dir: true,
            }),
            None => Err(not_found(path)),
        }
    }

    async fn list(&self, path: &str) -> DResult<Vec<String>> {
        let key = self.key(path)?;
        let r = self
            .store
            .list_with_delimiter(Some(&key))
            .await
            .map_err(|e| backend(path, e))?;
        let mut names: Vec<String> = r
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename())
            .chain(r.objects.iter().filter_map(|o| o.location.filename()))
            // a written file's segments are listed under its name
            .map(|n| n.strip_prefix('+').unwrap_or(n).to_owned())
            .collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Err(not_found(path));
        }
        Ok(names)
    }

    /// Located as [`S3Driver::locate`] does: a file stored whole (a blob the collector
    /// moves aside, or back) costs a HEAD, one `CopyObject` and one delete, no listing; an
    /// upload's data (segments) a failed HEAD and one listing of its segments more.
    async fn move_to(&self, from: &str, to: &str) -> DResult<()> {
        let (from_key, located) = self.locate(from).await?;
        self.move_located(from, &from_key, located, to).await
    }

    /// `part_size`: smaller data is copied (one request; its reads stay one GET).
    fn metrics(&self) -> Vec<DriverMetric> {
        vec![
            DriverMetric {
                name: "berth_registry_s3_read_ahead_bytes",
                help: "Bytes the windows fetched ahead by large reads from the bucket hold now.",
                kind: MetricKind::Gauge,
                value: self.read_ahead_held(),
            },
            DriverMetric {
                name: "berth_registry_s3_read_ahead_limit_bytes",
                help: "What the windows fetched ahead may hold at most, across all reads.",
                kind: MetricKind::Gauge,
                value: ranged::BUDGET_BYTES,
            },
            DriverMetric {
                name: "berth_registry_s3_large_reads_ranged_total",
                help: "Large reads whose first window came slower than read_ahead_below: the rest as ranged GETs.",
                kind: MetricKind::Counter,
                value: self.read_decisions.ranged(),
            },
            DriverMetric {
                name: "berth_registry_s3_large_reads_whole_total",
                help: "Large reads whose first window came at read_ahead_below or faster: the rest as one GET.",
                kind: MetricKind::Counter,
                value: self.read_decisions.whole(),
            },
        ]
    }

    fn reference_min(&self) -> Option<u64> {
        Some(self.part_size as u64)
    }

    /// At least `part_size` bytes in at most [`reference::MAX_SEGMENTS`] segments: the
    /// reference object stored at `to` (one listing, one PUT), however large the file;
    /// otherwise a move (the listing, a copy, a delete). Either way the file
    /// must hold `size` bytes in contiguous segments: never a reference to, or a copy of,
    /// less than the data verified.
    async fn adopt(&self, from: &str, to: &str, size: u64) -> DResult<()> {
        // a written file, by the contract: its segments' listing, no HEAD first
        let (from_key, located) = self.locate_written(from, self.key(from)?).await?;
        if located.size() != size {
            return Err(corrupt(
                from,
                format!("{} bytes where the upload verified {size}", located.size()),
            ));
        }
        match &located {
            Located::Segments(segs)
                if size >= self.part_size as u64 && segs.len() <= reference::MAX_SEGMENTS =>
            {
                let offsets = segs.iter().map(|s| (s.offset, s.meta.size)).collect();
                let reference = Reference::new(from, size, offsets)
                    .ok_or_else(|| corrupt(from, "segments that are not contiguous".to_owned()))?;
                self.put_reference(to, &self.key(to)?, &reference).await
            }
            _ => self.move_located(from, &from_key, located, to).await,
        }
    }

    /// One HEAD: the reference's metadata names the written file.
    async fn adopted_from(&self, path: &str) -> DResult<Option<String>> {
        let key = self.key(path)?;
        let (_, marked) = head(&self.store, &key)
            .await
            .map_err(|e| backend(path, e))?;
        Ok(marked.map(|(of, _)| of))
    }

    async fn delete(&self, path: &str) -> DResult<()> {
        self.delete_path(path).await
    }
}

/// Appends one segment to a written file (see the module documentation).
pub struct S3Writer {
    store: Arc<AmazonS3>,
    path: String,
    key: Key,
    /// Where this writer's segment starts: the file's size when it was opened.
    start: u64,
    /// Opened by [`Driver::writer_at`] at a size taken on trust: a segment found at 0
    /// may be the empty file's marker, to replace.
    trusted: bool,
    /// Nothing was stored at the path: a commit with nothing written creates it empty.
    missing: bool,
    replace_empty: bool,
    buf: BytesMut,
    written: u64,
    part_size: usize,
    upload: Option<Box<dyn MultipartUpload>>,
    inflight: FuturesUnordered<UploadPart>,
}

impl std::fmt::Debug for S3Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Writer")
            .field("path", &self.path)
            .field("start", &self.start)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl S3Writer {
    fn segment(&self) -> Key {
        S3Driver::segment_key(&self.key, self.start)
    }

    async fn flush_parts(&mut self) -> DResult<()> {
        while self.buf.len() >= self.part_size {
            let part = self.buf.split_to(self.part_size).freeze();
            if self.upload.is_none() {
                let seg = self.segment();
                let u = self
                    .store
                    .put_multipart_opts(&seg, PutMultipartOptions::default())
                    .await
                    .map_err(|e| backend(&self.path, e))?;
                self.upload = Some(u);
            }
            if let Some(u) = self.upload.as_mut() {
                let fut = u.put_part(part.into());
                push_part(&mut self.inflight, fut, &self.path).await?;
            }
        }
        Ok(())
    }

    async fn finish(&mut self) -> DResult<u64> {
        let size = self.start + self.written;
        if let Some(mut u) = self.upload.take() {
            if !self.buf.is_empty() {
                let last = std::mem::take(&mut self.buf).freeze();
                self.inflight.push(u.put_part(last.into()));
            }
            while let Some(r) = self.inflight.next().await {
                if let Err(e) = r {
                    let _ = u.abort().await;
                    return Err(backend(&self.path, e));
                }
            }
            u.complete().await.map_err(|e| backend(&self.path, e))?;
            return Ok(size);
        }
        if self.buf.is_empty() && !self.missing {
            return Ok(size);
        }
        // One PUT: created only if no other writer took this offset meanwhile (the empty
        // file's marker, replaced whole by the first data, is the exception).
        let mode = if self.replace_empty {
            PutMode::Overwrite
        } else {
            PutMode::Create
        };
        let data = std::mem::take(&mut self.buf).freeze();
        match self
            .store
            .put_opts(
                &self.segment(),
                PutPayload::from_bytes(data.clone()),
                PutOptions::from(mode),
            )
            .await
        {
            Ok(_) => Ok(size),
            // another writer made the empty file meanwhile: it exists, as asked
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) if self.written == 0 => Ok(size),
            // opened at 0 on trust over the empty file's marker: replace the marker (only
            // while it is still empty, as `writer` does)
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) if self.trusted && self.start == 0 => {
                let seg = self.segment();
                let found = self
                    .store
                    .head(&seg)
                    .await
                    .map_err(|e| backend(&self.path, e))?;
                if found.size != 0 {
                    return Err(DriverError::AlreadyExists {
                        path: self.path.clone(),
                    });
                }
                self.store
                    .put(&seg, PutPayload::from_bytes(data))
                    .await
                    .map(|_| size)
                    .map_err(|e| backend(&self.path, e))
            }
            Err(e) => Err(backend(&self.path, e)),
        }
    }
}

impl UploadWriter for S3Writer {
    async fn write(&mut self, chunk: Bytes) -> DResult<()> {
        self.written += chunk.len() as u64;
        self.buf.extend_from_slice(&chunk);
        self.flush_parts().await
    }

    /// Every committed segment is durable: S3 acknowledges a PUT or a completed multipart
    /// upload only once it is stored.
    async fn commit(mut self, _durable: bool) -> DResult<u64> {
        self.finish().await
    }
}

impl Drop for S3Writer {
    /// A multipart upload never completed is aborted, so the bucket keeps no invisible
    /// parts (a bucket lifecycle rule for incomplete uploads is still wise: a killed
    /// process aborts nothing).
    fn drop(&mut self) {
        if let Some(mut u) = self.upload.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = u.abort().await;
            });
        }
    }
}
