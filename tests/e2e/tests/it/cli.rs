//! `berth registry serve` as a user starts it: the locked-down defaults, the refusal to
//! serve a network anonymously, JSON logs, metrics after real traffic.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_test_support::{
    ChildGuard, Registry, RegistryOptions, berth_bin, run_with_timeout, wait_until,
};

/// Spawn `berth <args>` with stderr to `log`; return the guard once `marker` appears in the
/// log (or panic with the log).
fn spawn_until(args: &[&str], env: &[(&str, &Path)], log: &Path, marker: &str) -> ChildGuard {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut cmd = Command::new(berth_bin());
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("BERTH_LOG")
        .env_remove("BERTH_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let guard = ChildGuard::spawn(&mut cmd);
    let found = wait_until(Duration::from_secs(60), || {
        std::fs::read_to_string(log).is_ok_and(|l| l.contains(marker))
    });
    assert!(
        found,
        "no {marker:?} in the log of berth {args:?}:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    guard
}

#[test]
fn serve_refuses_a_non_loopback_address_without_auth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut cmd = Command::new(berth_bin());
    cmd.args(["registry", "serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(&data);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "refusing to listen on non-loopback address 0.0.0.0:0 without authentication"
        ) && stderr.contains("hint: pass --htpasswd FILE, or --insecure-anonymous"),
        "{stderr}"
    );
    assert!(
        !data.join("registry").exists(),
        "refused, yet created its data directory"
    );

    // explicitly opened up, it starts
    let log = dir.path().join("open.log");
    let _open = spawn_until(
        &[
            "registry",
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--insecure-anonymous",
            "--data",
            data.to_str().expect("utf-8"),
        ],
        &[],
        &log,
        "berth registry listening on http://0.0.0.0:",
    );
}

#[test]
fn serve_defaults_to_the_xdg_data_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("serve.log");
    let _server = spawn_until(
        &["registry", "serve", "--listen", "127.0.0.1:0"],
        &[("XDG_DATA_HOME", dir.path())],
        &log,
        "berth registry listening on http://127.0.0.1:",
    );
    let expected = dir.path().join("berth/registry");
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(expected.is_dir(), "no {}; log:\n{text}", expected.display());
    assert!(
        text.contains(&format!("data={}", expected.display())),
        "{text}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("serve.log");
    let data = dir.path().join("data");
    let _server = spawn_until(
        &[
            "--log-format",
            "json",
            "--log-level",
            "debug",
            "registry",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            data.to_str().expect("utf-8"),
        ],
        &[],
        &log,
        "berth registry listening on",
    );
    let text = std::fs::read_to_string(&log).expect("log");
    let mut seen_listening = false;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        if v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("berth registry listening on"))
        {
            seen_listening = true;
            assert!(
                v["address"].is_string(),
                "structured fields missing: {line}"
            );
        }
    }
    assert!(seen_listening, "{text}");
}

#[test]
fn metrics_count_requests_bytes_and_upload_durations() {
    let registry = Registry::start(RegistryOptions::new());
    let http = registry.http();
    let blob = berth_test_support::random_bytes(5, 50_000);
    let d = http.push_blob("metrics/app", &blob);
    http.get(&format!("/v2/metrics/app/blobs/{d}"))
        .expect_status(200, "GET blob");
    http.get("/v2/metrics/app/manifests/nope")
        .expect_status(404, "unknown manifest");
    let m = http.get("/metrics");
    m.expect_status(200, "/metrics");
    let text = m.text();
    for want in [
        "berth_registry_requests_total{route=\"blob\",method=\"GET\",status=\"200\"} 1",
        "berth_registry_requests_total{route=\"manifest\",method=\"GET\",status=\"404\"} 1",
        "berth_registry_bytes_sent_total{route=\"blob\"} 50000",
        "berth_registry_bytes_received_total{route=\"upload\"} 50000",
        "berth_registry_upload_duration_seconds_count 1",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn gc_help_shows_defaults_and_durations_take_compound_forms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("registry")).expect("mkdir");
    let data = data.to_str().expect("utf-8");
    let berth = |args: &[&str]| {
        let mut cmd = Command::new(berth_bin());
        cmd.args(args).env("XDG_DATA_HOME", dir.path());
        run_with_timeout(&mut cmd, Duration::from_secs(60))
    };

    let help = berth(&["registry", "gc", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success(), "{text}");
    for want in ["[default: 1h]", "[default: 24h]", "1h30m", "90s", "2d"] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }

    for d in ["90s", "2h", "1h30m", "1h30m15s", "3600"] {
        let gc = berth(&[
            "registry",
            "gc",
            "--data",
            data,
            "--dry-run",
            "--grace",
            d,
            "--upload-expiry",
            d,
        ]);
        assert!(
            gc.status.success(),
            "gc --grace {d}: {}",
            String::from_utf8_lossy(&gc.stderr)
        );
        let prune = berth(&["image", "prune", "--dry-run", "--grace", d]);
        assert!(
            prune.status.success(),
            "prune --grace {d}: {}",
            String::from_utf8_lossy(&prune.stderr)
        );
    }

    for bad in ["1h30", "30m1h", "1x", "1.5h"] {
        for args in [
            vec![
                "registry",
                "gc",
                "--data",
                data,
                "--dry-run",
                "--grace",
                bad,
            ],
            vec!["image", "prune", "--dry-run", "--grace", bad],
        ] {
            let out = berth(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(
                stderr.contains(&format!("invalid duration {bad:?}")) && stderr.contains("1h30m"),
                "{args:?}: {stderr}"
            );
        }
    }
}
