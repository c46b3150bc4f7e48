//! Blob uploads that go wrong: a wrong digest, chunks out of order, a body cut short. Each
//! must be answered as distribution-spec says, and no unverified content may become a blob.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use berth_test_support::{
    Registry, RegistryOptions, Tmpfs, random_bytes, sha256, wait_until, walk_files, with_query,
};

use crate::common::{parse_range, patch_chunk};

/// No file under the blobs directory holds `data` (by hash), and none is misnamed.
#[track_caller]
fn no_blob_holds(registry: &Registry, data: &[u8]) {
    let bad = sha256(data);
    for f in walk_files(registry.blobs_dir()) {
        let content = std::fs::read(&f).expect("read blob file");
        let d = sha256(&content);
        assert_ne!(d, bad, "{} holds the refused content", f.display());
    }
}

#[test]
fn upload_with_wrong_digest_is_refused_with_digest_invalid_and_stores_nothing() {
    let registry = Registry::start(RegistryOptions::new());
    let http = registry.http();
    let data = random_bytes(1, 300_000);
    let claimed = sha256(b"something else entirely");

    // POST then PUT ?digest=
    let loc = http.start_upload("bad/digest");
    let r = http.request(
        "PUT",
        &with_query(&loc, &format!("digest={claimed}")),
        &[("content-type", "application/octet-stream")],
        Some(&data),
    );
    r.expect_status(400, "PUT with a wrong digest");
    assert!(
        r.error_codes().iter().any(|c| c == "DIGEST_INVALID"),
        "{}",
        r.text()
    );

    // monolithic POST ?digest=
    let r = http.request(
        "POST",
        &format!("/v2/bad/digest/blobs/uploads/?digest={claimed}"),
        &[("content-type", "application/octet-stream")],
        Some(&data),
    );
    r.expect_status(400, "monolithic POST with a wrong digest");
    assert!(
        r.error_codes().iter().any(|c| c == "DIGEST_INVALID"),
        "{}",
        r.text()
    );

    for d in [&claimed, &sha256(&data)] {
        http.head(&format!("/v2/bad/digest/blobs/{d}"))
            .expect_status(404, &format!("HEAD {d} after the refused upload"));
    }
    no_blob_holds(&registry, &data);
    assert!(
        !registry
            .blobs_dir()
            .join(format!("sha256/{}/{}", &claimed.hex()[..2], claimed.hex()))
            .exists(),
        "a blob directory exists for the claimed digest"
    );
}

#[test]
fn chunk_out_of_order_gets_416_with_range_and_location() {
    let registry = Registry::start(RegistryOptions::new());
    let http = registry.http();
    let data = random_bytes(2, 300);
    let loc = http.start_upload("bad/chunks");

    let r = patch_chunk(&http, &loc, "0-99", &data[..100]);
    r.expect_status(202, "first chunk");
    assert_eq!(r.header("range"), Some("0-99"));
    let loc = r.header("location").expect("Location").to_owned();

    for (range, chunk) in [
        ("200-299", &data[200..300]), // a gap
        ("0-99", &data[..100]),       // a repeat
        ("50-149", &data[50..150]),   // an overlap
    ] {
        let r = patch_chunk(&http, &loc, range, chunk);
        r.expect_status(416, &format!("chunk {range} after 0-99"));
        assert_eq!(
            r.header("range"),
            Some("0-99"),
            "416 for {range} must report the upload's range"
        );
        assert!(
            r.header("location").is_some(),
            "416 for {range} must carry Location"
        );
    }

    // the refused chunks left no trace: the upload continues and completes
    let r = patch_chunk(&http, &loc, "100-299", &data[100..]);
    r.expect_status(202, "the chunk that continues the upload");
    let loc = r.header("location").expect("Location").to_owned();
    let d = sha256(&data);
    http.request(
        "PUT",
        &with_query(&loc, &format!("digest={d}")),
        &[],
        Some(b""),
    )
    .expect_status(201, "completing the upload");
    assert_eq!(http.get_verified_blob("bad/chunks", &d), data);
}

#[test]
fn truncated_upload_body_is_not_a_blob_and_resumes_from_the_reported_offset() {
    let registry = Registry::start(RegistryOptions::new());
    let http = registry.http();
    let n: usize = 1 << 20;
    let data = random_bytes(3, n);
    let d = sha256(&data);
    let loc = http.start_upload("bad/truncated");

    // Content-Length: N, then N/2 bytes, then the connection closes.
    let mut s = TcpStream::connect(registry.addr()).expect("connect");
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\nContent-Range: 0-{}\r\n\r\n",
        registry.host(),
        n - 1
    );
    s.write_all(head.as_bytes()).expect("write head");
    s.write_all(&data[..n / 2]).expect("write half the body");
    s.flush().expect("flush");
    let _ = s.shutdown(Shutdown::Both);
    drop(s);

    http.head(&format!("/v2/bad/truncated/blobs/{d}"))
        .expect_status(404, "HEAD the blob of a truncated upload");

    // The server keeps what arrived; wait (bounded) for it to settle at N/2, then resume from
    // whatever it reports.
    let status = || {
        let r = http.get(&loc);
        r.expect_status(204, "upload status after the truncated PATCH");
        let (_, last) = parse_range(r.header("range").expect("Range"));
        let loc = r.header("location").expect("Location").to_owned();
        (if last == 0 { 0 } else { last + 1 }, loc)
    };
    wait_until(Duration::from_secs(10), || status().0 == (n / 2) as u64);
    let (offset, loc) = status();
    assert!(
        offset <= (n / 2) as u64,
        "the session reports {offset} bytes but only {} were sent",
        n / 2
    );
    http.head(&format!("/v2/bad/truncated/blobs/{d}"))
        .expect_status(404, "HEAD the blob while the upload is incomplete");

    let off = offset as usize;
    let r = patch_chunk(&http, &loc, &format!("{off}-{}", n - 1), &data[off..]);
    r.expect_status(202, &format!("resuming from {off}"));
    let loc = r.header("location").expect("Location").to_owned();
    let r = http.request(
        "PUT",
        &with_query(&loc, &format!("digest={d}")),
        &[],
        Some(b""),
    );
    r.expect_status(201, "completing the resumed upload");
    assert_eq!(http.get_verified_blob("bad/truncated", &d), data);
}

/// A `[storage]` config file in `dir` with these extra lines.
fn storage_config(dir: &std::path::Path, lines: &str) -> std::path::PathBuf {
    let p = dir.join("registry.toml");
    berth_test_support::write_file(&p, format!("[storage]\n{lines}\n").as_bytes());
    p
}

/// Bytes of every file under `dir`.
fn bytes_under(dir: &std::path::Path) -> u64 {
    walk_files(dir)
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

/// Issue 13 §3.1: a push that fills the disk (a real ENOSPC, on an 8 MiB tmpfs, the free
/// space reserve turned off) is answered 503 UNAVAILABLE with Retry-After, its partial data
/// is removed at once, and the next push succeeds: the disk recovers without an operator.
#[test]
fn push_that_fills_the_disk_is_discarded_and_the_space_comes_back() {
    let fs = Tmpfs::new(8 * 1024);
    let conf_dir = tempfile::tempdir().expect("tempdir");
    let conf = storage_config(conf_dir.path(), "min_free_bytes = 0");
    let registry = Registry::start(
        RegistryOptions::new()
            .data_dir(fs.path().join("data"))
            .arg("--config")
            .arg(&conf),
    );
    let http = registry.http();
    let free_at_start = fs.available();
    let big = random_bytes(41, 12 << 20);
    let d = sha256(&big);

    let check_full = |r: &berth_test_support::Resp, what: &str| {
        r.expect_status(503, what);
        assert!(
            r.error_codes().iter().any(|c| c == "UNAVAILABLE"),
            "{what}: {}",
            r.text()
        );
        assert!(r.header("retry-after").is_some(), "{what}: no Retry-After");
        assert!(r.text().contains("full"), "{what}: {}", r.text());
    };
    let check_space_back = |what: &str| {
        let held = bytes_under(registry.data_dir());
        assert!(
            held < 64 * 1024,
            "{what}: {held} bytes are still stored under the data directory"
        );
        let free = fs.available();
        assert!(
            free + 256 * 1024 >= free_at_start,
            "{what}: {free} bytes free, {free_at_start} before the push"
        );
    };

    // monolithic POST ?digest=
    let r = http.request(
        "POST",
        &format!("/v2/full/disk/blobs/uploads/?digest={d}"),
        &[("content-type", "application/octet-stream")],
        Some(&big),
    );
    check_full(&r, "monolithic push larger than the disk");
    check_space_back("after the monolithic push");

    // POST, then one PATCH
    let loc = http.start_upload("full/disk");
    let r = patch_chunk(&http, &loc, &format!("0-{}", big.len() - 1), &big);
    check_full(&r, "PATCH larger than the disk");
    let status = http.get(&loc);
    status.expect_status(404, "status of the discarded upload");
    assert!(
        status
            .error_codes()
            .iter()
            .any(|c| c == "BLOB_UPLOAD_UNKNOWN"),
        "{}",
        status.text()
    );
    check_space_back("after the chunked push");

    // a push that fits succeeds
    let small = random_bytes(42, 4 << 20);
    let ds = http.push_blob("full/disk", &small);
    assert_eq!(http.get_verified_blob("full/disk", &ds), small);
}

/// Issue 13 §3.1: below `storage.min_free_bytes` of free space (statvfs of the data
/// directory) uploads are refused with 503 and Retry-After before anything is written; an
/// upload that would eat into the reserve is stopped while it streams and removed.
#[test]
fn uploads_are_refused_below_the_free_space_reserve() {
    let fs = Tmpfs::new(16 * 1024);
    let conf_dir = tempfile::tempdir().expect("tempdir");
    let conf = storage_config(conf_dir.path(), &format!("min_free_bytes = {}", 8 << 20));
    let registry = Registry::start(
        RegistryOptions::new()
            .data_dir(fs.path().join("data"))
            .arg("--config")
            .arg(&conf),
    );
    let http = registry.http();
    let free_at_start = fs.available();
    let refused = |r: &berth_test_support::Resp, what: &str| {
        r.expect_status(503, what);
        assert!(
            r.error_codes().iter().any(|c| c == "UNAVAILABLE"),
            "{what}: {}",
            r.text()
        );
        assert!(r.header("retry-after").is_some(), "{what}: no Retry-After");
    };

    // 10 MiB of 16 would leave less than the 8 MiB reserve: stopped midway, removed
    let ten = random_bytes(43, 10 << 20);
    let r = http.request(
        "POST",
        &format!("/v2/reserve/blobs/uploads/?digest={}", sha256(&ten)),
        &[("content-type", "application/octet-stream")],
        Some(&ten),
    );
    refused(&r, "an upload into the reserve");
    assert!(
        fs.available() + 256 * 1024 >= free_at_start,
        "the stopped upload still holds space: {} free of {free_at_start}",
        fs.available()
    );

    // 4 MiB leaves the reserve intact
    let four = random_bytes(44, 4 << 20);
    http.push_blob("reserve", &four);

    // something else takes the free space below the reserve: refused before writing
    let filler = fs.path().join("filler");
    berth_test_support::write_file(&filler, &vec![7u8; 6 << 20]);
    assert!(fs.available() < 8 << 20, "the filler did not fill enough");
    let small = random_bytes(45, 1000);
    let before = bytes_under(registry.data_dir());
    let r = http.request("POST", "/v2/reserve/blobs/uploads/", &[], None);
    refused(&r, "POST below the reserve");
    let r = http.request(
        "POST",
        &format!("/v2/reserve/blobs/uploads/?digest={}", sha256(&small)),
        &[("content-type", "application/octet-stream")],
        Some(&small),
    );
    refused(&r, "monolithic POST below the reserve");
    assert_eq!(
        bytes_under(registry.data_dir()),
        before,
        "a refused upload stored data"
    );

    // space freed: uploads are accepted again, without a restart
    std::fs::remove_file(&filler).expect("remove the filler");
    assert_eq!(http.push_blob("reserve", &small), sha256(&small));
}

/// Issue 13 §3.1: an upload whose client went away mid-PATCH stays resumable, but once it
/// has been idle for `gc.upload_expiry_secs` the server itself removes it (every
/// `gc.upload_purge_interval_secs`): the space comes back without an operator running gc.
#[test]
fn the_server_removes_abandoned_uploads_by_itself() {
    let conf_dir = tempfile::tempdir().expect("tempdir");
    let conf = conf_dir.path().join("registry.toml");
    berth_test_support::write_file(
        &conf,
        b"[gc]\nupload_expiry_secs = 2\nupload_purge_interval_secs = 1\n",
    );
    let registry = Registry::start(RegistryOptions::new().arg("--config").arg(&conf));
    let http = registry.http();
    let n: usize = 1 << 20;
    let data = random_bytes(46, n);
    let loc = http.start_upload("gone/client");
    // Content-Length: N, then N/2 bytes, then the client is gone.
    let mut s = TcpStream::connect(registry.addr()).expect("connect");
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\n\r\n",
        registry.host()
    );
    s.write_all(head.as_bytes()).expect("write head");
    s.write_all(&data[..n / 2]).expect("write half the body");
    s.flush().expect("flush");
    let _ = s.shutdown(Shutdown::Both);
    drop(s);
    let uploads = registry
        .storage_root()
        .join("v1/repositories/gone/client/_uploads");
    let sessions = || {
        std::fs::read_dir(&uploads)
            .map(|rd| rd.count())
            .unwrap_or(0)
    };
    assert_eq!(sessions(), 1, "the session of the cut PATCH");
    // bounded: expiry 2 s, purge every 1 s
    let gone = wait_until(Duration::from_secs(30), || sessions() == 0);
    assert!(
        gone,
        "the abandoned upload is still stored: {}",
        uploads.display()
    );
    let r = http.get(&loc);
    r.expect_status(404, "status of the purged upload");
    assert!(
        r.error_codes().iter().any(|c| c == "BLOB_UPLOAD_UNKNOWN"),
        "{}",
        r.text()
    );
    // a live upload is kept: it is never idle that long here
    let loc = http.start_upload("gone/client");
    let r = patch_chunk(&http, &loc, "0-999", &data[..1000]);
    r.expect_status(202, "PATCH of a live upload");
    let loc = r.header("location").expect("Location").to_owned();
    let d = sha256(&data[..1000]);
    http.request(
        "PUT",
        &with_query(&loc, &format!("digest={d}")),
        &[],
        Some(b""),
    )
    .expect_status(201, "completing the live upload");
}
