//! [`DockerRegistry`]: Debian's `docker-registry` (CNCF distribution 2.8), the reference
//! peer, on 127.0.0.1 in a temporary directory, killed by PID on `Drop`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{ChildGuard, wait_until, write_file};

/// A free port on 127.0.0.1 (bound then released: a small race a test may lose).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Debian's `docker-registry` (distribution 2.8) on 127.0.0.1, killed by PID on drop.
#[derive(Debug)]
pub struct DockerRegistry {
    _child: ChildGuard,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
    user: Option<(String, String)>,
}

impl DockerRegistry {
    /// Start it; with `user`, behind htpasswd (Basic) authentication.
    pub fn start(user: Option<(&str, &str)>) -> DockerRegistry {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = user.map(|(u, p)| (u.to_owned(), p.to_owned()));
        DockerRegistry::launch(dir, user, false)
    }

    /// Stop it, then start it again over the same storage in read-only mode
    /// (`storage: maintenance: readonly: enabled: true`: every write is refused), with its
    /// access log on (see [`DockerRegistry::log`]).
    pub fn restart_read_only(self) -> DockerRegistry {
        let DockerRegistry {
            _child, _dir, user, ..
        } = self;
        drop(_child);
        DockerRegistry::launch(_dir, user, true)
    }

    /// Its log (in read-only mode, with one access-log line per request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("registry.log")).unwrap_or_default()
    }

    fn launch(
        dir: tempfile::TempDir,
        user: Option<(String, String)>,
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
            let mut child = ChildGuard::spawn(&mut cmd);
            let up = wait_until(Duration::from_secs(30), || {
                if child
                    .child()
                    .and_then(|c| c.try_wait().ok().flatten())
                    .is_some()
                {
                    return true;
                }
                std::net::TcpStream::connect(addr).is_ok()
            });
            let exited = child.child().and_then(|c| c.try_wait().ok().flatten());
            if up && exited.is_none() {
                return DockerRegistry {
                    _child: child,
                    addr,
                    _dir: dir,
                    user,
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

fn config_yml(dir: &Path, addr: SocketAddr, user: Option<(&str, &str)>, read_only: bool) -> String {
    let mut c = format!(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: {}\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n",
        !read_only,
        dir.join("data").display()
    );
    if read_only {
        c.push_str("  maintenance:\n    readonly:\n      enabled: true\n");
    }
    c.push_str(&format!("http:\n  addr: {addr}\n"));
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
