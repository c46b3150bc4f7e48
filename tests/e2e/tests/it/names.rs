//! Repository names that must be refused (400 NAME_INVALID, or 404 when they do not route)
//! without anything being created, least of all outside the data directory.

use std::path::{Component, Path, PathBuf};

use berth_test_support::{Registry, RegistryOptions, raw_request};

use crate::common::snapshot;

/// `base` joined with `rel`, with `..` resolved lexically (what a naive `join` would reach).
fn lexical_join(base: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn invalid_repository_names_are_refused_and_create_nothing() {
    let registry = Registry::start(RegistryOptions::new());
    let unique = registry
        .temp_dir()
        .file_name()
        .expect("temp dir name")
        .to_string_lossy()
        .into_owned();
    let escape = format!("berth-escape-{unique}");
    let long = "a".repeat(300);
    // (name as sent in the path, name as a naive server would use it on disk)
    let names: Vec<(String, String)> = vec![
        ("..".into(), "..".into()),
        ("../..".into(), "../..".into()),
        (
            format!("a/../../../../../../../../{escape}"),
            format!("a/../../../../../../../../{escape}"),
        ),
        ("%2e%2e".into(), "..".into()),
        (
            format!("%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{escape}"),
            format!("../../../../../../../{escape}"),
        ),
        (
            format!("a%2f..%2f..%2f..%2f..%2f..%2f..%2f{escape}"),
            format!("a/../../../../../../{escape}"),
        ),
        ("UPPER".into(), "UPPER".into()),
        ("Mixed/Case".into(), "Mixed/Case".into()),
        (long.clone(), long.clone()),
        (format!("{long}/{long}"), format!("{long}/{long}")),
        ("a//b".into(), "a//b".into()),
        ("_hidden".into(), "_hidden".into()),
        ("a/_uploads".into(), "a/_uploads".into()),
    ];
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
    let before = snapshot(registry.temp_dir());
    let repositories = registry.storage_root().join("v1/repositories");
    let host = registry.host();
    // where a server that joined the name onto its repositories directory would write
    let targets: Vec<(PathBuf, bool)> = names
        .iter()
        .flat_map(|(_, on_disk)| {
            [
                lexical_join(&repositories, on_disk),
                lexical_join(&repositories, &format!("{on_disk}/_uploads")),
            ]
        })
        .map(|t| {
            let existed = t.exists();
            (t, existed)
        })
        .collect();

    let mut failures = Vec::new();
    for (name, _) in &names {
        let requests = [
            format!(
                "POST /v2/{name}/blobs/uploads/ HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
            format!(
                "PUT /v2/{name}/manifests/latest HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                manifest.len(),
                String::from_utf8_lossy(manifest)
            ),
            format!(
                "GET /v2/{name}/tags/list HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            ),
        ];
        for req in &requests {
            let r = raw_request(registry.addr(), req.as_bytes());
            let line = req.lines().next().unwrap_or_default();
            let shown = if line.len() > 120 {
                format!("{}…", &line[..120])
            } else {
                line.to_owned()
            };
            let ok = match r.status {
                400 => r.text().contains("NAME_INVALID"),
                404 => true,
                _ => false,
            };
            if !ok {
                failures.push(format!("{shown} → {} {}", r.status, r.text()));
            }
        }
    }
    for (target, existed) in &targets {
        if !existed && target.exists() {
            failures.push(format!("{} was created", target.display()));
        }
    }
    let escaped = std::env::temp_dir().join(&escape);
    if escaped.exists() {
        failures.push(format!("{} was created", escaped.display()));
    }
    let mut after = snapshot(registry.temp_dir());
    after.remove(Path::new("registry.log"));
    let mut before = before;
    before.remove(Path::new("registry.log"));
    let created: Vec<_> = after.difference(&before).collect();
    if !created.is_empty() {
        failures.push(format!("files appeared: {created:?}"));
    }
    assert!(
        failures.is_empty(),
        "invalid names were not refused cleanly:\n{}",
        failures.join("\n")
    );
}
