//! `berth watch` end to end (issue 22 §3), as root, against real containers: `berth run`
//! containers of a busybox image imported with `berth import`, and a runc container run from
//! a bundle. `berth watch` runs as a child process (killed by PID on drop) writing JSON lines
//! (or Falco alerts) to a file that the tests read as it grows; each watches only the
//! containers it names, so tests running at once do not see each other's.
//!
//! Measured and printed (not asserted as timings): exec-to-alert (`details.age_us`) and
//! exec-to-kill (`details.kill_us`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use berth_test_support::{
    Bundle, ChildGuard, ContainerGuard, Runtime, berth_bin, requires_root, requires_tool,
    run_with_timeout, wait_until, write_file,
};
use serde_json::Value;

const IMAGE: &str = "localhost/busybox:watch";
const APPLETS: [&str; 14] = [
    "sh", "cat", "cp", "chmod", "echo", "mkdir", "nc", "printf", "sleep", "true", "seq", "wc",
    "id", "test",
];
/// How long a record may take to show up (generous: CI machines are shared).
const WAIT: Duration = Duration::from_secs(30);

/// A data directory with the busybox image imported; its containers' cgroups under a
/// parent of their own. Removes its containers (and that cgroup) on drop.
struct Env {
    dir: tempfile::TempDir,
    cgroup_parent: String,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("berth-watch-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("rootfs");
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
        }
        write_file(root.join("etc/passwd"), b"root:x:0:0:root:/:/bin/sh\n");
        let name = dir.path().file_name().unwrap().to_str().unwrap().to_owned();
        let env = Env {
            dir,
            cgroup_parent: format!("/{name}"),
        };
        env.ok(&["import", root.to_str().unwrap(), IMAGE]);
        env
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(berth_bin());
        let run_like = matches!(args.first(), Some(&"run" | &"create"));
        c.args(&args[..usize::from(run_like)]);
        if run_like {
            c.args(["--cgroup-parent", &self.cgroup_parent, "--network", "none"]);
        }
        c.args(&args[usize::from(run_like)..])
            .env("XDG_DATA_HOME", self.dir.path())
            // keys, trust store and policy of its own: never the machine's
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .env("REGISTRY_AUTH_FILE", self.dir.path().join("auth.json"))
            .env("NO_COLOR", "1")
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            );
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(&mut self.cmd(args), Duration::from_secs(120))
    }

    /// `berth ARGS…`, which must succeed; its stdout, trimmed.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `berth exec NAME sh -c SCRIPT` (whatever its status).
    fn sh(&self, name: &str, script: &str) -> Output {
        self.run(&["exec", name, "sh", "-c", script])
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `berth watch ARGS…` in the background, its stdout and stderr in files named `tag`.
    fn watch(&self, tag: &str, args: &[&str]) -> Watcher {
        let (out, err) = (
            self.path(&format!("{tag}.out")),
            self.path(&format!("{tag}.err")),
        );
        let mut c = self.cmd(&["watch", "--log-level", "info"]);
        c.args(args)
            .stdin(Stdio::null())
            .stdout(new_file(&out))
            .stderr(new_file(&err));
        Watcher {
            child: ChildGuard::spawn(&mut c),
            out,
            err,
        }
    }
}

fn new_file(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap_or_else(|e| panic!("failed to create {}: {e}", path.display()))
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(out) = self.cmd(&["ps", "-a", "-q", "--no-trunc"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        }
        // the parent is made in every hierarchy the runtime joins: the v2 root (pure v2),
        // or each v1 controller's mount and `unified` (hybrid)
        let parent = self.cgroup_parent.trim_start_matches('/');
        let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            roots.extend(rd.flatten().map(|e| e.path()));
        }
        for h in roots {
            let _ = std::fs::remove_dir(h.join(parent));
        }
    }
}

/// A running `berth watch`, killed by PID on drop.
struct Watcher {
    child: ChildGuard,
    out: PathBuf,
    err: PathBuf,
}

impl Watcher {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Every line written so far, parsed.
    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// Wait until a record satisfies `pred`; it.
    #[track_caller]
    fn wait_record(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let mut found = None;
        wait_until(WAIT, || {
            self.assert_running();
            found = self.records().into_iter().find(|r| pred(r));
            found.is_some()
        });
        found.unwrap_or_else(|| {
            panic!(
                "no record of {what} within {WAIT:?}; records:\n{}\nstderr:\n{}",
                self.records()
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
                self.stderr()
            )
        })
    }

    /// Wait until berth watch watches the container named `name`.
    #[track_caller]
    fn wait_watching(&mut self, name: &str) {
        let needle = format!("name={name} ");
        let ok = wait_until(WAIT, || {
            self.assert_running();
            self.stderr()
                .lines()
                .any(|l| l.contains("watching container") && l.contains(&needle))
        });
        assert!(
            ok,
            "berth watch did not pick up container {name}:\n{}",
            self.stderr()
        );
    }

    #[track_caller]
    fn assert_running(&mut self) {
        if let Some(status) = self.child.child().and_then(|c| c.try_wait().ok().flatten()) {
            panic!("berth watch exited ({status}):\n{}", self.stderr());
        }
    }
}

fn exe(r: &Value) -> &str {
    r["process"]["exe"].as_str().unwrap_or("")
}

fn is_exec_of(r: &Value, path: &str) -> bool {
    r["kind"] == "exec" && exe(r) == path
}

fn alerts(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| !r["rule"].is_null()).collect()
}

fn micros(r: &Value, field: &str) -> Duration {
    Duration::from_micros(r["details"][field].as_u64().unwrap_or_else(|| {
        panic!("no details.{field} in {r}");
    }))
}

#[test]
fn watch_alerts_on_drift_and_outside_connects_not_on_the_entrypoint_or_a_copy() {
    requires_root!();
    let env = Env::new();
    let policy = env.path("policy.toml");
    write_file(&policy, b"[watch]\nallow_loopback = false\n");
    let mut w = env.watch(
        "json",
        &[
            "--format",
            "json",
            "--policy",
            policy.to_str().unwrap(),
            "w1",
        ],
    );
    // created after berth watch started: picked up (inotify) before its entrypoint runs
    let id = env.ok(&["create", "--name", "w1", IMAGE, "sleep", "600"]);
    w.wait_watching("w1");
    env.ok(&["start", "w1"]);
    let entry = w.wait_record("the entrypoint's exec", |r| is_exec_of(r, "/bin/sleep"));
    assert_eq!(entry["container"]["id"], id.as_str(), "{entry}");
    assert_eq!(entry["container"]["name"], "w1");
    assert_eq!(entry["container"]["runtime"], "berth");
    assert_eq!(entry["container"]["image"], IMAGE);
    assert_eq!(entry["verdict"], "expected", "{entry}");
    assert_eq!(entry["details"]["origin"], "lower", "{entry}");

    let out = env.sh(
        "w1",
        "mkdir -p /tmp/new /tmp/copy && cp /bin/busybox /tmp/new/true && echo >> /tmp/new/true \
         && /tmp/new/true && cp /bin/busybox /tmp/copy/true && /tmp/copy/true \
         && printf '#!/bin/sh\\necho script\\n' > /tmp/run.sh && chmod +x /tmp/run.sh && /tmp/run.sh \
         && ! nc 127.0.0.1 1 </dev/null",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let drift = w.wait_record("the new binary's exec", |r| is_exec_of(r, "/tmp/new/true"));
    assert_eq!(drift["verdict"], "drift", "{drift}");
    assert_eq!(drift["rule"], "exec_drift", "{drift}");
    assert_eq!(drift["container"]["id"], id.as_str(), "{drift}");
    assert_eq!(drift["details"]["origin"], "upper", "{drift}");
    assert_eq!(drift["details"]["reason"], "not_in_image", "{drift}");
    assert_eq!(
        drift["details"]["action"]["type"], "none",
        "not enforced: {drift}"
    );

    let copy = w.wait_record("the copy's exec", |r| is_exec_of(r, "/tmp/copy/true"));
    assert_eq!(copy["verdict"], "expected", "{copy}");
    assert_eq!(copy["details"]["reason"], "copy_of_image_file", "{copy}");
    assert_eq!(copy["details"]["path"], "/bin/busybox", "{copy}");

    let script = w.wait_record("the script's exec", |r| is_exec_of(r, "/tmp/run.sh"));
    assert_eq!(script["verdict"], "drift", "{script}");
    assert_eq!(script["details"]["judged"], "script", "{script}");

    let connect = w.wait_record("the connect", |r| r["kind"] == "connect");
    assert_eq!(connect["verdict"], "alert", "{connect}");
    assert_eq!(connect["rule"], "connect_outside_profile", "{connect}");
    assert_eq!(
        connect["details"]["destination"], "127.0.0.1:1",
        "{connect}"
    );
    assert_eq!(
        connect["details"]["blocked"], false,
        "not enforced: {connect}"
    );

    let records = w.records();
    let alerted: Vec<String> = alerts(&records)
        .iter()
        .map(|r| format!("{} {}", r["rule"], exe(r)))
        .collect();
    assert_eq!(
        alerted,
        [
            "\"exec_drift\" /tmp/new/true",
            "\"exec_drift\" /tmp/run.sh",
            "\"connect_outside_profile\" "
        ],
        "only the drift and the connect alert: {records:#?}"
    );
    eprintln!(
        "watch: exec to alert {:?} (the new binary, hashed), {:?} (the entrypoint)",
        micros(&drift, "age_us"),
        micros(&entry, "age_us")
    );
}

/// The signed SBOM reaches the profile: under a role policy whose rule requires an SBOM
/// signed by role ci, `berth run` verifies the image and its SBOM in the registry, keeps the
/// accepted SBOM beside the container's record (`berth inspect` shows it; the file has the
/// recorded SHA-256), and `berth watch` builds the container's profile with the SBOM's
/// executable files (its log names the SBOM and counts them). Without a policy nothing is
/// kept.
#[test]
fn run_keeps_the_signed_sbom_and_watch_profiles_with_it() {
    requires_root!();
    let env = Env::new();
    let peer = crate::trust::Peer::start(crate::trust::Kind::Berth);
    let image = format!("{}/busybox:sbom", peer.host());
    env.ok(&["import", env.path("rootfs").to_str().unwrap(), &image]);
    let digest = env.ok(&["push", "-q", &image]);
    let pinned = format!("{}/busybox@{digest}", peer.host());
    env.ok(&["cert", "generate-test", "ci.example", "--default"]);
    env.ok(&["sign", &pinned]);
    let attached = env.ok(&["sbom", "-q", "--attach", &pinned]);
    assert!(attached.starts_with("sha256:"), "{attached}");

    // no policy yet: a container keeps no SBOM
    env.ok(&["run", "-d", "--name", "plain", &image, "sleep", "600"]);
    // `berth inspect NAME`: one container's object (an array for several)
    let inspect = |name: &str| -> Value {
        let v: Value = serde_json::from_str(&env.ok(&["inspect", name])).unwrap();
        assert_eq!(v["Name"], name, "{v}");
        v
    };
    let plain = inspect("plain");
    assert_eq!(plain["Sbom"], Value::Null, "{plain}");

    let subject = "x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=ci.example";
    write_file(
        env.path("config/berth/policy.json"),
        &serde_json::to_vec(&serde_json::json!({
            "version": "berth.policy/v1",
            "trustStores": ["ca:ci.example"],
            "roles": {"ci": {"trustedIdentities": [subject]}},
            "rules": [{
                "name": "sbom",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:ci.example"],
                "requirement": {"allOf": ["ci"]},
                "requireSbom": {"signedBy": "ci"},
            }],
        }))
        .unwrap(),
    );
    let mut w = env.watch("sbom", &["--format", "json", "sb"]);
    let id = env.ok(&["run", "-d", "--name", "sb", &image, "sleep", "600"]);
    let sb = inspect("sb");
    let sbom = &sb["Sbom"];
    assert_eq!(sbom["Manifest"], attached.as_str(), "{sb}");
    assert_eq!(sbom["ArtifactType"], "application/spdx+json", "{sbom}");
    assert!(
        sbom["Signer"].as_str().unwrap().contains("CN=ci.example"),
        "{sbom}"
    );
    let kept = std::fs::read(sbom["Path"].as_str().unwrap()).unwrap();
    assert_eq!(
        sbom["Sha256"],
        berth_test_support::sha256(&kept).to_string().as_str()
    );
    let doc: Value = serde_json::from_slice(&kept).unwrap();
    let busybox = doc["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files in the SBOM: {doc}"))
        .iter()
        .find(|f| f["fileName"] == "/bin/busybox")
        .unwrap_or_else(|| panic!("/bin/busybox is not in the SBOM's files: {doc}"));
    assert_eq!(
        busybox["checksums"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["algorithm"] == "SHA256")
            .unwrap()["checksumValue"],
        berth_test_support::sha256(&std::fs::read("/bin/busybox").unwrap()).hex()
    );

    w.wait_watching("sb");
    let ready = wait_until(WAIT, || {
        w.stderr().lines().any(|l| {
            l.contains("profile ready")
                && l.contains(&id[..12])
                && l.contains(&format!("sbom=\"{attached}\""))
                && l.contains("sbom_files=1 ")
                && l.contains("sbom_mismatched=0")
        })
    });
    assert!(ready, "no profile with the SBOM:\n{}", w.stderr());
    // what it expects is still the image's: its binary expected, a new one drift
    let out = env.sh(
        "sb",
        "mkdir -p /tmp/new && cp /bin/busybox /tmp/new/true && echo >> /tmp/new/true && /tmp/new/true",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let drift = w.wait_record("the new binary's exec", |r| is_exec_of(r, "/tmp/new/true"));
    assert_eq!(drift["verdict"], "drift", "{drift}");
    let sh = w.wait_record("the shell", |r| is_exec_of(r, "/bin/sh"));
    assert_eq!(sh["verdict"], "expected", "{sh}");
}

/// The ports the image declares are the container's listeners: an image with `EXPOSE 8080`
/// (`berth import --change`), whose runtime config `berth run` gives the
/// `org.opencontainers.image.exposedPorts` annotation; a listener on 8080 is expected, one on
/// 4444 (a bind shell's) is an alert, in the JSON record and as Falco's alert.
#[test]
fn watch_alerts_on_a_listener_the_image_does_not_declare() {
    requires_root!();
    let env = Env::new();
    let image = "localhost/busybox:exposed";
    env.ok(&[
        "import",
        "--change",
        "EXPOSE 8080",
        env.path("rootfs").to_str().unwrap(),
        image,
    ]);
    let mut w = env.watch("listen", &["--format", "json", "l1"]);
    let mut falco = env.watch("listen-falco", &["--format", "falco", "l1"]);
    env.ok(&["run", "-d", "--name", "l1", image, "sleep", "600"]);
    w.wait_watching("l1");
    falco.wait_watching("l1");
    let out = env.sh(
        "l1",
        "nc -l -p 8080 & a=$!; nc -l -p 4444 & b=$!; sleep 1; kill $a $b",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let on = |port: &'static str| {
        move |r: &Value| {
            r["kind"] == "bind"
                && r["details"]["address"]
                    .as_str()
                    .is_some_and(|a| a.ends_with(port))
        }
    };
    let declared = w.wait_record("the listener on 8080", on(":8080"));
    assert_eq!(declared["verdict"], "expected", "{declared}");
    assert_eq!(declared["details"]["reason"], "declared_port", "{declared}");
    assert_eq!(declared["details"]["protocol"], "tcp", "{declared}");
    let shell = w.wait_record("the listener on 4444", on(":4444"));
    assert_eq!(shell["verdict"], "alert", "{shell}");
    assert_eq!(shell["rule"], "listen_outside_profile", "{shell}");
    assert_eq!(shell["container"]["name"], "l1", "{shell}");
    let alert = falco.wait_record("Falco's alert", |r| {
        r["rule"] == "Listening on a port the image does not declare"
    });
    assert_eq!(alert["output_fields"]["fd.sport"], 4444, "{alert}");
    assert_eq!(alert["output_fields"]["container.name"], "l1", "{alert}");
    assert!(
        !falco
            .records()
            .iter()
            .any(|r| r["output_fields"]["fd.sport"] == 8080),
        "the declared listener raised an alert: {:?}",
        falco.records()
    );
}

/// A container's first execs, made before berth watch has read its state (`run` creates and
/// starts at once), are held until its container is found, not missed: an entrypoint that
/// writes a binary and runs it at once is drift, and in enforce mode it is killed.
#[test]
fn watch_sees_the_first_execs_of_a_container_run_at_once() {
    requires_root!();
    let env = Env::new();
    let mut w = env.watch("first", &["--format", "json", "--enforce", "w5"]);
    let ready = wait_until(WAIT, || {
        w.assert_running();
        w.stderr().contains("watching: the probes are attached")
    });
    assert!(ready, "berth watch did not start:\n{}", w.stderr());
    let id = env.ok(&[
        "run",
        "-d",
        "--name",
        "w5",
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /tmp/new && cp /bin/busybox /tmp/new/sleep && echo >> /tmp/new/sleep \
         && /tmp/new/sleep 600",
    ]);
    let entry = w.wait_record("the entrypoint's exec", |r| is_exec_of(r, "/bin/sh"));
    assert_eq!(entry["container"]["id"], id.as_str(), "{entry}");
    assert_eq!(entry["verdict"], "expected", "{entry}");
    let drift = w.wait_record("the new binary's exec", |r| is_exec_of(r, "/tmp/new/sleep"));
    assert_eq!(drift["verdict"], "drift", "{drift}");
    assert_eq!(drift["container"]["id"], id.as_str(), "{drift}");
    assert_eq!(drift["details"]["origin"], "upper", "{drift}");
    assert_eq!(drift["details"]["kill"], "killed", "{drift}");
    // killed: the container's process ended by SIGKILL
    assert_eq!(env.ok(&["wait", "w5"]), "137");
    eprintln!(
        "watch: a container's first drift, exec to kill {:?}",
        micros(&drift, "kill_us")
    );
}

#[test]
fn watch_enforce_kills_drift_and_refuses_connects_and_speaks_falco() {
    requires_root!();
    let env = Env::new();
    let policy = env.path("policy.toml");
    write_file(&policy, b"[watch]\nallow_loopback = false\n");
    let id = env.ok(&["run", "-d", "--name", "w2", IMAGE, "sleep", "600"]);
    let mut w = env.watch(
        "enforce",
        &["--enforce", "--policy", policy.to_str().unwrap(), "w2"],
    );
    // a second watcher, not enforcing, in Falco's format
    let mut falco = env.watch(
        "falco",
        &[
            "--format",
            "falco",
            "--policy",
            policy.to_str().unwrap(),
            "w2",
        ],
    );
    w.wait_watching("w2");
    falco.wait_watching("w2");

    let out = env.sh(
        "w2",
        "mkdir -p /tmp/x && cp /bin/busybox /tmp/x/sleep && echo >> /tmp/x/sleep \
         && { /tmp/x/sleep 60; echo status=$?; }; nc 127.0.0.1 1 </dev/null; echo nc=$?",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("status=137"),
        "the drift process was not killed by SIGKILL (128+9): {stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("Operation not permitted") && stdout.contains("nc=1"),
        "the connect was not refused with EPERM: {stdout}\n{stderr}"
    );

    let drift = w.wait_record("the drift's exec", |r| is_exec_of(r, "/tmp/x/sleep"));
    assert_eq!(drift["verdict"], "drift", "{drift}");
    assert_eq!(drift["container"]["id"], id.as_str());
    assert_eq!(drift["details"]["action"]["type"], "kill", "{drift}");
    assert_eq!(drift["details"]["kill"], "killed", "{drift}");
    let connect = w.wait_record("the refused connect", |r| r["kind"] == "connect");
    assert_eq!(connect["details"]["blocked"], true, "{connect}");
    assert_eq!(connect["details"]["action"]["type"], "blocked", "{connect}");
    eprintln!(
        "watch --enforce: exec to kill {:?}, exec to alert {:?}",
        micros(&drift, "kill_us"),
        micros(&drift, "age_us")
    );

    // Falco's json_output: alerts only, with Falco's fields
    let alert = falco.wait_record("the drift as a Falco alert", |r| {
        r["output_fields"]["proc.exepath"] == "/tmp/x/sleep"
    });
    for field in [
        "output", "priority", "rule", "time", "source", "tags", "hostname",
    ] {
        assert!(!alert[field].is_null(), "no {field} in {alert}");
    }
    assert_eq!(alert["source"], "syscall");
    assert_eq!(alert["priority"], "Critical");
    let f = &alert["output_fields"];
    assert_eq!(f["container.id"], &id[..12], "{alert}");
    assert_eq!(f["container.name"], "w2");
    assert_eq!(f["proc.is_exe_upper_layer"], true);
    assert!(f["evt.time"].as_u64().is_some(), "{alert}");
    assert!(f["proc.pid"].as_u64().is_some(), "{alert}");
    let connect = falco.wait_record("the connect as a Falco alert", |r| {
        r["output_fields"]["fd.rport"] == 1
    });
    assert_eq!(connect["output_fields"]["fd.rip"], "127.0.0.1", "{connect}");
    assert!(
        falco.records().iter().all(|r| !r["rule"].is_null()),
        "Falco lines are alerts only"
    );
}

#[test]
fn watch_restarted_while_containers_run_picks_them_up() {
    requires_root!();
    let env = Env::new();
    let id = env.ok(&["run", "-d", "--name", "w3", IMAGE, "sleep", "600"]);
    let mut first = env.watch("first", &["w3"]);
    first.wait_watching("w3");
    drop(first); // SIGKILL: no clean shutdown
    let mut second = env.watch("second", &["w3"]);
    second.wait_watching("w3");
    let out = env.sh(
        "w3",
        "cp /bin/busybox /tmp/true && echo >> /tmp/true && /tmp/true",
    );
    assert!(out.status.success(), "{out:?}");
    let drift = second.wait_record("the drift after the restart", |r| {
        is_exec_of(r, "/tmp/true")
    });
    assert_eq!(drift["verdict"], "drift", "{drift}");
    assert_eq!(drift["container"]["id"], id.as_str());
}

/// One HTTP/1.0 GET of `path` on `addr`; the body.
fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200"),
        "{resp}"
    );
    resp.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[test]
fn watch_exec_storm_is_bounded_and_drops_are_counted_and_reported() {
    requires_root!();
    const EXECS: u64 = 3000;
    let env = Env::new();
    env.ok(&["run", "-d", "--name", "w4", IMAGE, "sleep", "600"]);
    // a one-page ring buffer: a storm overflows it
    let mut w = env.watch(
        "storm",
        &[
            "--ring-buffer-bytes",
            "4096",
            "--metrics-listen",
            "127.0.0.1:0",
            "w4",
        ],
    );
    w.wait_watching("w4");
    let script = format!("for i in $(seq {EXECS}); do /bin/true; done");
    let out = env.sh("w4", &script);
    assert!(out.status.success(), "{out:?}");
    let dropped = w.wait_record("the drops", |r| r["kind"] == "dropped");
    assert_eq!(dropped["verdict"], "dropped");
    assert_eq!(dropped["rule"], "events_dropped");
    // every exec of the storm is either a record or counted in a drop
    let mut seen = 0;
    let complete = wait_until(WAIT, || {
        let records = w.records();
        let execs = records
            .iter()
            .filter(|r| is_exec_of(r, "/bin/true"))
            .count() as u64;
        let drops: u64 = records
            .iter()
            .filter(|r| r["kind"] == "dropped")
            .map(|r| r["details"]["count"].as_u64().unwrap())
            .sum();
        seen = execs + drops;
        seen >= EXECS
    });
    let records = w.records();
    let execs = records
        .iter()
        .filter(|r| is_exec_of(r, "/bin/true"))
        .count();
    assert!(
        complete,
        "{seen} of {EXECS} execs accounted for (records + drops)"
    );
    let drops: u64 = records
        .iter()
        .filter(|r| r["kind"] == "dropped")
        .map(|r| r["details"]["count"].as_u64().unwrap())
        .sum();
    assert!(drops > 0);
    eprintln!(
        "watch storm: {EXECS} execs, {execs} recorded, {drops} events dropped (4 KiB ring buffer)"
    );

    let addr = w
        .stderr()
        .lines()
        .find_map(|l| {
            let rest = l.split("metrics at http://").nth(1)?;
            Some(rest.split('/').next()?.to_owned())
        })
        .unwrap_or_else(|| panic!("no metrics address logged:\n{}", w.stderr()));
    let text = http_get(&addr, "/metrics");
    assert_eq!(
        metric(&text, "berth_watch_dropped_events_total"),
        drops,
        "{text}"
    );
    assert_eq!(metric(&text, "berth_watch_containers"), 1, "{text}");
    assert!(
        metric(&text, "berth_watch_events_total{kind=\"exec\"}") >= execs as u64,
        "{text}"
    );
}

#[test]
fn watch_attributes_a_runc_container_run_from_a_bundle() {
    requires_root!();
    requires_tool!("runc");
    let env = Env::new();
    let rt = Runtime::find("runc").unwrap();
    let mut bundle = Bundle::new();
    bundle.args(&["/bin/sleep", "600"]);
    let guard = ContainerGuard::create(&rt, &bundle);
    guard.start();
    let root = rt.root().to_str().unwrap().to_owned();
    let mut w = env.watch("runc", &["--runc-root", &root, bundle.id()]);
    let picked = wait_until(WAIT, || {
        w.assert_running();
        w.stderr()
            .lines()
            .any(|l| l.contains("watching container") && l.contains(bundle.id()))
    });
    assert!(
        picked,
        "the runc container was not picked up:\n{}",
        w.stderr()
    );
    // left running, so that it is hashed through its root (a process that has already
    // exited cannot be read back from a root that is no overlay: `unreadable`, counted as drift)
    rt.cmd(
        &[
            "exec",
            "--detach",
            bundle.id(),
            "/bin/busybox",
            "sleep",
            "60",
        ],
        Duration::from_secs(60),
    )
    .assert_success();
    let r = w.wait_record("the exec in the runc container", |r| {
        is_exec_of(r, "/bin/busybox")
    });
    assert_eq!(r["container"]["id"], bundle.id(), "{r}");
    assert_eq!(r["container"]["runtime"], "runc", "{r}");
    // its root is a plain directory: profiled from it, the exec hashed and found there
    assert_eq!(r["verdict"], "expected", "{r}");
    assert_eq!(r["details"]["reason"], "image_file", "{r}");
}

#[test]
fn watch_without_root_exits_2_saying_what_is_missing() {
    requires_root!();
    requires_tool!("setpriv");
    let env = Env::new();
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
    ])
    .arg(berth_bin())
    .args(["watch"])
    .env("XDG_DATA_HOME", env.path("nobody"))
    .env("HOME", env.path("nobody"));
    let out = run_with_timeout(&mut c, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("needs root") && stderr.contains("CAP_BPF"),
        "{stderr}"
    );
}
