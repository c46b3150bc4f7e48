//! A real Kubernetes API server for tests: [`KubeApiServer`] runs etcd and kube-apiserver on
//! 127.0.0.1 (random ports, a temporary directory), with serving certificates, a client CA
//! and an admin client certificate (`O=system:masters`), and a service-account signing key,
//! all made with openssl; it waits for `/readyz` (bounded) and kills both processes by PID on
//! `Drop`. [`KubeApiServer::kubectl`] runs kubectl against it with an admin kubeconfig.
//!
//! There is no scheduler, controller manager or kubelet: objects are stored and admitted
//! (webhooks included), Pods stay Pending. The `ServiceAccount` admission plugin is off,
//! because its `default` ServiceAccount is made by the controller manager that is not there.
//!
//! [`k8s_api_testdata`] finds the Kubernetes API's own round-trip fixtures (k8s.io/api's
//! `testdata/HEAD`) in Go's module cache; [`kubectl_client`] runs kubectl with no server
//! (`--dry-run=client`).
//!
//! The binaries come from `scripts/test` (`install_kubectl`, `install_etcd`,
//! `install_kube_apiserver`); tests declare them with `requires_tool!`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::docker_registry::free_port;
use crate::revocation::ec_key;
use crate::tls::{openssl, openssl_ca, openssl_leaf};
use crate::{ChildGuard, Http, TestCerts, run_with_timeout, wait_until, write_file};

/// The k8s.io/api release whose testdata the tests read: the Kubernetes release
/// `scripts/test` builds kubectl and kube-apiserver from (`K8S_STAGING_VERSION` there).
pub const K8S_API_VERSION: &str = "v0.37.2";

/// The environment variable naming k8s.io/api's `testdata/HEAD` directory
/// (`scripts/test` exports it).
pub const K8S_API_TESTDATA_ENV: &str = "BERTH_K8S_API_TESTDATA";

/// How long one kubectl command may take.
pub const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

/// How long etcd and then kube-apiserver may take to become ready (2 shared cores: the API
/// server's post-start hooks, RBAC bootstrap included, take a while).
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// k8s.io/api's round-trip fixtures (`testdata/HEAD`, one `GROUP.VERSION.KIND.json` per
/// type): `$BERTH_K8S_API_TESTDATA`, else `$(go env GOMODCACHE)/k8s.io/api@K8S_API_VERSION/
/// testdata/HEAD`. `None` when neither exists (callers skip or fail with [`crate::skip_or_fail`]).
pub fn k8s_api_testdata() -> Option<PathBuf> {
    let marker = "admission.k8s.io.v1.AdmissionReview.json";
    if let Some(dir) = crate::tools::env_os(K8S_API_TESTDATA_ENV) {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join(marker).is_file(),
            "{K8S_API_TESTDATA_ENV}={} has no {marker}",
            dir.display()
        );
        return Some(dir);
    }
    if !crate::tool_available("go") {
        return None;
    }
    let out = run_with_timeout(
        Command::new("go").args(["env", "GOMODCACHE"]),
        Duration::from_secs(30),
    );
    let cache = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let dir = Path::new(&cache)
        .join(format!("k8s.io/api@{K8S_API_VERSION}"))
        .join("testdata/HEAD");
    dir.join(marker).is_file().then_some(dir)
}

/// Run kubectl with no API server (`--dry-run=client` commands), bounded; panics when it
/// fails, with its stderr. Returns its stdout.
#[track_caller]
pub fn kubectl_client(args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    // An empty kubeconfig: nothing of the user's ~/.kube is read, no server is contacted.
    let kubeconfig = dir.path().join("kubeconfig");
    write_file(
        &kubeconfig,
        b"apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
    );
    let out = run_with_timeout(
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .env("HOME", dir.path()),
        KUBECTL_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "kubectl {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// etcd and kube-apiserver on 127.0.0.1, killed by PID on `Drop` (the API server first).
#[derive(Debug)]
pub struct KubeApiServer {
    // Field order is drop order: the API server goes before its etcd, the directory last.
    _apiserver: ChildGuard,
    _etcd: ChildGuard,
    dir: tempfile::TempDir,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// An admin kubeconfig (client certificate in `system:masters`).
    pub kubeconfig: PathBuf,
    /// The CA that signed the API server's serving certificate (PEM file).
    pub ca_cert: PathBuf,
    /// How long the API server took to become ready after it was started.
    pub startup: Duration,
}

impl KubeApiServer {
    /// Start etcd, then kube-apiserver; returns once `/readyz` answers `ok`. Panics (with
    /// the logs) when they do not come up within the bound, after three tries (a port
    /// picked free may be taken before the server binds it).
    pub fn start() -> KubeApiServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let certs = TestCerts::generate(d.join("serving"));
        make_client_pki(d);
        let kubeconfig = d.join("admin.kubeconfig");
        let mut failures = Vec::new();
        for _ in 0..3 {
            let _ = std::fs::remove_dir_all(d.join("etcd"));
            let started = Instant::now();
            match launch(d, &certs) {
                Ok((apiserver, etcd, url)) => {
                    write_kubeconfig(&kubeconfig, &url, &certs.ca_cert, d);
                    return KubeApiServer {
                        _apiserver: apiserver,
                        _etcd: etcd,
                        url,
                        kubeconfig,
                        ca_cert: certs.ca_cert.clone(),
                        startup: started.elapsed(),
                        dir,
                    };
                }
                Err(e) => failures.push(e),
            }
        }
        panic!(
            "the test Kubernetes API server did not start in three tries:\n{}",
            failures.join("\n---\n")
        );
    }

    /// The API server's log (its stderr).
    pub fn log(&self) -> String {
        read_log(self.dir.path(), "kube-apiserver.log")
    }

    /// The working directory (certificates, kubeconfig, logs, etcd data).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate's PEM bytes.
    pub fn ca_pem(&self) -> Vec<u8> {
        read(&self.ca_cert)
    }

    /// Run `kubectl --kubeconfig ADMIN args…`, bounded by [`KUBECTL_TIMEOUT`]; the output
    /// whatever the exit status.
    pub fn try_kubectl(&self, args: &[&str]) -> Output {
        run_with_timeout(
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args)
                .env("HOME", self.dir.path()),
            KUBECTL_TIMEOUT,
        )
    }

    /// [`KubeApiServer::try_kubectl`], panicking (with stderr and the tail of the API
    /// server's log) when kubectl fails; its stdout.
    #[track_caller]
    pub fn kubectl(&self, args: &[&str]) -> Vec<u8> {
        let out = self.try_kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\n{}\nkube-apiserver log (tail):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 30)
        );
        out.stdout
    }

    /// `kubectl … -f FILE` with `manifest` written to a file first (kubectl reads no stdin
    /// here: commands run with it closed).
    pub fn try_kubectl_with(&self, args: &[&str], manifest: &[u8]) -> Output {
        let file = tempfile::Builder::new()
            .suffix(".json")
            .tempfile_in(self.dir.path())
            .expect("manifest file");
        write_file(file.path(), manifest);
        let path = file.path().to_string_lossy().into_owned();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-f", &path]);
        self.try_kubectl(&all)
    }
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("failed to read {}: {e}", p.display()))
}

fn read_log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The client CA (`client-ca.crt`), the admin's certificate and key (`admin.crt`,
/// `admin.key`: CN=berth-test-admin, O=system:masters, clientAuth), and the service-account
/// signing key pair (`sa.key`, `sa.pub`), in `dir`.
fn make_client_pki(dir: &Path) {
    openssl_ca(dir, "client-ca", "/CN=berth test client CA");
    openssl_leaf(
        dir,
        "admin",
        "/O=system:masters/CN=berth-test-admin",
        b"basicConstraints=critical,CA:FALSE\n\
          keyUsage=critical,digitalSignature\n\
          extendedKeyUsage=clientAuth\n",
        "client-ca",
        "admin.crt",
    );
    ec_key(dir, "sa.key");
    openssl(dir, &["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
}

fn write_kubeconfig(path: &Path, url: &str, ca: &Path, dir: &Path) {
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: berth-test
  cluster:
    server: {url}
    certificate-authority: {ca}
users:
- name: berth-test-admin
  user:
    client-certificate: {crt}
    client-key: {key}
contexts:
- name: berth-test
  context:
    cluster: berth-test
    user: berth-test-admin
current-context: berth-test
",
        ca = ca.display(),
        crt = dir.join("admin.crt").display(),
        key = dir.join("admin.key").display(),
    );
    write_file(path, text.as_bytes());
}

/// `dir/name`, truncated, for a child's stdout and stderr (one file, one offset).
fn log_files(dir: &Path, name: &str) -> (Stdio, Stdio) {
    // a log the child appends to, not content that must appear whole: opened in place
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(dir.join(name))
        .unwrap_or_else(|e| panic!("failed to create {name} in {}: {e}", dir.display()));
    let g = f.try_clone().expect("clone a log file handle");
    (Stdio::from(f), Stdio::from(g))
}

/// Whether the guarded child has exited.
fn exited(guard: &mut ChildGuard) -> bool {
    guard
        .child()
        .and_then(|c| c.try_wait().ok())
        .flatten()
        .is_some()
}

/// etcd, then kube-apiserver on free ports; both guards and the API server's URL once
/// `/readyz` says `ok`, else what went wrong with the logs' tails (both killed).
fn launch(dir: &Path, certs: &TestCerts) -> Result<(ChildGuard, ChildGuard, String), String> {
    let (etcd, etcd_url) = start_etcd(dir);
    let Some(etcd) = etcd else {
        return Err(format!(
            "etcd did not become healthy within 30 s; etcd.log (tail):\n{}",
            tail(&read_log(dir, "etcd.log"), 40)
        ));
    };
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let mut apiserver = start_apiserver(dir, port, &etcd_url, certs);
    let http = Http::new(&url, Some(&read(&certs.ca_cert)));
    let mut last = String::from("no answer yet");
    let ready = wait_until(READY_TIMEOUT, || {
        if exited(&mut apiserver) {
            last = "kube-apiserver exited".to_owned();
            return true;
        }
        match http.try_request("GET", "/readyz", &[], None) {
            Ok(r) if r.status == 200 && r.text().trim() == "ok" => return true,
            Ok(r) => last = format!("/readyz: HTTP {} {}", r.status, tail(&r.text(), 10)),
            Err(e) => last = format!("/readyz: {e}"),
        }
        false
    });
    if ready && !exited(&mut apiserver) {
        return Ok((apiserver, etcd, url));
    }
    drop(apiserver);
    drop(etcd);
    Err(format!(
        "kube-apiserver was not ready within {READY_TIMEOUT:?} ({last}); kube-apiserver.log (tail):\n{}",
        tail(&read_log(dir, "kube-apiserver.log"), 60)
    ))
}

/// etcd on two free ports with its data in `dir/etcd`; the guard (if it became healthy) and
/// its client URL.
fn start_etcd(dir: &Path) -> (Option<ChildGuard>, String) {
    let (client, peer) = (free_port(), free_port());
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let (out, err) = log_files(dir, "etcd.log");
    let mut guard = ChildGuard::spawn(
        Command::new("etcd")
            .arg("--name=berth-test")
            .arg(format!("--data-dir={}", dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=berth-test={peer_url}"))
            // a throwaway store on a shared test machine: durability buys nothing here
            .arg("--unsafe-no-fsync")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err),
    );
    let http = Http::new(&client_url, None);
    let healthy = wait_until(Duration::from_secs(30), || {
        exited(&mut guard)
            || http
                .try_request("GET", "/health", &[], None)
                .is_ok_and(|r| r.status == 200 && r.text().contains("\"health\":\"true\""))
    });
    if healthy && !exited(&mut guard) {
        (Some(guard), client_url)
    } else {
        (None, client_url)
    }
}

fn start_apiserver(dir: &Path, port: u16, etcd_url: &str, certs: &TestCerts) -> ChildGuard {
    let p = |name: &str| dir.join(name).display().to_string();
    let (out, err) = log_files(dir, "kube-apiserver.log");
    ChildGuard::spawn(
        Command::new("kube-apiserver")
            .arg(format!("--etcd-servers={etcd_url}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .arg(format!("--secure-port={port}"))
            .arg(format!("--tls-cert-file={}", certs.server_cert.display()))
            .arg(format!(
                "--tls-private-key-file={}",
                certs.server_key.display()
            ))
            .arg(format!("--cert-dir={}", p("apiserver-certs")))
            .arg(format!("--client-ca-file={}", p("client-ca.crt")))
            .arg("--authorization-mode=RBAC")
            .arg("--service-account-issuer=https://kubernetes.default.svc")
            .arg(format!("--service-account-key-file={}", p("sa.pub")))
            .arg(format!(
                "--service-account-signing-key-file={}",
                p("sa.key")
            ))
            // only a range to allocate Service IPs from: no packet ever goes there
            .arg("--service-cluster-ip-range=10.96.0.0/24")
            // no controller manager makes the `default` ServiceAccount this plugin wants
            .arg("--disable-admission-plugins=ServiceAccount")
            .arg("--endpoint-reconciler-type=none")
            .arg("--profiling=false")
            // webhooks on 127.0.0.1 must be called directly, never through a proxy
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err),
    )
}
