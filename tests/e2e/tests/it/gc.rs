//! `berth registry gc`: running while images are pushed it never takes a blob a pushed
//! manifest needs; it does collect unreferenced blobs past the grace period and uploads
//! abandoned past the upload expiry.

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime};

use berth_test_support::{
    Digest, Http, Layer, MEDIA_MANIFEST, Registry, RegistryOptions, berth_bin, random_bytes,
    run_with_timeout, set_last_referenced, set_mtime, with_query,
};
use serde_json::Value;

use crate::common::{PushedImage, build_image, patch_chunk};

/// Run `berth registry gc --data <data> --json <extra…>` and return its report.
#[track_caller]
fn gc(registry: &Registry, extra: &[&str]) -> Value {
    let mut cmd = Command::new(berth_bin());
    cmd.args(["--log-level", "warn", "registry", "gc", "--json", "--data"])
        .arg(registry.data_dir())
        .args(extra)
        .env_remove("RUST_LOG");
    let out = run_with_timeout(&mut cmd, Duration::from_secs(300));
    assert!(
        out.status.success(),
        "berth registry gc {extra:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "gc --json printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn n(report: &Value, field: &str) -> u64 {
    report[field]
        .as_u64()
        .unwrap_or_else(|| panic!("gc report has no {field}: {report}"))
}

/// Push one image (unique content) over `http`: blobs, then the manifest. `None` when the
/// registry refused a step with a clean 4xx (a racing GC may do that; the client would
/// retry).
///
/// With `age` (the registry's blobs directory), every blob's "last referenced" record is
/// dated two hours back after its upload and before the manifest PUT — as if the layers had
/// been pushed long ago — and an
/// extra unreferenced blob is pushed and aged, so a concurrent collection always has real
/// candidates to sweep while manifests that reference old blobs arrive.
fn try_push(
    http: &Http,
    repo: &str,
    tag: &str,
    seed: u64,
    age: Option<&std::path::Path>,
) -> Result<PushedImage, String> {
    let layers = [
        Layer::random(seed * 2, 32 * 1024),
        Layer::random(seed * 2 + 1, 4096),
    ];
    let (manifest, blobs) = build_image(&layers);
    for (d, data) in &blobs {
        let loc = http
            .try_request(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                Some(b""),
            )
            .map_err(|e| e.to_string())?;
        if loc.status != 202 {
            return Err(format!("POST: {} {}", loc.status, loc.text()));
        }
        let loc = loc.header("location").unwrap_or_default().to_owned();
        let r = http
            .try_request(
                "PUT",
                &with_query(&loc, &format!("digest={d}")),
                &[],
                Some(data),
            )
            .map_err(|e| e.to_string())?;
        if r.status != 201 {
            return Err(format!("PUT blob: {} {}", r.status, r.text()));
        }
    }
    if let Some(blobs_dir) = age {
        let orphan = random_bytes(seed * 7 + 3, 2048);
        let od = Digest::sha256_of(&orphan);
        let r = http
            .try_request(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={od}"),
                &[],
                Some(&orphan),
            )
            .map_err(|e| e.to_string())?;
        if r.status != 201 {
            return Err(format!("POST orphan: {} {}", r.status, r.text()));
        }
        let old = SystemTime::now() - Duration::from_secs(2 * 3600);
        for d in blobs.iter().map(|(d, _)| d).chain([&od]) {
            let f = blobs_dir.join(format!("sha256/{}/{}/data", &d.hex()[..2], d.hex()));
            // a collection may already have taken it: then the manifest PUT is refused
            if f.exists() {
                set_last_referenced(blobs_dir, d, old);
            }
        }
    }
    let r = http
        .try_request(
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[("content-type", MEDIA_MANIFEST)],
            Some(&manifest),
        )
        .map_err(|e| e.to_string())?;
    if r.status != 201 {
        return Err(format!("PUT manifest: {} {}", r.status, r.text()));
    }
    Ok(PushedImage {
        repo: repo.to_owned(),
        digest: Digest::sha256_of(&manifest),
        manifest,
        blobs: blobs.into_iter().map(|(d, _)| d).collect(),
    })
}

/// Every pushed manifest and each of its blobs is still served and verifies; returns what
/// is missing or corrupt.
pub(crate) fn missing(http: &Http, pushed: &[PushedImage]) -> Vec<String> {
    let mut out = Vec::new();
    for img in pushed {
        let r = http.get(&format!("/v2/{}/manifests/{}", img.repo, img.digest));
        if r.status != 200 || r.body != img.manifest {
            out.push(format!(
                "manifest {} of {}: {}",
                img.digest, img.repo, r.status
            ));
        }
        for d in &img.blobs {
            let r = http.get(&format!("/v2/{}/blobs/{d}", img.repo));
            if r.status != 200 || Digest::sha256_of(&r.body) != *d {
                out.push(format!(
                    "blob {d} of manifest {} in {}: {}",
                    img.digest, img.repo, r.status
                ));
            }
        }
    }
    out
}

/// Push continuously from three threads while `gc <gc_args>` runs `runs` times; then check
/// every manifest that was accepted is whole, before and after one more collection. With
/// `refusals_allowed` false, no push may be refused either (a collection with the default
/// grace and upload expiry has no business with content minutes old).
fn pushes_survive_concurrent_gc(
    gc_args: &[&str],
    runs: usize,
    refusals_allowed: bool,
    aged_layers: bool,
) {
    let registry = Registry::start(RegistryOptions::new());
    let blobs_dir = aged_layers.then(|| registry.blobs_dir());
    let stop = Arc::new(AtomicBool::new(false));
    let pushed = Arc::new(Mutex::new(Vec::<PushedImage>::new()));
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let accepted = Arc::new(AtomicUsize::new(0));
    // stops the pushers however this function ends (a failed assertion included)
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let _stop_guard = StopOnDrop(Arc::clone(&stop));
    let mut threads = Vec::new();
    for t in 0..3u64 {
        let http = registry.http();
        let blobs_dir = blobs_dir.clone();
        let (stop, pushed, refused, accepted) = (
            Arc::clone(&stop),
            Arc::clone(&pushed),
            Arc::clone(&refused),
            Arc::clone(&accepted),
        );
        threads.push(thread::spawn(move || {
            let repo = format!("gc/pusher{t}");
            // bounded: at most 2000 images per thread
            for i in 0..2000u64 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                match try_push(
                    &http,
                    &repo,
                    &format!("t{i}"),
                    10_000 * (t + 1) + i,
                    blobs_dir.as_deref(),
                ) {
                    Ok(img) => {
                        pushed.lock().expect("lock").push(img);
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => refused.lock().expect("lock").push(e),
                }
            }
        }));
    }
    let mut reports = Vec::new();
    let mut deleted = 0;
    for run in 0..runs {
        // let some pushes land between collections
        let target = accepted.load(Ordering::SeqCst) + 3;
        berth_test_support::wait_until(Duration::from_secs(60), || {
            accepted.load(Ordering::SeqCst) >= target
        });
        let r = gc(&registry, gc_args);
        deleted += n(&r, "blobs_deleted");
        reports.push(format!("run {run}: {r}"));
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().expect("pusher thread");
    }
    let pushed = pushed.lock().expect("lock").clone();
    let refused = refused.lock().expect("lock").clone();
    assert!(
        pushed.len() >= runs,
        "too few pushes overlapped the collections: {} accepted, refusals: {refused:?}",
        pushed.len()
    );
    assert!(
        refusals_allowed || refused.is_empty(),
        "gc {gc_args:?} made {} of {} pushes fail:\n{}",
        refused.len(),
        refused.len() + pushed.len(),
        refused.join("\n")
    );
    assert!(
        !aged_layers || deleted > 0,
        "the collections swept nothing, so they never raced a push:\n{}",
        reports.join("\n")
    );
    let http = registry.http();
    let lost = missing(&http, &pushed);
    assert!(
        lost.is_empty(),
        "gc {gc_args:?} running during pushes lost content of {} accepted manifests:\n{}\n\ngc reports:\n{}\n{} pushes refused (clean failures), e.g. {:?}",
        pushed.len(),
        lost.join("\n"),
        reports.join("\n"),
        refused.len(),
        refused.first()
    );
    // with the pushes stopped, one more collection keeps everything referenced
    let r = gc(&registry, gc_args);
    let lost = missing(&http, &pushed);
    assert!(
        lost.is_empty(),
        "gc {gc_args:?} after the pushes lost referenced content:\n{}\nreport: {r}",
        lost.join("\n")
    );
    eprintln!(
        "gc {gc_args:?}: {} images pushed, {} pushes refused, {runs} collections",
        pushed.len(),
        refused.len()
    );
}

#[test]
fn gc_refuses_a_grace_period_shorter_than_the_minimum() {
    let registry = Registry::start(RegistryOptions::new());
    let mut cmd = Command::new(berth_bin());
    cmd.args(["registry", "gc", "--grace", "0s", "--data"])
        .arg(registry.data_dir());
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "gc --grace 0s succeeded:\n{stderr}");
    assert!(stderr.contains("shorter than the minimum"), "{stderr}");
}

#[test]
fn gc_at_the_minimum_grace_during_pushes_of_old_layers_keeps_every_accepted_manifest() {
    // Layers aged to two hours before their manifest arrives: each collection has real
    // candidates, and races manifest PUTs that must mark (and so keep) what they reference.
    // A push may be refused (MANIFEST_BLOB_UNKNOWN: the client re-uploads), but an accepted
    // manifest must stay whole.
    pushes_survive_concurrent_gc(&["--grace", "60s"], 6, true, true);
}

#[test]
fn gc_with_default_grace_during_pushes_keeps_every_blob_of_accepted_manifests() {
    pushes_survive_concurrent_gc(&[], 6, false, false);
}

#[test]
fn gc_collects_an_unreferenced_blob_older_than_the_grace_period() {
    let registry = Registry::start(RegistryOptions::new());
    let http = registry.http();
    let repo = "gc/sweep";
    let kept = crate::common::push_image(&http, repo, "v1", 1, &[5000, 6000]);
    let old_orphan = http.push_blob(repo, &random_bytes(2, 7000));
    let young_orphan = http.push_blob(repo, &random_bytes(3, 8000));
    let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    let blob_file = |d: &Digest| {
        registry
            .blobs_dir()
            .join(format!("sha256/{}/{}/data", &d.hex()[..2], d.hex()))
    };
    for d in kept.blobs.iter().chain([&kept.digest, &old_orphan]) {
        registry.set_last_referenced(d, two_hours_ago);
    }

    let report = gc(&registry, &["--grace", "1h"]);
    assert_eq!(n(&report, "blobs_deleted"), 1, "report: {report}");
    assert!(n(&report, "bytes_freed") >= 7000, "report: {report}");
    assert!(n(&report, "blobs_kept_in_grace") >= 1, "report: {report}");
    assert!(
        !blob_file(&old_orphan).exists(),
        "the old orphan is still on disk"
    );
    http.head(&format!("/v2/{repo}/blobs/{old_orphan}"))
        .expect_status(404, "HEAD the collected blob");
    http.get_verified_blob(repo, &young_orphan);
    for d in &kept.blobs {
        http.get_verified_blob(repo, d);
    }
    http.get(&format!("/v2/{repo}/manifests/v1"))
        .expect_status(200, "the referenced manifest");

    // a dry run reports without deleting
    registry.set_last_referenced(&young_orphan, two_hours_ago);
    let report = gc(&registry, &["--grace", "1h", "--dry-run"]);
    assert_eq!(n(&report, "blobs_deleted"), 1, "dry-run report: {report}");
    http.get_verified_blob(repo, &young_orphan);
}

#[test]
fn gc_removes_uploads_abandoned_longer_than_the_upload_expiry() {
    let registry = Registry::start(RegistryOptions::new());
    let http = registry.http();
    let data = random_bytes(4, 10_000);
    let start = |repo: &str, n: usize| {
        let loc = http.start_upload(repo);
        let r = patch_chunk(&http, &loc, &format!("0-{}", n - 1), &data[..n]);
        r.expect_status(202, "PATCH");
        r.header("location").expect("Location").to_owned()
    };
    let session_dir = |repo: &str, loc: &str| {
        let id = loc
            .split('?')
            .next()
            .and_then(|p| p.rsplit('/').next())
            .expect("session id");
        registry
            .storage_root()
            .join(format!("v1/repositories/{repo}/_uploads/{id}"))
    };
    // one repository that has an image, one where nothing was ever committed (a client
    // that gave up on its first push)
    crate::common::push_image(&http, "gc/with-image", "v1", 9, &[1000]);
    let abandoned = [
        ("gc/with-image", start("gc/with-image", 4000)),
        ("gc/never-committed", start("gc/never-committed", 3000)),
    ];
    let active = start("gc/with-image", 5000);
    let two_days_ago = SystemTime::now() - Duration::from_secs(48 * 3600);
    for (repo, loc) in &abandoned {
        let dir = session_dir(repo, loc);
        assert!(dir.is_dir(), "upload session directory {}", dir.display());
        for f in berth_test_support::walk_files(&dir) {
            set_mtime(f, two_days_ago);
        }
        // the session directory's own time counts as activity too (it changes while a
        // session is created or removed)
        std::fs::File::open(&dir)
            .and_then(|d| d.set_modified(two_days_ago))
            .expect("age the session directory");
    }

    let report = gc(&registry, &["--upload-expiry", "24h"]);
    let mut failures = Vec::new();
    for (repo, loc) in &abandoned {
        let dir = session_dir(repo, loc);
        if dir.exists() {
            failures.push(format!("{} is still there", dir.display()));
        }
        let r = http.get(loc);
        if r.status != 404 || !r.error_codes().iter().any(|c| c == "BLOB_UPLOAD_UNKNOWN") {
            failures.push(format!(
                "status of the abandoned upload in {repo}: {} {}",
                r.status,
                r.text()
            ));
        }
    }
    if n(&report, "uploads_deleted") != 2 {
        failures.push(format!("uploads_deleted is not 2: {report}"));
    }
    assert!(
        failures.is_empty(),
        "abandoned uploads were not collected:\n{}",
        failures.join("\n")
    );

    // the active one is untouched and completes
    let r = http.get(&active);
    r.expect_status(204, "status of the active upload");
    assert_eq!(r.header("range"), Some("0-4999"));
    let r = patch_chunk(&http, &active, "5000-9999", &data[5000..]);
    r.expect_status(202, "continuing the active upload");
    let loc = r.header("location").expect("Location").to_owned();
    let d = Digest::sha256_of(&data);
    http.request(
        "PUT",
        &with_query(&loc, &format!("digest={d}")),
        &[],
        Some(b""),
    )
    .expect_status(201, "completing the active upload");
    http.get_verified_blob("gc/with-image", &d);
}

/// Issue 13 §3.7, issue 20: two `berth registry gc` processes at once — the second refuses,
/// naming the first (which holds the lease object under `<storage>/v1/_gc/lease/`), so
/// neither can undo what the other moved aside.
/// The first is held mid-collection deterministically: one of its manifest revision links
/// is a FIFO, and reading it blocks until the test writes to it.
#[test]
fn a_second_gc_refuses_while_one_runs() {
    let registry = Registry::start(RegistryOptions::new());
    let http = registry.http();
    crate::common::push_image(&http, "gc/lock", "v1", 11, &[1000]);
    let ghost = Digest::sha256_of(b"a revision that is a FIFO");
    let link_dir = registry.storage_root().join(format!(
        "v1/repositories/gc/lock/_manifests/revisions/sha256/{}",
        ghost.hex()
    ));
    std::fs::create_dir_all(&link_dir).expect("create the revision directory");
    let fifo = link_dir.join("link");
    let out = run_with_timeout(Command::new("mkfifo").arg(&fifo), Duration::from_secs(30));
    assert!(
        out.status.success(),
        "mkfifo: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let logs = tempfile::tempdir().expect("tempdir");
    let first_err = logs.path().join("first.stderr");
    let mut first = berth_test_support::ChildGuard::spawn(
        Command::new(berth_bin())
            .args(["--log-level", "warn", "registry", "gc", "--json", "--data"])
            .arg(registry.data_dir())
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&first_err)
                    .expect("stderr file"),
            ),
    );
    // the first collection holds the lease (and then blocks on the FIFO): its object in
    // the storage names its process and is not released
    let lease_dir = registry.storage_root().join("v1/_gc/lease");
    let pid = first.id().expect("pid of the first gc");
    let holds = |pid: u32| {
        std::fs::read_dir(&lease_dir).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                std::fs::read(e.path())
                    .ok()
                    .and_then(|raw| serde_json::from_slice::<Value>(&raw).ok())
                    .is_some_and(|r| {
                        r["owner"]["pid"].as_u64() == Some(u64::from(pid))
                            && r["released"].as_bool() == Some(false)
                    })
            })
        })
    };
    let held = berth_test_support::wait_until(Duration::from_secs(60), || holds(pid));

    let mut second = Command::new(berth_bin());
    second
        .args(["--log-level", "warn", "registry", "gc", "--data"])
        .arg(registry.data_dir())
        .env_remove("RUST_LOG");
    let out = run_with_timeout(&mut second, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        held,
        "the first gc never held a lease in {}",
        lease_dir.display()
    );
    assert!(!out.status.success(), "the second gc ran: {stderr}");
    assert!(
        stderr.contains("another garbage collection is running")
            && stderr.contains(&format!("process {pid} ")),
        "the refusal does not name the holder: {stderr}"
    );

    // release the first: it finishes normally
    let writer = thread::spawn(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo)
            .expect("open the FIFO");
        f.write_all(b"{}").expect("write the FIFO");
    });
    let mut status = None;
    berth_test_support::wait_until(Duration::from_secs(60), || {
        status = first.child().and_then(|c| c.try_wait().ok().flatten());
        status.is_some()
    });
    let status = status.expect("the first gc did not finish");
    assert!(
        status.success(),
        "the first gc failed: {}",
        std::fs::read_to_string(&first_err).unwrap_or_default()
    );
    writer.join().expect("FIFO writer");
    std::fs::remove_dir_all(&link_dir).expect("remove the FIFO");

    // the lease was released (not left to expire): the next collection runs at once
    assert!(!holds(pid), "the first gc left its lease held");
    gc(&registry, &[]);
}
