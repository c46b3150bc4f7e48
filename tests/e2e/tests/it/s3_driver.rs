//! The storage driver conformance suite (`berth_registry::storage::driver::testsuite`) on
//! berth's S3 driver, against real S3 servers: s3s-fs (which checks every signature) and
//! moto. Each run stores under a prefix of its own in a fresh server.

use berth_registry::storage::driver::testsuite;
use berth_registry::storage::s3::{AwsEnv, S3Config, S3Driver};
use berth_test_support::requires_tool;
use berth_test_support::{S3Kind, S3Server};

fn driver(s3: &S3Server, prefix: &str, part_size: u64) -> S3Driver {
    let config = S3Config {
        region: Some(s3.region().to_owned()),
        endpoint: Some(s3.endpoint()),
        prefix: prefix.to_owned(),
        path_style: true,
        allow_http: true,
        part_size,
        ..S3Config::new(s3.bucket())
    };
    let env = AwsEnv {
        vars: s3
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        home: None,
    };
    S3Driver::new(&config, &env).expect("S3 driver")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

/// 5 MiB parts: the suite's 64 MiB file is a 13-part multipart upload, and its uneven
/// chunks cross part boundaries.
const PART: u64 = 5 * 1024 * 1024;

#[test]
fn the_driver_suite_passes_on_s3s_fs() {
    if S3Kind::S3sFs.missing() {
        return;
    }
    let s3 = S3Server::s3s_fs();
    let d = driver(&s3, "suite", PART);
    // s3s-fs 0.14.1 checks If-None-Match with exists() and then writes, so concurrent
    // conditional creates can all win there (seen: 8 of 16); moto runs that part below
    runtime().block_on(testsuite::run_all_but_the_create_race(&d));
}

#[test]
fn the_driver_suite_passes_on_moto() {
    if S3Kind::Moto.missing() {
        return;
    }
    let s3 = S3Server::moto();
    let d = driver(&s3, "suite", PART);
    runtime().block_on(testsuite::run_all(&d));
}

/// With no prefix the keys sit at the bucket's root: same behaviour.
#[test]
fn the_driver_suite_passes_at_the_bucket_root() {
    if S3Kind::Moto.missing() {
        return;
    }
    let s3 = S3Server::moto();
    runtime().block_on(testsuite::basics(&driver(&s3, "", PART)));
}

/// Bad credentials are an error naming the path, never "not found" (which would make the
/// registry answer 404 for content it has).
#[test]
fn a_wrong_secret_is_an_error_not_a_missing_file() {
    requires_tool!("s3s-fs");
    let s3 = S3Server::s3s_fs();
    let mut config = S3Config {
        region: Some(s3.region().to_owned()),
        endpoint: Some(s3.endpoint()),
        prefix: "x".to_owned(),
        path_style: true,
        allow_http: true,
        part_size: PART,
        ..S3Config::new(s3.bucket())
    };
    let env = AwsEnv {
        vars: [
            ("AWS_ACCESS_KEY_ID".to_owned(), s3.access_key().to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "wrong".to_owned()),
        ]
        .into_iter()
        .collect(),
        home: None,
    };
    let d = S3Driver::new(&config, &env).expect("driver");
    let rt = runtime();
    use berth_registry::storage::Driver;
    for e in [
        rt.block_on(d.get_content("a/b")).unwrap_err(),
        rt.block_on(d.stat("a/b")).unwrap_err(),
    ] {
        assert!(!e.is_not_found(), "{e:?}");
        assert!(e.to_string().contains("a/b"), "{e}");
    }
    // a plain http endpoint without allow_http is refused before any request
    config.allow_http = false;
    let e = S3Driver::new(&config, &env).unwrap_err().to_string();
    assert!(e.contains("allow_http"), "{e}");
}

/// A chunked upload (several writers, so several segments) larger than a part is
/// concatenated on its move through a multipart upload; a reader from any offset crosses
/// the segments.
#[test]
fn segments_larger_than_a_part_are_assembled_on_move() {
    use berth_registry::storage::{Driver, UploadWriter};
    use tokio::io::AsyncReadExt;
    if S3Kind::S3sFs.missing() {
        return;
    }
    let s3 = S3Server::s3s_fs();
    let d = driver(&s3, "assemble", PART);
    // 3 writers of 4 MiB + 1 byte each: 3 segments, 12 MiB + 3 bytes, unaligned to the part
    let chunk = |i: u8| -> Vec<u8> {
        (0..4 * 1024 * 1024 + 1)
            .map(|n: usize| (n % 251) as u8 ^ i)
            .collect()
    };
    let want: Vec<u8> = (0..3u8).flat_map(chunk).collect();
    runtime().block_on(async {
        for i in 0..3u8 {
            let mut w = d.writer("up/s/data").await.unwrap();
            // in two writes, so a segment is not one write either
            let c = chunk(i);
            let (a, b) = c.split_at(1_000_003);
            w.write(a.to_vec().into()).await.unwrap();
            w.write(b.to_vec().into()).await.unwrap();
            let size = w.commit(true).await.unwrap();
            assert_eq!(size, (u64::from(i) + 1) * (4 * 1024 * 1024 + 1));
        }
        for offset in [0u64, 1, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1, 9_000_000] {
            let (mut r, size) = d.reader("up/s/data", offset).await.unwrap();
            assert_eq!(size, want.len() as u64);
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            assert!(got == want[offset as usize..], "read from {offset} differs");
        }
        d.move_to("up/s/data", "blobs/s").await.unwrap();
        assert!(d.stat("up/s/data").await.unwrap_err().is_not_found());
        let got = d.get_content("blobs/s").await.unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got[..] == want[..], "the assembled object differs");
    });
}
