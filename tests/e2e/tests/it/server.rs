//! The server around the API: plain HTTP on the TLS port, the access log, `/metrics` behind
//! authentication, private data files, the token key's permissions.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_test_support::{
    Registry, RegistryOptions, berth_bin, random_bytes, raw_request, run_with_timeout, wait_until,
};

use crate::common::{patch_chunk, push_image};

/// Issue 13 §3.6: plain HTTP sent to the TLS port gets a plain `400` that says the server
/// speaks HTTPS (as Go's net/http answers), not a dropped connection; TLS still works.
#[test]
fn plain_http_on_the_tls_port_gets_400_saying_https() {
    let registry = Registry::start(RegistryOptions::new().tls());
    let r = raw_request(
        registry.addr(),
        format!(
            "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            registry.host()
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("Client sent an HTTP request to an HTTPS server"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("HTTPS"), "{}", r.text());
    registry
        .http()
        .get("/v2/")
        .expect_status(200, "GET /v2/ over TLS");
}

/// Issue 14: the access log is berth-httpd's layer around the registry's router, one
/// debug-level line per request with the fields it had (method, path, status, route, micros);
/// the route is the label the registry's handlers give their responses.
#[test]
fn access_log_has_one_line_per_request_with_its_route() {
    let registry = Registry::start(RegistryOptions::new().arg("--log-level").arg("debug"));
    let http = registry.http();
    http.get("/v2/").expect_status(200, "GET /v2/");
    http.get("/v2/some/app/manifests/nope")
        .expect_status(404, "unknown manifest");
    http.get("/metrics").expect_status(200, "/metrics");
    let lines = [
        "berth_httpd::access_log: request method=GET path=\"/v2/\" status=200 route=\"base\" micros=",
        "berth_httpd::access_log: request method=GET path=\"/v2/some/app/manifests/nope\" status=404 route=\"manifest\" micros=",
        "berth_httpd::access_log: request method=GET path=\"/metrics\" status=200 route=\"metrics\" micros=",
    ];
    assert!(
        wait_until(Duration::from_secs(10), || {
            let log = registry.log();
            lines.iter().all(|l| log.contains(l))
        }),
        "missing access-log lines {lines:#?} in:\n{}",
        registry.log()
    );
}

/// Issue 13 §3.4: with authentication on, `/metrics` needs it too.
#[test]
fn metrics_require_authentication_when_it_is_on() {
    let registry = Registry::start(RegistryOptions::new().user("alice", "s3cret"));
    let http = registry.http();
    let r = http.get("/metrics");
    r.expect_status(401, "anonymous GET /metrics");
    assert!(
        r.header("www-authenticate").is_some(),
        "401 without a challenge"
    );
    assert!(!r.text().contains("berth_registry_requests_total"));
    http.basic("alice", "wrong")
        .get("/metrics")
        .expect_status(401, "GET /metrics with a wrong password");
    let r = http.basic("alice", "s3cret").get("/metrics");
    r.expect_status(200, "GET /metrics as alice");
    assert!(
        r.text().contains("berth_registry_requests_total"),
        "{}",
        r.text()
    );
    let token = http.basic("alice", "s3cret").token("registry:catalog:*");
    http.bearer(&token)
        .get("/metrics")
        .expect_status(200, "GET /metrics with a bearer token");

    // without authentication configured, anyone on the (loopback) listener may read them
    let open = Registry::start(RegistryOptions::new());
    open.http()
        .get("/metrics")
        .expect_status(200, "GET /metrics without auth configured");
}

/// Every directory and file under `root`, `root` included.
fn walk_all(root: &Path, out: &mut Vec<(std::path::PathBuf, std::fs::Metadata)>) {
    let meta = std::fs::symlink_metadata(root).expect("stat");
    let is_dir = meta.is_dir();
    out.push((root.to_owned(), meta));
    if is_dir {
        for e in std::fs::read_dir(root).expect("read_dir") {
            walk_all(&e.expect("entry").path(), out);
        }
    }
}

/// Issue 13 §3.2: under umask 000, the data directory and everything the registry writes
/// in it (blobs, links, tags, upload sessions, the token key, the GC lock) are 0700
/// directories and 0600 files.
#[test]
fn data_directory_is_private_whatever_the_umask() {
    let registry = Registry::start(RegistryOptions::new().user("alice", "s3cret").umask(0o000));
    let http = registry.http().basic("alice", "s3cret");
    push_image(&http, "private/app", "v1", 7, &[2000, 3000]);
    let loc = http.start_upload("private/app");
    let data = random_bytes(8, 1000);
    patch_chunk(&http, &loc, "0-999", &data).expect_status(202, "PATCH");
    assert!(
        registry.storage_root().join("token.key").is_file(),
        "no token key was created"
    );

    let mut all = Vec::new();
    walk_all(registry.data_dir(), &mut all);
    assert!(all.len() > 20, "too few entries to check: {all:?}");
    let wrong: Vec<String> = all
        .iter()
        .filter_map(|(p, m)| {
            let mode = m.permissions().mode() & 0o7777;
            let want = if m.is_dir() { 0o700 } else { 0o600 };
            (mode != want).then(|| format!("{} has mode {mode:o}, not {want:o}", p.display()))
        })
        .collect();
    assert!(wrong.is_empty(), "not private:\n{}", wrong.join("\n"));
}

/// Issue 13 §3.2: a token key others may read is refused at startup with an error that
/// says what to do; once it is 0600 the server starts.
#[test]
fn token_key_readable_by_others_is_refused_at_startup() {
    let mut registry = Registry::start(RegistryOptions::new().user("alice", "s3cret"));
    registry.kill9();
    let key = registry.storage_root().join("token.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut cmd = Command::new(berth_bin());
    cmd.args(["registry", "serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(registry.data_dir())
        .arg("--htpasswd")
        .arg(registry.temp_dir().join("htpasswd"))
        .env_remove("RUST_LOG");
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the server started: {stderr}");
    assert!(
        stderr.contains(&key.display().to_string()) && stderr.contains("chmod 600"),
        "the error does not name the key and the fix: {stderr}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    registry.restart();
    registry
        .http()
        .basic("alice", "s3cret")
        .get("/v2/")
        .expect_status(200, "after chmod 600");
}

/// Issue 13 §3.4, the alternative: `--metrics-listen` serves `/metrics` on a separate
/// loopback address without authentication, and the API port no longer serves it; a
/// non-loopback metrics address is refused.
#[test]
fn metrics_listen_serves_metrics_on_a_separate_loopback_port() {
    let registry = Registry::start(
        RegistryOptions::new()
            .user("alice", "s3cret")
            .arg("--metrics-listen")
            .arg("127.0.0.1:0"),
    );
    let log = registry.log();
    let marker = "metrics listening on http://";
    let at = log
        .find(marker)
        .unwrap_or_else(|| panic!("no metrics line in:\n{log}"));
    let rest = &log[at + marker.len()..];
    let addr = rest.split('/').next().expect("address");
    let metrics = berth_test_support::Http::new(&format!("http://{addr}"), None);
    let r = metrics.get("/metrics");
    r.expect_status(200, "GET /metrics on the metrics port");
    assert!(
        r.text().contains("berth_registry_requests_total"),
        "{}",
        r.text()
    );
    metrics
        .get("/v2/")
        .expect_status(404, "the API on the metrics port");
    let api = registry.http().basic("alice", "s3cret");
    api.get("/metrics")
        .expect_status(404, "/metrics on the API port when --metrics-listen is set");

    let mut cmd = Command::new(berth_bin());
    cmd.args(["registry", "serve", "--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "0.0.0.0:0", "--data"])
        .arg(registry.temp_dir().join("other-data"))
        .env_remove("RUST_LOG");
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "served metrics on 0.0.0.0: {stderr}");
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}
