//! The webhook's container image as `scripts/build-admission-image` builds it (from the
//! `berth` under test, as a user builds it from a release build): run with `berth run` as a
//! real container, mounted as deploy/kubernetes/deployment.yaml mounts it (config, TLS Secret
//! readable by group 65532 only, trust store; read-only root, a tmpfs /tmp), it answers
//! `/healthz` and AdmissionReviews over TLS; it runs as 65532, has no shell, says the
//! Deployment's arguments, and two builds of the same binary and commit are the same digest.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{
    ReviewBuilder, WorkloadKind, berth_bin, images_of, requires_root, requires_tool,
    run_with_timeout, wait_until, workspace_root, write_file,
};
use serde_json::Value;

use crate::admission::{Fixture, ROLES};

/// `scripts/build-admission-image --output OUT [--tag TAG --plain-http]` with `BERTH_BIN`
/// the berth under test, under `umask` with its temporary files in `tmp`: the digest it
/// printed last.
fn build(out: &Path, tag: Option<&str>, umask: &str, tmp: &Path) -> String {
    let mut c = Command::new("sh");
    c.args(["-c", "umask \"$1\"; shift; exec \"$@\"", "sh", umask])
        .arg(workspace_root().join("scripts/build-admission-image"))
        .arg("--output")
        .arg(out)
        .env("BERTH_BIN", berth_bin())
        .env("TMPDIR", tmp);
    if let Some(t) = tag {
        c.args(["--tag", t, "--plain-http"]);
    }
    let o = run_with_timeout(&mut c, Duration::from_secs(300));
    assert!(
        o.status.success(),
        "build-admission-image failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let digest = stdout.lines().last().unwrap_or_default().to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{stdout}"
    );
    digest
}

fn json_blob(layout: &Path, digest: &str) -> Value {
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The layer's entries as GNU tar lists them: (path without `./`, permissions as `ls -l`
/// shows them, uid, gid).
fn entries(layout: &Path, manifest: &Value) -> Vec<(String, String, u64, u64)> {
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer: {manifest}");
    let hex = layers[0]["digest"].as_str().unwrap();
    let path = layout
        .join("blobs/sha256")
        .join(hex.trim_start_matches("sha256:"));
    let o = Command::new("tar")
        .args(["--numeric-owner", "-tvzf"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            // drwx------ 65532/65532 0 2026-12-05 01:08 ./home/nonroot/
            let f: Vec<&str> = l.split_whitespace().collect();
            let (uid, gid) = f[1].split_once('/').unwrap();
            let name = f[5];
            (
                name.trim_start_matches("./")
                    .trim_end_matches('/')
                    .to_owned(),
                f[0].to_owned(),
                uid.parse().unwrap(),
                gid.parse().unwrap(),
            )
        })
        .collect()
}

/// The Deployment's image in `kubectl kustomize DIR`.
fn kustomized_image(dir: &Path) -> String {
    let o = run_with_timeout(
        Command::new("kubectl").arg("kustomize").arg(dir),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "kubectl kustomize: {o:?}");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let deployment = berth_test_support::yaml_documents(&text)
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The container, removed (`rm -f`) on drop, panics included.
struct Container<'a> {
    xdg: &'a Path,
    name: &'static str,
}

impl Container<'_> {
    fn berth(xdg: &Path, args: &[&str]) -> Output {
        run_with_timeout(
            Command::new(berth_bin())
                .args(args)
                .env("XDG_DATA_HOME", xdg)
                .env("NO_COLOR", "1"),
            Duration::from_secs(120),
        )
    }

    fn logs(&self) -> String {
        let o = Self::berth(self.xdg, &["logs", self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- container log ---\n{}", self.logs());
        }
        let _ = Self::berth(self.xdg, &["rm", "-f", self.name]);
    }
}

/// The files `from` (name in the volume, source) copied into the new directory `to`, each
/// `mode`, each directory 0755, owned by root and group `gid`, as the kubelet makes a volume
/// of a ConfigMap or Secret with an fsGroup.
fn volume(from: &[(&str, PathBuf)], to: &Path, mode: u32, gid: u32) {
    for (name, src) in from {
        let dst = to.join(name);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(src, &dst).unwrap();
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let o = Command::new("chown")
        .args(["-R", &format!("0:{gid}")])
        .arg(to)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    // directories 0755 whatever the umask; the files keep `mode`
    let o = Command::new("find")
        .arg(to)
        .args(["-type", "d", "-exec", "chmod", "0755", "{}", "+"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
}

/// Every file under `dir`, as (path relative to `dir`, path).
fn files_under(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, p));
            }
        }
    }
    out
}

#[test]
fn the_webhook_image_runs_as_65532_without_a_shell_and_answers_over_tls() {
    requires_root!();
    requires_tool!("tar", "ldd", "git", "chown", "find", "kubectl");
    let f = Fixture::new();
    let tmp = tempfile::Builder::new()
        .prefix("berth-admission-image-")
        .tempdir()
        .unwrap();
    let xdg = tmp.path().join("xdg");
    let layout = tmp.path().join("layout");
    let pushed = format!("{}:test", f.repo("ops/berth-admission"));
    let digest = build(&layout, Some(&pushed), "022", tmp.path());
    let by_digest = format!("{}@{digest}", f.repo("ops/berth-admission"));

    // reproducible: the same binary and commit, another build (another umask, another
    // temporary directory, later), the same digest
    let again = tmp.path().join("again");
    let other_tmp = tmp.path().join("other-tmp");
    std::fs::create_dir(&other_tmp).unwrap();
    assert_eq!(
        build(&again, None, "077", &other_tmp),
        digest,
        "two builds, two digests"
    );

    // the config: the Deployment's arguments, the nonroot user, the OCI labels
    let manifest = json_blob(&layout, &digest);
    let config = json_blob(&layout, manifest["config"]["digest"].as_str().unwrap());
    let c = &config["config"];
    let deployment =
        std::fs::read_to_string(workspace_root().join("deploy/kubernetes/deployment.yaml"))
            .unwrap();
    let args_line = deployment
        .lines()
        .find_map(|l| l.trim().strip_prefix("args: "))
        .expect("deployment.yaml has the container's args");
    let args: Vec<String> = serde_json::from_str(args_line).unwrap();
    // Kubernetes' `args` replace Cmd and keep Entrypoint: the Deployment's args are the Cmd
    assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/local/bin/berth"]));
    assert_eq!(c["Cmd"], serde_json::json!(args));
    assert_eq!(c["User"], "65532:65532");
    let labels = &c["Labels"];
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert!(
        labels["org.opencontainers.image.revision"]
            .as_str()
            .unwrap()
            .starts_with(&head),
        "{labels}"
    );
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://github.com/berth-dev/berth"
    );
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );

    // the layer: the binary, its libraries, passwd/group, CA bundle; no shell, nothing else
    let files = entries(&layout, &manifest);
    let names: Vec<&str> = files.iter().map(|e| e.0.as_str()).collect();
    for want in [
        "usr/local/bin/berth",
        "etc/passwd",
        "etc/group",
        "etc/ssl/certs/ca-certificates.crt",
    ] {
        assert!(names.contains(&want), "{want} missing: {names:?}");
    }
    for (name, mode, uid, gid) in &files {
        assert!(
            !name.starts_with("bin") && !name.starts_with("sbin") && !name.ends_with("/sh"),
            "a shell or a bin directory in the image: {name}"
        );
        let allowed = ["", "etc", "usr", "lib", "lib64", "home", "tmp"]
            .iter()
            .any(|top| name.split('/').next() == Some(top));
        assert!(allowed, "unexpected {name} in the image");
        if name != "tmp" && !mode.starts_with('l') {
            // nothing set-id, nothing writable by group or others (but /tmp, sticky)
            let m = mode.as_bytes();
            assert!(
                !mode.contains(['s', 'S', 't', 'T']) && m[5] != b'w' && m[8] != b'w',
                "{name} mode {mode}"
            );
        }
        let owner = if name == "home/nonroot" { 65532 } else { 0 };
        assert_eq!((*uid, *gid), (owner, owner), "{name}");
    }

    // the manifests run what was pushed: `certs --image` sets kustomization.yaml's entry,
    // and kustomize (kubectl's) puts it in the Deployment; without it, the default name
    let out = tmp.path().join("manifests");
    f.make_certs(&["--manifests", out.to_str().unwrap(), "--image", &by_digest]);
    assert_eq!(kustomized_image(&out), by_digest);
    assert_eq!(
        kustomized_image(&f.manifests()),
        "ghcr.io/berth-dev/berth:0.1.0"
    );

    // run it as the Deployment does: its volumes at its paths, the Secret 0440 root:65532
    let signed = f.push("shop/web", "v1", 1);
    f.sign("shop/web", &signed, &ROLES);
    let unsigned = f.push("shop/web", "v2", 2);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let vols = tmp.path().join("volumes");
    let config_toml = tmp.path().join("config.toml");
    write_file(
        &config_toml,
        format!(
            "listen = \"{addr}\"\n\
             tls_cert = \"/etc/berth/tls/tls.crt\"\n\
             tls_key = \"/etc/berth/tls/tls.key\"\n\
             policy = \"/etc/berth/config/policy.json\"\n\
             trust_store = \"/etc/berth/truststore\"\n\
             exclude_namespaces = [\"berth-system\", \"kube-system\"]\n\
             [registry]\n\
             plain_http = [{:?}]\n",
            f.reg.host()
        )
        .as_bytes(),
    );
    volume(
        &[
            ("config.toml", config_toml),
            ("policy.json", f.dir().join("policy.json")),
        ],
        &vols.join("config"),
        0o644,
        0,
    );
    volume(
        &[
            ("tls.crt", f.certs().join("tls.crt")),
            ("tls.key", f.certs().join("tls.key")),
        ],
        &vols.join("tls"),
        0o440,
        65532,
    );
    let store = files_under(&f.trust_store());
    let store: Vec<(&str, PathBuf)> = store.iter().map(|(r, p)| (r.as_str(), p.clone())).collect();
    volume(&store, &vols.join("truststore"), 0o644, 0);
    let mount = |name: &str, at: &str| format!("{}:{at}:ro", vols.join(name).display());
    let (m_config, m_tls, m_store) = (
        mount("config", "/etc/berth/config"),
        mount("tls", "/etc/berth/tls"),
        mount("truststore", "/etc/berth/truststore"),
    );
    let container = Container {
        xdg: &xdg,
        name: "admission-image",
    };
    let mut run = vec![
        "run",
        "-d",
        "--name",
        container.name,
        "--network",
        "host",
        "--userns",
        "host",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-v",
        &m_config,
        "-v",
        &m_tls,
        "-v",
        &m_store,
        &by_digest,
    ];
    // as the kubelet starts it: the image's Entrypoint with the Deployment's args
    run.extend(args.iter().map(String::as_str));
    let o = Container::berth(&xdg, &run);
    assert!(
        o.status.success(),
        "berth run failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let up = wait_until(Duration::from_secs(60), || TcpStream::connect(addr).is_ok());
    assert!(
        up,
        "the webhook did not listen on {addr}: {}",
        container.logs()
    );

    // /healthz and /readyz over TLS, verified against the CA of `berth admission certs`
    let ca = std::fs::read(f.certs().join("ca.crt")).unwrap();
    let http = berth_test_support::Http::new(&format!("https://{addr}"), Some(&ca));
    for path in ["/healthz", "/readyz"] {
        http.get(path).expect_status(200, path);
    }

    // reviews through the API-server harness: signed → admitted and pinned; unsigned → denied
    let api =
        berth_test_support::AdmissionHarness::from_file(&f.manifests().join("webhooks.yaml"), addr);
    let image = format!("{}:v1", f.repo("shop/web"));
    let a = api.admit(
        &ReviewBuilder::new(WorkloadKind::Pod, "prod-shop", "app")
            .image(&image)
            .build(),
    );
    assert!(a.allowed, "{a:#?}\n{}", container.logs());
    let pinned = &images_of(WorkloadKind::Pod, &a.object)[0].1;
    assert!(pinned.ends_with(&format!("@{signed}")), "{pinned}");
    let image = format!("{}:v2", f.repo("shop/web"));
    let d = api.admit(
        &ReviewBuilder::new(WorkloadKind::Pod, "prod-shop", "app")
            .image(&image)
            .build(),
    );
    assert!(!d.allowed, "{d:#?}");
    assert!(
        d.message.clone().unwrap_or_default().contains("shop/web"),
        "{d:#?} ({unsigned})"
    );

    // the process: uid and gid 65532 (real, effective, saved, filesystem), no capabilities
    let inspect = Container::berth(&xdg, &["inspect", container.name]);
    let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let pid = inspect["State"]["Pid"].as_i64().expect("a pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(field("Uid:"), ["65532"; 4], "{status}");
    assert_eq!(field("Gid:"), ["65532"; 4], "{status}");
    assert_eq!(field("CapEff:"), ["0000000000000000"], "{status}");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("usr/local/bin/berth"), "{}", exe.display());

    // no shell to exec into
    let sh = Container::berth(&xdg, &["exec", container.name, "/bin/sh", "-c", "true"]);
    assert!(!sh.status.success(), "a shell ran in the image");
}
