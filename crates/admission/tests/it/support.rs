//! A test PKI (an Acme CA with dev, ci and prod signers; Mallory's CA outside the trust
//! store), a real `berth registry serve` on 127.0.0.1, images pushed and signed in it, and the
//! webhook's configuration around them.
#![allow(
    clippy::disallowed_methods,
    reason = "test inputs in a temporary directory need no atomic writes"
)]

use std::path::Path;
use std::sync::Arc;

use berth_admission::metrics::Endpoint;
use berth_admission::review::{AdmissionResponse, PatchOp};
use berth_admission::{Config, Webhook};
use berth_distribution::{BytesSource, Client, ClientOptions, PlainHttp, Repository};
use berth_oci::oci_spec::image::{Descriptor, MediaType};
use berth_oci::{Digest, media_type};
use berth_test_support::{Registry, RegistryOptions, random_bytes};
use berth_trust::cert::DistinguishedName;
use berth_trust::certgen::{self, CertParams};
use berth_trust::repository::{RegistrySignatures, SignatureRepository, SignatureUpload};
use berth_trust::{
    Certificate, EnvelopeFormat, KeySpec, SignOptions, SigningKey, TargetArtifact, Timestamp,
};
use serde_json::{Value, json};

pub const POLICY: &str = r#"{
  "version": "berth.policy/v1",
  "trustStores": ["ca:acme"],
  "roles": {
    "dev": {"trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme, CN=dev"]},
    "ci": {"trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme, CN=ci"]},
    "prod": {"trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme, CN=prod"]}
  },
  "rules": [
    {
      "name": "production",
      "registryScopes": ["*"],
      "namespaces": ["prod-*"],
      "signatureVerification": {"level": "strict"},
      "trustStores": ["ca:acme"],
      "requirement": {"allOf": ["dev", "ci", "prod"]}
    },
    {
      "name": "gold",
      "registryScopes": ["*"],
      "namespaceSelector": {"matchLabels": {"tier": "gold"}},
      "signatureVerification": {"level": "strict"},
      "trustStores": ["ca:acme"],
      "requirement": {"allOf": ["ci"]}
    },
    {
      "name": "development",
      "registryScopes": ["*"],
      "namespaces": ["dev-*"],
      "signatureVerification": {"level": "audit"},
      "trustStores": ["ca:acme"],
      "requirement": {"allOf": ["dev", "ci"]}
    },
    {
      "name": "sourced",
      "registryScopes": ["*"],
      "namespaces": ["src-*"],
      "signatureVerification": {"level": "strict"},
      "trustStores": ["ca:acme"],
      "requirement": {"allOf": ["ci"]},
      "requireSource": "github.com/acme/app"
    },
    {
      "name": "scanned",
      "registryScopes": ["*"],
      "namespaces": ["scan-*"],
      "signatureVerification": {"level": "strict"},
      "trustStores": ["ca:acme"],
      "requirement": {"allOf": ["ci"]},
      "requireSbom": {"signedBy": "ci"},
      "requireScan": {"signedBy": "ci", "maxAgeDays": 7, "failOn": "high"}
    },
    {
      "name": "sandbox",
      "registryScopes": ["*"],
      "namespaces": ["sandbox"],
      "signatureVerification": {"level": "skip"}
    }
  ]
}"#;

/// A seed no other call of this process gets (distinct images, signatures, uids).
pub fn seed() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    now ^ NEXT
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn params(cn: &str, org: &str) -> CertParams {
    CertParams {
        subject: DistinguishedName(vec![
            ("C".into(), "US".into()),
            ("ST".into(), "WA".into()),
            ("O".into(), org.into()),
            ("CN".into(), cn.into()),
        ]),
        not_before: Timestamp(Timestamp::now().0 - 60),
        not_after: Timestamp(Timestamp::now().0 + 86_400),
    }
}

/// One signer: a key and its chain.
pub struct Signer {
    key: SigningKey,
    chain: Vec<Certificate>,
}

/// The PKI: Acme's CA (in the trust store) and Mallory's (not).
pub struct Pki {
    acme: (SigningKey, Certificate),
    mallory: (SigningKey, Certificate),
}

impl Pki {
    pub fn new() -> Pki {
        let ca = |name: &str, org: &str| {
            let key = SigningKey::generate(KeySpec::EcP256).unwrap();
            let cert = certgen::ca(&params(name, org), &key).unwrap();
            (key, cert)
        };
        Pki {
            acme: ca("Acme Root", "Acme"),
            mallory: ca("Acme Root", "Acme"),
        }
    }

    /// `CN=cn` under Acme's CA.
    pub fn signer(&self, cn: &str) -> Signer {
        let key = SigningKey::generate(KeySpec::EcP256).unwrap();
        let leaf = certgen::leaf(&params(cn, "Acme"), &key, &self.acme.1, &self.acme.0).unwrap();
        Signer {
            key,
            chain: vec![leaf, self.acme.1.clone()],
        }
    }

    /// `CN=cn` with Acme's subject, under Mallory's look-alike CA.
    pub fn forger(&self, cn: &str) -> Signer {
        let key = SigningKey::generate(KeySpec::EcP256).unwrap();
        let leaf =
            certgen::leaf(&params(cn, "Acme"), &key, &self.mallory.1, &self.mallory.0).unwrap();
        Signer {
            key,
            chain: vec![leaf, self.mallory.1.clone()],
        }
    }

    /// The trust store directory: Acme's root as `x509/ca/acme/root.der`.
    pub fn write_trust_store(&self, dir: &Path) {
        let d = dir.join("x509/ca/acme");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("root.der"), self.acme.1.der()).unwrap();
    }
}

/// A registry, the PKI, the config files and a client.
pub struct Fixture {
    pub registry: Registry,
    pub pki: Pki,
    pub dir: tempfile::TempDir,
    pub client: Client,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with_registry(RegistryOptions::new(), None)
    }

    /// A fixture whose registry is started with `opts`; the pushing client logs in as
    /// `user` (name, password) when given.
    pub fn with_registry(opts: RegistryOptions, user: Option<(&str, &str)>) -> Fixture {
        let registry = Registry::start(opts);
        let pki = Pki::new();
        let dir = tempfile::tempdir().unwrap();
        pki.write_trust_store(&dir.path().join("truststore"));
        std::fs::write(dir.path().join("policy.json"), POLICY).unwrap();
        std::fs::write(
            dir.path().join("namespaces.json"),
            r#"{"gold-ns": {"tier": "gold"}, "plain-ns": {"tier": "bronze"}}"#,
        )
        .unwrap();
        let credentials = user.map(|(name, password)| {
            Arc::new(berth_distribution::StaticCredentials::new().with(
                &registry.host(),
                berth_distribution::Credential::Basic {
                    username: name.to_string(),
                    password: password.into(),
                },
            )) as Arc<dyn berth_distribution::CredentialProvider>
        });
        let client = Client::new(ClientOptions {
            plain_http: PlainHttp::Always,
            credentials,
            ..ClientOptions::default()
        })
        .unwrap();
        Fixture {
            registry,
            pki,
            dir,
            client,
        }
    }

    pub fn host(&self) -> String {
        self.registry.host()
    }

    /// The config file text: the fixture's policy, trust store and labels, the registry as
    /// plain HTTP, and `extra` lines (top-level keys only).
    pub fn config_text(&self, extra: &str) -> String {
        self.config_text_with(extra, "")
    }

    /// [`Fixture::config_text`] with more lines in `[registry]`.
    pub fn config_text_with(&self, extra: &str, registry: &str) -> String {
        format!(
            "policy = \"policy.json\"\ntrust_store = \"truststore\"\nnamespace_labels = \"namespaces.json\"\nlisten = \"127.0.0.1:0\"\n{extra}\n[registry]\nplain_http = [\"{}\"]\n{registry}\n",
            self.host()
        )
    }

    /// A webhook with these lines in its `[registry]` table.
    pub async fn webhook_with_registry(&self, registry: &str) -> Arc<Webhook> {
        let config = Config::parse(&self.config_text_with("", registry), self.dir.path()).unwrap();
        Arc::new(Webhook::new(&config, "berth-system").await.unwrap())
    }

    pub fn config(&self, extra: &str) -> Config {
        Config::parse(&self.config_text(extra), self.dir.path()).unwrap()
    }

    pub async fn webhook(&self, extra: &str) -> Arc<Webhook> {
        Arc::new(
            Webhook::new(&self.config(extra), "berth-system")
                .await
                .unwrap(),
        )
    }

    pub fn repo(&self, name: &str) -> Repository {
        Repository::new(&self.host(), name).unwrap()
    }

    /// Pushes a one-layer image (random content) as `name:tag`; its descriptor.
    pub async fn push_image(&self, name: &str, tag: &str) -> TargetArtifact {
        let repo = self.repo(name);
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let layer = random_bytes(seed(), 256);
        let config_digest = Digest::sha256_of(config);
        let layer_digest = Digest::sha256_of(&layer);
        self.client
            .push_blob(
                &repo,
                &config_digest,
                config.len() as u64,
                BytesSource(config.to_vec().into()),
            )
            .await
            .unwrap();
        self.client
            .push_blob(
                &repo,
                &layer_digest,
                layer.len() as u64,
                BytesSource(layer.clone().into()),
            )
            .await
            .unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest.to_string(), "size": layer.len()}]
        }))
        .unwrap();
        let digest = self
            .client
            .put_manifest(&repo, tag, &manifest, media_type::OCI_MANIFEST)
            .await
            .unwrap();
        TargetArtifact {
            media_type: media_type::OCI_MANIFEST.to_string(),
            digest: digest.to_string(),
            size: manifest.len() as u64,
            annotations: Default::default(),
        }
    }

    /// [`Fixture::push_image`], signed by each of `who` (Acme signers).
    pub async fn push_signed(&self, name: &str, tag: &str, who: &[&str]) -> TargetArtifact {
        let target = self.push_image(name, tag).await;
        for w in who {
            self.sign(name, &target, &self.pki.signer(w)).await;
        }
        target
    }

    /// Signs `target` of `name` as `signer` and pushes the signature.
    pub async fn sign(&self, name: &str, target: &TargetArtifact, signer: &Signer) {
        let opts = SignOptions::new(EnvelopeFormat::Jws);
        let envelope = berth_trust::sign(target, &signer.key, &signer.chain, &opts).unwrap();
        self.push_envelope(name, target, &envelope, &signer.chain, &opts)
            .await;
    }

    /// Attaches a provenance attestation (built from `repository` at a fixed commit) to
    /// `target`, signed by `signer`.
    pub async fn attest(
        &self,
        name: &str,
        target: &TargetArtifact,
        repository: &str,
        signer: &Signer,
    ) {
        use berth_trust::provenance::{Build, Source, Statement};
        let source = Source::new(repository, &"a".repeat(40), None).unwrap();
        let build = Build {
            builder_id: "https://ci.acme.example/job/1".into(),
            started: None,
            finished: None,
            invocation_id: None,
        };
        let image = Digest::parse(&target.digest).unwrap();
        let statement =
            Statement::new(&format!("{}/{name}", self.host()), &image, &source, &build).to_json();
        let manifest = berth_trust::attestation::attestation_manifest(target, &statement);
        let attestation = berth_trust::attestation::push_attestation(
            &self.client,
            &self.repo(name),
            &statement,
            &manifest,
        )
        .await
        .unwrap();
        self.sign(name, &attestation, signer).await;
    }

    /// Attaches `content` to `target` as a referrer of `artifact_type` (created at
    /// `created`, the manifest annotation `berth sbom/scan --attach` writes), signed by
    /// `signer` unless `None`.
    pub async fn attach(
        &self,
        name: &str,
        target: &TargetArtifact,
        artifact_type: &str,
        content: &[u8],
        created: &str,
        signer: Option<&Signer>,
    ) {
        let annotations = std::collections::BTreeMap::from([(
            "org.opencontainers.image.created".to_string(),
            created.to_string(),
        )]);
        let manifest = berth_trust::attestation::referrer_manifest(
            target,
            artifact_type,
            content,
            &std::collections::BTreeMap::new(),
            &annotations,
        );
        let artifact = berth_trust::attestation::push_referrer(
            &self.client,
            &self.repo(name),
            content,
            &manifest,
        )
        .await
        .unwrap();
        if let Some(signer) = signer {
            self.sign(name, &artifact, signer).await;
        }
    }

    /// Pushes `envelope` as a signature of `target` (whatever it holds).
    pub async fn push_envelope(
        &self,
        name: &str,
        target: &TargetArtifact,
        envelope: &[u8],
        chain: &[Certificate],
        opts: &SignOptions,
    ) {
        let subject = Descriptor::new(
            MediaType::from(target.media_type.as_str()),
            target.size,
            target
                .digest
                .parse::<berth_oci::oci_spec::image::Digest>()
                .unwrap(),
        );
        let manifest = berth_trust::manifest::signature_manifest(
            &subject,
            envelope,
            opts.format,
            chain,
            opts.signing_time,
        )
        .unwrap();
        RegistrySignatures::new(&self.client, self.repo(name))
            .push_signature(SignatureUpload {
                envelope,
                manifest: &manifest.bytes,
            })
            .await
            .unwrap();
    }

    /// Pushes `n` signatures whose envelopes are junk (a valid signature manifest around
    /// random bytes).
    pub async fn push_junk(&self, name: &str, target: &TargetArtifact, n: usize) {
        let signer = self.pki.signer("junk");
        let opts = SignOptions::new(EnvelopeFormat::Jws);
        for _ in 0..n {
            let junk = random_bytes(seed(), 64);
            self.push_envelope(name, target, &junk, &signer.chain, &opts)
                .await;
        }
    }
}

/// An AdmissionReview for `object` (a Pod or workload), CREATE, or UPDATE with `old`.
pub fn review(namespace: &str, object: &Value, old: Option<&Value>) -> Vec<u8> {
    let kind = object["kind"].as_str().unwrap_or("Pod");
    let api = object["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api.split_once('/').unwrap_or(("", api));
    let resource = format!("{}s", kind.to_lowercase());
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{}", random_bytes(seed(), 4).iter().map(|b| format!("{b:02x}")).collect::<String>()),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": object["metadata"]["name"],
            "namespace": namespace,
            "operation": if old.is_some() { "UPDATE" } else { "CREATE" },
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": if old.is_some() { "UpdateOptions" } else { "CreateOptions" }, "fieldManager": "kubectl-client-side-apply"}
        }
    }))
    .unwrap()
}

/// A Deployment as `kubectl create deployment web --image=IMAGE -o json` writes it.
pub fn deployment(images: &[&str]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image, "resources": {}}))
        .collect();
    json!({
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {"containers": containers}
            },
            "strategy": {}
        },
        "status": {}
    })
}

/// A Pod with these container images.
pub fn pod(images: &[&str]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
        .collect();
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "web"},
        "spec": {"containers": containers}
    })
}

/// The patch of a response, decoded.
pub fn patch_of(r: &AdmissionResponse) -> Vec<PatchOp> {
    use base64::Engine;
    match &r.patch {
        None => Vec::new(),
        Some(p) => {
            assert_eq!(r.patch_type.as_deref(), Some("JSONPatch"));
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(p).unwrap())
                .unwrap()
        }
    }
}

/// `object` with `ops` applied (replace operations on existing string fields, as the API
/// server applies them).
pub fn apply(object: &Value, ops: &[PatchOp]) -> Value {
    let mut out = object.clone();
    for op in ops {
        assert_eq!(op.op, "replace");
        let slot = out
            .pointer_mut(&op.path)
            .unwrap_or_else(|| panic!("{} does not exist in the object", op.path));
        assert!(slot.is_string(), "{} is not a string", op.path);
        *slot = Value::String(op.value.clone());
    }
    out
}

/// Reviews `body` at `endpoint` with the API server's default `?timeout=10s`.
pub async fn call(hook: &Webhook, endpoint: Endpoint, body: &[u8]) -> AdmissionResponse {
    hook.review(endpoint, body, Some(std::time::Duration::from_secs(10)))
        .await
        .unwrap()
}

pub fn message(r: &AdmissionResponse) -> String {
    r.status
        .as_ref()
        .map(|s| s.message.clone())
        .unwrap_or_default()
}

/// An API server stand-in: `app` served over TLS on 127.0.0.1 with a certificate from a test
/// CA (made under `dir`); stopped on [`ApiStandIn::stop`] or when dropped.
pub struct ApiStandIn {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The CA certificate to trust (PEM file).
    pub ca_cert: std::path::PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ApiStandIn {
    pub async fn start(dir: &Path, app: axum::Router) -> ApiStandIn {
        let certs = berth_test_support::TestCerts::generate(dir.join("pki"));
        let server = berth_httpd::Server::bind(berth_httpd::Config {
            tls: Some(berth_httpd::TlsFiles {
                cert: certs.server_cert.clone(),
                key: certs.server_key.clone(),
                reload: false,
            }),
            ..berth_httpd::Config::new("127.0.0.1:0".parse().unwrap())
        })
        .await
        .unwrap();
        let url = format!("https://{}", server.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(app, async {
            let _ = stopped.await;
        }));
        ApiStandIn {
            url,
            ca_cert: certs.ca_cert.clone(),
            stop: Some(stop),
            serving,
        }
    }

    /// Stop serving and wait until the server has finished its requests.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.serving).await.unwrap().unwrap();
    }
}

impl Drop for ApiStandIn {
    fn drop(&mut self) {
        self.serving.abort();
    }
}
