//! `berth key` and `berth cert generate-test` as a user runs them: keys generated, listed,
//! exported, imported from openssl, removed; the file modes; an existing name refused without
//! --force; a crash while a key is written (strace kills berth at the rename or the fsync)
//! leaves no key. openssl is the independent reader of everything berth writes.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{berth_bin, requires_tool, run_with_timeout};

/// A berth configuration directory of its own (`XDG_CONFIG_HOME=<tmp>` → `<tmp>/berth`).
struct Config {
    tmp: tempfile::TempDir,
}

impl Config {
    fn new() -> Config {
        Config {
            tmp: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("berth")
    }

    fn keys(&self) -> PathBuf {
        self.dir().join("keys")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(berth_bin());
        cmd.args(args)
            .env("XDG_CONFIG_HOME", self.tmp.path())
            .env_remove("RUST_LOG")
            .env_remove("BERTH_LOG");
        cmd
    }

    fn try_run(&self, args: &[&str]) -> Output {
        run_with_timeout(&mut self.cmd(args), Duration::from_secs(60))
    }

    /// Runs berth, which must succeed; its stdout.
    fn run(&self, args: &[&str]) -> String {
        let out = self.try_run(args);
        assert!(
            out.status.success(),
            "berth {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs berth, which must fail with exit code 1; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.try_run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "berth {args:?}: {stderr}");
        stderr
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .mode()
        & 0o7777
}

fn openssl(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(args).current_dir(dir);
    let out = match stdin {
        None => run_with_timeout(&mut cmd, Duration::from_secs(120)),
        Some(data) => {
            use std::io::Write;
            let mut child = cmd
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("openssl");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(data)
                .expect("write to openssl");
            child.wait_with_output().expect("openssl")
        }
    };
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn key_generate_list_export_remove() {
    requires_tool!("openssl");
    let c = Config::new();
    assert_eq!(c.run(&["key", "generate", "alice", "--default"]), "alice\n");
    assert_eq!(
        c.run(&["key", "generate", "bob", "--curve", "p384"]),
        "bob\n"
    );
    // modes: the directory 0700, keys 0600, certificates 0644
    assert_eq!(mode(&c.keys()), 0o700);
    assert_eq!(mode(&c.keys().join("alice.key")), 0o600);
    assert_eq!(mode(&c.keys().join("bob.key")), 0o600);
    assert_eq!(mode(&c.keys().join("alice.crt")), 0o644);

    let list = c.run(&["key", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(lines[0].starts_with("NAME"), "{list}");
    assert!(
        lines[1].starts_with("alice *")
            && lines[1].contains("EC P-256")
            && lines[1].contains("CN=alice,O=Notary,L=Seattle,ST=WA,C=US"),
        "{list}"
    );
    assert!(
        lines[2].starts_with("bob ") && lines[2].contains("EC P-384"),
        "{list}"
    );
    assert_eq!(c.run(&["key", "ls", "-q"]), "alice\nbob\n");

    // export: openssl reads the private key, derives the public key berth exports, and finds
    // the same key in the certificate
    let d = c.tmp.path();
    let private = c.run(&["key", "export", "alice"]);
    assert!(
        private.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{private}"
    );
    let public = c.run(&["key", "export", "alice", "--public"]);
    assert!(
        public.starts_with("-----BEGIN PUBLIC KEY-----\n"),
        "{public}"
    );
    assert_eq!(
        openssl(d, &["pkey", "-pubout"], Some(private.as_bytes())),
        public
    );
    let chain = c.run(&["key", "export", "alice", "--cert"]);
    assert_eq!(
        openssl(d, &["x509", "-noout", "-pubkey"], Some(chain.as_bytes())),
        public
    );
    let text = openssl(d, &["x509", "-noout", "-text"], Some(chain.as_bytes()));
    assert!(
        text.contains("Code Signing") && text.contains("Digital Signature"),
        "{text}"
    );

    // an existing name is refused and left alone; --force replaces it
    let before = std::fs::read(c.keys().join("alice.key")).expect("read");
    let err = c.fails(&["key", "generate", "alice"]);
    assert!(
        err.contains("key \"alice\" already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(c.keys().join("alice.key")).expect("read"),
        before
    );
    c.run(&["key", "generate", "alice", "--force", "--curve", "p384"]);
    assert_ne!(
        std::fs::read(c.keys().join("alice.key")).expect("read"),
        before
    );
    assert!(
        c.run(&["key", "list"]).contains("alice *"),
        "still the default"
    );

    // names that could escape the directory are refused; nothing is written
    let err = c.fails(&["key", "generate", "../evil"]);
    assert!(err.contains("invalid key name"), "{err}");
    assert!(!c.dir().join("evil.key").exists());

    // remove
    assert_eq!(c.run(&["key", "rm", "bob"]), "bob\n");
    assert!(!c.keys().join("bob.key").exists() && !c.keys().join("bob.crt").exists());
    let err = c.fails(&["key", "rm", "bob"]);
    assert!(err.contains("no key named \"bob\""), "{err}");
    assert_eq!(c.run(&["key", "list", "-q"]), "alice\n");
}

#[test]
fn key_import_of_openssl_made_keys() {
    requires_tool!("openssl");
    let c = Config::new();
    let d = c.tmp.path();
    // RSA 3072 with a self-signed code-signing certificate, both made by openssl
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-nodes",
            "-newkey",
            "rsa:3072",
            "-keyout",
            "rsa.pem",
            "-out",
            "rsa.crt",
            "-days",
            "2",
            "-subj",
            "/C=US/O=berth/CN=ci",
            "-addext",
            "keyUsage=critical,digitalSignature",
            "-addext",
            "extendedKeyUsage=codeSigning",
        ],
        None,
    );
    std::fs::set_permissions(d.join("rsa.pem"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    c.run(&[
        "key",
        "import",
        "ci",
        "--key",
        d.join("rsa.pem").to_str().expect("utf-8"),
        "--cert",
        d.join("rsa.crt").to_str().expect("utf-8"),
    ]);
    assert_eq!(
        mode(&c.keys().join("ci.key")),
        0o600,
        "stored 0600 whatever the source"
    );
    let list = c.run(&["key", "list"]);
    assert!(
        list.contains("RSA 3072") && list.contains("CN=ci,O=berth,C=US"),
        "{list}"
    );
    assert_eq!(
        c.run(&["key", "export", "ci", "--public"]),
        openssl(d, &["pkey", "-in", "rsa.pem", "-pubout"], None)
    );

    // a SEC1 EC key without a certificate: imported, with a note that it cannot sign yet
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "secp384r1",
            "-genkey",
            "-noout",
            "-out",
            "ec.pem",
        ],
        None,
    );
    let out = c.try_run(&[
        "key",
        "import",
        "ec",
        "--key",
        d.join("ec.pem").to_str().expect("utf-8"),
    ]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no certificate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(c.run(&["key", "list"]).contains("EC P-384"));

    // refused: a certificate of another key, a weak RSA key
    let err = c.fails(&[
        "key",
        "import",
        "mismatch",
        "--key",
        d.join("ec.pem").to_str().expect("utf-8"),
        "--cert",
        d.join("rsa.crt").to_str().expect("utf-8"),
    ]);
    assert!(err.contains("does not match"), "{err}");
    assert!(!c.keys().join("mismatch.key").exists());
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            "weak.pem",
        ],
        None,
    );
    let err = c.fails(&[
        "key",
        "import",
        "weak",
        "--key",
        d.join("weak.pem").to_str().expect("utf-8"),
    ]);
    assert!(err.contains("1024 bits"), "{err}");
}

#[test]
fn cert_generate_test_adds_the_certificate_to_the_trust_store() {
    requires_tool!("openssl");
    let c = Config::new();
    c.run(&["cert", "generate-test", "wabbit-networks.io", "--default"]);
    let anchor = c
        .dir()
        .join("truststore/x509/ca/wabbit-networks.io/wabbit-networks.io.crt");
    assert_eq!(
        std::fs::read(&anchor).expect("trust store certificate"),
        std::fs::read(c.keys().join("wabbit-networks.io.crt")).expect("key certificate")
    );
    let d = c.keys();
    openssl(
        &d,
        &[
            "verify",
            "-CAfile",
            anchor.to_str().expect("utf-8"),
            "-purpose",
            "any",
            "wabbit-networks.io.crt",
        ],
        None,
    );
    assert!(c.run(&["key", "list"]).contains("wabbit-networks.io *"));
    let err = c.fails(&["cert", "generate-test", "wabbit-networks.io"]);
    assert!(err.contains("already exists"), "{err}");

    // --ca: the key gets [leaf, CA], the trust store the CA, and openssl verifies the chain
    c.run(&["cert", "generate-test", "ci", "--ca", "--curve", "p384"]);
    let chain = std::fs::read_to_string(c.keys().join("ci.crt")).expect("chain");
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "{chain}");
    let ca = c.dir().join("truststore/x509/ca/ci/ci.crt");
    let ca_text = openssl(
        &d,
        &[
            "x509",
            "-noout",
            "-text",
            "-in",
            ca.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(
        ca_text.contains("CA:TRUE") && ca_text.contains("CN = ci CA"),
        "{ca_text}"
    );
    let out = openssl(
        &d,
        &[
            "verify",
            "-CAfile",
            ca.to_str().expect("utf-8"),
            "-purpose",
            "any",
            "ci.crt",
        ],
        None,
    );
    assert!(out.contains("ci.crt: OK"), "{out}");
}

/// berth killed by strace at the syscall that would publish the key (the rename of the
/// temporary file into place), or while the temporary file is being synced: no key of that
/// name exists afterwards, an existing key of that name is intact, and the next write of the
/// name removes the temporary file the crash left.
#[test]
fn a_crash_while_writing_a_key_leaves_no_key() {
    requires_tool!("strace", "openssl");
    for syscalls in ["rename,renameat,renameat2", "fsync,fdatasync"] {
        let c = Config::new();
        c.run(&["key", "generate", "old"]);
        let old = std::fs::read(c.keys().join("old.key")).expect("old key");
        for (name, force) in [("fresh", false), ("old", true)] {
            let mut args = vec!["key", "generate", name];
            if force {
                args.push("--force");
            }
            let inject = format!("inject={syscalls}:signal=SIGKILL");
            let mut cmd = Command::new("strace");
            cmd.args(["-f", "-qq", "-o", "/dev/null", "-e"])
                .arg(format!("trace={syscalls}"))
                .args(["-e", &inject])
                .arg(berth_bin())
                .args(&args)
                .env("XDG_CONFIG_HOME", c.tmp.path());
            let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
            assert!(
                !out.status.success(),
                "{syscalls}: berth {args:?} was not killed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // the crash happened with the temporary key written (not before anything)
            let temps: Vec<String> = std::fs::read_dir(c.keys())
                .expect("keys dir")
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!(".{name}.key.tmp.")))
                .collect();
            assert_eq!(temps.len(), 1, "{syscalls} {name}: {temps:?}");
            if force {
                assert_eq!(
                    std::fs::read(c.keys().join("old.key")).expect("old key"),
                    old,
                    "{syscalls}: the old key must be intact"
                );
            } else {
                assert!(
                    !c.keys().join("fresh.key").exists(),
                    "{syscalls}: a key appeared"
                );
            }
            assert_eq!(c.run(&["key", "list", "-q"]), "old\n", "{syscalls}");
        }
        // the next write of the names succeeds and removes what the crash left
        c.run(&["key", "generate", "fresh"]);
        c.run(&["key", "generate", "old", "--force"]);
        let left: Vec<String> = std::fs::read_dir(c.keys())
            .expect("keys dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{syscalls}: {left:?}");
        openssl(&c.keys(), &["pkey", "-in", "fresh.key", "-noout"], None);
    }
}

/// An ordinary user's keys live in `~/.config/berth/keys`, owned by the user, 0600; `berth
/// key` and `berth cert` need no user namespace (no pause process is started for them).
#[test]
fn an_ordinary_user_keeps_keys_in_the_home_directory() {
    requires_tool!("setpriv");
    let user = "berth-rootless";
    let Some((uid, gid)) = berth_test_support::passwd_ids(user) else {
        berth_test_support::skip_or_fail(&format!("no user {user} (scripts/test creates it)"));
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    let run_dir = home.path().join("run");
    std::fs::create_dir(&run_dir).expect("mkdir");
    for p in [home.path(), run_dir.as_path()] {
        std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
    }
    let as_user = |args: &[&str]| -> Output {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .args(["--init-groups", "--"])
            .arg(berth_bin())
            .args(args)
            .current_dir(home.path())
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", &run_dir);
        run_with_timeout(&mut c, Duration::from_secs(60))
    };
    for args in [
        &["key", "generate", "mine", "--default"][..],
        &["cert", "generate-test", "team"][..],
    ] {
        let out = as_user(args);
        assert!(
            out.status.success(),
            "berth {args:?} as {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let keys = home.path().join(".config/berth/keys");
    for f in ["mine.key", "team.key"] {
        let m = std::fs::metadata(keys.join(f)).expect("key file");
        assert_eq!((m.uid(), m.mode() & 0o7777), (uid, 0o600), "{f}");
    }
    assert_eq!(mode(&keys), 0o700);
    assert!(
        home.path()
            .join(".config/berth/truststore/x509/ca/team/team.crt")
            .is_file()
    );
    let out = as_user(&["key", "list", "-q"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "mine\nteam\n");
    let pause = run_dir.join("berth/pause.pid");
    if let Ok(pid) = std::fs::read_to_string(&pause) {
        // stop what a regression started before failing
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
    assert!(
        !pause.exists(),
        "berth key started a user namespace's pause process"
    );
}
