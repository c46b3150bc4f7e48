//! [`Registry`]: the built `berth registry serve` on `127.0.0.1:0` in a temporary data
//! directory, owned by a guard that kills it by PID on `Drop`.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::http::Http;
use crate::tls::TestCerts;
use crate::wait_until;

/// How long a start may take before the test fails (debug builds on a busy 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);
const LISTENING: &str = "berth registry listening on ";

/// Options for [`Registry::start`].
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    users: Vec<(String, String)>,
    tls: bool,
    disable_delete: bool,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    env_remove_prefixes: Vec<String>,
    token_key: Option<Vec<u8>>,
    data_dir: Option<PathBuf>,
    umask: Option<u32>,
}

impl RegistryOptions {
    pub fn new() -> RegistryOptions {
        RegistryOptions::default()
    }

    /// Require authentication, with this user in a bcrypt htpasswd file (made with
    /// `htpasswd -Bbn`, so the test needs the `htpasswd` tool: apache2-utils).
    pub fn user(mut self, name: &str, password: &str) -> RegistryOptions {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Serve HTTPS with a certificate for 127.0.0.1/localhost from a generated test CA
    /// (needs the `openssl` tool).
    pub fn tls(mut self) -> RegistryOptions {
        self.tls = true;
        self
    }

    /// `--disable-delete`.
    pub fn disable_delete(mut self) -> RegistryOptions {
        self.disable_delete = true;
        self
    }

    /// Use `dir` as the `--data` directory (e.g. a small tmpfs) instead of one in the
    /// registry's temporary directory. The caller owns it and cleans it up.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> RegistryOptions {
        self.data_dir = Some(dir.into());
        self
    }

    /// Start the server with this umask (through `sh -c 'umask …; exec …'`).
    pub fn umask(mut self, mask: u32) -> RegistryOptions {
        self.umask = Some(mask);
        self
    }

    /// Any other argument to `berth registry serve`.
    pub fn arg(mut self, a: impl Into<OsString>) -> RegistryOptions {
        self.args.push(a.into());
        self
    }

    /// An environment variable for the server (e.g. S3 credentials, `S3Server::env`).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> RegistryOptions {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Remove every variable of the test's environment whose name starts with `prefix`
    /// (`AWS_`: the machine may set a CA bundle or credentials the S3 server does not know);
    /// variables given with [`RegistryOptions::env`] are set after.
    pub fn env_remove_prefixed(mut self, prefix: &str) -> RegistryOptions {
        self.env_remove_prefixes.push(prefix.to_owned());
        self
    }

    /// Start with this bearer-token signing key, written to a file (0600) passed as
    /// `--token-key`, as the README tells operators of replicas to give each the same one.
    pub fn token_key(mut self, key: &[u8]) -> RegistryOptions {
        self.token_key = Some(key.to_vec());
        self
    }
}

/// A running `berth registry serve`. Dropping it kills the process (SIGKILL by PID), waits
/// for it, and removes the data directory; when the test is panicking, the end of the
/// server's log is printed first.
#[derive(Debug)]
pub struct Registry {
    child: Option<Child>,
    opts: RegistryOptions,
    // Declared after `child` so the directory outlives the process in drop order; Drop
    // kills the process explicitly anyway.
    tmp: tempfile::TempDir,
    data: PathBuf,
    log_path: PathBuf,
    htpasswd: Option<PathBuf>,
    /// `--token-key`, when started with [`RegistryOptions::token_key`].
    token_key_file: Option<PathBuf>,
    certs: Option<TestCerts>,
    addr: SocketAddr,
    scheme: &'static str,
}

impl Registry {
    /// Start the registry and wait until it listens.
    pub fn start(opts: RegistryOptions) -> Registry {
        let tmp = tempfile::Builder::new()
            .prefix("berth-registry-test-")
            .tempdir()
            .expect("failed to create a temporary directory for the registry");
        let data = opts
            .data_dir
            .clone()
            .unwrap_or_else(|| tmp.path().join("data"));
        let log_path = tmp.path().join("registry.log");
        let htpasswd = (!opts.users.is_empty()).then(|| {
            let p = tmp.path().join("htpasswd");
            write_htpasswd(&p, &opts.users);
            p
        });
        let certs = opts
            .tls
            .then(|| TestCerts::generate(tmp.path().join("pki")));
        let token_key_file = opts.token_key.as_ref().map(|key| {
            let p = tmp.path().join("shared-token.key");
            write_token_key(&p, key);
            p
        });
        let mut r = Registry {
            token_key_file,
            child: None,
            opts,
            tmp,
            data,
            log_path,
            htpasswd,
            certs,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            scheme: "http",
        };
        r.launch(None)
            .unwrap_or_else(|log| panic!("the registry did not start:\n{log}"));
        r
    }

    /// Spawn the server on `port` (0 = any) and wait for its listening line. On failure,
    /// returns the log of this attempt.
    fn launch(&mut self, port: Option<u16>) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap_or_else(|e| panic!("failed to open {}: {e}", self.log_path.display()));
        let offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = match self.opts.umask {
            Some(mask) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c")
                    .arg(format!("umask {mask:03o} && exec \"$0\" \"$@\""))
                    .arg(crate::berth_bin());
                c
            }
            None => Command::new(crate::berth_bin()),
        };
        cmd.args(["--log-format", "text", "--log-level", "info"])
            .args(["registry", "serve", "--listen"])
            .arg(format!("127.0.0.1:{}", port.unwrap_or(0)))
            .arg("--data")
            .arg(&self.data);
        if let Some(k) = &self.token_key_file {
            cmd.arg("--token-key").arg(k);
        }
        if let Some(h) = &self.htpasswd {
            cmd.arg("--htpasswd").arg(h);
        }
        if let Some(c) = &self.certs {
            cmd.arg("--tls-cert")
                .arg(&c.server_cert)
                .arg("--tls-key")
                .arg(&c.server_key);
        }
        if self.opts.disable_delete {
            cmd.arg("--disable-delete");
        }
        for (k, _) in std::env::vars_os() {
            let name = k.to_string_lossy();
            if self
                .opts
                .env_remove_prefixes
                .iter()
                .any(|p| name.starts_with(p.as_str()))
            {
                cmd.env_remove(&k);
            }
        }
        cmd.args(&self.opts.args)
            .envs(self.opts.envs.iter().map(|(k, v)| (k, v)))
            .env_remove("RUST_LOG")
            .env_remove("BERTH_LOG")
            .env_remove("BERTH_LOG_FORMAT")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("failed to run {}: {e}", crate::berth_bin().display()));
        self.child = Some(child);

        let mut found: Option<(SocketAddr, &'static str)> = None;
        let mut exited = None;
        wait_until(START_TIMEOUT, || {
            if let Some(hit) = find_listening(&read_from(&self.log_path, offset)) {
                found = Some(hit);
                return true;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                exited = Some(status);
                return true;
            }
            false
        });
        match found {
            Some((addr, scheme)) => {
                self.addr = addr;
                self.scheme = scheme;
                Ok(())
            }
            None => {
                let how = match exited {
                    Some(s) => format!("it exited with {s}"),
                    None => {
                        self.kill_child();
                        format!("no listening line within {START_TIMEOUT:?}")
                    }
                };
                self.child = None;
                Err(format!(
                    "{how}; its log:\n{}",
                    read_from(&self.log_path, offset)
                ))
            }
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT` as text, the registry host in image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT` or `https://…`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The `--data` directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The registry's storage root inside the data directory (`<data>/registry`).
    pub fn storage_root(&self) -> PathBuf {
        self.data.join("registry")
    }

    /// `<data>/registry/v1/blobs`.
    pub fn blobs_dir(&self) -> PathBuf {
        self.storage_root().join("v1/blobs")
    }

    /// Date blob `d`'s "last referenced" record — the garbage collector's clock, written by
    /// the registry on upload commit, mount and manifest push — to `t`, as if it had last
    /// been referenced then (`v1/blobs/<alg>/<xx>/<hex>/lastref`: unix milliseconds).
    pub fn set_last_referenced(&self, d: &crate::Digest, t: std::time::SystemTime) {
        set_last_referenced(&self.blobs_dir(), d, t);
    }

    /// The temporary directory holding the data directory, the log, the PKI and htpasswd.
    pub fn temp_dir(&self) -> &Path {
        self.tmp.path()
    }

    /// The test certificates when started with TLS.
    pub fn certs(&self) -> Option<&TestCerts> {
        self.certs.as_ref()
    }

    /// Its bearer-token signing key: the `--token-key` file, else `<data>/registry/token.key`
    /// (made at first start).
    pub fn token_key(&self) -> Vec<u8> {
        let path = self
            .token_key_file
            .clone()
            .unwrap_or_else(|| self.storage_root().join("token.key"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()))
    }

    /// Everything the server has logged (over all starts).
    pub fn log(&self) -> String {
        read_from(&self.log_path, 0)
    }

    /// The server's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A client for this registry (trusting its CA under TLS), without credentials.
    pub fn http(&self) -> Http {
        let ca = self.certs.as_ref().map(TestCerts::ca_pem);
        Http::new(&self.url(), ca.as_deref())
    }

    /// SIGKILL the server and reap it.
    pub fn kill9(&mut self) {
        self.kill_child();
        self.child = None;
    }

    /// Send SIGTERM (graceful shutdown) without waiting; see [`Registry::wait_exit`].
    pub fn sigterm(&mut self) {
        let pid = self
            .pid()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
            .expect("sigterm: the registry is not running");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)
            .expect("failed to send SIGTERM to the registry");
    }

    /// Wait up to `timeout` for the server to exit; returns its status, or `None` if it is
    /// still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let mut status = None;
        wait_until(timeout, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        if status.is_some() {
            self.child = None;
        }
        status
    }

    /// Start the server again on the same data directory, on the same port when it is still
    /// free (else any: check [`Registry::addr`]). A running server is SIGKILLed first.
    pub fn restart(&mut self) {
        self.kill9();
        let port = self.addr.port();
        if let Err(first) = self.launch(Some(port))
            && let Err(second) = self.launch(None)
        {
            panic!("the registry did not restart.\non port {port}: {first}\non any port: {second}");
        }
    }

    fn kill_child(&mut self) {
        if let Some(c) = self.child.as_mut() {
            // std's Child::kill sends SIGKILL to this PID; it errors only if already reaped
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill_child();
        if std::thread::panicking() {
            let log = self.log();
            let tail_start = log
                .char_indices()
                .rev()
                .nth(8000)
                .map(|(i, _)| i)
                .unwrap_or(0);
            eprintln!(
                "--- berth registry log ({}) ---\n{}\n--- end of registry log ---",
                self.log_path.display(),
                &log[tail_start..]
            );
        }
    }
}

/// The log from byte `offset` on ("" when unreadable).
fn read_from(path: &Path, offset: u64) -> String {
    let mut s = Vec::new();
    if let Ok(mut f) = File::open(path)
        && f.seek(SeekFrom::Start(offset)).is_ok()
    {
        let _ = f.read_to_end(&mut s);
    }
    String::from_utf8_lossy(&s).into_owned()
}

/// The address and scheme in a `berth registry listening on http://127.0.0.1:PORT` line.
fn find_listening(log: &str) -> Option<(SocketAddr, &'static str)> {
    let i = log.find(LISTENING)?;
    let rest = &log[i + LISTENING.len()..];
    let url: &str = rest.split(|c: char| c.is_whitespace() || c == '"').next()?;
    let (scheme, hostport) = if let Some(h) = url.strip_prefix("https://") {
        ("https", h)
    } else {
        ("http", url.strip_prefix("http://")?)
    };
    let addr: SocketAddr = hostport.trim_end_matches('/').parse().ok()?;
    Some((addr, scheme))
}

fn write_htpasswd(path: &Path, users: &[(String, String)]) {
    let mut content = Vec::new();
    for (user, password) in users {
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .unwrap_or_else(|e| {
                panic!("failed to run htpasswd (apache2-utils) to make a test htpasswd file: {e}")
            });
        assert!(
            out.status.success(),
            "htpasswd -Bbn {user} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8_lossy(&out.stdout);
        content.extend_from_slice(line.trim().as_bytes());
        content.push(b'\n');
    }
    crate::fs::write_file(path, &content);
}

/// [`Registry::set_last_referenced`] for the blobs directory `blobs_dir` (`<storage>/v1/blobs`).
/// A token key file at `path` (0600), before the server starts.
fn write_token_key(path: &Path, key: &[u8]) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(key))
        .unwrap_or_else(|e| panic!("failed to write {}: {e}", path.display()));
}

pub fn set_last_referenced(blobs_dir: &Path, d: &crate::Digest, t: std::time::SystemTime) {
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|x| x.as_millis())
        .unwrap_or(0);
    let path = blobs_dir.join(format!(
        "{}/{}/{}/lastref",
        d.algorithm().as_str(),
        &d.hex()[..2],
        d.hex()
    ));
    crate::write_file(path, ms.to_string().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_listening_address_in_text_and_json_logs() {
        let text = "2024-01-01T00:00:00Z  INFO berth registry listening on http://127.0.0.1:41234 address=127.0.0.1:41234\n";
        assert_eq!(
            find_listening(text),
            Some((SocketAddr::from(([127, 0, 0, 1], 41234)), "http"))
        );
        let json = r#"{"message":"berth registry listening on https://127.0.0.1:5000","address":"127.0.0.1:5000"}"#;
        assert_eq!(
            find_listening(json),
            Some((SocketAddr::from(([127, 0, 0, 1], 5000)), "https"))
        );
        assert_eq!(find_listening("starting\n"), None);
    }
}
