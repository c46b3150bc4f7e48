//! [`Nginx`]: nginx (Debian's `nginx-light`) as a plain round-robin HTTP/1.1 proxy in
//! front of registry replicas, in a temporary directory, killed by PID on `Drop`.
//!
//! It runs with `master_process off` (one process, the child we own), so killing it leaves
//! no orphaned worker holding the port. Uploads and downloads stream both ways
//! (`client_max_body_size 0`, no request or response buffering); `Host` is passed through
//! unchanged, so the `Location` a replica builds from it points at the proxy. Each request
//! is logged with the upstream that served it ([`Nginx::upstreams`]).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::docker_registry::{free_port, spawn_listening};
use crate::{ChildGuard, write_file};

/// One access-log line: which upstream answered which request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedRequest {
    /// Every upstream tried, in order (nginx retries idempotent requests on another
    /// upstream after a connection error); empty when nginx answered itself.
    pub upstreams: Vec<SocketAddr>,
    pub method: String,
    pub uri: String,
    pub status: u16,
}

/// nginx on 127.0.0.1 balancing round-robin over `upstreams`, killed by PID on drop.
#[derive(Debug)]
pub struct Nginx {
    _child: ChildGuard,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Start it in front of `upstreams` (plain HTTP).
    pub fn round_robin(upstreams: &[SocketAddr]) -> Nginx {
        assert!(!upstreams.is_empty(), "nginx needs at least one upstream");
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["logs", "temp"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("nginx directories");
        }
        let mut last = String::new();
        for _ in 0..3 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let conf = dir.path().join("nginx.conf");
            write_file(&conf, config(dir.path(), addr, upstreams).as_bytes());
            let error_log = dir.path().join("logs/error.log");
            let mut cmd = Command::new("nginx");
            cmd.arg("-p")
                .arg(dir.path())
                .arg("-e")
                .arg(&error_log)
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some(child) = spawn_listening(&mut cmd, addr, Duration::from_secs(20)) {
                return Nginx {
                    _child: child,
                    addr,
                    dir,
                };
            }
            last = std::fs::read_to_string(&error_log).unwrap_or_default();
        }
        panic!("nginx did not start:\n{last}");
    }

    /// `127.0.0.1:PORT`, for image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The raw access log (`upstream method uri status` per line).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/access.log")).unwrap_or_default()
    }

    /// The error log (upstream failures are logged here).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }

    /// The access log, parsed; connections closed before a request line (a readiness
    /// probe's, logged as `-|-|-|400`) are left out.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.access_log()
            .lines()
            .filter_map(parse_line)
            .filter(|r| r.method != "-")
            .collect()
    }
}

/// `upstream|method|uri|status`, where `upstream` is `-` or `a, b` after a retry.
fn parse_line(line: &str) -> Option<ProxiedRequest> {
    let mut f = line.splitn(4, '|');
    let ups = f.next()?;
    let method = f.next()?.to_owned();
    let uri = f.next()?.to_owned();
    let status = f.next()?.trim().parse().ok()?;
    let upstreams = ups
        .split(", ")
        .filter_map(|u| u.trim().parse().ok())
        .collect();
    Some(ProxiedRequest {
        upstreams,
        method,
        uri,
        status,
    })
}

fn config(dir: &Path, addr: SocketAddr, upstreams: &[SocketAddr]) -> String {
    let servers: String = upstreams
        .iter()
        .map(|u| format!("        server {u};\n"))
        .collect();
    let d = dir.display();
    format!(
        r#"# berth test proxy: round-robin over registry replicas
daemon off;
master_process off;
pid {d}/nginx.pid;
# ignored unless nginx runs as root; as root, lets it use the root-owned temp dirs
user root;
events {{
    worker_connections 1024;
}}
http {{
    client_body_temp_path {d}/temp/client;
    proxy_temp_path {d}/temp/proxy;
    fastcgi_temp_path {d}/temp/fastcgi;
    uwsgi_temp_path {d}/temp/uwsgi;
    scgi_temp_path {d}/temp/scgi;
    log_format replicas '$upstream_addr|$request_method|$request_uri|$status';
    access_log {d}/logs/access.log replicas;
    upstream replicas {{
{servers}        keepalive 16;
    }}
    server {{
        listen {addr};
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_http_version 1.1;
        proxy_read_timeout 300s;
        proxy_send_timeout 300s;
        location / {{
            proxy_pass http://replicas;
            proxy_set_header Host $http_host;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_redirect off;
        }}
    }}
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_lines_parse_with_retries_and_without_upstream() {
        let r = parse_line("127.0.0.1:5001, 127.0.0.1:5002|GET|/v2/|200").expect("parses");
        assert_eq!(
            r.upstreams,
            vec![
                "127.0.0.1:5001".parse::<SocketAddr>().expect("addr"),
                "127.0.0.1:5002".parse().expect("addr")
            ]
        );
        assert_eq!(
            (r.method.as_str(), r.uri.as_str(), r.status),
            ("GET", "/v2/", 200)
        );
        let r = parse_line("-|GET|/x|400").expect("parses");
        assert!(r.upstreams.is_empty());
        assert!(parse_line("garbage").is_none());
    }
}
