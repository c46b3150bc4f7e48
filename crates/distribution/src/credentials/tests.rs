use std::os::unix::fs::PermissionsExt;

use super::*;

fn config(dir: &Path, json: &str) -> CredentialsConfig {
    let path = dir.join("config.json");
    berth_fsutil::atomic_write(&path, json.as_bytes()).unwrap();
    CredentialsConfig::new(path)
}

/// A fake `docker-credential-test` keeping one file per server URL under `<dir>/store`.
fn fake_helper(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = r#"#!/bin/sh
store="$(dirname "$0")/store"
mkdir -p "$store"
key() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }
echo "$1" >> "$store/calls"
case "$1" in
get)
  read -r url
  f="$store/$(key "$url")"
  if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store)
  json=$(cat)
  url=$(printf %s "$json" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
  printf %s "$json" > "$store/$(key "$url")" ;;
erase)
  read -r url
  f="$store/$(key "$url")"
  if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
*) echo "unknown action $1" >&2; exit 2 ;;
esac
"#;
    let p = bin.join("docker-credential-test");
    berth_fsutil::atomic_write(&p, script.as_bytes()).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn basic(u: &str, p: &str) -> Credential {
    Credential::Basic {
        username: u.into(),
        password: Secret::new(p),
    }
}

#[test]
fn reads_auth_entries_by_host() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        r#"{
          "auths": {
            "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
            "https://reg.example:5000/v2/": {"auth": "YWxpY2U6cGE6c3M="},
            "tok.example": {"auth": "dTpw", "identitytoken": "refresh-me"},
            "empty.example": {}
          },
          "HttpHeaders": {"X-Keep": "1"}
        }"#,
    );
    assert_eq!(c.get("docker.io").unwrap(), Some(basic("hub", "secret")));
    assert_eq!(
        c.get("index.docker.io").unwrap(),
        Some(basic("hub", "secret"))
    );
    // a password may contain ':'; only the first one separates
    assert_eq!(
        c.get("reg.example:5000").unwrap(),
        Some(basic("alice", "pa:ss"))
    );
    assert_eq!(
        c.get("tok.example").unwrap(),
        Some(Credential::IdentityToken {
            username: "u".into(),
            token: Secret::new("refresh-me")
        })
    );
    assert_eq!(c.get("empty.example").unwrap(), None);
    assert_eq!(c.get("other.example").unwrap(), None);
}

#[test]
fn missing_or_empty_file_means_anonymous() {
    let dir = tempfile::tempdir().unwrap();
    let c = CredentialsConfig::new(dir.path().join("nope/config.json"));
    assert_eq!(c.get("docker.io").unwrap(), None);
    let c = config(dir.path(), "  \n");
    assert_eq!(c.get("docker.io").unwrap(), None);
}

#[test]
fn malformed_entries_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), r#"{"auths": {"r.example": {"auth": "%%%"}}}"#);
    let e = c.get("r.example").unwrap_err();
    assert!(
        matches!(
            e,
            CredentialsError::InvalidAuth {
                reason: "not base64",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("config.json"), "{e}");
    let c = config(
        dir.path(),
        r#"{"auths": {"r.example": {"auth": "bm9jb2xvbg=="}}}"#,
    );
    assert!(matches!(
        c.get("r.example").unwrap_err(),
        CredentialsError::InvalidAuth { .. }
    ));
    let c = config(dir.path(), "[1]");
    assert!(matches!(
        c.get("r.example").unwrap_err(),
        CredentialsError::NotAnObject { .. }
    ));
    let c = config(dir.path(), "{");
    assert!(matches!(
        c.get("r.example").unwrap_err(),
        CredentialsError::Parse { .. }
    ));
}

#[test]
fn login_writes_0600_and_keeps_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        r#"{"auths": {"keep.example": {"auth": "YTpi", "email": "x@y"}}, "psFormat": "table", "proxies": {"default": {}}}"#,
    );
    c.login("localhost:5000", "bob", &Secret::new("pw"))
        .unwrap();
    c.login("docker.io", "hub", &Secret::new("s3")).unwrap();
    let mode = std::fs::metadata(&c.path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let v: Value = serde_json::from_slice(&std::fs::read(&c.path).unwrap()).unwrap();
    assert_eq!(v["psFormat"], "table");
    assert_eq!(v["proxies"]["default"], serde_json::json!({}));
    assert_eq!(v["auths"]["keep.example"]["email"], "x@y");
    assert_eq!(
        v["auths"]["localhost:5000"]["auth"],
        STANDARD.encode("bob:pw")
    );
    assert_eq!(
        v["auths"][DOCKER_HUB_KEY]["auth"],
        STANDARD.encode("hub:s3")
    );
    assert_eq!(c.get("localhost:5000").unwrap(), Some(basic("bob", "pw")));

    // logging in again replaces the entry, also one stored under another spelling
    c.login("https://localhost:5000/v1/", "bob", &Secret::new("new"))
        .unwrap();
    assert_eq!(c.get("localhost:5000").unwrap(), Some(basic("bob", "new")));
    let v: Value = serde_json::from_slice(&std::fs::read(&c.path).unwrap()).unwrap();
    assert_eq!(v["auths"].as_object().unwrap().len(), 3, "{v}");

    assert!(c.logout("localhost:5000").unwrap());
    assert!(!c.logout("localhost:5000").unwrap());
    assert_eq!(c.get("localhost:5000").unwrap(), None);
    assert!(c.logout("index.docker.io").unwrap());
    assert_eq!(c.get("docker.io").unwrap(), None);
    assert_eq!(c.get("keep.example").unwrap(), Some(basic("a", "b")));
}

#[test]
fn login_creates_the_file_and_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let c = CredentialsConfig::new(dir.path().join(".docker/config.json"));
    c.login("r.example", "u", &Secret::new("p")).unwrap();
    assert_eq!(c.get("r.example").unwrap(), Some(basic("u", "p")));
}

#[test]
fn credential_helpers_get_store_erase() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake_helper(dir.path());
    let c = config(
        dir.path(),
        r#"{"credHelpers": {"helped.example": "test"}, "auths": {"helped.example": {"auth": "aWdub3JlZDppZ25vcmVk"}}}"#,
    )
    .with_helper_dirs(vec![bin.clone()]);
    // the helper wins over the file, and has nothing yet
    assert_eq!(c.get("helped.example").unwrap(), None);
    c.login("helped.example", "carol", &Secret::new("pw"))
        .unwrap();
    assert_eq!(c.get("helped.example").unwrap(), Some(basic("carol", "pw")));
    // the secret is in the helper's store, not in the file
    let text = std::fs::read_to_string(&c.path).unwrap();
    assert!(!text.contains(&STANDARD.encode("carol:pw")), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["auths"]["helped.example"], serde_json::json!({}));
    // other registries still come from the file
    assert_eq!(c.get("plain.example").unwrap(), None);

    assert!(c.logout("helped.example").unwrap());
    assert_eq!(c.get("helped.example").unwrap(), None);
    let calls = std::fs::read_to_string(bin.join("store/calls")).unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        ["get", "store", "get", "erase", "get"]
    );
}

#[test]
fn creds_store_for_all_and_identity_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake_helper(dir.path());
    let c = config(dir.path(), r#"{"credsStore": "test"}"#).with_helper_dirs(vec![bin]);
    c.login("docker.io", TOKEN_USERNAME, &Secret::new("idtok"))
        .unwrap();
    assert_eq!(
        c.get("registry-1.docker.io").unwrap(),
        Some(Credential::IdentityToken {
            username: TOKEN_USERNAME.into(),
            token: Secret::new("idtok")
        })
    );
}

#[test]
fn helper_failures_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake_helper(dir.path());
    let c = config(dir.path(), r#"{"credsStore": "absent"}"#).with_helper_dirs(vec![bin.clone()]);
    assert!(matches!(
        c.get("r.example").unwrap_err(),
        CredentialsError::HelperNotFound { .. }
    ));
    let c = config(dir.path(), r#"{"credsStore": "../evil"}"#).with_helper_dirs(vec![bin.clone()]);
    assert!(matches!(
        c.get("r.example").unwrap_err(),
        CredentialsError::InvalidHelper { .. }
    ));

    let bad = bin.join("docker-credential-bad");
    berth_fsutil::atomic_write(&bad, b"#!/bin/sh\necho 'not json'\n").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
    let c = config(dir.path(), r#"{"credsStore": "bad"}"#).with_helper_dirs(vec![bin.clone()]);
    assert!(matches!(
        c.get("r.example").unwrap_err(),
        CredentialsError::HelperOutput { .. }
    ));

    let fails = bin.join("docker-credential-fails");
    berth_fsutil::atomic_write(&fails, b"#!/bin/sh\necho 'keychain locked' >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&fails, std::fs::Permissions::from_mode(0o755)).unwrap();
    let c = config(dir.path(), r#"{"credsStore": "fails"}"#).with_helper_dirs(vec![bin]);
    let e = c.get("r.example").unwrap_err();
    assert!(e.to_string().contains("keychain locked"), "{e}");
}

#[test]
fn host_normalisation() {
    assert_eq!(config_key("docker.io"), DOCKER_HUB_KEY);
    assert_eq!(config_key("index.docker.io"), DOCKER_HUB_KEY);
    assert_eq!(config_key("Localhost:5000"), "localhost:5000");
    assert_eq!(normalize_host("https://index.docker.io/v1/"), "docker.io");
    assert_eq!(
        normalize_host("http://r.example:5000/v2/x"),
        "r.example:5000"
    );
    assert!(same_registry("https://r.example/", "r.example"));
    assert!(!same_registry("r.example:5000", "r.example"));
}

#[test]
fn static_credentials() {
    let s = StaticCredentials::new().with("docker.io", basic("a", "b"));
    assert_eq!(s.get("index.docker.io").unwrap(), Some(basic("a", "b")));
    assert_eq!(s.get("r.example").unwrap(), None);
}

fn auth_json(dir: &Path, name: &str, json: &str) -> CredentialsConfig {
    let path = dir.join(name);
    berth_fsutil::atomic_write(&path, json.as_bytes()).unwrap();
    CredentialsConfig::containers(path)
}

#[test]
fn containers_auth_json_matches_repository_keys_most_specific_first() {
    let dir = tempfile::tempdir().unwrap();
    // alice:a for the registry, bob:b for reg/team, carol:c for reg/team/app
    let c = auth_json(
        dir.path(),
        "auth.json",
        r#"{"auths": {
            "reg.example:5000": {"auth": "YWxpY2U6YQ=="},
            "reg.example:5000/team": {"auth": "Ym9iOmI="},
            "reg.example:5000/team/app": {"auth": "Y2Fyb2w6Yw=="},
            "other.example/ns": {"auth": "Ym9iOmI="},
            "https://url.example/v1/": {"auth": "YWxpY2U6YQ=="},
            "docker.io": {"auth": "Ym9iOmI="}
        }}"#,
    );
    let get = |reg: &str, repo: Option<&str>| c.get_for_repository(reg, repo).unwrap();
    assert_eq!(
        get("reg.example:5000", Some("team/app")),
        Some(basic("carol", "c"))
    );
    assert_eq!(
        get("reg.example:5000", Some("team/app/sub")),
        Some(basic("carol", "c"))
    );
    assert_eq!(
        get("reg.example:5000", Some("team/other")),
        Some(basic("bob", "b"))
    );
    assert_eq!(
        get("reg.example:5000", Some("x")),
        Some(basic("alice", "a"))
    );
    assert_eq!(get("reg.example:5000", None), Some(basic("alice", "a")));
    // a namespace key is an exact match only: it never stands for its registry
    assert_eq!(get("other.example", Some("elsewhere/app")), None);
    assert_eq!(get("other.example", None), None);
    assert_eq!(
        get("other.example", Some("ns/app")),
        Some(basic("bob", "b"))
    );
    // URL keys lose their path; Docker Hub's names are one
    assert_eq!(get("url.example", Some("a")), Some(basic("alice", "a")));
    assert_eq!(
        get("docker.io", Some("library/busybox")),
        Some(basic("bob", "b"))
    );
    // docker's config.json keeps docker's rules: the registry-wide entry only
    let d = config(
        dir.path(),
        r#"{"auths": {"reg.example:5000": {"auth": "YWxpY2U6YQ=="}}}"#,
    );
    assert_eq!(
        d.get_for_repository("reg.example:5000", Some("team/app"))
            .unwrap(),
        Some(basic("alice", "a"))
    );
}

#[test]
fn a_chain_asks_docker_first_then_the_auth_json_files_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let docker = config(
        dir.path(),
        r#"{"auths": {"docker-only.example": {"auth": "ZG9ja2VyOmQ="}, "both.example": {"auth": "ZG9ja2VyOmQ="}}}"#,
    );
    let primary = auth_json(
        dir.path(),
        "primary.json",
        // an entry without a password does not count: the next file is asked
        r#"{"auths": {"both.example": {"auth": "cG9kbWFuOnA="}, "empty.example": {"auth": "dTo="}, "primary.example": {"auth": "cG9kbWFuOnA="}}}"#,
    );
    let user = auth_json(
        dir.path(),
        "user.json",
        r#"{"auths": {"primary.example": {"auth": "dXNlcjp1"}, "empty.example": {"auth": "dXNlcjp1"}, "user.example": {"auth": "dXNlcjp1"}}}"#,
    );
    let missing = CredentialsConfig::containers(dir.path().join("nope/auth.json"));
    let chain = CredentialChain::new()
        .then(std::sync::Arc::new(docker))
        .then(std::sync::Arc::new(missing))
        .then(std::sync::Arc::new(primary))
        .then(std::sync::Arc::new(user));
    let get = |reg: &str| chain.get_for_repository(reg, Some("a")).unwrap();
    assert_eq!(get("docker-only.example"), Some(basic("docker", "d")));
    assert_eq!(get("both.example"), Some(basic("docker", "d")));
    assert_eq!(get("primary.example"), Some(basic("podman", "p")));
    assert_eq!(get("empty.example"), Some(basic("user", "u")));
    assert_eq!(get("user.example"), Some(basic("user", "u")));
    assert_eq!(get("none.example"), None);
    assert_eq!(chain.get("user.example").unwrap(), Some(basic("user", "u")));
}
