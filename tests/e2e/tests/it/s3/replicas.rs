//! Registries on S3 with skopeo: berth on both servers (a round trip, its data under the
//! prefix), docker-registry 2.8's S3 driver on moto (alone, two behind nginx, one killed
//! mid-push). berth's replicas (upload hand-over, kills, redirects) are in `registry_s3`;
//! GC and conformance through the proxy, side by side with docker-registry, in
//! `registry_s3_gc`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use berth_test_support::{
    Descriptor, DockerRegistry, Http, Layer, Nginx, OciLayout, ProxiedRequest, Registry, S3Kind,
    S3Server, image_config, random_bytes, requires_tool, wait_until,
};

use super::MIB;
use crate::common::{Skopeo, verify_tree_in_registry};

/// The `http.secret` the docker-registry replicas share.
const REPLICA_SECRET: &str = "berth-test-replica-secret";

/// A small image whose 12 MiB layer makes docker-registry's S3 driver use a multipart
/// upload (its chunk size is 10 MiB), plus small layers.
fn image(dir: &Path) -> (OciLayout, Descriptor) {
    let mut layout = OciLayout::new(dir);
    let layers = [
        Layer::random(21, 12 * MIB),
        Layer::random(22, 4096),
        Layer::random(23, 300_000),
    ];
    let d = layout.image(&layers, &image_config("linux", "amd64", &layers));
    layout.tag(&d, "v1");
    (layout, d)
}

/// skopeo copies the layout to `host` (plain HTTP), checks it is served byte-identical,
/// pulls it back out and compares every blob.
fn round_trip_through(host: &str, repo: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    let (layout, desc) = image(&src);
    let skopeo = Skopeo::new();
    let args = push_args(&layout, host, repo);
    skopeo.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    pull_and_compare(&skopeo, host, repo, &src, &desc);
}

fn push_args(layout: &OciLayout, host: &str, repo: &str) -> Vec<String> {
    vec![
        "copy".into(),
        "--preserve-digests".into(),
        "--dest-tls-verify=false".into(),
        layout.skopeo_ref("v1"),
        format!("docker://{host}/{repo}:v1"),
    ]
}

/// Check `host` serves the image `desc` of the layout in `src` byte-identical, pull it back
/// out with skopeo and compare every blob.
fn pull_and_compare(skopeo: &Skopeo, host: &str, repo: &str, src: &Path, desc: &Descriptor) {
    let http = Http::new(&format!("http://{host}"), None);
    verify_tree_in_registry(&http, repo, &desc.digest, src);
    let work = tempfile::tempdir().expect("tempdir");
    let dst = work.path().join("dst");
    skopeo.run(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{host}/{repo}:v1"),
        &format!("oci:{}:v1", dst.display()),
    ]);
    let entry = OciLayout::resolve_tag(&dst, "v1").expect("pulled layout has v1");
    assert_eq!(
        entry["digest"].as_str(),
        Some(desc.digest.as_str()),
        "pulled manifest digest"
    );
    assert_eq!(OciLayout::blob_digests(&dst), OciLayout::blob_digests(src));
    for d in OciLayout::blob_digests(&dst) {
        assert_eq!(
            OciLayout::read_blob(&dst, &d),
            OciLayout::read_blob(src, &d),
            "blob {d}"
        );
    }
}

/// One of two docker-registry replicas behind nginx is killed while skopeo pushes through
/// the proxy; the push retried through the proxy completes on the other, every request
/// after the kill ends on the survivor, and the image pulls back byte-identical. (The
/// shape of the replica fault test berth's S3 driver gets: nginx must pass over a dead
/// upstream.)
fn docker_registry_replica_killed_mid_push(kind: S3Kind) {
    let s3 = S3Server::start(kind);
    let a = DockerRegistry::on_s3(&s3, "/docker", REPLICA_SECRET);
    let b = DockerRegistry::on_s3(&s3, "/docker", REPLICA_SECRET);
    let proxy = Nginx::round_robin(&[a.addr, b.addr]);
    push_cut_by_a_kill(&proxy, b.addr, move || drop(a));
}

/// Push through `proxy`, run `kill` (one replica) once the first upload has started, push
/// again: the retry completes, pulls back byte-identical, and every request after the kill
/// ended on `survivor`.
fn push_cut_by_a_kill(proxy: &Nginx, survivor: SocketAddr, kill: impl FnOnce()) {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    let mut layout = OciLayout::new(&src);
    let layers: Vec<Layer> = (0..4).map(|i| Layer::random(60 + i, 8 * MIB)).collect();
    let desc = layout.image(&layers, &image_config("linux", "amd64", &layers));
    layout.tag(&desc, "v1");
    let skopeo = Skopeo::new();
    let args = push_args(&layout, &proxy.host(), "s3/fault");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let (uploading, first) = std::thread::scope(|scope| {
        let push = scope.spawn(|| skopeo.try_run(&args));
        let uploading = wait_until(Duration::from_secs(120), || {
            proxy.requests().iter().any(|r| r.method == "POST")
        });
        kill();
        (uploading, push.join().expect("the push thread"))
    });
    assert!(
        uploading,
        "no upload went through the proxy:\n{}",
        proxy.access_log()
    );
    eprintln!(
        "the push cut by the kill {}",
        if first.status.success() {
            "still succeeded"
        } else {
            "failed"
        }
    );

    let before_retry = proxy.requests().len();
    skopeo.run(&args);
    pull_and_compare(&skopeo, &proxy.host(), "s3/fault", &src, &desc);
    let after: Vec<_> = proxy.requests().split_off(before_retry);
    assert!(!after.is_empty());
    let elsewhere: Vec<_> = after
        .iter()
        .filter(|r| r.upstreams.last() != Some(&survivor) || r.status >= 500)
        .collect();
    assert!(
        elsewhere.is_empty(),
        "after the kill these requests did not end well on the survivor {survivor}: {elsewhere:?}"
    );
}

/// `berth registry serve` on the S3 driver (one replica): skopeo round trip, and the data
/// is in the bucket under the configured prefix.
fn berth_on_s3_round_trips(kind: S3Kind) {
    let s3 = S3Server::start(kind);
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start(s3.berth_options(&dir.path().join("registry.toml"), "berth"));
    round_trip_through(&registry.host(), "s3/berth");
    let listed = s3.list("berth%2F");
    assert_eq!(
        listed.status,
        200,
        "{}: ListObjectsV2: {}",
        kind.name(),
        listed.text()
    );
    assert!(
        listed.text().contains("<Key>berth/"),
        "{}: nothing under the prefix berth/ in the bucket: {}",
        kind.name(),
        listed.text()
    );
}

fn docker_registry_on_s3_round_trips(kind: S3Kind) {
    let s3 = S3Server::start(kind);
    let registry = DockerRegistry::on_s3(&s3, "/docker", REPLICA_SECRET);
    round_trip_through(&registry.host(), "s3/single");

    // the blobs are in the bucket, where distribution's layout puts them
    let work = tempfile::tempdir().expect("tempdir");
    let (_, desc) = image(&work.path().join("again"));
    let key = format!(
        "docker/docker/registry/v2/blobs/sha256/{}/{}/data",
        &desc.digest.hex()[..2],
        desc.digest.hex()
    );
    let got = s3.get(&key);
    assert_eq!(
        got.status,
        200,
        "{}: manifest {key} is not in the bucket",
        kind.name()
    );
    assert_eq!(berth_test_support::sha256(&got.body), desc.digest);
}

fn two_docker_registries_behind_nginx(kind: S3Kind) {
    let s3 = S3Server::start(kind);
    let a = DockerRegistry::on_s3(&s3, "/docker", REPLICA_SECRET);
    let b = DockerRegistry::on_s3(&s3, "/docker", REPLICA_SECRET);
    let proxy = Nginx::round_robin(&[a.addr, b.addr]);
    round_trip_through(&proxy.host(), "s3/replicated");
    assert_alternated(&proxy, a.addr, b.addr);
}

/// Nothing failed through `proxy`, and both replicas took writes and reads.
fn assert_alternated(proxy: &Nginx, a: SocketAddr, b: SocketAddr) {
    assert_alternated_allowing(proxy, a, b, |_| false);
}

/// [`assert_alternated`], but the server errors `allowed` picks are not failures.
fn assert_alternated_allowing(
    proxy: &Nginx,
    a: SocketAddr,
    b: SocketAddr,
    allowed: impl Fn(&ProxiedRequest) -> bool,
) {
    let requests = proxy.requests();
    assert!(
        !requests.is_empty(),
        "nginx logged nothing:\n{}",
        proxy.error_log()
    );
    let failed: Vec<_> = requests
        .iter()
        .filter(|r| r.status >= 500 && !allowed(r))
        .collect();
    assert!(
        failed.is_empty(),
        "requests failed through the proxy: {failed:?}"
    );
    let used = |methods: &[&str]| -> BTreeSet<SocketAddr> {
        requests
            .iter()
            .filter(|r| methods.contains(&r.method.as_str()))
            .flat_map(|r| r.upstreams.iter().copied())
            .collect()
    };
    // the writes reached both replicas, and so did the reads (counted by kind, not by
    // method: with the same requests per blob, round-robin may send every PUT to one)
    let both: BTreeSet<SocketAddr> = [a, b].into();
    assert_eq!(
        used(&["POST", "PATCH", "PUT"]),
        both,
        "the writes did not alternate between the replicas:\n{}",
        proxy.access_log()
    );
    assert_eq!(
        used(&["GET", "HEAD"]),
        both,
        "the reads did not alternate between the replicas:\n{}",
        proxy.access_log()
    );
}

/// An upload started (and half sent) on one docker-registry replica completes on the other
/// when they share `http.secret`, and is refused by one with another secret: the harness's
/// replicas really are one registry, and the secret is what makes them so.
fn docker_registry_upload_continues_on_another_replica(kind: S3Kind) {
    let s3 = S3Server::start(kind);
    let a = DockerRegistry::on_s3(&s3, "/docker", REPLICA_SECRET);
    let b = DockerRegistry::on_s3(&s3, "/docker", REPLICA_SECRET);
    let stranger = DockerRegistry::on_s3(&s3, "/docker", "another-secret");
    let repo = "s3/handover";
    let first = random_bytes(41, 6 * MIB);
    let last = random_bytes(42, 100_000);
    let whole = [first.as_slice(), last.as_slice()].concat();
    let digest = berth_test_support::sha256(&whole);

    // POST and the first PATCH on `a`; returns the Location the PATCH answered, on `to`
    let half_sent = |to: &DockerRegistry| -> String {
        let ha = Http::new(&format!("http://{}", a.host()), None);
        let loc = ha.start_upload(repo);
        let r = ha.request(
            "PATCH",
            &loc,
            &[("content-type", "application/octet-stream")],
            Some(&first),
        );
        r.expect_status(202, "PATCH of the first 6 MiB on replica a");
        let next = r.header("location").expect("PATCH answered a Location");
        let next = if next.starts_with('/') {
            format!("http://{}{next}", a.host())
        } else {
            next.to_owned()
        };
        next.replace(&a.host(), &to.host())
    };
    let finish = |loc: &str| {
        Http::new("http://unused.invalid", None).request(
            "PUT",
            &berth_test_support::with_query(loc, &format!("digest={digest}")),
            &[("content-type", "application/octet-stream")],
            Some(&last),
        )
    };

    let r = finish(&half_sent(&stranger));
    assert!(
        (400..500).contains(&r.status),
        "a replica with another http.secret accepted the upload: {} {}",
        r.status,
        r.text()
    );

    let r = finish(&half_sent(&b));
    r.expect_status(201, "the PUT that completes a's upload on replica b");
    for (name, replica) in [("a", &a), ("b", &b)] {
        let got =
            Http::new(&format!("http://{}", replica.host()), None).get_verified_blob(repo, &digest);
        assert!(
            got == whole,
            "replica {name} serves another blob for {digest}"
        );
    }
}

/// berth's S3 driver on both servers: one replica, two behind nginx, one killed mid-push.
macro_rules! berth_on_s3_tests {
    ($module:ident, $kind:expr) => {
        mod $module {
            use super::*;

            berth_on_s3_tests!(@each $kind,
                round_trips_an_image_with_skopeo => berth_on_s3_round_trips,
            );
        }
    };
    (@each $kind:expr, $($test:ident => $check:ident),+ $(,)?) => {
        $(
            #[test]
            fn $test() {
                requires_tool!("curl", "skopeo", "nginx");
                if $kind.missing() {
                    return;
                }
                $check($kind);
            }
        )+
    };
}

berth_on_s3_tests!(berth_on_s3s_fs, S3Kind::S3sFs);
berth_on_s3_tests!(berth_on_moto, S3Kind::Moto);

/// docker-registry on S3 runs on moto only: see `servers::list_multipart_uploads_is_not_implemented`.
mod docker_registry_on_moto {
    use super::*;

    #[test]
    fn round_trips_an_image_with_skopeo() {
        requires_tool!("curl", "skopeo", "docker-registry");
        if S3Kind::Moto.missing() {
            return;
        }
        docker_registry_on_s3_round_trips(S3Kind::Moto);
    }

    #[test]
    fn an_upload_continues_on_another_replica_only_with_the_same_secret() {
        requires_tool!("docker-registry");
        if S3Kind::Moto.missing() {
            return;
        }
        docker_registry_upload_continues_on_another_replica(S3Kind::Moto);
    }

    #[test]
    fn a_push_cut_by_killing_one_replica_completes_through_the_other() {
        requires_tool!("skopeo", "docker-registry", "nginx");
        if S3Kind::Moto.missing() {
            return;
        }
        docker_registry_replica_killed_mid_push(S3Kind::Moto);
    }

    #[test]
    fn two_replicas_on_one_bucket_behind_nginx_alternate() {
        requires_tool!("skopeo", "docker-registry", "nginx");
        if S3Kind::Moto.missing() {
            return;
        }
        two_docker_registries_behind_nginx(S3Kind::Moto);
    }
}
