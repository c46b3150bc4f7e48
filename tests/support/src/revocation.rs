//! A PKI for revocation tests, made by `openssl ca` in a temporary directory: root →
//! intermediate → leaf with CRL distribution points and OCSP URLs on 127.0.0.1 ports the
//! test owns; CRLs from `openssl ca -gencrl` served by [`CrlServer`]; OCSP answers from
//! `openssl ocsp` running as a responder ([`OcspResponder`], killed by PID on drop) or made
//! offline and served as files.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::tls::openssl;
use crate::write_file;

/// A new P-256 private key (PKCS#8 PEM) at `dir/out`.
pub fn ec_key(dir: &Path, out: &str) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            out,
        ],
    );
}

/// Serves `root/<path>` to GET and POST (a POST body is read and ignored: a canned OCSP
/// answer), a `302` to the location in `root/<path>.redirect` when that file exists, 404
/// otherwise; records every path asked.
#[derive(Debug)]
pub struct CrlServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    hits: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CrlServer {
    /// Serves `root` on 127.0.0.1 (a port of its own) until dropped.
    pub fn start(root: PathBuf) -> CrlServer {
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
                let moved = file.with_extension(match file.extension() {
                    Some(x) => format!("{}.redirect", x.to_string_lossy()),
                    None => "redirect".to_string(),
                });
                let reply = match (std::fs::read_to_string(&moved), std::fs::read(&file)) {
                    // PATH.redirect holds where PATH has moved
                    (Ok(to), _) => format!(
                        "HTTP/1.1 302 Found\r\nLocation: {}\r\nContent-Length: 0\r\n\r\n",
                        to.trim()
                    )
                    .into_bytes(),
                    (_, Ok(body)) => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        r.extend(body);
                        r
                    }
                    (_, Err(_)) => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                };
                let _ = c.write_all(&reply);
            }
        });
        CrlServer {
            addr,
            stop,
            hits,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:P/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// Every path asked so far, in order.
    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for CrlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `openssl ocsp` as a responder, reached on 127.0.0.1, killed by PID on drop.
#[derive(Debug)]
pub struct OcspResponder {
    child: Child,
    /// kept open so that the responder's log lines never fail
    stderr: Option<std::process::ChildStderr>,
}

impl OcspResponder {
    /// Answers for the CA in `ca_dir` (its index), signing with `signer` (`NAME.pem`/`NAME.key`
    /// in `dir`).
    pub fn start(dir: &Path, ca_dir: &str, signer: &str, port: u16) -> OcspResponder {
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
        let mut r = OcspResponder {
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

impl Drop for OcspResponder {
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

/// An `openssl ca` directory `dir/name` (config, empty index, serials); the key and
/// certificate (`ca.key`, `ca.pem`) are the caller's.
pub fn ca_config(dir: &Path, name: &str) {
    let d = dir.join(name);
    std::fs::create_dir_all(d.join("newcerts")).unwrap();
    write_file(d.join("index.txt"), b"");
    write_file(
        d.join("serial"),
        if name == "root" { b"1000\n" } else { b"2000\n" },
    );
    write_file(d.join("crlnumber"), b"01\n");
    write_file(
        d.join("openssl.cnf"),
        format!(
            "[ca]\ndefault_ca = ca_default\n[ca_default]\ndir = {dir}\ndatabase = $dir/index.txt\n\
             new_certs_dir = $dir/newcerts\ncertificate = $dir/ca.pem\nprivate_key = $dir/ca.key\n\
             serial = $dir/serial\ncrlnumber = $dir/crlnumber\ndefault_md = sha256\n\
             default_days = 30\ndefault_crl_days = 1\npolicy = any\nunique_subject = no\n\
             [any]\ncommonName = supplied\norganizationName = optional\ncountryName = optional\n",
            dir = d.display()
        )
        .as_bytes(),
    );
}

/// The test PKI: `root/`, `inter/` (openssl ca directories), the leaf (`leaf.pem`,
/// `leaf.key`), a delegated OCSP responder certificate (`responder.pem`), and the served
/// files in `www/` (`root.crl`, `inter.crl`, `ocsp`).
#[derive(Debug)]
pub struct RevocationPki {
    dir: tempfile::TempDir,
    /// The server of `www/` (CRLs and canned OCSP answers).
    pub files: CrlServer,
    /// The port the leaf's OCSP URL names (for [`RevocationPki::responder`]).
    pub ocsp_port: u16,
}

const EXT: &str = "[inter]\nbasicConstraints=critical,CA:TRUE,pathlen:0\n\
keyUsage=critical,keyCertSign,cRLSign\ncrlDistributionPoints=URI:{CRL}/root.crl\n\
[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
extendedKeyUsage=codeSigning\n{LEAF}\n\
[responder]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
extendedKeyUsage=OCSPSigning\nnoCheck=ignored\n\
[plain]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n";

/// Which revocation information the leaf names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafInfo {
    Both,
    OcspOnly,
    CrlOnly,
    /// An OCSP URL on the file server (a canned response at `www/ocsp`).
    CannedOcsp,
}

impl RevocationPki {
    /// Root → intermediate → leaf (codeSigning), EC P-256, 30 days; CRLs valid one day.
    pub fn new(leaf: LeafInfo) -> RevocationPki {
        let dir = tempfile::tempdir().unwrap();
        let owned = dir.path().to_path_buf();
        let d = owned.as_path();
        std::fs::create_dir_all(d.join("www")).unwrap();
        let files = CrlServer::start(d.join("www"));
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
        write_file(
            d.join("ext.cnf"),
            EXT.replace("{CRL}", &crl_base)
                .replace("{LEAF}", &leaf_ext)
                .as_bytes(),
        );
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
        let pki = RevocationPki {
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

    /// The PKI's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A new P-256 key `name.key` and its certificate `name.pem` (see [`Pki::issue`]).
    pub fn new_cert(&self, ca: &str, name: &str, subj: &str, ext: &str) {
        ec_key(self.path(), &format!("{name}.key"));
        self.issue(ca, name, subj, ext);
    }

    /// Certificate `name.pem` for key `name.key`, issued by CA `ca` with extensions `ext`.
    pub fn issue(&self, ca: &str, name: &str, subj: &str, ext: &str) {
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

    /// Revokes `cert` in CA `ca`'s index with a CRL reason and republishes its CRL.
    pub fn revoke(&self, ca: &str, cert: &str, reason: &str) {
        self.revoke_with(ca, cert, &["-crl_reason", reason]);
    }

    /// Revokes `cert` in CA `ca`'s index with `openssl ca -revoke` options (`-crl_hold OID`,
    /// `-crl_compromise TIME`…) and republishes its CRL.
    pub fn revoke_with(&self, ca: &str, cert: &str, options: &[&str]) {
        let config = format!("{ca}/openssl.cnf");
        let mut args = vec!["ca", "-config", &config, "-revoke", cert];
        args.extend_from_slice(options);
        openssl(self.path(), &args);
        self.gencrl(ca);
    }

    /// `www/CA.crl` (DER) from the CA's index.
    pub fn gencrl(&self, ca: &str) {
        self.gencrl_with(ca, &[]);
    }

    /// `www/CA.crl` with `openssl ca -gencrl` options (`-crl_lastupdate`, `-crl_nextupdate`…).
    pub fn gencrl_with(&self, ca: &str, options: &[&str]) {
        let (config, out) = (format!("{ca}/openssl.cnf"), format!("{ca}.crl.pem"));
        let mut args = vec!["ca", "-gencrl", "-config", &config, "-out", &out];
        args.extend_from_slice(options);
        openssl(self.path(), &args);
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

    /// `openssl ocsp` for the intermediate on [`RevocationPki::ocsp_port`].
    pub fn responder(&self) -> OcspResponder {
        OcspResponder::start(self.path(), "inter", "responder", self.ocsp_port)
    }
}

impl RevocationPki {
    /// A response made offline by `openssl ocsp` for `serial_of` (a certificate file), signed
    /// by `signer`, served as `www/ocsp` (the leaf's answer under [`LeafInfo::CannedOcsp`]).
    pub fn canned_ocsp_response(&self, serial_of: &str, signer: &str) {
        self.canned_ocsp(
            &["-issuer", "inter/ca.pem", "-cert", serial_of],
            "inter",
            "inter",
            signer,
        );
    }

    /// A response made offline: `openssl ocsp REQUEST -no_nonce` writes the request, then
    /// `openssl ocsp` answers it from CA `index_of`'s index, as CA `ca`, signed by `signer`
    /// (`SIGNER.pem`/`SIGNER.key`), valid one day, into `www/ocsp`.
    pub fn canned_ocsp(&self, request: &[&str], index_of: &str, ca: &str, signer: &str) {
        let mut args = vec!["ocsp"];
        args.extend_from_slice(request);
        args.extend_from_slice(&["-no_nonce", "-reqout", "req.der"]);
        openssl(self.path(), &args);
        let (index, ca_cert) = (format!("{index_of}/index.txt"), format!("{ca}/ca.pem"));
        let (cert, key) = (format!("{signer}.pem"), format!("{signer}.key"));
        openssl(
            self.path(),
            &[
                "ocsp", "-index", &index, "-CA", &ca_cert, "-rsigner", &cert, "-rkey", &key,
                "-reqin", "req.der", "-respout", "www/ocsp", "-ndays", "1",
            ],
        );
    }

    /// Issues `name.pem` (new key `name.key`) from CA `ca` with a validity long past
    /// (2025-01-01 to 2025-01-02).
    pub fn new_expired_cert(&self, ca: &str, name: &str, subj: &str, ext: &str) {
        ec_key(self.path(), &format!("{name}.key"));
        let (key, csr, out) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        openssl(
            self.path(),
            &["req", "-new", "-key", &key, "-subj", subj, "-out", &csr],
        );
        let config = format!("{ca}/openssl.cnf");
        openssl(
            self.path(),
            &[
                "ca",
                "-batch",
                "-config",
                &config,
                "-in",
                &csr,
                "-out",
                &out,
                "-extfile",
                "ext.cnf",
                "-extensions",
                ext,
                "-notext",
                "-startdate",
                "20250101000000Z",
                "-enddate",
                "20250102000000Z",
            ],
        );
    }

    /// Publishes, as the intermediate's CRL, one an impostor CA signed: the intermediate's
    /// name, another key.
    pub fn publish_impostor_crl(&self) {
        ca_config(self.path(), "impostor");
        openssl(
            self.path(),
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
        self.gencrl("impostor");
        std::fs::copy(
            self.path().join("www/impostor.crl"),
            self.path().join("www/inter.crl"),
        )
        .unwrap();
    }
}
