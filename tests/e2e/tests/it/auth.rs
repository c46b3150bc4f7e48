//! Authentication against `--htpasswd`: wrong credentials get 401 UNAUTHORIZED with a
//! challenge; a token for one repository does not open another (insufficient_scope).

use std::process::Command;
use std::time::Duration;

use berth_test_support::{
    Layer, OciLayout, Registry, RegistryOptions, image_config, requires_tool, run_with_timeout,
};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

#[track_caller]
fn assert_unauthorized(r: &berth_test_support::Resp, what: &str) {
    r.expect_status(401, what);
    assert!(
        r.error_codes().iter().any(|c| c == "UNAUTHORIZED"),
        "{what}: expected UNAUTHORIZED, got {}",
        r.text()
    );
    let challenge = r
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: 401 without WWW-Authenticate"));
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("realm=\""),
        "{what}: challenge {challenge:?}"
    );
}

#[test]
fn wrong_credentials_get_401_unauthorized_with_a_challenge() {
    requires_tool!("htpasswd");
    let registry = Registry::start(RegistryOptions::new().user(USER, PASSWORD));
    let http = registry.http();

    assert_unauthorized(&http.get("/v2/"), "no credentials");
    let r = http.get("/v2/");
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains(&format!("realm=\"{}/token\"", registry.url()))
            && challenge.contains("service=\"berth-registry\""),
        "challenge {challenge:?}"
    );

    for (user, password) in [(USER, "wrong"), ("mallory", PASSWORD), (USER, "")] {
        let who = format!("{user}:{password}");
        let h = http.basic(user, password);
        assert_unauthorized(&h.get("/v2/"), &format!("GET /v2/ as {who}"));
        assert_unauthorized(
            &h.request("POST", "/v2/team/app/blobs/uploads/", &[], Some(b"")),
            &format!("POST upload as {who}"),
        );
        let t = h.get("/token?service=berth-registry&scope=repository:team/app:pull,push");
        t.expect_status(401, &format!("token for {who}"));
        assert!(
            !t.text().contains("token\""),
            "a token was issued for wrong credentials: {}",
            t.text()
        );
    }
    assert_unauthorized(
        &http.bearer("not.a.token").get("/v2/"),
        "a garbage bearer token",
    );

    // the right credentials work, directly and through a token
    let ok = http.basic(USER, PASSWORD);
    ok.get("/v2/")
        .expect_status(200, "GET /v2/ with basic auth");
    let token = ok.token("repository:team/app:pull,push");
    http.bearer(&token)
        .request("POST", "/v2/team/app/blobs/uploads/", &[], Some(b""))
        .expect_status(202, "POST upload with a token for the repository");
}

#[test]
fn token_for_one_repository_is_refused_on_another_with_insufficient_scope() {
    requires_tool!("htpasswd");
    let registry = Registry::start(RegistryOptions::new().user(USER, PASSWORD));
    let http = registry.http();
    let token = http
        .basic(USER, PASSWORD)
        .token("repository:team/a:pull,push");
    let a = http.bearer(&token);

    a.request("POST", "/v2/team/a/blobs/uploads/", &[], Some(b""))
        .expect_status(202, "the token on its own repository");

    for (method, path) in [
        ("POST", "/v2/team/b/blobs/uploads/"),
        ("GET", "/v2/team/b/manifests/latest"),
        ("GET", "/v2/team/b/tags/list"),
        (
            "HEAD",
            "/v2/team/b/blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        ),
    ] {
        let body: Option<&[u8]> = (method == "POST").then_some(b"");
        let r = a.request(method, path, &[], body);
        let what = format!("{method} {path} with a token for team/a");
        r.expect_status(401, &what);
        let challenge = r
            .header("www-authenticate")
            .unwrap_or_else(|| panic!("{what}: 401 without WWW-Authenticate"));
        assert!(
            challenge.contains("error=\"insufficient_scope\""),
            "{what}: challenge {challenge:?}"
        );
        assert!(
            challenge.contains("scope=\"repository:team/b:"),
            "{what}: the challenge should name the scope needed: {challenge:?}"
        );
    }
}

/// `podman login` (containers/image, as `skopeo login` and CRI-O use it) against the token
/// flow: the right password is accepted and written to the auth file, a wrong one refused
/// with nothing written; `podman pull` then authenticates with the stored credentials.
#[test]
fn podman_login_and_pull_use_the_token_flow() {
    requires_tool!("htpasswd", "podman", "skopeo");
    let registry = Registry::start(RegistryOptions::new().user(USER, PASSWORD));
    let host = registry.addr().to_string();
    let work = tempfile::tempdir().expect("tempdir");
    let run = |program: &str, args: &[String]| {
        let mut cmd = Command::new(program);
        if program == "podman" {
            // private storage: never touch the host's images
            cmd.arg("--root")
                .arg(work.path().join("storage"))
                .arg("--runroot")
                .arg(work.path().join("run"))
                .args(["--storage-driver", "vfs"]);
        }
        cmd.args(args);
        let out = run_with_timeout(&mut cmd, Duration::from_secs(180));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let s = |v: &str| v.to_owned();
    let auth = work.path().join("auth.json").display().to_string();
    let wrong = work.path().join("wrong.json");
    let (ok, err) = run(
        "podman",
        &[
            s("login"),
            s("--tls-verify=false"),
            s("--authfile"),
            wrong.display().to_string(),
            s("-u"),
            s(USER),
            s("-p"),
            s("wrong"),
            host.clone(),
        ],
    );
    assert!(!ok, "podman login accepted a wrong password");
    assert!(err.contains("invalid username/password"), "{err}");
    assert!(!wrong.exists(), "credentials stored after a failed login");

    let (ok, err) = run(
        "podman",
        &[
            s("login"),
            s("--tls-verify=false"),
            s("--authfile"),
            auth.clone(),
            s("-u"),
            s(USER),
            s("-p"),
            s(PASSWORD),
            host.clone(),
        ],
    );
    assert!(ok, "podman login failed: {err}");
    let stored = std::fs::read_to_string(&auth).expect("auth file written");
    assert!(stored.contains(&host), "{stored}");

    // push with skopeo using podman's auth file, pull with podman
    let mut layout = OciLayout::new(work.path().join("layout"));
    let tar = tar_with_file("hello.txt", b"hello from berth\n");
    let layers = [Layer {
        data: berth_test_support::gzip_stored(&tar),
        diff_id: berth_test_support::Digest::sha256_of(&tar),
    }];
    let img = layout.image(&layers, &image_config("linux", "amd64", &layers));
    layout.tag(&img, "v1");
    let (ok, err) = run(
        "skopeo",
        &[
            s("copy"),
            s("--dest-tls-verify=false"),
            s("--authfile"),
            auth.clone(),
            layout.skopeo_ref("v1"),
            format!("docker://{host}/team/app:v1"),
        ],
    );
    assert!(ok, "skopeo push with podman's auth file failed: {err}");
    let (ok, err) = run(
        "podman",
        &[
            s("pull"),
            s("-q"),
            s("--tls-verify=false"),
            s("--authfile"),
            auth.clone(),
            format!("{host}/team/app:v1"),
        ],
    );
    assert!(ok, "podman pull failed: {err}");
}

/// A one-file ustar archive (what a container engine can unpack as a layer).
fn tar_with_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", content.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}
