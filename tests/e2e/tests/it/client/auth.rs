//! Credentials as docker users have them: `berth login` against docker-registry's htpasswd,
//! and a `config.json` written by hand (as `docker login` leaves it) read by `berth pull`.

use berth_test_support::{DockerRegistry, requires_tool};

use super::{Env, single_image};

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
