//! berth registry replicas on one S3 bucket, behind a round-robin nginx, driven by real
//! clients (skopeo, `berth push`/`pull`, raw distribution-spec requests), each test on
//! s3s-fs (which checks every signature) and on moto's server:
//! - an image pushed and pulled through the proxy, requests spread over every replica, and
//!   a manifest written on one replica read at once on each of the others;
//! - an upload started on one replica, continued on a second and finished on a third
//!   (chunks crossing the 5 MiB part boundary), a monolithic upload and a cross-repository
//!   mount through different replicas;
//! - a replica SIGKILLed mid-push: the push completes through the survivor and no blob
//!   whose upload was cut is ever visible;
//! - `redirect = true`: blob GETs answer 307 to a presigned URL the S3 server itself checks;
//!   HEADs and manifests are never redirected; off by default;
//! - with authentication, replicas given one token key (as the README says) accept each
//!   other's tokens, and skopeo logs in and pushes through the proxy;
//! - the disk tier: a layer's second GET comes from the replica's own file, a delete through
//!   one replica is a 404 through the other at once, one process per tier directory.
//!
//! The S3 server, nginx, skopeo and the replicas (`Registry` with
//! `S3Server::berth_options`) come from `berth_test_support`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{
    Descriptor, Digest, Http, Layer, Nginx, OciLayout, Registry, S3Kind, S3Server, berth_bin,
    image_config, random_bytes, requires_tool, wait_until, with_query,
};

use crate::common::{Skopeo, parse_range, patch_chunk, push_image, verify_tree_in_registry};

const MIB: usize = 1 << 20;
/// The key prefix every replica of a test shares.
const PREFIX: &str = "berth";

/// An S3 server, `n` replicas on its bucket (the same configuration file) and nginx.
struct Replicas {
    replicas: Vec<Registry>,
    proxy: Nginx,
    // after the replicas: they are killed before the server goes
    s3: S3Server,
    _dir: tempfile::TempDir,
}

impl Replicas {
    /// `extra` is appended to the `[storage.s3]` table (`redirect = true`).
    fn start(kind: S3Kind, n: usize, extra: &str) -> Replicas {
        let s3 = S3Server::start(kind);
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("registry.toml");
        let replicas: Vec<Registry> = (0..n)
            .map(|_| Registry::start(s3.berth_options_with(&config, PREFIX, extra)))
            .collect();
        let addrs: Vec<SocketAddr> = replicas.iter().map(Registry::addr).collect();
        let proxy = Nginx::round_robin(&addrs);
        Replicas {
            replicas,
            proxy,
            s3,
            _dir: dir,
        }
    }

    fn addrs(&self) -> BTreeSet<SocketAddr> {
        self.replicas.iter().map(Registry::addr).collect()
    }

    /// The upstreams that answered the logged requests whose method is in `methods`.
    fn served(&self, methods: &[&str]) -> BTreeSet<SocketAddr> {
        self.proxy
            .requests()
            .iter()
            .filter(|r| methods.contains(&r.method.as_str()))
            .flat_map(|r| r.upstreams.iter().copied())
            .collect()
    }
}

/// An image with a 12 MiB layer (a multipart upload at the driver's 8 MiB part size, and
/// over skopeo's chunk) and two small ones, tagged `v1` in an OCI layout at `dir`.
fn image(dir: &Path, seed: u64, big: usize) -> Descriptor {
    let mut layout = OciLayout::new(dir);
    let layers = [
        Layer::random(seed, big),
        Layer::random(seed + 1, 4096),
        Layer::random(seed + 2, 300_000),
    ];
    let d = layout.image(&layers, &image_config("linux", "amd64", &layers));
    layout.tag(&d, "v1");
    d
}

fn skopeo_push(skopeo: &Skopeo, src: &Path, host: &str, repo: &str) -> Output {
    skopeo_push_with(skopeo, &[], src, host, repo)
}

/// `skopeo copy` of `src`'s `v1` to `host/repo:v1`, `extra` flags after `copy`.
fn skopeo_push_with(skopeo: &Skopeo, extra: &[&str], src: &Path, host: &str, repo: &str) -> Output {
    let from = format!("oci:{}:v1", src.display());
    let to = format!("docker://{host}/{repo}:v1");
    let mut args = vec!["copy", "--preserve-digests", "--dest-tls-verify=false"];
    args.extend_from_slice(extra);
    args.extend([from.as_str(), to.as_str()]);
    skopeo.try_run(&args)
}

/// skopeo copies `host/repo:tag` out to a layout; every blob must be `src`'s, byte for byte.
fn skopeo_pull_and_compare(skopeo: &Skopeo, host: &str, repo: &str, tag: &str, src: &Path) {
    skopeo_pull_and_compare_with(skopeo, &[], host, repo, tag, src);
}

/// [`skopeo_pull_and_compare`] with `extra` flags after `copy`.
fn skopeo_pull_and_compare_with(
    skopeo: &Skopeo,
    extra: &[&str],
    host: &str,
    repo: &str,
    tag: &str,
    src: &Path,
) {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = work.path().join("dst");
    let from = format!("docker://{host}/{repo}:{tag}");
    let to = format!("oci:{}:{tag}", dst.display());
    let mut args = vec!["copy", "--src-tls-verify=false"];
    args.extend_from_slice(extra);
    args.extend([from.as_str(), to.as_str()]);
    skopeo.run(&args);
    let got = OciLayout::blob_digests(&dst);
    assert_eq!(
        got,
        OciLayout::blob_digests(src),
        "blobs pulled from {repo}"
    );
    for d in got {
        assert!(
            OciLayout::read_blob(&dst, &d) == OciLayout::read_blob(src, &d),
            "blob {d} pulled from {host}/{repo}:{tag} differs"
        );
    }
}

/// `berth ARGS` with its own data directory under `home`; panics unless it succeeds and
/// returns stdout.
#[track_caller]
fn berth(home: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(berth_bin());
    cmd.args(args)
        .arg("--data")
        .arg(home.join("data"))
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("DOCKER_CONFIG", home.join("docker"))
        .env("NO_COLOR", "1");
    let out = berth_test_support::run_with_timeout(&mut cmd, Duration::from_secs(600));
    assert!(
        out.status.success(),
        "berth {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// 1. skopeo and berth push and pull through the proxy; every replica serves; a manifest
///    pushed on one replica is readable at once on every other.
fn push_and_pull_through_the_proxy(kind: S3Kind) {
    let rs = Replicas::start(kind, 3, "");
    let host = rs.proxy.host();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    let desc = image(&src, 100, 12 * MIB);
    let skopeo = Skopeo::new();

    let out = skopeo_push(&skopeo, &src, &host, "s3/skopeo");
    assert!(
        out.status.success(),
        "skopeo push through the proxy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    verify_tree_in_registry(
        &Http::new(&rs.proxy.url(), None),
        "s3/skopeo",
        &desc.digest,
        &src,
    );
    skopeo_pull_and_compare(&skopeo, &host, "s3/skopeo", "v1", &src);

    // berth: pull what skopeo pushed, push it under another name, pull that back
    let home = work.path().join("berth");
    let pulled = berth(&home, &["pull", &format!("{host}/s3/skopeo:v1")]);
    assert!(
        pulled.contains(desc.digest.as_str()),
        "berth pull printed {pulled:?}, not {}",
        desc.digest
    );
    let name = format!("{host}/s3/berth:v1");
    berth(&home, &["tag", &format!("{host}/s3/skopeo:v1"), &name]);
    let pushed = berth(&home, &["push", "-q", &name]);
    assert!(
        pushed.contains(desc.digest.as_str()),
        "berth push printed {pushed:?}, not {}",
        desc.digest
    );
    skopeo_pull_and_compare(&skopeo, &host, "s3/berth", "v1", &src);
    let again = berth(&work.path().join("again"), &["pull", &name]);
    assert!(again.contains(desc.digest.as_str()), "{again}");

    let requests = rs.proxy.requests();
    let failed: Vec<_> = requests.iter().filter(|r| r.status >= 500).collect();
    assert!(failed.is_empty(), "failed through the proxy: {failed:?}");
    assert_eq!(
        rs.served(&["GET", "HEAD", "POST", "PATCH", "PUT"]),
        rs.addrs(),
        "not every replica served:\n{}",
        rs.proxy.access_log()
    );
    assert!(
        rs.served(&["POST", "PATCH", "PUT"]).len() >= 2,
        "the writes all went to one replica:\n{}",
        rs.proxy.access_log()
    );

    // a manifest written on one replica directly is read at once on each of the others
    let first = rs.replicas[0].http();
    let pushed = push_image(&first, "s3/direct", "fresh", 7, &[1000, 2000]);
    for other in &rs.replicas[1..] {
        let h = other.http();
        for reference in ["fresh", pushed.digest.as_str()] {
            let r = h.request(
                "GET",
                &format!("/v2/s3/direct/manifests/{reference}"),
                &[("accept", "application/vnd.oci.image.manifest.v1+json")],
                None,
            );
            r.expect_status(
                200,
                &format!("manifest {reference} on replica {}", other.addr()),
            );
            assert_eq!(
                r.body,
                pushed.manifest,
                "manifest {reference} on {}",
                other.addr()
            );
        }
        for d in &pushed.blobs {
            h.get_verified_blob("s3/direct", d);
        }
    }

    // the tag moved on another replica, and the old manifest deleted on a third: every
    // replica sees both at once (no replica's read cache keeps the old answer)
    let manifest_on = |r: &Registry, reference: &str| {
        r.http().request(
            "GET",
            &format!("/v2/s3/direct/manifests/{reference}"),
            &[("accept", "application/vnd.oci.image.manifest.v1+json")],
            None,
        )
    };
    let moved = push_image(&rs.replicas[1].http(), "s3/direct", "fresh", 8, &[1500]);
    for r in &rs.replicas {
        let got = manifest_on(r, "fresh");
        got.expect_status(200, &format!("the moved tag on {}", r.addr()));
        assert_eq!(got.body, moved.manifest, "the moved tag on {}", r.addr());
    }
    rs.replicas[2]
        .http()
        .request(
            "DELETE",
            &format!("/v2/s3/direct/manifests/{}", pushed.digest),
            &[],
            None,
        )
        .expect_status(202, "deleting the first manifest on the third replica");
    for r in &rs.replicas {
        manifest_on(r, pushed.digest.as_str())
            .expect_status(404, &format!("the deleted manifest on {}", r.addr()));
    }
}

/// 2. One upload over three replicas; a monolithic upload and a mount across replicas.
fn an_upload_continues_on_another_replica(kind: S3Kind) {
    let rs = Replicas::start(kind, 3, "");
    let [a, b, c] = [0, 1, 2].map(|i| rs.replicas[i].http());
    let repo = "s3/handover";
    let chunks = [
        random_bytes(201, 3 * MIB),
        random_bytes(202, 4 * MIB), // crosses 5 MiB
        random_bytes(203, 10),      // tiny last chunk, sent with the PUT
    ];
    let whole = chunks.concat();
    let digest = Digest::sha256_of(&whole);

    // a Location is a path, valid on any replica
    let loc = a.start_upload(repo);
    let r = patch_chunk(&a, &loc, &format!("0-{}", chunks[0].len() - 1), &chunks[0]);
    r.expect_status(202, "PATCH of the first chunk on replica a");
    let loc = r.header("location").expect("Location").to_owned();
    let start = chunks[0].len();
    let end = start + chunks[1].len() - 1;
    let r = patch_chunk(&b, &loc, &format!("{start}-{end}"), &chunks[1]);
    r.expect_status(202, "PATCH of the second chunk on replica b");
    let loc = r.header("location").expect("Location").to_owned();

    let status = c.get(&loc);
    status.expect_status(204, "upload status on replica c");
    let range = status.header("range").expect("a Range header");
    assert_eq!(
        parse_range(range),
        (0, end as u64),
        "replica c's Range after 7 MiB sent to a and b"
    );

    let r = c.request(
        "PUT",
        &with_query(&loc, &format!("digest={digest}")),
        &[("content-type", "application/octet-stream")],
        Some(&chunks[2]),
    );
    r.expect_status(201, "the PUT that completes the upload on replica c");
    for (name, h) in [("a", &a), ("b", &b), ("c", &c)] {
        let head = h.head(&format!("/v2/{repo}/blobs/{digest}"));
        head.expect_status(200, &format!("HEAD on replica {name}"));
        assert_eq!(
            head.header("content-length"),
            Some(whole.len().to_string().as_str())
        );
    }
    assert!(
        a.get_verified_blob(repo, &digest) == whole,
        "replica a's copy"
    );
    // it is in the bucket, under the prefix, and in no replica's data directory but as the
    // disk tier's copy of what a GET read (`registry/blobcache`, emptied at every start)
    let listing = rs.s3.list(PREFIX);
    assert_eq!(
        listing.status,
        200,
        "listing the bucket: {}",
        listing.text()
    );
    assert!(
        listing.text().contains(digest.hex()),
        "no key of blob {digest} under {PREFIX}/ in the bucket:\n{}",
        listing.text()
    );
    for r in &rs.replicas {
        let tier = r.data_dir().join("registry/blobcache");
        let local = berth_test_support::walk_files(r.temp_dir());
        assert!(
            !local
                .iter()
                .any(|p| !p.starts_with(&tier) && p.to_string_lossy().contains(digest.hex())),
            "replica {} keeps blob {digest} on its disk: {local:?}",
            r.addr()
        );
    }

    // monolithic: POST on b, PUT with the whole body on a
    let mono = random_bytes(204, 6 * MIB + 17);
    let mono_digest = Digest::sha256_of(&mono);
    let loc = b.start_upload(repo);
    a.request(
        "PUT",
        &with_query(&loc, &format!("digest={mono_digest}")),
        &[("content-type", "application/octet-stream")],
        Some(&mono),
    )
    .expect_status(201, "monolithic PUT on replica a of b's upload");
    assert!(c.get_verified_blob(repo, &mono_digest) == mono);

    // mount into another repository on c, read on b
    let other = "s3/mounted";
    let r = c.request(
        "POST",
        &format!("/v2/{other}/blobs/uploads/?mount={digest}&from={repo}"),
        &[],
        Some(b""),
    );
    r.expect_status(201, "cross-repository mount on replica c");
    assert!(b.get_verified_blob(other, &digest) == whole);
    // and a mount from a repository that lacks the blob is not one
    let missing = Digest::sha256_of(b"never pushed");
    let r = a.request(
        "POST",
        &format!("/v2/{other}/blobs/uploads/?mount={missing}&from={repo}"),
        &[],
        Some(b""),
    );
    r.expect_status(202, "a mount of a missing blob starts an upload");
    b.head(&format!("/v2/{other}/blobs/{missing}"))
        .expect_status(404, "the missing blob after the refused mount");
}

/// 3. A replica SIGKILLed while skopeo pushes a big layer through nginx.
fn a_replica_killed_mid_push(kind: S3Kind) {
    let mut rs = Replicas::start(kind, 2, "");
    let host = rs.proxy.host();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    let mut layout = OciLayout::new(&src);
    let layers: Vec<Layer> = (0..4).map(|i| Layer::random(300 + i, 24 * MIB)).collect();
    let desc = layout.image(&layers, &image_config("linux", "amd64", &layers));
    layout.tag(&desc, "v1");
    let skopeo = Skopeo::new();
    let repo = "s3/fault";
    let mut victim = rs.replicas.remove(0);
    let survivor = rs.replicas[0].addr();

    let (uploading, first) = std::thread::scope(|scope| {
        let push = scope.spawn(|| skopeo_push(&skopeo, &src, &host, repo));
        // kill it once uploads have started: skopeo streams its layers in parallel, so
        // PATCHes are in flight on both replicas (nginx logs a request when it ends)
        let uploading = wait_until(Duration::from_secs(120), || {
            rs.proxy.requests().iter().any(|r| r.method == "POST")
        });
        victim.kill9();
        (uploading, push.join().expect("the push thread"))
    });
    // the kill cut something: the push failed, or a request on the victim ended in an
    // error nginx logged (502 on a reset connection) or retried elsewhere
    let cut: Vec<_> = rs
        .proxy
        .requests()
        .into_iter()
        .filter(|r| {
            r.upstreams.contains(&victim.addr()) && (r.status >= 500 || r.upstreams.len() > 1)
        })
        .collect();
    eprintln!(
        "{}: the push cut by the kill {}; requests cut on the victim: {cut:?}",
        kind.name(),
        if first.status.success() {
            "still succeeded (skopeo retried)"
        } else {
            "failed"
        },
    );
    assert!(
        uploading,
        "no upload went through the proxy:\n{}",
        rs.proxy.access_log()
    );
    assert!(
        !first.status.success() || !cut.is_empty(),
        "the kill cut nothing (it came too late):\n{}",
        rs.proxy.access_log()
    );

    // nothing half-visible: a blob the survivor calls present is whole
    let h = rs.replicas[0].http();
    let check_visible_blobs_are_whole = |when: &str| {
        for d in OciLayout::blob_digests(&src) {
            let head = h.head(&format!("/v2/{repo}/blobs/{d}"));
            if head.status == 200 {
                let want = OciLayout::read_blob(&src, &d);
                assert_eq!(
                    head.header("content-length"),
                    Some(want.len().to_string().as_str()),
                    "{when}: HEAD {d}"
                );
                assert!(h.get_verified_blob(repo, &d) == want, "{when}: blob {d}");
            } else {
                assert_eq!(head.status, 404, "{when}: HEAD {d}");
            }
        }
    };
    check_visible_blobs_are_whole("after the kill");

    let before = rs.proxy.requests().len();
    let retry = skopeo_push(&skopeo, &src, &host, repo);
    assert!(
        retry.status.success(),
        "the push re-run through the proxy after the kill: {}",
        String::from_utf8_lossy(&retry.stderr)
    );
    check_visible_blobs_are_whole("after the retry");
    verify_tree_in_registry(&h, repo, &desc.digest, &src);
    skopeo_pull_and_compare(&skopeo, &host, repo, "v1", &src);
    let after = rs.proxy.requests().split_off(before);
    let bad: Vec<_> = after
        .iter()
        .filter(|r| r.upstreams.last() != Some(&survivor) || r.status >= 500)
        .collect();
    assert!(
        bad.is_empty(),
        "after the kill these did not end well on the survivor {survivor}: {bad:?}"
    );
}

/// Send the head of a `PATCH` of `total` bytes from `offset` and the first `sent` of them;
/// the caller cuts it (drops the socket, or kills the replica).
fn start_patch(
    addr: SocketAddr,
    loc: &str,
    offset: usize,
    sent: &[u8],
    total: usize,
) -> std::net::TcpStream {
    use std::io::Write as _;
    let mut sock = std::net::TcpStream::connect(addr).expect("connect to the replica");
    write!(
        sock,
        "PATCH {loc} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Range: {offset}-{}\r\nContent-Length: {total}\r\n\r\n",
        offset + total - 1,
    )
    .expect("PATCH headers");
    sock.write_all(sent).expect("the PATCH's first bytes");
    sock.flush().expect("flush");
    sock
}

/// Where the upload at `loc` stands on `h` (the offset the next chunk starts at).
fn upload_offset(h: &Http, loc: &str, what: &str) -> usize {
    let status = h.get(loc);
    status.expect_status(204, what);
    let (_, last) = parse_range(status.header("range").expect("Range"));
    usize::try_from(last + 1).expect("offset")
}

/// PATCH `data[offset..]` to the upload at `loc` on `h`, then PUT its digest: 201.
fn finish_upload(h: &Http, loc: &str, data: &[u8], offset: usize, who: &str) {
    let range = format!("{offset}-{}", data.len() - 1);
    let r = patch_chunk(h, loc, &range, &data[offset..]);
    r.expect_status(202, &format!("the rest of the upload PATCHed on {who}"));
    let loc = r.header("location").expect("Location");
    let put = with_query(loc, &format!("digest={}", Digest::sha256_of(data)));
    h.request("PUT", &put, &[], Some(b""))
        .expect_status(201, &format!("the PUT that completes the upload on {who}"));
}

/// 3b. An upload whose PATCH is cut by SIGKILLing the replica that took it resumes on
///     another replica from the offset that replica reports, and completes whole; so does
///     one whose client went away mid-PATCH.
fn an_upload_cut_by_a_kill_resumes_elsewhere(kind: S3Kind) {
    let mut rs = Replicas::start(kind, 3, "");
    let mut a = rs.replicas.remove(0);
    let b = rs.replicas[0].http();
    let repo = "s3/resumed";
    let data = random_bytes(600, 24 * MIB);
    let digest = Digest::sha256_of(&data);
    let first = 3 * MIB;

    let ha = a.http();
    let loc = ha.start_upload(repo);
    let r = patch_chunk(&ha, &loc, &format!("0-{}", first - 1), &data[..first]);
    r.expect_status(202, "the first PATCH on replica a");
    let loc = r.header("location").expect("Location").to_owned();
    assert!(loc.starts_with('/'), "a Location that is not a path: {loc}");

    // 12 MiB of a 21 MiB PATCH (over a part boundary), then the replica dies
    let sock = start_patch(
        a.addr(),
        &loc,
        first,
        &data[first..15 * MIB],
        data.len() - first,
    );
    a.kill9();
    drop(sock);

    let offset = upload_offset(&b, &loc, "the cut upload's status on replica b");
    eprintln!(
        "{}: the upload cut at 15 MiB resumes from {offset}",
        kind.name()
    );
    assert!(
        (first..=15 * MIB).contains(&offset),
        "replica b reports {offset} bytes, outside what was sent (3 MiB..=15 MiB)"
    );
    b.head(&format!("/v2/{repo}/blobs/{digest}"))
        .expect_status(404, "the blob of the cut upload");
    finish_upload(&b, &loc, &data, offset, "replica b, after the kill");
    assert!(
        b.get_verified_blob(repo, &digest) == data,
        "the resumed blob"
    );

    // a client that goes away mid-PATCH on a live replica: what that replica kept (if
    // anything) is where another continues
    let c = rs.replicas[1].http();
    let data = random_bytes(601, 24 * MIB);
    let digest = Digest::sha256_of(&data);
    let loc = b.start_upload(repo);
    let r = patch_chunk(&b, &loc, &format!("0-{}", first - 1), &data[..first]);
    r.expect_status(202, "the first PATCH on replica b");
    let loc = r.header("location").expect("Location").to_owned();
    let sock = start_patch(
        rs.replicas[0].addr(),
        &loc,
        first,
        &data[first..15 * MIB],
        data.len() - first,
    );
    drop(sock);
    let mut offset = first;
    // until it has grown and reads the same twice (a segment commits whole, but a replica
    // that kept several would show each)
    let mut last_read = first;
    let kept = wait_until(Duration::from_secs(15), || {
        offset = upload_offset(&c, &loc, "the abandoned PATCH's upload on replica c");
        let settled = offset > first && offset == last_read;
        last_read = offset;
        settled
    });
    eprintln!(
        "{}: a PATCH whose client went away after 15 MiB: {}",
        kind.name(),
        if kept {
            format!("kept, resumes from {offset}")
        } else {
            "dropped".into()
        }
    );
    assert!(
        offset <= 15 * MIB,
        "replica c reports {offset} bytes, more than were sent"
    );
    finish_upload(&c, &loc, &data, offset, "replica c, after the client left");
    assert!(
        b.get_verified_blob(repo, &digest) == data,
        "the blob resumed after a client left"
    );
}

/// 4. `redirect = true`: blob GETs answer 307 to a presigned URL; HEADs and manifests do
///    not; skopeo follows it. `redirect` unset: the registry streams.
fn presigned_redirects(kind: S3Kind) {
    let rs = Replicas::start(kind, 2, "redirect = true\n");
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    let desc = image(&src, 400, 9 * MIB);
    let skopeo = Skopeo::new();
    let host = rs.proxy.host();
    let out = skopeo_push(&skopeo, &src, &host, "s3/redirect");
    assert!(
        out.status.success(),
        "skopeo push with redirect on: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let repo = "s3/redirect";
    let h = rs.replicas[1].http();
    let manifest = OciLayout::read_blob(&src, &desc.digest);
    for reference in ["v1", desc.digest.as_str()] {
        let r = h.request(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("accept", "application/vnd.oci.image.manifest.v1+json")],
            None,
        );
        r.expect_status(200, &format!("manifest {reference} with redirect on"));
        assert_eq!(r.body, manifest);
    }
    for d in OciLayout::blob_digests(&src)
        .into_iter()
        .filter(|d| *d != desc.digest)
    {
        let want = OciLayout::read_blob(&src, &d);
        let head = h.head(&format!("/v2/{repo}/blobs/{d}"));
        head.expect_status(200, &format!("HEAD blob {d} with redirect on"));
        assert_eq!(
            head.header("content-length"),
            Some(want.len().to_string().as_str())
        );
        let r = h.get(&format!("/v2/{repo}/blobs/{d}"));
        r.expect_status(307, &format!("GET blob {d} with redirect on"));
        let location = r.header("location").expect("a 307 has a Location");
        assert!(
            location.starts_with(&rs.s3.endpoint()),
            "{location} is not on the S3 server {}",
            rs.s3.endpoint()
        );
        let served = rs.s3.get_url(location);
        assert_eq!(served.status, 200, "the presigned URL: {}", served.text());
        assert!(
            served.body == want,
            "the presigned URL serves another body for {d}"
        );
        if kind == S3Kind::S3sFs {
            // s3s-fs checks the signature: the URL works because it is signed right
            let (head, sig) = location
                .rsplit_once("X-Amz-Signature=")
                .expect("a signature in the presigned URL");
            let flipped: String = sig
                .chars()
                .map(|c| if c == '0' { '1' } else { '0' })
                .collect();
            let tampered = rs.s3.get_url(&format!("{head}X-Amz-Signature={flipped}"));
            assert_eq!(tampered.status, 403, "a tampered presigned URL was served");
        }
    }
    // skopeo follows the redirect; the blob GETs through the proxy were all 307s
    skopeo_pull_and_compare(&skopeo, &host, repo, "v1", &src);
    let blob_gets: Vec<_> = rs
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.uri.contains("/blobs/sha256:"))
        .collect();
    assert!(
        !blob_gets.is_empty(),
        "skopeo fetched no blob through the proxy"
    );
    assert!(
        blob_gets.iter().all(|r| r.status == 307),
        "blob GETs through the proxy not redirected: {blob_gets:?}"
    );

    // redirect unset: the same registry streams
    let plain = Replicas::start(kind, 1, "");
    let h = plain.replicas[0].http();
    let blob = random_bytes(401, 100_000);
    let d = h.push_blob(repo, &blob);
    let r = h.get(&format!("/v2/{repo}/blobs/{d}"));
    r.expect_status(200, "GET blob with redirect unset");
    assert!(r.body == blob);
}

/// 5. With authentication, replicas sharing one token key file are one registry to a client:
///    skopeo logs in and pushes through the proxy, a token one replica issued opens the
///    other; a replica with its own key refuses it.
fn authenticated_replicas_share_the_token_key(kind: S3Kind) {
    let s3 = S3Server::start(kind);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("registry.toml");
    let replica = || s3.berth_options(&config, PREFIX).user("alice", "s3cret");
    // one key file for every replica (`--token-key`, `[auth] token_key`)
    let key = random_bytes(502, 32);
    let a = Registry::start(replica().token_key(&key));
    let b = Registry::start(replica().token_key(&key));
    assert_eq!(a.token_key(), key);
    let stranger = Registry::start(replica());
    assert_ne!(
        stranger.token_key(),
        key,
        "two replicas made the same random key"
    );
    let proxy = Nginx::round_robin(&[a.addr(), b.addr()]);

    let repo = "s3/authed";
    let token = a
        .http()
        .basic("alice", "s3cret")
        .token(&format!("repository:{repo}:pull,push"));
    let path = format!("/v2/{repo}/tags/list");
    b.http().bearer(&token).get(&path).expect_status(
        404,
        "replica b with a's token (authorized; the repository is empty)",
    );
    stranger
        .http()
        .bearer(&token)
        .get(&path)
        .expect_status(401, "a replica with another token key, with a's token");

    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    image(&src, 500, 6 * MIB);
    let skopeo = Skopeo::new();
    let authfile = skopeo.authfile().display().to_string();
    skopeo.run(&[
        "login",
        "--tls-verify=false",
        "--authfile",
        &authfile,
        "-u",
        "alice",
        "-p",
        "s3cret",
        &proxy.host(),
    ]);
    let out = skopeo_push_with(
        &skopeo,
        &["--authfile", &authfile],
        &src,
        &proxy.host(),
        repo,
    );
    assert!(
        out.status.success(),
        "an authenticated skopeo push through the proxy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    skopeo_pull_and_compare_with(
        &skopeo,
        &["--authfile", &authfile],
        &proxy.host(),
        repo,
        "v1",
        &src,
    );
    let writers: BTreeSet<SocketAddr> = proxy
        .requests()
        .iter()
        .filter(|r| matches!(r.method.as_str(), "POST" | "PATCH" | "PUT") && r.status < 400)
        .flat_map(|r| r.upstreams.iter().copied())
        .collect();
    assert_eq!(
        writers,
        [a.addr(), b.addr()].into(),
        "authenticated writes did not reach both replicas:\n{}",
        proxy.access_log()
    );
}

/// The value of one sample in a replica's `/metrics`, if it is there.
fn metric(r: &Registry, name: &str) -> Option<u64> {
    let text = r.http().get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// 6. The disk tier (on by default over S3, under each replica's `--data`): a replica serves
///    a layer's second GET from its own file, skopeo pulls the image whole through the
///    proxy after, a delete through one replica is a 404 through the other at once, and a
///    third replica pointed at the first one's directory runs without a tier and says so.
fn hot_layers_come_from_each_replicas_disk(kind: S3Kind) {
    let rs = Replicas::start(kind, 2, "");
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    image(&src, 500, 12 * MIB);
    let skopeo = Skopeo::new();
    let host = rs.proxy.host();
    let repo = "s3/tier";
    let out = skopeo_push(&skopeo, &src, &host, repo);
    assert!(
        out.status.success(),
        "skopeo push: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let layer = OciLayout::blob_digests(&src)
        .into_iter()
        .max_by_key(|d| OciLayout::read_blob(&src, d).len())
        .expect("the large layer");
    let want = OciLayout::read_blob(&src, &layer);
    let url = format!("/v2/{repo}/blobs/{layer}");
    for r in &rs.replicas {
        let fills = "berth_registry_disk_cache_fills_total";
        assert_eq!(metric(r, fills), Some(0), "{}", r.log());
        let first = r.http().get(&url);
        first.expect_status(200, "the layer's first GET");
        assert!(first.body == want, "the first GET's body differs");
        assert!(
            wait_until(Duration::from_secs(20), || metric(r, fills) == Some(1)),
            "the layer was never kept: {:?}",
            r.http().get("/metrics").text()
        );
        let files = std::fs::read_dir(r.data_dir().join("registry/blobcache"))
            .expect("the tier under --data")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("sha256-"))
            .count();
        assert_eq!(files, 1, "one kept file in {}", r.data_dir().display());
        let again = r.http().get(&url);
        again.expect_status(200, "the layer's second GET");
        assert!(again.body == want, "the second GET's body differs");
        let part = r
            .http()
            .request("GET", &url, &[("range", "bytes=5000-9999")], None);
        part.expect_status(206, "a ranged GET from the tier");
        assert!(part.body == want[5000..10000]);
        assert_eq!(
            metric(r, "berth_registry_disk_cache_hits_total"),
            Some(2),
            "the second and the ranged GET came from the tier"
        );
        // the first GET's windows ahead are all given back, and the bound is shown
        assert_eq!(
            metric(r, "berth_registry_s3_read_ahead_bytes"),
            Some(0),
            "{}",
            r.log()
        );
        assert_eq!(
            metric(r, "berth_registry_s3_read_ahead_limit_bytes"),
            Some(256 << 20)
        );
    }
    skopeo_pull_and_compare(&skopeo, &host, repo, "v1", &src);

    // deleted through one replica: a 404 through the other, though its tier holds it
    rs.replicas[0]
        .http()
        .request("DELETE", &url, &[], None)
        .expect_status(202, "DELETE the layer");
    rs.replicas[1]
        .http()
        .get(&url)
        .expect_status(404, "a deleted layer from a warm replica");

    // a third replica on the first one's tier directory: served, without a tier
    let config = work.path().join("third.toml");
    let tier = rs.replicas[0].data_dir().join("registry/blobcache");
    let extra = format!("\n[storage.cache]\ndisk_dir = \"{}\"\n", tier.display());
    let third = Registry::start(rs.s3.berth_options_with(&config, PREFIX, &extra));
    let manifest = third.http().request(
        "GET",
        &format!("/v2/{repo}/manifests/v1"),
        &[("accept", "application/vnd.oci.image.manifest.v1+json")],
        None,
    );
    manifest.expect_status(200, "the third replica serves");
    assert_eq!(metric(&third, "berth_registry_disk_cache_hits_total"), None);
    assert!(
        third.log().contains("blob cache on disk off")
            && third.log().contains("in use by another process"),
        "the third replica does not say its tier is off:\n{}",
        third.log()
    );
}

/// One module per server, one test per scenario (each takes the server kind).
macro_rules! replica_tests {
    ($module:ident, $kind:expr) => {
        mod $module {
            use super::*;

            replica_tests!(@each $kind,
                push_and_pull_through_the_proxy_with_skopeo_and_berth
                    => push_and_pull_through_the_proxy,
                an_upload_continues_on_another_replica_and_completes_on_a_third
                    => an_upload_continues_on_another_replica,
                a_push_cut_by_killing_one_replica_completes_through_the_other
                    => a_replica_killed_mid_push,
                an_upload_cut_by_killing_its_replica_resumes_on_another
                    => an_upload_cut_by_a_kill_resumes_elsewhere,
                blob_gets_redirect_to_presigned_urls_only_when_asked
                    => presigned_redirects,
                authenticated_replicas_with_one_token_key_accept_each_others_tokens
                    => authenticated_replicas_share_the_token_key,
                hot_layers_are_served_from_each_replicas_disk
                    => hot_layers_come_from_each_replicas_disk,
            );
        }
    };
    (@each $kind:expr, $($test:ident => $check:ident),+ $(,)?) => {
        $(
            #[test]
            fn $test() {
                requires_tool!("curl", "skopeo", "nginx", "htpasswd");
                if $kind.missing() {
                    return;
                }
                $check($kind);
            }
        )+
    };
}

replica_tests!(s3s_fs, S3Kind::S3sFs);
replica_tests!(moto, S3Kind::Moto);
