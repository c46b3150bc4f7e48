//! Crash safety: SIGKILL during concurrent chunked uploads, then a restart on the same data.
//! Committed blobs survive intact, nothing unverified is a blob, and every interrupted
//! upload either resumes from the offset the server reports or is refused cleanly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use berth_test_support::{
    Digest, Http, Registry, RegistryOptions, random_bytes, sha256, wait_until, walk_files,
    with_query,
};

use crate::common::{parse_range, patch_chunk};

const UPLOADS: usize = 8;
const BLOB: usize = 8 << 20;
const CHUNK: usize = 512 << 10;
const REPO: &str = "crash/uploads";

/// How an upload ended before the restart.
#[derive(Debug)]
enum Outcome {
    /// 201 received.
    Committed(Digest),
    /// Interrupted; the session's Location and how many bytes the server acknowledged.
    Interrupted { location: String, acked: usize },
    /// The crash came before a session existed.
    NotStarted,
}

/// Upload `data` in chunks. `pause_at` = after that many chunks, report through `halfway`
/// and block until `gate` is closed (the test kills the server meanwhile).
fn upload(
    http: &Http,
    data: &[u8],
    pause_at: Option<usize>,
    halfway: &AtomicUsize,
    gate: &mpsc::Receiver<()>,
) -> Outcome {
    let Ok(r) = http.try_request(
        "POST",
        &format!("/v2/{REPO}/blobs/uploads/"),
        &[],
        Some(b""),
    ) else {
        return Outcome::NotStarted;
    };
    if r.status != 202 {
        return Outcome::NotStarted;
    }
    let mut location = r.header("location").expect("Location").to_owned();
    let mut acked = 0usize;
    for (i, c) in data.chunks(CHUNK).enumerate() {
        if Some(i) == pause_at {
            halfway.fetch_add(1, Ordering::SeqCst);
            let _ = gate.recv(); // returns when the test drops the sender
        }
        let range = format!("{acked}-{}", acked + c.len() - 1);
        match http.try_request(
            "PATCH",
            &location,
            &[
                ("content-type", "application/octet-stream"),
                ("content-range", &range),
            ],
            Some(c),
        ) {
            Ok(r) if r.status == 202 => {
                location = r.header("location").expect("Location").to_owned();
                acked += c.len();
            }
            _ => return Outcome::Interrupted { location, acked },
        }
    }
    let d = sha256(data);
    match http.try_request(
        "PUT",
        &with_query(&location, &format!("digest={d}")),
        &[],
        Some(b""),
    ) {
        Ok(r) if r.status == 201 => Outcome::Committed(d),
        _ => Outcome::Interrupted { location, acked },
    }
}

#[test]
fn sigkill_during_concurrent_uploads_loses_no_committed_blob_and_exposes_no_corrupt_one() {
    let mut registry = Registry::start(RegistryOptions::new());
    let blobs: Vec<Arc<Vec<u8>>> = (0..UPLOADS)
        .map(|i| Arc::new(random_bytes(1000 + i as u64, BLOB)))
        .collect();
    let committed = Arc::new(AtomicUsize::new(0));
    let halfway = Arc::new(AtomicUsize::new(0));
    let mut gates = Vec::new();
    let mut threads = Vec::new();
    for (i, data) in blobs.iter().enumerate() {
        let (tx, rx) = mpsc::channel::<()>();
        gates.push(tx);
        let http = registry.http();
        let data = Arc::clone(data);
        let (committed, halfway) = (Arc::clone(&committed), Arc::clone(&halfway));
        // 0-1 run to completion, 2-4 stop halfway until the crash, 5-7 run free and are
        // caught wherever the crash finds them
        let pause_at = (2..5).contains(&i).then_some(BLOB / CHUNK / 2);
        threads.push(thread::spawn(move || {
            let out = upload(&http, &data, pause_at, &halfway, &rx);
            if matches!(out, Outcome::Committed(_)) {
                committed.fetch_add(1, Ordering::SeqCst);
            }
            out
        }));
    }
    assert!(
        wait_until(Duration::from_secs(120), || {
            committed.load(Ordering::SeqCst) >= 2 && halfway.load(Ordering::SeqCst) >= 3
        }),
        "uploads did not progress: {} committed, {} halfway",
        committed.load(Ordering::SeqCst),
        halfway.load(Ordering::SeqCst)
    );
    registry.kill9();
    drop(gates);
    let outcomes: Vec<Outcome> = threads
        .into_iter()
        .map(|t| t.join().expect("upload thread"))
        .collect();

    registry.restart();
    let http = registry.http();

    // 1. every 201 survived intact
    for (i, o) in outcomes.iter().enumerate() {
        if let Outcome::Committed(d) = o {
            assert_eq!(&http.get_verified_blob(REPO, d), &*blobs[i]);
        }
    }

    // 2. no file in the blobs directory holds content other than its name says
    let mut corrupt = Vec::new();
    for f in walk_files(registry.blobs_dir()) {
        let hex = f
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let content = std::fs::read(&f).expect("read blob");
        let actual = sha256(&content);
        if f.file_name().is_some_and(|n| n == "data") && actual.hex() != hex {
            corrupt.push(format!("{} holds {actual}", f.display()));
        }
    }
    assert!(
        corrupt.is_empty(),
        "corrupt blobs after the crash:\n{}",
        corrupt.join("\n")
    );

    // 3. each interrupted upload resumes or is refused cleanly
    let mut resumed = 0;
    for (i, o) in outcomes.iter().enumerate() {
        let Outcome::Interrupted { location, acked } = o else {
            continue;
        };
        let data = &blobs[i];
        let d = sha256(data);
        let r = http.get(location);
        if r.status == 404 {
            assert!(
                r.error_codes().iter().any(|c| c == "BLOB_UPLOAD_UNKNOWN"),
                "upload {i}: 404 without BLOB_UPLOAD_UNKNOWN: {}",
                r.text()
            );
            // the final PUT may have committed before the crash and lost only its response
            if http.head(&format!("/v2/{REPO}/blobs/{d}")).status == 200 {
                assert_eq!(&http.get_verified_blob(REPO, &d), &**data);
            }
            continue;
        }
        r.expect_status(204, &format!("status of interrupted upload {i}"));
        let (_, last) = parse_range(r.header("range").expect("Range"));
        let location = r.header("location").expect("Location").to_owned();
        // "0-0" is both "empty" and "one byte"; chunks are far larger than one byte
        let offset = if last == 0 { 0 } else { last as usize + 1 };
        assert!(
            offset <= data.len(),
            "upload {i}: the server reports {offset} bytes of {}",
            data.len()
        );
        if offset < *acked {
            // Acknowledged bytes may only be missing from the session if the crash hit the
            // final PUT after it had moved them into place as the blob.
            let r = http.head(&format!("/v2/{REPO}/blobs/{d}"));
            assert_eq!(
                r.status, 200,
                "upload {i}: {acked} bytes were acknowledged, the session now reports {offset}, and the blob does not exist: acknowledged data was lost"
            );
            assert_eq!(&http.get_verified_blob(REPO, &d), &**data);
        }
        let mut loc = location;
        if offset < data.len() {
            let r = patch_chunk(
                &http,
                &loc,
                &format!("{offset}-{}", data.len() - 1),
                &data[offset..],
            );
            r.expect_status(202, &format!("resuming upload {i} at {offset}"));
            loc = r.header("location").expect("Location").to_owned();
        }
        http.request(
            "PUT",
            &with_query(&loc, &format!("digest={d}")),
            &[],
            Some(b""),
        )
        .expect_status(201, &format!("completing resumed upload {i}"));
        assert_eq!(&http.get_verified_blob(REPO, &d), &**data);
        resumed += 1;
    }
    eprintln!(
        "crash test: {} committed before the crash, {resumed} resumed after it",
        outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Committed(_)))
            .count()
    );
}
