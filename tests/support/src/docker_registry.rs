//! [`DockerRegistry`]: Debian's `docker-registry` (CNCF distribution 2.8), the reference
//! peer, on 127.0.0.1 in a temporary directory, killed by PID on `Drop` — on its
//! filesystem driver, or on its S3 driver over an [`S3Server`] ([`DockerRegistry::on_s3`]).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{ChildGuard, S3Server, wait_until, write_file};

/// A free port on 127.0.0.1 (bound then released: a small race a test may lose).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Spawn `cmd` and wait (up to `timeout`) until it accepts connections on `addr`; `None`
/// (the child killed) if it exited or never listened.
pub(crate) fn spawn_listening(
    cmd: &mut Command,
    addr: SocketAddr,
    timeout: Duration,
) -> Option<ChildGuard> {
    let mut child = ChildGuard::spawn(cmd);
    let mut exited = || {
        child
            .child()
            .and_then(|c| c.try_wait().ok().flatten())
            .is_some()
    };
    let up = wait_until(timeout, || {
        exited() || std::net::TcpStream::connect(addr).is_ok()
    });
    (up && !exited()).then_some(child)
}

/// Remove every `AWS_*` variable from `cmd`'s environment: an S3 client under test gets only
/// what its configuration says (docker-registry 2.8's S3 driver fails outright on the
/// machine's AWS_CA_BUNDLE: "unsupported transport").
pub(crate) fn clear_aws_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
}

/// Debian's `docker-registry` (distribution 2.8) on 127.0.0.1, killed by PID on drop.
#[derive(Debug)]
pub struct DockerRegistry {
    _child: ChildGuard,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
    user: Option<(String, String)>,
    storage: Storage,
}

/// Where a docker-registry keeps its data.
#[derive(Debug, Clone)]
enum Storage {
    /// `data/` in its temporary directory.
    Filesystem,
    /// Its S3 driver; replicas on one bucket share `secret` (distribution signs its upload
    /// state with `http.secret`: without the same one, an upload started on one replica
    /// cannot continue on another).
    S3 { yaml: String, secret: String },
}

impl DockerRegistry {
    /// Start it; with `user`, behind htpasswd (Basic) authentication.
    pub fn start(user: Option<(&str, &str)>) -> DockerRegistry {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = user.map(|(u, p)| (u.to_owned(), p.to_owned()));
        DockerRegistry::launch(dir, user, Storage::Filesystem, false)
    }

    /// Start it on its S3 driver over `s3`'s bucket, every key under `root` (its
    /// `rootdirectory`, e.g. `/docker`), blob `GET`s served (not redirected to S3), with
    /// `http.secret` = `secret`: start replicas on the same bucket with the same root and
    /// secret and they are one registry.
    pub fn on_s3(s3: &S3Server, root: &str, secret: &str) -> DockerRegistry {
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = format!(
            "  s3:\n    accesskey: {}\n    secretkey: {}\n    region: {}\n    regionendpoint: {}\n    bucket: {}\n    secure: false\n    v4auth: true\n    forcepathstyle: true\n    rootdirectory: {root}\n  redirect:\n    disable: true\n",
            s3.access_key(),
            s3.secret_key(),
            s3.region(),
            s3.endpoint(),
            s3.bucket(),
        );
        let storage = Storage::S3 {
            yaml,
            secret: secret.to_owned(),
        };
        DockerRegistry::launch(dir, None, storage, false)
    }

    /// Stop it, then start it again over the same storage in read-only mode
    /// (`storage: maintenance: readonly: enabled: true`: every write is refused), with its
    /// access log on (see [`DockerRegistry::log`]).
    pub fn restart_read_only(self) -> DockerRegistry {
        let DockerRegistry {
            _child,
            _dir,
            user,
            storage,
            ..
        } = self;
        drop(_child);
        DockerRegistry::launch(_dir, user, storage, true)
    }

    /// Its log (in read-only mode, with one access-log line per request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("registry.log")).unwrap_or_default()
    }

    fn launch(
        dir: tempfile::TempDir,
        user: Option<(String, String)>,
        storage: Storage,
        read_only: bool,
    ) -> DockerRegistry {
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let config = config_yml(
                dir.path(),
                addr,
                user.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
                &storage,
                read_only,
            );
            let cfg_path = dir.path().join("config.yml");
            write_file(&cfg_path, config.as_bytes());
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.path().join("registry.log"))
                .expect("log file");
            let mut cmd = Command::new("docker-registry");
            cmd.arg("serve")
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log);
            clear_aws_env(&mut cmd);
            if let Some(child) = spawn_listening(&mut cmd, addr, Duration::from_secs(30)) {
                return DockerRegistry {
                    _child: child,
                    addr,
                    _dir: dir,
                    user,
                    storage,
                };
            }
            last = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        }
        panic!("docker-registry did not start:\n{last}");
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Its filesystem storage root (`docker/registry/v2/…` lies under it).
    pub fn storage_root(&self) -> PathBuf {
        self._dir.path().join("data")
    }
}

fn config_yml(
    dir: &Path,
    addr: SocketAddr,
    user: Option<(&str, &str)>,
    storage: &Storage,
    read_only: bool,
) -> String {
    let mut c = format!(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: {}\nstorage:\n",
        !read_only,
    );
    match storage {
        Storage::Filesystem => c.push_str(&format!(
            "  filesystem:\n    rootdirectory: {}\n",
            dir.join("data").display()
        )),
        Storage::S3 { yaml, .. } => c.push_str(yaml),
    }
    c.push_str("  delete:\n    enabled: true\n");
    if read_only {
        c.push_str("  maintenance:\n    readonly:\n      enabled: true\n");
    }
    c.push_str(&format!("http:\n  addr: {addr}\n"));
    if let Storage::S3 { secret, .. } = storage {
        c.push_str(&format!("  secret: {secret}\n"));
    }
    if let Some((u, p)) = user {
        let out = Command::new("htpasswd")
            .args(["-Bbn", u, p])
            .output()
            .expect("run htpasswd");
        assert!(out.status.success(), "htpasswd failed");
        let file = dir.join("htpasswd");
        write_file(&file, &out.stdout);
        c.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
            file.display()
        ));
    }
    c
}
