//! Large uploads become blobs without a copy on object storage (issue 20): the commit
//! stores at the blob's key a reference to the upload's data, kept apart from the session;
//! pulls follow it; the collector deletes the data with the blob, sweeps data left
//! behind, and a commit and the collector never both have the same data. On moto, where
//! the conditional creates these rest on are atomic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_oci::Digest;
use berth_registry::gc::{GcOptions, GcReport, MIN_GRACE, collect};
use berth_registry::storage::{Driver, UploadWriter, paths};
use berth_test_support::{S3Kind, S3Server};
use bytes::Bytes;

use crate::s3::{PerClient, driver, server};
use crate::{TestRegistry, random_bytes};

/// Over the test driver's part size (5 MiB): adopted by reference.
const LARGE: usize = (5 << 20) + 12345;

fn registry(s3: &S3Server, prefix: &str) -> (TestRegistry, PerClient) {
    let mut config = berth_registry::Config::default();
    config.storage.min_free_bytes = 0;
    let d = driver(s3, prefix);
    (TestRegistry::serve(d.clone(), config), d)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn location(r: &crate::Resp) -> String {
    r.header("location").expect("a Location").to_owned()
}

/// POST, then `blob` in two PATCHes; returns the session's last location and its id.
fn upload_in_two(reg: &TestRegistry, repo: &str, blob: &[u8]) -> (String, String) {
    let octet = ("content-type", "application/octet-stream");
    let r = reg.req("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let mut loc = location(&r);
    let half = blob.len() / 2;
    for (range, part) in [
        (format!("0-{}", half - 1), &blob[..half]),
        (format!("{half}-{}", blob.len() - 1), &blob[half..]),
    ] {
        let r = reg.req(
            "PATCH",
            &loc,
            &[octet, ("content-range", range.as_str())],
            part,
        );
        assert_eq!(r.status, 202, "{}", r.text());
        loc = location(&r);
    }
    let id = loc
        .split('?')
        .next()
        .and_then(|p| p.rsplit('/').next())
        .unwrap()
        .to_owned();
    (loc, id)
}

fn commit(reg: &TestRegistry, loc: &str, d: &Digest) -> crate::Resp {
    let sep = if loc.contains('?') { '&' } else { '?' };
    reg.req("PUT", &format!("{loc}{sep}digest={d}"), &[], b"")
}

/// The keys under `prefix` (one listing page: these tests store few).
fn keys(s3: &S3Server, prefix: &str) -> Vec<String> {
    let text = s3.list(prefix).text();
    text.split("<Key>")
        .skip(1)
        .filter_map(|k| k.split("</Key>").next())
        .map(str::to_owned)
        .collect()
}

fn millis_ago(age: Duration) -> u128 {
    (SystemTime::now() - age)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

fn gc(d: &PerClient, upload_expiry: Duration) -> GcReport {
    let opts = GcOptions {
        grace: MIN_GRACE,
        upload_expiry,
        dry_run: false,
        lease: Default::default(),
    };
    rt().block_on(collect(d, &opts)).unwrap()
}

/// A 5 MiB+ blob pushed in two PATCHes: the blob's key holds a reference to the session's
/// data (which stays, claimed by an owner record), not a copy; GET whole and by range and
/// HEAD answer the content; the same blob committed again into another repository leaves
/// no second copy of data; the collector deletes the data with the blob.
#[test]
fn s3_a_large_upload_becomes_a_blob_by_reference_and_goes_with_it() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let prefix = "adopt";
    let (reg, d) = registry(&s3, prefix);
    let blob = random_bytes(71, LARGE);
    let digest = Digest::sha256_of(&blob);
    let (loc, id) = upload_in_two(&reg, "adopt/one", &blob);
    let r = commit(&reg, &loc, &digest);
    assert_eq!(r.status, 201, "{}", r.text());

    // the blob's key: a small reference object naming the session's data
    let of = rt()
        .block_on(d.adopted_from(&paths::blob_data(&digest)))
        .unwrap();
    assert_eq!(of, Some(paths::upload_data_apart(&id)));
    let stored = s3.get(&format!("{prefix}/{}", paths::blob_data(&digest)));
    assert_eq!(stored.status, 200);
    assert!(
        stored.body.len() < 4096,
        "the blob's key holds {} bytes: a copy, not a reference",
        stored.body.len()
    );
    assert!(
        stored.header("x-amz-meta-berth-reference").is_some(),
        "the reference's metadata"
    );
    // the session is gone; its data stays, with the owner record naming the blob
    assert!(
        keys(
            &s3,
            &format!("{prefix}/v1/repositories/adopt/one/_uploads/")
        )
        .is_empty()
    );
    let data_keys = keys(&s3, &format!("{prefix}/{}/", paths::upload_data_dir(&id)));
    assert!(
        data_keys.iter().any(|k| k.ends_with("/owner")) && data_keys.len() >= 3,
        "the data's keys: {data_keys:?}"
    );
    let owner = s3.get(&format!("{prefix}/{}", paths::upload_data_owner(&id)));
    assert!(
        String::from_utf8_lossy(&owner.body).starts_with(&digest.to_string()),
        "owner record {:?}",
        String::from_utf8_lossy(&owner.body)
    );

    // pulls
    let got = reg.get(&format!("/v2/adopt/one/blobs/{digest}"));
    assert_eq!(got.status, 200);
    assert!(got.body == blob, "the blob's content");
    let head = reg.req("HEAD", &format!("/v2/adopt/one/blobs/{digest}"), &[], b"");
    assert_eq!(
        head.header("content-length"),
        Some(LARGE.to_string().as_str())
    );
    let (from, to) = (LARGE / 2 - 100, LARGE / 2 + 100);
    let ranged = reg.req(
        "GET",
        &format!("/v2/adopt/one/blobs/{digest}"),
        &[("range", &format!("bytes={from}-{to}"))],
        b"",
    );
    assert_eq!(ranged.status, 206, "{}", ranged.text());
    assert!(
        ranged.body == blob[from..=to],
        "a range across the two segments"
    );

    // the same blob again, elsewhere: the content is there, its data is not kept
    let (loc2, id2) = upload_in_two(&reg, "adopt/two", &blob);
    let r = commit(&reg, &loc2, &digest);
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        keys(&s3, &format!("{prefix}/{}/", paths::upload_data_dir(&id2))).is_empty(),
        "the second upload's data was kept"
    );

    // no manifest names it, its clock is old: the collector deletes it and its data
    let old = millis_ago(Duration::from_secs(7200)).to_string();
    let put = s3.put(
        &format!("{prefix}/{}", paths::blob_last_referenced(&digest)),
        old.as_bytes(),
        &[],
    );
    assert_eq!(put.status, 200);
    let report = gc(&d, Duration::from_secs(86400));
    assert_eq!(report.blobs_deleted, 1, "{report:?}");
    assert_eq!(report.bytes_freed, LARGE as u64, "{report:?}");
    assert!(
        keys(&s3, &format!("{prefix}/{}/", paths::upload_data_root())).is_empty(),
        "data left after its blob was collected"
    );
    assert_eq!(
        reg.get(&format!("/v2/adopt/one/blobs/{digest}")).status,
        404
    );
}

/// Write `len` bytes of data apart for session `id`, as an upload does.
async fn stage_data(d: &PerClient, id: &str, len: usize) {
    let mut w = d.writer(&paths::upload_data_apart(id)).await.unwrap();
    w.write(Bytes::from(random_bytes(9, len))).await.unwrap();
    w.commit(true).await.unwrap();
}

/// Data left behind is swept, and only that: data whose owner names a blob that does not
/// reference it, once the record is older than the reference window; a reaper's claim
/// that was never finished; data nobody claimed, idle past the upload expiry. Data a blob
/// references, and a fresh owner record, are kept.
#[test]
fn s3_the_collector_sweeps_upload_data_left_behind_and_only_that() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let prefix = "leftover";
    let (reg, d) = registry(&s3, prefix);
    // referenced: a blob adopted, then named by a pushed manifest, so it is marked
    let blob = random_bytes(72, LARGE);
    let digest = Digest::sha256_of(&blob);
    let (loc, kept) = upload_in_two(&reg, "left/img", &blob);
    assert_eq!(commit(&reg, &loc, &digest).status, 201);
    reg.push_image("left/img", "v1", &[&blob]);
    assert_eq!(
        rt().block_on(d.adopted_from(&paths::blob_data(&digest)))
            .unwrap(),
        Some(paths::upload_data_apart(&kept))
    );

    let rt = rt();
    let old = millis_ago(Duration::from_secs(2 * 3600));
    let nobody = Digest::sha256_of(b"no such blob");
    let stale = [
        // an owner naming a blob that is not there, two hours ago
        ("stale-owner", format!("{nobody} {old}")),
        // an owner naming a blob that references other data
        ("other-ref", format!("{digest} {old}")),
        // a reaper that died between its claim and its deletes
        ("dead-reaper", format!("reaped {old}")),
    ];
    for (id, record) in &stale {
        rt.block_on(async {
            stage_data(&d, id, 1000).await;
            d.put_new(&paths::upload_data_owner(id), Bytes::from(record.clone()))
                .await
                .unwrap();
        });
    }
    // fresh: an owner record written a moment ago (its reference may still be coming)
    rt.block_on(async {
        stage_data(&d, "fresh-owner", 1000).await;
        let record = format!("{nobody} {}", millis_ago(Duration::ZERO));
        d.put_new(
            &paths::upload_data_owner("fresh-owner"),
            Bytes::from(record),
        )
        .await
        .unwrap();
        // unclaimed: an upload's data with no session, kept within the upload expiry
        stage_data(&d, "unclaimed", 1000).await;
    });

    let report = gc(&d, Duration::from_secs(86400));
    assert_eq!(report.upload_data_deleted, 3, "{report:?}");
    let left =
        |id: &str| !keys(&s3, &format!("{prefix}/{}/", paths::upload_data_dir(id))).is_empty();
    for (id, _) in &stale {
        assert!(!left(id), "{id} was kept");
    }
    assert!(left(&kept), "the data a blob references was swept");
    assert!(left("fresh-owner"), "a fresh owner record's data was swept");
    assert!(
        left("unclaimed"),
        "unclaimed data within the upload expiry was swept"
    );
    assert!(reg.get(&format!("/v2/left/img/blobs/{digest}")).body == blob);

    // past the upload expiry, unclaimed data is claimed and deleted
    let report = gc(&d, Duration::ZERO);
    assert!(
        !left("unclaimed"),
        "unclaimed data past the expiry: {report:?}"
    );
    assert!(left(&kept));
    assert!(reg.get(&format!("/v2/left/img/blobs/{digest}")).body == blob);
}

/// A commit and a reaper never both have one session's data: data the collector claimed
/// is no session's (the next PATCH and the commit answer BLOB_UPLOAD_UNKNOWN, and no blob
/// appears); data a commit claimed is never reaped.
#[test]
fn s3_a_commit_and_the_reaper_never_both_have_the_data() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let prefix = "claims";
    let (reg, d) = registry(&s3, prefix);
    let blob = random_bytes(73, LARGE);
    let digest = Digest::sha256_of(&blob);
    let (loc, id) = upload_in_two(&reg, "claims/r", &blob);
    // the collector claimed it first
    let claim = format!("reaped {}", millis_ago(Duration::ZERO));
    rt().block_on(d.put_new(&paths::upload_data_owner(&id), Bytes::from(claim)))
        .unwrap();
    let r = reg.req(
        "PATCH",
        &loc,
        &[("content-type", "application/octet-stream")],
        b"more",
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let r = commit(&reg, &loc, &digest);
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(reg.get(&format!("/v2/claims/r/blobs/{digest}")).status, 404);
    assert!(
        rt().block_on(d.stat_stored(&paths::blob_data(&digest)))
            .unwrap_err()
            .is_not_found(),
        "a blob appeared"
    );

    // committed first: the reaper's claim fails and the data stays, even past the expiry
    // (the first session's data stays too: its reaper's claim is fresh, the reaper may
    // still be deleting it)
    let (loc, id) = upload_in_two(&reg, "claims/r", &blob);
    assert_eq!(commit(&reg, &loc, &digest).status, 201);
    let report = gc(&d, Duration::ZERO);
    assert_eq!(report.upload_data_deleted, 0, "{report:?}");
    assert!(
        !keys(&s3, &format!("{prefix}/{}/", paths::upload_data_dir(&id))).is_empty(),
        "the committed blob's data was reaped"
    );
    assert!(reg.get(&format!("/v2/claims/r/blobs/{digest}")).body == blob);
}

/// A session holding `blob`, appended in one request, and the session as the committing
/// request reads it.
async fn upload_whole(
    uploads: &berth_registry::storage::uploads::Uploads<'_, PerClient>,
    blob: &[u8],
) -> (String, berth_registry::storage::uploads::Session) {
    let id = uploads.create().await.unwrap();
    let mut w = uploads.writer(&id, 0).await.unwrap();
    w.write(Bytes::copy_from_slice(blob)).await.unwrap();
    uploads.keep_hash(w.close().await.unwrap());
    let session = uploads.session(&id).await.unwrap();
    (id, session)
}

/// The claim itself, where a request's session read comes before the collector's claim:
/// the commit's conditional create of the owner record loses to the reaper's, so the
/// commit fails as an unknown upload and stores no reference to data being deleted.
#[test]
fn s3_a_commit_that_loses_the_claim_stores_no_reference() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let d = driver(&s3, "lost");
    let reg = berth_registry::storage::Registry::new(d.clone());
    let blob = random_bytes(74, LARGE);
    let digest = Digest::sha256_of(&blob);
    rt().block_on(async {
        let uploads = reg.repository("lost/r").uploads();
        let (id, session) = upload_whole(&uploads, &blob).await;
        // the collector claims the data after this request read its session
        let claim = format!("reaped {}", millis_ago(Duration::ZERO));
        d.put_new(&paths::upload_data_owner(&id), Bytes::from(claim))
            .await
            .unwrap();
        let err = uploads.commit(&id, &digest, session).await.unwrap_err();
        assert!(
            matches!(
                err,
                berth_registry::storage::StorageError::UploadUnknown { .. }
            ),
            "{err:?}"
        );
        assert!(
            d.stat_stored(&paths::blob_data(&digest))
                .await
                .unwrap_err()
                .is_not_found(),
            "a reference to data being reaped"
        );
    });
}

/// A session's end racing its commit (a PATCH whose write failed, discarding the session,
/// or a client's DELETE that read the session just before, while a PUT commits it) never
/// deletes data the commit's reference names: the data is deleted only after claiming it,
/// and the commit's claim came first. Without the claim the blob's reference would name
/// deleted data, for every repository that links the blob.
#[test]
fn s3_a_session_ended_while_its_commit_claims_leaves_the_blobs_data() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let d = driver(&s3, "cancel");
    let reg = berth_registry::storage::Registry::new(d.clone());
    let blob = random_bytes(75, LARGE);
    let digest = Digest::sha256_of(&blob);
    rt().block_on(async {
        let uploads = reg.repository("cancel/r").uploads();
        let (id, session) = upload_whole(&uploads, &blob).await;
        uploads.commit(&id, &digest, session).await.unwrap();
        // the failed PATCH's discard, after the commit's claim (a cancel that passed its
        // session read deletes the same way)
        uploads.discard(&id).await;
        assert_eq!(
            d.adopted_from(&paths::blob_data(&digest)).await.unwrap(),
            Some(paths::upload_data_apart(&id))
        );
    });
    let r = berth_registry::storage::Registry::new(d.clone());
    let got = rt().block_on(async {
        let (mut reader, size) = r
            .driver()
            .reader(&paths::blob_data(&digest), 0)
            .await
            .unwrap();
        let mut v = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut v)
            .await
            .unwrap();
        assert_eq!(size, LARGE as u64);
        v
    });
    assert!(
        got == blob,
        "the blob's content after the session's discard"
    );
}

/// Data written in more segments than a reference names (a client that sent thousands of
/// small chunks) is copied into one object, not referenced: its reads stay a few GETs, and
/// no reference can outgrow what a read accepts (a blob no one could read, which later
/// pushes of its digest would find "already there").
#[test]
fn s3_data_in_too_many_segments_is_copied_not_referenced() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let d = driver(&s3, "pieces");
    const PIECES: usize = 1001;
    let piece = LARGE / PIECES + 1;
    let data = random_bytes(76, piece * PIECES);
    rt().block_on(async {
        // one PUT each, at the size written so far (as an upload's PATCHes append)
        let mut size = 0;
        for chunk in data.chunks(piece) {
            let mut w = d.writer_at("up/data", size).await.unwrap();
            w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
            size = w.commit(false).await.unwrap();
        }
        d.adopt("up/data", "blob", data.len() as u64).await.unwrap();
        assert_eq!(d.adopted_from("blob").await.unwrap(), None, "referenced");
        assert!(d.get_content("blob").await.unwrap()[..] == data[..]);
        assert!(d.stat("up/data").await.unwrap_err().is_not_found());
    });
}
