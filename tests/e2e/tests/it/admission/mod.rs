//! The admission webhook end to end, as a cluster runs it: `berth admission certs` makes the
//! serving certificate and fills the webhook configurations of deploy/kubernetes;
//! `berth admission serve` runs as a real process on 127.0.0.1; test-support's
//! `AdmissionHarness` plays the API server (TLS verified against the configurations'
//! `caBundle` for `berth-admission.berth-system.svc`, `?timeout=10s`, the JSON patch applied,
//! the patched object re-submitted to the validating webhook); images live in a berth
//! registry on 127.0.0.1 and are signed with `berth sign` by dev, CI and prod keys.

mod manifests;
mod policies;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_test_support::{
    AdmissionHarness, Digest, Registry, RegistryOptions, berth_bin, wait_until, write_file,
};
use serde_json::{Value, json};

use crate::trust::{TEST_SUBJECT, berth_ok};

/// The roles of the policy, each a key and trust store of the same name.
pub(crate) const ROLES: [&str; 3] = ["dev", "ci", "prod"];

/// A registry, signing keys for dev, CI and prod (and their trust stores), the webhook's
/// certificates and manifests, and its policy: what each test starts from.
pub(crate) struct Fixture {
    pub reg: Registry,
    /// berth's configuration (keys, trust store) is `home/berth`.
    pub home: tempfile::TempDir,
    /// The registry's user and password, when it requires them.
    login: Option<(String, String)>,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        Fixture::with_registry(RegistryOptions::new(), None)
    }

    /// [`Fixture::new`] with a registry started with `opts`; `login` (user, password): its
    /// credentials, written to the docker config.json `berth` (push and sign) uses.
    pub(crate) fn with_registry(opts: RegistryOptions, login: Option<(&str, &str)>) -> Fixture {
        let reg = Registry::start(opts);
        let home = tempfile::Builder::new()
            .prefix("berth-admission-e2e-")
            .tempdir()
            .unwrap();
        let f = Fixture {
            reg,
            home,
            login: login.map(|(u, p)| (u.to_string(), p.to_string())),
        };
        if let Some((user, password)) = &f.login {
            use base64::Engine;
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            write_file(
                f.dir().join("docker/config.json"),
                format!(
                    r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
                    f.reg.host()
                )
                .as_bytes(),
            );
        }
        for role in ROLES {
            f.berth(&["cert", "generate-test", role]);
        }
        let out = f.make_certs(&["--manifests", f.manifests().to_str().unwrap()]);
        let bundle = std::fs::read_to_string(f.certs().join("ca-bundle.b64")).unwrap();
        assert_eq!(out.trim(), bundle.trim(), "stdout is the caBundle");
        f.write_policy(&[], &[]);
        f
    }

    pub(crate) fn dir(&self) -> &Path {
        self.home.path()
    }

    pub(crate) fn certs(&self) -> PathBuf {
        self.dir().join("certs")
    }

    pub(crate) fn manifests(&self) -> PathBuf {
        self.dir().join("manifests")
    }

    pub(crate) fn trust_store(&self) -> PathBuf {
        self.dir().join("berth/truststore")
    }

    /// `berth ARGS` with this fixture's configuration; its stdout.
    #[track_caller]
    pub(crate) fn berth(&self, args: &[&str]) -> String {
        berth_ok(self.dir(), args)
    }

    /// `berth admission certs --out CERTS --dns 127.0.0.1 EXTRA…`: the caBundle it printed.
    pub(crate) fn make_certs(&self, extra: &[&str]) -> String {
        let certs = self.certs();
        let args = [
            &["admission", "certs", "--out", certs.to_str().unwrap()][..],
            &["--dns", "127.0.0.1"],
            extra,
        ]
        .concat();
        self.berth(&args)
    }

    /// `registry-host/repo`.
    pub(crate) fn repo(&self, repo: &str) -> String {
        format!("{}/{repo}", self.reg.host())
    }

    /// Push an image to `repo:tag` (content from `seed`): its digest.
    pub(crate) fn push(&self, repo: &str, tag: &str, seed: u64) -> Digest {
        let http = match &self.login {
            Some((user, password)) => self.reg.http().basic(user, password),
            None => self.reg.http(),
        };
        crate::trust::push_image(&http, repo, tag, seed)
    }

    /// Sign `repo@digest` with each of `keys`.
    pub(crate) fn sign(&self, repo: &str, digest: &Digest, keys: &[&str]) {
        let image = format!("{}@{digest}", self.repo(repo));
        for k in keys {
            self.berth(&["sign", "--key", k, &image]);
        }
    }

    /// policy.json: rule `production` (namespaces `prod-*`: all of dev, ci and prod), `extra`
    /// rules, and `extra_roles` (role, CN of its certificate, trusted in the store `ca:CN`);
    /// every other namespace has no rule.
    pub(crate) fn write_policy(&self, extra: &[Value], extra_roles: &[(&str, &str)]) {
        let mut stores: Vec<String> = ROLES.iter().map(|r| format!("ca:{r}")).collect();
        let mut roles = serde_json::Map::new();
        for r in ROLES {
            roles.insert(
                r.to_string(),
                json!({"trustedIdentities": [format!("x509.subject: {TEST_SUBJECT}{r}")]}),
            );
        }
        let mut rules = vec![json!({
            "name": "production",
            "registryScopes": [format!("{}/*", self.reg.host())],
            "namespaces": ["prod-*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ROLES.iter().map(|r| format!("ca:{r}")).collect::<Vec<_>>(),
            "requirement": {"allOf": ROLES},
        })];
        for (role, cn) in extra_roles {
            stores.push(format!("ca:{cn}"));
            roles.insert(
                (*role).to_string(),
                json!({"trustedIdentities": [format!("x509.subject: {TEST_SUBJECT}{cn}")]}),
            );
        }
        rules.extend(extra.iter().cloned());
        let policy = json!({
            "version": "berth.policy/v1",
            "trustStores": stores,
            "roles": roles,
            "rules": rules,
        });
        let path = self.dir().join("policy.json");
        write_file(&path, &serde_json::to_vec_pretty(&policy).unwrap());
        self.berth(&["policy", "check", path.to_str().unwrap()]);
    }

    /// Start `berth admission serve` with config.toml made of the defaults and `extra` TOML
    /// lines (top-level keys; `[registry]` is written last).
    pub(crate) fn serve(&self, extra: &str) -> WebhookServer {
        self.serve_with_registry(extra, &self.reg.host())
    }

    /// [`Fixture::serve`] with `plain_http` naming `registry` too.
    pub(crate) fn serve_with_registry(&self, extra: &str, registry: &str) -> WebhookServer {
        let dir = tempfile::Builder::new()
            .prefix("berth-admission-serve-")
            .tempdir()
            .unwrap();
        let config = dir.path().join("config.toml");
        let text = format!(
            "listen = \"127.0.0.1:0\"\n\
             tls_cert = {:?}\n\
             tls_key = {:?}\n\
             policy = {:?}\n\
             trust_store = {:?}\n\
             exclude_namespaces = [\"berth-system\", \"kube-system\"]\n\
             {extra}\n\
             [registry]\n\
             plain_http = [{:?}, {registry:?}]\n",
            self.certs().join("tls.crt"),
            self.certs().join("tls.key"),
            self.dir().join("policy.json"),
            self.trust_store(),
            self.reg.host(),
        );
        write_file(&config, text.as_bytes());
        WebhookServer::start(&config, dir)
    }

    /// The API server for the webhook configurations `berth admission certs` wrote.
    pub(crate) fn harness(&self, w: &WebhookServer) -> AdmissionHarness {
        AdmissionHarness::from_file(&self.manifests().join("webhooks.yaml"), w.addr)
    }
}

/// A running `berth admission serve`, killed by PID on `Drop`; its log printed when the
/// test is failing.
pub(crate) struct WebhookServer {
    child: Option<Child>,
    pub addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl WebhookServer {
    fn start(config: &Path, dir: tempfile::TempDir) -> WebhookServer {
        let log = dir.path().join("serve.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = Command::new(berth_bin())
            .args(["admission", "serve", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            // every review logged (admitted ones are at debug): tests read what was reviewed
            .env("BERTH_LOG", "info,berth_admission::webhook=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("run berth admission serve");
        let mut addr = None;
        let mut exited = None;
        wait_until(Duration::from_secs(60), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            addr = listening_addr(&text);
            if addr.is_some() {
                return true;
            }
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return true;
            }
            false
        });
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berth admission serve did not start ({exited:?}):\n{text}");
        };
        WebhookServer {
            child: Some(child),
            addr,
            log,
            _dir: dir,
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The address of the first `… listening on ADDR` line.
fn listening_addr(log: &str) -> Option<SocketAddr> {
    log.lines().find_map(|l| {
        let (_, rest) = l.split_once("listening on ")?;
        let word = rest
            .split(|c: char| c.is_whitespace() || c == '"' || c == ',' || c == '}')
            .next()?;
        word.trim_start_matches("https://")
            .trim_start_matches("http://")
            .parse()
            .ok()
    })
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- berth admission serve log (last lines) ---\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

#[test]
fn the_listening_line_is_found_in_text_and_json_logs() {
    assert_eq!(
        listening_addr("x\nberth admission listening on https://127.0.0.1:8443\n"),
        Some("127.0.0.1:8443".parse().unwrap())
    );
    assert_eq!(
        listening_addr(
            "{\"message\":\"berth admission listening on https://127.0.0.1:1\",\"x\":1}"
        ),
        Some("127.0.0.1:1".parse().unwrap())
    );
    assert_eq!(
        listening_addr(
            "{\"message\":\"berth admission listening on https://127.0.0.1:2\",\"address\":\"127.0.0.1:2\"}"
        ),
        Some("127.0.0.1:2".parse().unwrap())
    );
    assert_eq!(listening_addr("starting"), None);
}
