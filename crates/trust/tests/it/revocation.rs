//! Revocation against real peers: a PKI made by `openssl ca` in the test's directory (root →
//! intermediate → leaf; CRL distribution points and OCSP URLs on 127.0.0.1 ports the test
//! owns), CRLs from `openssl ca -gencrl` served by a small HTTP server here, and OCSP answers
//! from `openssl ocsp` running as a responder (killed on drop).

use berth_trust::revocation::{self, FetchRequest, Fetcher, Method, Status};
use berth_trust::{
    Action, Certificate, EnvelopeFormat, Outcome, SignOptions, SigningKey, Step, Timestamp,
    TrustPolicy, TrustStore, Verdict, VerifyOptions,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::pki::{ec_key, openssl};

/// Serves `root/<path>` to GET and POST (a POST body is read and ignored: a canned OCSP
/// answer), 404 otherwise; records every path asked.
struct Files {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    hits: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Files {
    fn start(root: PathBuf) -> Files {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let (s, h) = (stop.clone(), hits.clone());
        let thread = std::thread::spawn(move || {
            for conn in l.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut c) = conn else { continue };
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, len) = loop {
                    let n = c.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break (None, 0);
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        break (Some(i + 4), len);
                    }
                };
                let Some(head_end) = head_end else { continue };
                while buf.len() < head_end + len {
                    let n = c.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let line = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let path = line.split(' ').nth(1).unwrap_or("/").to_string();
                h.lock().unwrap().push(path.clone());
                let file = root.join(path.trim_start_matches('/'));
                let reply = match std::fs::read(&file) {
                    Ok(body) => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        r.extend(body);
                        r
                    }
                    Err(_) => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                };
                let _ = c.write_all(&reply);
            }
        });
        Files {
            addr,
            stop,
            hits,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `openssl ocsp` as a responder, reached on 127.0.0.1, killed by PID on drop.
struct Responder {
    child: Child,
    /// kept open so that the responder's log lines never fail
    stderr: Option<std::process::ChildStderr>,
}

impl Responder {
    /// Answers for the CA in `ca_dir` (its index), signing with `signer` (`NAME.pem`/`NAME.key`
    /// in `dir`).
    fn start(dir: &Path, ca_dir: &str, signer: &str, port: u16) -> Responder {
        let mut child = Command::new("openssl")
            .current_dir(dir)
            .args([
                "ocsp",
                "-index",
                &format!("{ca_dir}/index.txt"),
                // openssl 3.0 takes a port number only (it listens on every address); the
                // test talks to it on 127.0.0.1
                "-port",
                &port.to_string(),
                "-rsigner",
                &format!("{signer}.pem"),
                "-rkey",
                &format!("{signer}.key"),
                "-CA",
                &format!("{ca_dir}/ca.pem"),
                "-ndays",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl ocsp (scripts/test installs openssl)");
        // ready when it says so: a probe connection would wedge it (it serves one client
        // at a time and waits on a client that sent nothing)
        let stderr = child.stderr.take().expect("piped stderr");
        let mut r = Responder {
            child,
            stderr: None,
        };
        let mut stderr = stderr;
        let mut seen = Vec::new();
        let mut chunk = [0u8; 256];
        while !String::from_utf8_lossy(&seen).contains("waiting for OCSP client connections") {
            let n = stderr.read(&mut chunk).unwrap();
            assert!(
                n > 0,
                "openssl ocsp exited before listening on {port}: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&chunk[..n]);
        }
        r.stderr = Some(stderr);
        r
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ca_config(dir: &Path, name: &str) {
    let d = dir.join(name);
    std::fs::create_dir_all(d.join("newcerts")).unwrap();
    std::fs::write(d.join("index.txt"), "").unwrap();
    std::fs::write(
        d.join("serial"),
        if name == "root" { "1000\n" } else { "2000\n" },
    )
    .unwrap();
    std::fs::write(d.join("crlnumber"), "01\n").unwrap();
    std::fs::write(
        d.join("openssl.cnf"),
        format!(
            "[ca]\ndefault_ca = ca_default\n[ca_default]\ndir = {dir}\ndatabase = $dir/index.txt\n\
             new_certs_dir = $dir/newcerts\ncertificate = $dir/ca.pem\nprivate_key = $dir/ca.key\n\
             serial = $dir/serial\ncrlnumber = $dir/crlnumber\ndefault_md = sha256\n\
             default_days = 30\ndefault_crl_days = 1\npolicy = any\nunique_subject = no\n\
             [any]\ncommonName = supplied\norganizationName = optional\ncountryName = optional\n",
            dir = d.display()
        ),
    )
    .unwrap();
}

/// The test PKI: `root/`, `inter/` (openssl ca directories), served files in `www/`.
struct Pki {
    dir: tempfile::TempDir,
    files: Files,
    ocsp_port: u16,
}

const EXT: &str = "[inter]\nbasicConstraints=critical,CA:TRUE,pathlen:0\n\
keyUsage=critical,keyCertSign,cRLSign\ncrlDistributionPoints=URI:{CRL}/root.crl\n\
[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
extendedKeyUsage=codeSigning\n{LEAF}\n\
[responder]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
extendedKeyUsage=OCSPSigning\nnoCheck=ignored\n\
[plain]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n";

/// Which revocation information the leaf names.
#[derive(Clone, Copy, PartialEq)]
enum LeafInfo {
    Both,
    OcspOnly,
    CrlOnly,
    /// An OCSP URL on the file server (a canned response at `www/ocsp`).
    CannedOcsp,
}

impl Pki {
    fn new(leaf: LeafInfo) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let owned = dir.path().to_path_buf();
        let d = owned.as_path();
        std::fs::create_dir_all(d.join("www")).unwrap();
        let files = Files::start(d.join("www"));
        let ocsp_port = free_port();
        let crl_base = format!("http://{}", files.addr);
        let ocsp_url = match leaf {
            LeafInfo::CannedOcsp => files.url("ocsp"),
            _ => format!("http://127.0.0.1:{ocsp_port}/"),
        };
        let leaf_ext = match leaf {
            LeafInfo::Both => format!(
                "crlDistributionPoints=URI:{crl_base}/inter.crl\nauthorityInfoAccess=OCSP;URI:{ocsp_url}"
            ),
            LeafInfo::OcspOnly | LeafInfo::CannedOcsp => {
                format!("authorityInfoAccess=OCSP;URI:{ocsp_url}")
            }
            LeafInfo::CrlOnly => format!("crlDistributionPoints=URI:{crl_base}/inter.crl"),
        };
        std::fs::write(
            d.join("ext.cnf"),
            EXT.replace("{CRL}", &crl_base).replace("{LEAF}", &leaf_ext),
        )
        .unwrap();
        ca_config(d, "root");
        ca_config(d, "inter");
        ec_key(d, "root/ca.key");
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "root/ca.key",
                "-out",
                "root/ca.pem",
                "-subj",
                "/O=berth test/CN=revocation root",
                "-days",
                "30",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        let pki = Pki {
            dir,
            files,
            ocsp_port,
        };
        pki.new_cert(
            "root",
            "inter/ca",
            "/O=berth test/CN=revocation intermediate",
            "inter",
        );
        for (name, ext) in [("leaf", "leaf"), ("responder", "responder")] {
            pki.new_cert("inter", name, &format!("/O=berth test/CN={name}"), ext);
        }
        pki.gencrl("root");
        pki.gencrl("inter");
        pki
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A new P-256 key `name.key` and its certificate `name.pem` (see [`Pki::issue`]).
    fn new_cert(&self, ca: &str, name: &str, subj: &str, ext: &str) {
        ec_key(self.path(), &format!("{name}.key"));
        self.issue(ca, name, subj, ext);
    }

    /// Certificate `name.pem` for key `name.key`, issued by CA `ca` with extensions `ext`.
    fn issue(&self, ca: &str, name: &str, subj: &str, ext: &str) {
        let csr = format!("{name}.csr");
        openssl(
            self.path(),
            &[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-subj",
                subj,
                "-out",
                &csr,
            ],
        );
        openssl(
            self.path(),
            &[
                "ca",
                "-batch",
                "-config",
                &format!("{ca}/openssl.cnf"),
                "-in",
                &csr,
                "-out",
                &format!("{name}.pem"),
                "-extfile",
                "ext.cnf",
                "-extensions",
                ext,
                "-notext",
            ],
        );
    }

    fn revoke(&self, ca: &str, cert: &str, reason: &str) {
        openssl(
            self.path(),
            &[
                "ca",
                "-config",
                &format!("{ca}/openssl.cnf"),
                "-revoke",
                cert,
                "-crl_reason",
                reason,
            ],
        );
        self.gencrl(ca);
    }

    /// `www/CA.crl` (DER) from the CA's index.
    fn gencrl(&self, ca: &str) {
        openssl(
            self.path(),
            &[
                "ca",
                "-gencrl",
                "-config",
                &format!("{ca}/openssl.cnf"),
                "-out",
                &format!("{ca}.crl.pem"),
            ],
        );
        openssl(
            self.path(),
            &[
                "crl",
                "-in",
                &format!("{ca}.crl.pem"),
                "-outform",
                "DER",
                "-out",
                &format!("www/{ca}.crl"),
            ],
        );
    }

    fn responder(&self) -> Responder {
        Responder::start(self.path(), "inter", "responder", self.ocsp_port)
    }

    fn chain(&self) -> Vec<Certificate> {
        ["leaf.pem", "inter/ca.pem", "root/ca.pem"]
            .iter()
            .flat_map(|p| Certificate::parse_many(&std::fs::read(self.path().join(p)).unwrap()))
            .flatten()
            .collect()
    }

    fn envelope(&self) -> Vec<u8> {
        let key =
            SigningKey::from_pem_or_der(&std::fs::read(self.path().join("leaf.key")).unwrap())
                .unwrap();
        berth_trust::sign(
            &crate::pki::target(),
            &key,
            &self.chain(),
            &SignOptions::new(EnvelopeFormat::Jws),
        )
        .unwrap()
    }

    /// Verifies the leaf's signature under `strict` with `revocation` overridden (or not).
    fn verify_at(
        &self,
        revocation: Option<&str>,
        now: Timestamp,
        fetcher: &dyn Fetcher,
    ) -> Verdict {
        let store = self.path().join("store/x509/ca/t");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::copy(self.path().join("root/ca.pem"), store.join("root.pem")).unwrap();
        let level = match revocation {
            Some(a) => format!(r#"{{"level":"strict","override":{{"revocation":"{a}"}}}}"#),
            None => r#"{"level":"strict"}"#.to_string(),
        };
        let policy = TrustPolicy::parse(
            format!(
                r#"{{"version":"1.0","trustPolicies":[{{"name":"t","registryScopes":["*"],
                "signatureVerification":{level},"trustStores":["ca:t"],"trustedIdentities":["*"]}}]}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        let target = crate::pki::target();
        let opts = VerifyOptions {
            statement: &policy.statements[0],
            artifact: Some(&target),
            now,
            revocation: fetcher,
        };
        berth_trust::verify(
            &self.envelope(),
            berth_trust::envelope::MEDIA_TYPE_JWS,
            &TrustStore::new(self.path().join("store")),
            &opts,
        )
    }

    fn verify(&self, revocation: Option<&str>) -> Verdict {
        self.verify_at(revocation, Timestamp::now(), &revocation::HTTP)
    }
}

fn revocation_step(v: &Verdict) -> (Action, Outcome) {
    let s = v
        .steps
        .iter()
        .find(|s| s.step == Step::Revocation)
        .unwrap_or_else(|| panic!("no revocation step in {:?}", v.steps));
    (s.action, s.outcome.clone())
}

fn failed_with(v: &Verdict, action: Action, want: &str) {
    match revocation_step(v) {
        (a, Outcome::Failed(reason)) if a == action => assert!(
            reason.contains(want),
            "the revocation step's reason {reason:?} does not say {want:?}"
        ),
        other => panic!("expected a failed revocation step ({action:?}), got {other:?}"),
    }
}

#[test]
fn good_chain_passes_with_ocsp_for_the_leaf_and_crl_for_the_intermediate() {
    let pki = Pki::new(LeafInfo::Both);
    let _ocsp = pki.responder();
    let v = pki.verify(None);
    assert!(v.passed, "{:?}", v.failure());
    assert_eq!(revocation_step(&v).1, Outcome::Passed);
    let methods: Vec<(Method, Status)> =
        v.revocation.iter().map(|r| (r.method, r.status)).collect();
    assert_eq!(
        methods,
        [
            (Method::Ocsp, Status::Good),
            (Method::Crl, Status::Good),
            (Method::None, Status::NonRevokable)
        ]
    );
    assert_eq!(pki.files.hits(), ["/root.crl"]);
}

#[test]
fn leaf_revoked_over_ocsp_fails_under_enforce_and_is_logged_under_log() {
    let pki = Pki::new(LeafInfo::OcspOnly);
    pki.revoke("inter", "leaf.pem", "keyCompromise");
    let _ocsp = pki.responder();
    let v = pki.verify(None);
    assert!(!v.passed);
    failed_with(&v, Action::Enforce, "is revoked");
    failed_with(&v, Action::Enforce, "reason keyCompromise");
    assert_eq!(v.revocation[0].status, Status::Revoked);
    assert_eq!(v.revocation[0].method, Method::Ocsp);

    let v = pki.verify(Some("log"));
    assert!(v.passed, "{:?}", v.failure());
    failed_with(&v, Action::Log, "O=berth test,CN=leaf\" is revoked");
}

#[test]
fn leaf_revoked_in_the_crl_fails_and_skip_fetches_nothing() {
    let pki = Pki::new(LeafInfo::CrlOnly);
    pki.revoke("inter", "leaf.pem", "superseded");
    let v = pki.verify(None);
    assert!(!v.passed);
    failed_with(&v, Action::Enforce, "reason superseded");
    assert_eq!(v.revocation[0].method, Method::Crl);
    let before = pki.files.hits().len();

    let v = pki.verify(Some("skip"));
    assert!(v.passed, "{:?}", v.failure());
    assert_eq!(revocation_step(&v), (Action::Skip, Outcome::Skipped));
    assert!(v.revocation.is_empty());
    assert_eq!(pki.files.hits().len(), before, "skip must fetch nothing");
}

#[test]
fn revoked_intermediate_fails() {
    let pki = Pki::new(LeafInfo::Both);
    pki.revoke("root", "inter/ca.pem", "cACompromise");
    let _ocsp = pki.responder();
    let v = pki.verify(None);
    assert!(!v.passed);
    failed_with(&v, Action::Enforce, "revocation intermediate");
    assert_eq!(v.revocation[1].status, Status::Revoked);
}

#[test]
fn responder_down_is_unknown_and_falls_back_to_the_crl() {
    // OCSP only: unknown, which fails under enforce and is logged under log
    let pki = Pki::new(LeafInfo::OcspOnly);
    let v = pki.verify(None);
    assert!(!v.passed);
    failed_with(&v, Action::Enforce, "revocation status is unknown");
    failed_with(&v, Action::Enforce, &format!("127.0.0.1:{}", pki.ocsp_port));
    let v = pki.verify(Some("log"));
    assert!(v.passed, "{:?}", v.failure());
    failed_with(&v, Action::Log, "revocation status is unknown");

    // OCSP and CRL: the CRL decides, both ways
    let pki = Pki::new(LeafInfo::Both);
    let v = pki.verify(None);
    assert!(v.passed, "{:?}", v.failure());
    assert_eq!(v.revocation[0].method, Method::OcspFallbackCrl);
    assert_eq!(v.revocation[0].status, Status::Good);
    pki.revoke("inter", "leaf.pem", "keyCompromise");
    let v = pki.verify(None);
    assert!(!v.passed);
    failed_with(&v, Action::Enforce, "is revoked");
}

#[test]
fn expired_crl_is_refused() {
    let pki = Pki::new(LeafInfo::CrlOnly);
    // the CRLs' nextUpdate is a day away; the certificates last 30 days
    let later = Timestamp(Timestamp::now().0 + 3 * 86400);
    let v = pki.verify_at(None, later, &revocation::HTTP);
    assert!(!v.passed);
    failed_with(&v, Action::Enforce, "expired CRL");
}

#[test]
fn crl_signed_by_another_key_is_refused() {
    let pki = Pki::new(LeafInfo::CrlOnly);
    // an impostor CA with the intermediate's name and its own key publishes the CRL
    ca_config(pki.path(), "impostor");
    openssl(
        pki.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "impostor/ca.key",
            "-out",
            "impostor/ca.pem",
            "-subj",
            "/CN=revocation intermediate/O=berth test",
            "-days",
            "30",
        ],
    );
    pki.gencrl("impostor");
    std::fs::copy(
        pki.path().join("www/impostor.crl"),
        pki.path().join("www/inter.crl"),
    )
    .unwrap();
    let v = pki.verify(None);
    assert!(!v.passed);
    failed_with(&v, Action::Enforce, "signature does not verify");
}

/// A response made offline by `openssl ocsp` for `serial_of` (a certificate file) and served
/// as the leaf's OCSP answer.
fn canned_response(pki: &Pki, serial_of: &str, signer: &str) {
    openssl(
        pki.path(),
        &[
            "ocsp",
            "-issuer",
            "inter/ca.pem",
            "-cert",
            serial_of,
            "-no_nonce",
            "-reqout",
            "req.der",
        ],
    );
    openssl(
        pki.path(),
        &[
            "ocsp",
            "-index",
            "inter/index.txt",
            "-CA",
            "inter/ca.pem",
            "-rsigner",
            &format!("{signer}.pem"),
            "-rkey",
            &format!("{signer}.key"),
            "-reqin",
            "req.der",
            "-respout",
            "www/ocsp",
            "-ndays",
            "1",
        ],
    );
}

#[test]
fn canned_ocsp_response_for_the_leaf_passes() {
    // the control for the two refusals below: the same path with a right answer
    let pki = Pki::new(LeafInfo::CannedOcsp);
    canned_response(&pki, "leaf.pem", "responder");
    let v = pki.verify(None);
    assert!(v.passed, "{:?}", v.failure());
    assert_eq!(v.revocation[0].status, Status::Good);
}

#[test]
fn ocsp_response_for_another_serial_is_refused() {
    let pki = Pki::new(LeafInfo::CannedOcsp);
    canned_response(&pki, "responder.pem", "responder");
    let v = pki.verify(None);
    assert!(!v.passed);
    failed_with(&v, Action::Enforce, "has no status for serial number");
}

#[test]
fn ocsp_response_from_an_unauthorised_responder_is_refused() {
    // issued by the root, not by the leaf's issuer, though it has id-kp-OCSPSigning
    let pki = Pki::new(LeafInfo::CannedOcsp);
    pki.new_cert(
        "root",
        "rogue",
        "/O=berth test/CN=rogue responder",
        "responder",
    );
    canned_response(&pki, "leaf.pem", "rogue");
    let v = pki.verify(None);
    assert!(!v.passed);
    failed_with(&v, Action::Enforce, "unauthorised responder");

    // issued by the right CA without id-kp-OCSPSigning
    pki.new_cert("inter", "plain", "/O=berth test/CN=plain", "plain");
    canned_response(&pki, "leaf.pem", "plain");
    let v = pki.verify(None);
    assert!(!v.passed);
    failed_with(&v, Action::Enforce, "lacks the id-kp-OCSPSigning");
}

/// A fetcher with no network: records what it was asked.
#[derive(Debug)]
struct Offline(Mutex<Vec<String>>);

impl Fetcher for Offline {
    fn fetch(&self, req: &FetchRequest<'_>) -> Result<Vec<u8>, String> {
        self.0.lock().unwrap().push(req.url.to_string());
        Err("offline".to_string())
    }
}

#[test]
fn offline_result_names_every_url_and_error() {
    let pki = Pki::new(LeafInfo::Both);
    let off = Offline(Mutex::new(Vec::new()));
    let v = pki.verify_at(None, Timestamp::now(), &off);
    assert!(!v.passed);
    failed_with(&v, Action::Enforce, "offline");
    let asked = off.0.lock().unwrap().clone();
    // the leaf: OCSP, then its CRL; the intermediate: its CRL
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert!(asked[0].contains(&pki.ocsp_port.to_string()));
    assert!(asked[1].ends_with("/inter.crl"));
    assert!(asked[2].ends_with("/root.crl"));
    assert_eq!(v.revocation[0].servers.len(), 2);
}
