//! One image in one namespace → a verdict: the reference normalised as containerd does
//! (`nginx` is `docker.io/library/nginx:latest`), the rule chosen for the repository and the
//! namespace (name and labels), a tag resolved to its digest, the digest's signatures verified
//! under the rule (`berth_trust::image_policy::evaluate_image`) and, when the rule requires
//! one, its provenance attestation; successes cached per (policy version, rule, repository,
//! digest), concurrent verifications of one key run once.
//!
//! The verifier never decides on a tag: whatever the registry says a tag names is the digest
//! that is verified and that the caller pins.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use berth_distribution::{Client, ClientOptions, PlainHttp, Repository, RetryPolicy};
use berth_oci::{Digest, Reference};
use berth_trust::TargetArtifact;
use berth_trust::repository::{
    FetchedSignature, RegistrySignatures, RepositoryError, SignatureDescriptor,
    SignatureRepository, SignatureUpload, VerifyImageOptions,
};
use berth_trust::roles::{Decision, Outcome, Policy, hex_digest};
use berth_trust::{Level, TrustStore};
use sha2::{Digest as _, Sha256};

use crate::cache::{Flights, VerdictCache};
use crate::config::{Config, ConfigError, DefaultAction, NamespaceLabels};
use crate::metrics::{Metrics, Reason};

/// What failed while setting the verifier up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("failed to read the role policy {path}")]
    ReadPolicy {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "invalid role policy {path}: {message}\nhint: `berth policy check {path}` lists every problem with its line and column"
    )]
    Policy {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("failed to read the trust store {path}")]
    TrustStore {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to set up the registry client")]
    Client(#[source] berth_distribution::Error),
    #[error("failed to read the namespace labels from the API server")]
    Kube(#[from] crate::kube::KubeError),
    #[error(
        "[kubernetes] namespace_labels and image_pull_secrets need the API server's address: set api_server (outside a cluster)"
    )]
    NoApiServer,
}

/// The verdict on one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageVerdict {
    /// The image as written in the object.
    pub image: String,
    pub reason: Reason,
    /// The image may run (under this policy). False also for audit-level failures, whose
    /// `enforced` is false.
    pub allowed: bool,
    /// Whether a failure is enforced (false at a rule's audit level).
    pub enforced: bool,
    /// The verified digest (`None` when nothing was verified: skip, default allow, excluded).
    pub digest: Option<String>,
    /// The rule that decided.
    pub rule: Option<String>,
    /// The short explanation of a failure (for `status.message` or a warning).
    pub message: Option<String>,
}

impl ImageVerdict {
    fn fail(image: &str, reason: Reason, enforced: bool, message: String) -> ImageVerdict {
        ImageVerdict {
            image: image.to_string(),
            reason,
            allowed: false,
            enforced,
            digest: None,
            rule: None,
            message: Some(message),
        }
    }

    fn pass(image: &str, reason: Reason) -> ImageVerdict {
        ImageVerdict {
            image: image.to_string(),
            reason,
            allowed: true,
            enforced: true,
            digest: None,
            rule: None,
            message: None,
        }
    }

    /// The reference to run: the image as written with the verified digest
    /// (`nginx:1.25` → `nginx:1.25@sha256:…`), when it had none.
    pub fn pinned(&self) -> Option<String> {
        let digest = self.digest.as_ref()?;
        if self.image.contains('@') {
            return None;
        }
        Some(format!("{}@{digest}", self.image))
    }
}

/// Whether an image must already be pinned (validating) or may be resolved (mutating).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinning {
    /// Validating: a reference without a digest is refused.
    Required,
    /// Mutating: a tag is resolved to the digest that is verified.
    Resolve,
}

/// A verification's outcome as cached and shared between concurrent callers.
#[derive(Debug, Clone)]
enum Checked {
    /// The requirement (and provenance) is met.
    Passed,
    /// Not met: the explanation, and the reason label.
    Failed { reason: Reason, message: String },
}

/// The clients, one for registries listed as plain HTTP and one for the others: each keeps
/// its own connection pool, shared by every request.
#[derive(Debug)]
struct Registries {
    tls: Client,
    plain: Client,
    plain_hosts: Vec<String>,
}

impl Registries {
    /// The two clients, sending `credentials`.
    fn new(
        base: &ClientBase,
        credentials: Option<Arc<dyn berth_distribution::CredentialProvider>>,
    ) -> Result<Registries, SetupError> {
        let client = |plain_http| {
            Client::new(ClientOptions {
                credentials: credentials.clone(),
                plain_http,
                extra_root_certificates: base.extra_roots.clone(),
                // the review's deadline bounds everything; a retry must fit in it
                retry: RetryPolicy {
                    max_attempts: 2,
                    base_delay: std::time::Duration::from_millis(50),
                    max_delay: std::time::Duration::from_millis(200),
                },
                timeout: base.timeout,
                ..ClientOptions::default()
            })
            .map_err(SetupError::Client)
        };
        Ok(Registries {
            tls: client(PlainHttp::Never)?,
            plain: client(PlainHttp::Always)?,
            plain_hosts: base.plain_hosts.clone(),
        })
    }

    fn for_registry(&self, registry: &str) -> &Client {
        if self.plain_hosts.iter().any(|h| h == registry) {
            &self.plain
        } else {
            &self.tls
        }
    }
}

/// What every registry client of the verifier is made with: the configuration's credentials
/// (`config.json`), CA certificates, plain-HTTP registries and timeout.
#[derive(Debug)]
struct ClientBase {
    docker_config: Option<Arc<dyn berth_distribution::CredentialProvider>>,
    extra_roots: Vec<Vec<u8>>,
    plain_hosts: Vec<String>,
    timeout: std::time::Duration,
}

/// Registry clients for one review, sending the credentials of its `imagePullSecrets` before
/// those of `config.json` ([`Verifier::with_pull_credentials`]).
#[derive(Debug)]
pub struct ReviewRegistries(Registries);

/// How long the clients made for a set of pull-secret credentials are kept.
pub const PULL_CLIENT_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// Sets of pull-secret credentials whose clients are kept at most.
pub const MAX_PULL_CLIENTS: usize = 1000;

/// What the verdicts depend on, loaded together and replaced together by
/// [`Verifier::reload`]: the policy, the namespace labels, and the version (a hash of the
/// policy, every trust store file and the labels) that keys the cache.
#[derive(Debug)]
struct Loaded {
    policy: Policy,
    labels: NamespaceLabels,
    version: String,
}

/// Where namespace labels come from.
#[derive(Debug, Clone)]
enum LabelSource {
    None,
    File(std::path::PathBuf),
    Kube(crate::kube::KubeApi),
}

/// Where [`Loaded`] comes from.
#[derive(Debug, Clone)]
struct Sources {
    policy: std::path::PathBuf,
    trust_store: std::path::PathBuf,
    labels: LabelSource,
}

impl Sources {
    async fn load(&self) -> Result<Loaded, SetupError> {
        let labels = match &self.labels {
            LabelSource::None => NamespaceLabels::new(),
            LabelSource::File(p) => crate::config::load_namespace_labels(p)?,
            LabelSource::Kube(api) => api.namespace_labels().await?,
        };
        let policy_bytes =
            std::fs::read(&self.policy).map_err(|source| SetupError::ReadPolicy {
                path: self.policy.clone(),
                source,
            })?;
        let policy = Policy::parse(&policy_bytes).map_err(|e| SetupError::Policy {
            path: self.policy.clone(),
            message: e.to_string(),
        })?;
        let mut h = Sha256::new();
        h.update(b"policy\0");
        h.update(&policy_bytes);
        hash_tree(&mut h, &self.trust_store).map_err(|source| SetupError::TrustStore {
            path: self.trust_store.clone(),
            source,
        })?;
        h.update(b"labels\0");
        h.update(serde_json::to_vec(&labels).unwrap_or_default());
        Ok(Loaded {
            policy,
            labels,
            version: hex_digest(&h.finalize()),
        })
    }
}

/// The verifier: policy, trust store, labels, clients, cache. One per server.
#[derive(Debug)]
pub struct Verifier {
    sources: Sources,
    loaded: std::sync::RwLock<Arc<Loaded>>,
    store: TrustStore,
    registries: Registries,
    client_base: ClientBase,
    pull_secrets: Option<crate::pull_secrets::PullSecrets>,
    /// Registry clients for pull secrets' credentials, by a hash of the credentials.
    pull_clients: VerdictCache<String, Arc<ReviewRegistries>>,
    cache: VerdictCache<String, ()>,
    flights: Flights<String, Checked>,
    default: DefaultAction,
    max_signatures: usize,
    metrics: Arc<Metrics>,
}

impl Verifier {
    /// Loads the policy, the trust store's files (for the policy version) and the namespace
    /// labels (from their file or the API server), and sets the registry clients up.
    pub async fn new(config: &Config, metrics: Arc<Metrics>) -> Result<Verifier, SetupError> {
        let labels = match (&config.namespace_labels, &config.kube_labels) {
            (Some(p), _) => LabelSource::File(p.clone()),
            (None, Some(k)) => LabelSource::Kube(crate::kube::KubeApi::new(
                k.api_server.as_deref().ok_or(SetupError::NoApiServer)?,
                &k.ca_file,
                &k.token_file,
                config.timeout,
            )?),
            (None, None) => LabelSource::None,
        };
        let sources = Sources {
            policy: config.policy.clone(),
            trust_store: config.trust_store.clone(),
            labels,
        };
        // with labels from the API server, an unreachable one fails the start (the labels
        // choose rules: running without them could apply a weaker rule)
        let loaded = sources.load().await?;

        let docker_config: Option<Arc<dyn berth_distribution::CredentialProvider>> =
            config.docker_config.as_ref().map(|p| {
                Arc::new(berth_distribution::CredentialsConfig::new(p.clone()))
                    as Arc<dyn berth_distribution::CredentialProvider>
            });
        let extra_roots = match &config.ca_file {
            Some(p) => vec![std::fs::read(p).map_err(|source| {
                SetupError::Config(ConfigError::Read {
                    what: "registry CA file",
                    path: p.clone(),
                    source,
                })
            })?],
            None => Vec::new(),
        };
        let client_base = ClientBase {
            docker_config: docker_config.clone(),
            extra_roots,
            plain_hosts: config.plain_http.clone(),
            timeout: config.timeout,
        };
        let registries = Registries::new(&client_base, docker_config)?;
        let pull_secrets = match &config.image_pull_secrets {
            Some(k) => Some(crate::pull_secrets::PullSecrets::new(
                crate::kube::KubeApi::new(
                    k.api_server.as_deref().ok_or(SetupError::NoApiServer)?,
                    &k.ca_file,
                    &k.token_file,
                    config.timeout,
                )?,
            )),
            None => None,
        };
        Ok(Verifier {
            sources,
            loaded: std::sync::RwLock::new(Arc::new(loaded)),
            store: TrustStore::new(&config.trust_store),
            registries,
            client_base,
            pull_secrets,
            pull_clients: VerdictCache::new(PULL_CLIENT_TTL, MAX_PULL_CLIENTS),
            cache: VerdictCache::new(config.cache_ttl, config.cache_max_entries),
            flights: Flights::default(),
            default: config.default,
            max_signatures: config.max_signatures,
            metrics,
        })
    }

    fn loaded(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The policy version: a hash of the policy, the trust store's files and the labels.
    pub fn policy_version(&self) -> String {
        self.loaded().version.clone()
    }

    /// The reader of image pull secrets, when `[kubernetes] image_pull_secrets` is on.
    pub fn pull_secrets(&self) -> Option<&crate::pull_secrets::PullSecrets> {
        self.pull_secrets.as_ref()
    }

    /// Registry clients for one review that send `credentials` (registry host → credential,
    /// from its pull secrets) to the registries they name, and the configuration's
    /// `config.json` credentials to the others. Clients are kept for
    /// [`PULL_CLIENT_TTL`] keyed by a hash of exactly these credentials, so that reviews
    /// with the same secrets share connections and registry tokens; a review whose secrets
    /// differ in any user name or password gets clients of its own.
    pub fn with_pull_credentials(
        &self,
        credentials: BTreeMap<String, berth_distribution::Credential>,
    ) -> Result<Arc<ReviewRegistries>, SetupError> {
        let mut h = Sha256::new();
        for (host, c) in &credentials {
            let (kind, user, secret) = match c {
                berth_distribution::Credential::Basic { username, password } => {
                    ("basic", username, password)
                }
                berth_distribution::Credential::IdentityToken { username, token } => {
                    ("token", username, token)
                }
            };
            for part in [host.as_str(), kind, user.as_str(), secret.expose()] {
                h.update(part.len().to_le_bytes());
                h.update(part.as_bytes());
            }
        }
        let key = hex_digest(&h.finalize());
        if let Some(r) = self.pull_clients.get(&key) {
            return Ok(r);
        }
        let provided = credentials.into_iter().fold(
            berth_distribution::StaticCredentials::new(),
            |c, (host, credential)| c.with(&host, credential),
        );
        let mut chain = berth_distribution::CredentialChain::new().then(Arc::new(provided));
        if let Some(c) = &self.client_base.docker_config {
            chain = chain.then(c.clone());
        }
        let r = Arc::new(ReviewRegistries(Registries::new(
            &self.client_base,
            Some(Arc::new(chain)),
        )?));
        self.pull_clients.insert(key, r.clone());
        Ok(r)
    }

    /// The labels known for a namespace.
    pub fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.loaded().labels.get(namespace).cloned()
    }

    /// Reads the policy, the trust store and the labels again; when they changed (another
    /// version), reviews from now on use them (verdicts cached under the old version are
    /// never looked up again, and age out). `Ok(true)`: replaced; `Ok(false)`: unchanged; an
    /// error (a policy that does not parse, a file that cannot be read) keeps what is loaded.
    pub async fn reload(&self) -> Result<bool, SetupError> {
        let fresh = self.sources.load().await?;
        let mut g = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        if g.version == fresh.version {
            return Ok(false);
        }
        *g = Arc::new(fresh);
        Ok(true)
    }

    /// The verdict on `image` in `namespace`.
    pub async fn check(&self, image: &str, namespace: &str, pinning: Pinning) -> ImageVerdict {
        let v = self.check_inner(image, namespace, pinning, None).await;
        self.metrics.image(v.reason);
        v
    }

    /// [`Verifier::check`] until `deadline`: when it passes, the verdict is a failure saying
    /// so, enforced unless the image's rule is at level audit (whose failures are reported,
    /// never refused). `registries`: the review's own clients (its pull secrets' credentials),
    /// else the verifier's.
    pub async fn check_until(
        &self,
        image: &str,
        namespace: &str,
        pinning: Pinning,
        deadline: tokio::time::Instant,
        budget: std::time::Duration,
        registries: Option<&ReviewRegistries>,
    ) -> ImageVerdict {
        let check = self.check_inner(image, namespace, pinning, registries);
        match tokio::time::timeout_at(deadline, check).await {
            Ok(v) => {
                self.metrics.image(v.reason);
                v
            }
            Err(_) => {
                let loaded = self.loaded();
                let rule = Reference::parse(image).ok().and_then(|r| {
                    loaded.policy.select_with_labels(
                        &r.name(),
                        Some(namespace),
                        loaded.labels.get(namespace),
                    )
                });
                let enforced = rule.is_none_or(|r| r.statement.verification.level != Level::Audit);
                let mut v = ImageVerdict::fail(
                    image,
                    Reason::Deadline,
                    enforced,
                    format!(
                        "image {image}: verification did not finish within {} ms (the deadline under the API server's timeout); retry, or check that the registry is reachable from the webhook",
                        budget.as_millis()
                    ),
                );
                v.rule = rule.map(|r| r.name.clone());
                self.metrics.image(Reason::Deadline);
                v
            }
        }
    }

    async fn check_inner(
        &self,
        image: &str,
        namespace: &str,
        pinning: Pinning,
        registries: Option<&ReviewRegistries>,
    ) -> ImageVerdict {
        let reference = match Reference::parse(image) {
            Ok(r) => r,
            Err(e) => {
                return ImageVerdict::fail(
                    image,
                    Reason::InvalidReference,
                    true,
                    format!("image {image:?} is not a valid image reference: {e}"),
                );
            }
        };
        let scope = reference.name();
        // one snapshot for the whole check: a reload meanwhile does not mix versions
        let loaded = self.loaded();
        let labels = loaded.labels.get(namespace);
        let Some(rule) = loaded
            .policy
            .select_with_labels(&scope, Some(namespace), labels)
        else {
            return match self.default {
                DefaultAction::Allow => ImageVerdict::pass(image, Reason::NotVerified),
                DefaultAction::Deny => ImageVerdict::fail(
                    image,
                    Reason::NoRule,
                    true,
                    format!(
                        "image {image}: no rule of the policy applies to {scope} in namespace {namespace}, and the default is deny"
                    ),
                ),
            };
        };
        let level = rule.statement.verification.level;
        if level == Level::Skip {
            let mut v = ImageVerdict::pass(image, Reason::NotVerified);
            v.rule = Some(rule.name.clone());
            return v;
        }
        let enforced = level != Level::Audit;
        let with_rule = |mut v: ImageVerdict| {
            v.rule = Some(rule.name.clone());
            v
        };
        let repo = match Repository::new(reference.registry(), reference.repository()) {
            Ok(r) => r,
            Err(e) => {
                return with_rule(ImageVerdict::fail(
                    image,
                    Reason::InvalidReference,
                    enforced,
                    format!("image {image}: {e}"),
                ));
            }
        };
        let client = registries
            .map_or(&self.registries, |r| &r.0)
            .for_registry(reference.registry());
        let sigs = Timed {
            inner: RegistrySignatures::new(client, repo.clone()),
            metrics: &self.metrics,
        };
        // the digest: as pinned, or what the tag names now
        let mut resolved: Option<TargetArtifact> = None;
        let digest: Digest = match (reference.digest(), pinning) {
            (Some(d), _) => d.clone(),
            (None, Pinning::Required) => {
                return with_rule(ImageVerdict::fail(
                    image,
                    Reason::NotPinned,
                    enforced,
                    format!(
                        "image {image} is not pinned to a digest; the berth mutating webhook pins verified images (name@sha256:…): is it installed and called first?"
                    ),
                ));
            }
            (None, Pinning::Resolve) => {
                let tag = reference.tag().unwrap_or(berth_oci::DEFAULT_TAG);
                match resolve(client, &repo, &sigs, tag, &self.metrics).await {
                    Ok(t) => match Digest::parse(&t.digest) {
                        Ok(d) => {
                            resolved = Some(t);
                            d
                        }
                        Err(e) => {
                            return with_rule(ImageVerdict::fail(
                                image,
                                Reason::Registry,
                                enforced,
                                format!("image {image}: the registry named an invalid digest: {e}"),
                            ));
                        }
                    },
                    Err(e) => {
                        return with_rule(ImageVerdict::fail(
                            image,
                            Reason::Registry,
                            enforced,
                            format!(
                                "image {image}: failed to resolve tag {tag}: {}",
                                berth_errdefs::error_chain(&e)
                            ),
                        ));
                    }
                }
            }
        };
        let digest_text = digest.to_string();
        // not keyed by credentials: a verdict is about the digest's signatures, not about who
        // may pull it (the kubelet pulls with the Pod's own secrets and fails without access),
        // as Kyverno and policy-controller share theirs (docs/admission.md, "Pull secrets")
        let key = format!("{}\0{}\0{scope}\0{digest_text}", loaded.version, rule.name);
        let verified = |reason| {
            with_rule(ImageVerdict {
                image: image.to_string(),
                reason,
                allowed: true,
                enforced,
                digest: Some(digest_text.clone()),
                rule: None,
                message: None,
            })
        };
        if self.cache.get(&key).is_some() {
            self.metrics.cache(true);
            return verified(Reason::Cached);
        }
        self.metrics.cache(false);
        let checked = self
            .flights
            .run(key.clone(), || async {
                self.metrics.verification();
                let target = match resolved {
                    Some(t) => Ok(t),
                    None => resolve(client, &repo, &sigs, &digest_text, &self.metrics).await,
                };
                let checked = match target {
                    Ok(target) => {
                        self.verify(
                            &loaded.policy,
                            &sigs,
                            client,
                            &repo,
                            &scope,
                            namespace,
                            labels,
                            &target,
                        )
                        .await
                    }
                    Err(e) => Checked::Failed {
                        reason: Reason::Registry,
                        message: format!(
                            "failed to read {scope}@{digest_text}: {}",
                            berth_errdefs::error_chain(&e)
                        ),
                    },
                };
                if matches!(checked, Checked::Passed) {
                    self.cache.insert(key.clone(), ());
                }
                checked
            })
            .await;
        match checked {
            Checked::Passed => verified(Reason::Verified),
            Checked::Failed { reason, message } => {
                let mut v = with_rule(ImageVerdict::fail(
                    image,
                    reason,
                    enforced,
                    format!("image {image}: {message}"),
                ));
                v.digest = Some(digest_text.clone());
                v
            }
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the registry, the image and where it is used are each needed"
    )]
    async fn verify<R: SignatureRepository + Sync>(
        &self,
        policy: &Policy,
        sigs: &R,
        client: &Client,
        repo: &Repository,
        scope: &str,
        namespace: &str,
        labels: Option<&BTreeMap<String, String>>,
        target: &TargetArtifact,
    ) -> Checked {
        let opts = VerifyImageOptions {
            max_signatures: self.max_signatures,
            now: berth_trust::Timestamp::now(),
            revocation: &berth_trust::revocation::HTTP,
        };
        let d = match berth_trust::image_policy::evaluate_image_with_labels(
            sigs,
            policy,
            scope,
            Some(namespace),
            labels,
            target,
            &self.store,
            &opts,
        )
        .await
        {
            Ok(d) => d,
            Err(e) => {
                return Checked::Failed {
                    reason: Reason::Registry,
                    message: berth_errdefs::error_chain(&e),
                };
            }
        };
        if !d.decision.satisfied {
            return Checked::Failed {
                reason: Reason::Policy,
                message: summary(&d.decision, &target.digest, d.ignored),
            };
        }
        if d.requires_evidence() {
            let started = Instant::now();
            let v =
                berth_trust::evidence::check(client, repo, scope, target, &d, &self.store, &opts)
                    .await;
            self.metrics.registry_latency(started.elapsed());
            match v {
                Ok(v) if v.passed() => {}
                Ok(v) => {
                    let rule = d.decision.rule.as_deref().unwrap_or_default();
                    // the first unmet requirement, with the first reason it gives
                    let (reason, required, why) =
                        if let Some(s) = v.source.as_ref().filter(|s| !s.passed()) {
                            (
                                Reason::Source,
                                format!("a signed provenance attestation naming {}", s.required),
                                s.explain(),
                            )
                        } else if let Some(b) = v.sbom.as_ref().filter(|b| !b.passed()) {
                            (Reason::Sbom, b.required.clone(), b.explain())
                        } else if let Some(c) = v.scan.as_ref().filter(|c| !c.passed()) {
                            (Reason::Scan, c.required.clone(), c.explain())
                        } else {
                            (Reason::Policy, "evidence".to_string(), String::new())
                        };
                    // the newest referrer's reason; `berth verify --policy` lists them all
                    let mut lines = why.lines().filter(|l| !l.starts_with("hint: "));
                    let first = lines.next().unwrap_or_default();
                    let more = match lines.count() {
                        0 => String::new(),
                        n => format!(" (and {n} other referrer(s) that did not count)"),
                    };
                    return Checked::Failed {
                        reason,
                        message: format!("rule {rule:?} requires {required}: {first}{more}"),
                    };
                }
                Err(e) => {
                    return Checked::Failed {
                        reason: Reason::Registry,
                        message: berth_errdefs::error_chain(&e),
                    };
                }
            }
        }
        Checked::Passed
    }
}

/// A tag or digest → the manifest's descriptor: a `HEAD` when the registry says all three
/// (digest, size, media type), else the manifest itself.
async fn resolve<R: SignatureRepository>(
    client: &Client,
    repo: &Repository,
    sigs: &R,
    reference: &str,
    metrics: &Metrics,
) -> Result<TargetArtifact, RepositoryError> {
    let started = Instant::now();
    let head = client
        .head_manifest(repo, reference, &MANIFEST_ACCEPT)
        .await;
    metrics.registry_latency(started.elapsed());
    if let Ok(Some(h)) = head
        && let (Some(digest), Some(size), Some(media_type)) = (h.digest, h.size, h.media_type)
        && MANIFEST_ACCEPT.contains(&media_type.as_str())
        && (!reference.contains(':') || digest.to_string() == reference)
    {
        return Ok(TargetArtifact {
            media_type,
            digest: digest.to_string(),
            size,
            annotations: BTreeMap::new(),
        });
    }
    sigs.resolve(reference).await
}

const MANIFEST_ACCEPT: [&str; 4] = [
    berth_oci::media_type::OCI_MANIFEST,
    berth_oci::media_type::OCI_INDEX,
    berth_oci::media_type::DOCKER_MANIFEST_V2,
    berth_oci::media_type::DOCKER_MANIFEST_LIST,
];

/// The one-line explanation of an unmet requirement: the rule, what is missing, and why the
/// first signature that did not count did not.
pub fn summary(d: &Decision, digest: &str, not_evaluated: usize) -> String {
    let rule = d.rule.as_deref().unwrap_or("?");
    let mut s = format!("{}@{} denied by rule {rule:?}", d.scope, short(digest));
    match &d.outcome {
        Outcome::Roles { roles, needed, all } => {
            let missing: Vec<&str> = roles
                .iter()
                .filter(|r| r.satisfied_by.is_none())
                .map(|r| r.role.as_str())
                .collect();
            if *all {
                s.push_str(&format!("; missing role(s): {}", missing.join(", ")));
            } else {
                s.push_str(&format!(
                    "; needs {needed} distinct signers of {}, {} counted",
                    roles
                        .iter()
                        .map(|r| r.role.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    d.signers_counted
                ));
            }
        }
        Outcome::AnyTrusted { needed, signers } => s.push_str(&format!(
            "; needs {needed} distinct trusted signers, {} counted",
            signers.len()
        )),
        Outcome::NoRule | Outcome::Skipped => {}
    }
    if d.ignored.is_empty() && d.signers_counted == 0 {
        s.push_str("; no signature found");
    }
    if let Some(first) = d.ignored.first() {
        let mut text = first.to_string();
        if text.len() > 200 {
            let mut cut = 200;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        s.push_str(&format!(
            "; {} signature(s) did not count, e.g. {text}",
            d.ignored.len()
        ));
    }
    if not_evaluated > 0 {
        s.push_str(&format!(
            "; {not_evaluated} more signature(s) not evaluated"
        ));
    }
    s
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// A [`SignatureRepository`] that records each round trip's latency.
struct Timed<'a, R> {
    inner: R,
    metrics: &'a Metrics,
}

impl<R: SignatureRepository + Sync> SignatureRepository for Timed<'_, R> {
    async fn resolve(&self, reference: &str) -> Result<TargetArtifact, RepositoryError> {
        let started = Instant::now();
        let r = self.inner.resolve(reference).await;
        self.metrics.registry_latency(started.elapsed());
        r
    }

    async fn list_signatures(
        &self,
        subject: &Digest,
    ) -> Result<Vec<SignatureDescriptor>, RepositoryError> {
        let started = Instant::now();
        let r = self.inner.list_signatures(subject).await;
        self.metrics.registry_latency(started.elapsed());
        r
    }

    async fn fetch_signature(
        &self,
        signature: &SignatureDescriptor,
    ) -> Result<FetchedSignature, RepositoryError> {
        let started = Instant::now();
        let r = self.inner.fetch_signature(signature).await;
        self.metrics.registry_latency(started.elapsed());
        r
    }

    async fn push_signature(
        &self,
        upload: SignatureUpload<'_>,
    ) -> Result<SignatureDescriptor, RepositoryError> {
        self.inner.push_signature(upload).await
    }
}

/// Files hashed at most under the trust store, and directory levels followed.
const MAX_TREE_FILES: usize = 10_000;
const MAX_TREE_DEPTH: usize = 16;

/// Every file under `root` (path and content), in sorted order, into the hash. Symbolic links
/// are followed (Kubernetes mounts ConfigMaps and Secrets through them), to a bounded depth.
fn hash_tree(h: &mut Sha256, root: &std::path::Path) -> std::io::Result<()> {
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    let mut files = Vec::new();
    while let Some((dir, depth)) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if std::fs::metadata(&path)?.is_dir() {
                if depth + 1 > MAX_TREE_DEPTH {
                    return Err(std::io::Error::other(format!(
                        "{} is more than {MAX_TREE_DEPTH} directories deep (a symbolic link loop?)",
                        path.display()
                    )));
                }
                stack.push((path, depth + 1));
            } else {
                files.push(path);
            }
            if files.len() > MAX_TREE_FILES {
                return Err(std::io::Error::other(format!(
                    "more than {MAX_TREE_FILES} files under {}",
                    root.display()
                )));
            }
        }
    }
    files.sort();
    for f in files {
        h.update(b"file\0");
        h.update(
            f.strip_prefix(root)
                .unwrap_or(&f)
                .to_string_lossy()
                .as_bytes(),
        );
        h.update(b"\0");
        h.update(std::fs::read(&f)?);
    }
    Ok(())
}
