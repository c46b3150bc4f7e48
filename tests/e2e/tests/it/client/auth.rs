//! Credentials as docker users have them: `berth login` against docker-registry's htpasswd,
//! and a `config.json` written by hand (as `docker login` leaves it) read by `berth pull`;
//! as podman and skopeo users have them, in a containers `auth.json`; and what a refused
//! password says.

use berth_test_support::{DockerRegistry, Registry, RegistryOptions, requires_tool};

use super::{Env, PASSWORD, USER, single_image};

/// A berth registry with htpasswd holding one image, pushed by skopeo with credentials;
/// returns the reference and the digest.
fn private_image(registry: &Registry, env: &Env) -> (String, String) {
    let a = env.path("a");
    let digest = single_image(&a, "v1", 91);
    let reference = format!("{}/team/app:v1", registry.host());
    crate::common::Skopeo::new().run(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &format!("{USER}:{PASSWORD}"),
        &format!("oci:{}:v1", a.display()),
        &format!("docker://{reference}"),
    ]);
    (reference, digest.as_str().to_owned())
}

#[test]
fn pull_reads_credentials_from_the_auth_json_registry_auth_file_names() {
    requires_tool!("skopeo", "htpasswd");
    let registry = Registry::start(RegistryOptions::new().user(USER, PASSWORD));
    let env = Env::new();
    let (reference, digest) = private_image(&registry, &env);
    let host = registry.host();

    // Nothing in docker's config.json: anonymous, refused.
    let anonymous = env.try_berth(&["pull", "-q", &reference]);
    assert_eq!(anonymous.status.code(), Some(1));

    // An auth.json as `podman login --authfile` writes it, outside every default place.
    let auth_file = env.path("elsewhere/auth.json");
    std::fs::create_dir_all(env.path("elsewhere")).unwrap();
    let auth = base64_encode(format!("{USER}:{PASSWORD}").as_bytes());
    berth_test_support::write_file(
        &auth_file,
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#).as_bytes(),
    );
    let out = env
        .command(&["pull", "-q", &reference])
        .env("REGISTRY_AUTH_FILE", &auth_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest);

    // The per-user file ($XDG_RUNTIME_DIR/containers/auth.json) with a repository key:
    // `host/team` covers team/app, and a wrong registry-wide entry loses to it.
    let other = Env::new();
    std::fs::create_dir_all(other.path("run/containers")).unwrap();
    let bad = base64_encode(format!("{USER}:wrong").as_bytes());
    berth_test_support::write_file(
        other.path("run/containers/auth.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{bad}"}},"{host}/team":{{"auth":"{auth}"}}}}}}"#)
            .as_bytes(),
    );
    assert_eq!(other.berth(&["pull", "-q", &reference]).trim(), digest);
}

#[test]
fn a_wrong_password_says_authentication_failed_on_login_and_pull() {
    requires_tool!("skopeo", "htpasswd");
    let registry = Registry::start(RegistryOptions::new().user(USER, PASSWORD));
    let env = Env::new();
    let (reference, _) = private_image(&registry, &env);
    let host = registry.host();
    let expected = format!("authentication failed for user \"{USER}\" at {host}");

    let login = env.berth_stdin(&["login", "-u", USER, "--password-stdin", &host], "wrong\n");
    let stderr = String::from_utf8_lossy(&login.stderr);
    assert_eq!(login.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!stderr.contains("failed to reach"), "{stderr}");

    std::fs::create_dir_all(env.path("docker")).unwrap();
    let bad = base64_encode(format!("{USER}:wrong").as_bytes());
    berth_test_support::write_file(
        env.path("docker/config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{bad}"}}}}}}"#).as_bytes(),
    );
    let pull = env.try_berth(&["pull", "-q", &reference]);
    let stderr = String::from_utf8_lossy(&pull.stderr);
    assert_eq!(pull.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        stderr.contains(&format!("hint: check the username and password for {host}")),
        "{stderr}"
    );
}

#[test]
fn docker_registry_htpasswd_with_login_and_with_a_hand_written_docker_config() {
    requires_tool!("docker-registry", "htpasswd");
    let registry = DockerRegistry::start(Some(("bob", "pw-123")));
    let host = registry.host();
    let env = Env::new();
    let a = env.path("a");
    let digest = single_image(&a, "v1", 71);
    let reference = format!("{host}/private/app:v1");

    let anonymous = env.try_berth(&["copy", "-q", &format!("oci:{}:v1", a.display()), &reference]);
    assert_eq!(anonymous.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&anonymous.stderr);
    assert!(
        stderr.contains(&format!("hint: run berth login {host}")),
        "{stderr}"
    );

    let wrong = env.berth_stdin(&["login", "-u", "bob", "--password-stdin", &host], "nope\n");
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        !env.path("docker/config.json").exists(),
        "a failed login stored credentials"
    );

    let right = env.berth_stdin(
        &["login", "-u", "bob", "--password-stdin", &host],
        "pw-123\n",
    );
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    let pushed = env.berth(&["copy", "-q", &format!("oci:{}:v1", a.display()), &reference]);
    assert_eq!(pushed.trim(), digest.as_str());

    // A config.json as `docker login` writes it, in a fresh home.
    let other = Env::new();
    let auth = base64_encode(b"bob:pw-123");
    let config = format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#);
    std::fs::create_dir_all(other.path("docker")).unwrap();
    berth_test_support::write_file(other.path("docker/config.json"), config.as_bytes());
    assert_eq!(
        other.berth(&["pull", "-q", &reference]).trim(),
        digest.as_str()
    );
}

fn base64_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn conformance_check_without_credentials_stops_saying_credentials_required() {
    requires_tool!("htpasswd");
    let registry = Registry::start(RegistryOptions::new().user(USER, PASSWORD));
    let env = Env::new();
    let host = registry.host();
    for target in [format!("{host}/conformance"), format!("{host}/team/app:v1")] {
        let out = env.try_berth(&["conformance", "check", &target]);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(1), "{target}: {stdout}{stderr}");
        assert!(
            stderr.contains("credentials required") && stderr.contains(&host),
            "{target}: {stderr}"
        );
        assert!(
            stderr.contains("hint: pass --username USER --password-stdin"),
            "{target}: {stderr}"
        );
        assert!(
            !stdout.contains("checks:") && !stderr.contains("does not conform"),
            "{target}: ran the checks anyway: {stdout}{stderr}"
        );
    }
    // with the credentials, the same check runs (the auth workflow alone, to be quick)
    let out = env.berth_stdin(
        &[
            "conformance",
            "check",
            &format!("{host}/conformance"),
            "--username",
            USER,
            "--password-stdin",
            "--only",
            "auth,pull",
        ],
        &format!("{PASSWORD}\n"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("0 failed"), "{stdout}");
}
