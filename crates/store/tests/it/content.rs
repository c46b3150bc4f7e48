//! Blobs: ingest, verification, resumption, concurrency.

use std::io::{Read, Write};
use std::sync::{Arc, Barrier};

use berth_oci::{Digest, DigestError};
use berth_store::{ErrorKind, StoreError};
use berth_test_support::random_bytes;

use crate::{stored_blobs, temp_store};

#[test]
fn blob_is_visible_only_after_commit() {
    let (_dir, store) = temp_store();
    let data = random_bytes(1, 300_000);
    let d = Digest::sha256_of(&data);
    let mut w = crate::ingest(&store, "pull a", &d, Some(data.len() as u64)).unwrap();
    assert_eq!(w.offset(), 0);
    w.write_all(&data[..1000]).unwrap();
    assert_eq!(store.blob_size(&d).unwrap(), None);
    assert_eq!(store.open_blob(&d).unwrap_err().kind(), ErrorKind::NotFound);
    w.write_all(&data[1000..]).unwrap();
    assert_eq!(w.offset(), data.len() as u64);
    assert_eq!(store.blob_size(&d).unwrap(), None);
    assert_eq!(w.commit().unwrap(), d);
    assert_eq!(store.blob_size(&d).unwrap(), Some(data.len() as u64));
    let mut back = Vec::new();
    store.open_blob(&d).unwrap().read_to_end(&mut back).unwrap();
    assert!(back == data);
    // the ingest is gone
    assert!(berth_test_support::walk_files(store.root().join("ingest")).is_empty());
}

#[test]
fn wrong_digest_is_refused_and_nothing_stored() {
    let (_dir, store) = temp_store();
    let claimed = Digest::sha256_of(b"the real thing");
    let mut w = crate::ingest(&store, "k", &claimed, None).unwrap();
    w.write_all(b"something else").unwrap();
    let err = w.commit().unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Mismatch { digest, source: DigestError::Mismatch { .. } } if *digest == claimed
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(stored_blobs(&store).is_empty());
    assert!(berth_test_support::walk_files(store.root().join("ingest")).is_empty());
    // and the next attempt starts from scratch
    assert_eq!(
        crate::ingest(&store, "k", &claimed, None).unwrap().offset(),
        0
    );
}

#[test]
fn wrong_size_is_refused_and_nothing_stored() {
    let (_dir, store) = temp_store();
    let data = b"twelve bytes";
    let d = Digest::sha256_of(data);
    // right content, wrong claimed size (short): refused at commit
    let mut w = crate::ingest(&store, "k", &d, Some(20)).unwrap();
    w.write_all(data).unwrap();
    let err = w.commit().unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Mismatch {
                source: DigestError::SizeMismatch {
                    expected: 20,
                    actual: 12
                },
                ..
            }
        ),
        "{err:?}"
    );
    // too long: refused as it is written, and commit refuses too
    let mut w = crate::ingest(&store, "k", &d, Some(5)).unwrap();
    assert!(w.write_all(data).is_err());
    assert!(w.commit().is_err());
    assert!(stored_blobs(&store).is_empty());
}

#[test]
fn ingest_resumes_after_drop() {
    let (dir, store) = temp_store();
    let data = random_bytes(2, 1 << 20);
    let d = Digest::sha256_of(&data);
    let half = data.len() / 2;
    {
        let mut w = crate::ingest(&store, "resume me", &d, Some(data.len() as u64)).unwrap();
        w.write_all(&data[..half]).unwrap();
        // dropped without commit: a crash or a cancelled download
    }
    assert_eq!(store.blob_size(&d).unwrap(), None);
    // another Store handle, as a new process would open it
    let store2 = berth_store::Store::open(dir.path()).unwrap();
    let mut w = crate::ingest(&store2, "resume me", &d, Some(data.len() as u64)).unwrap();
    assert_eq!(w.offset(), half as u64);
    assert_eq!(w.resumed_from(), half as u64);
    w.write_all(&data[half..]).unwrap();
    assert_eq!(w.commit().unwrap(), d);
    assert!(store.read_blob(&d).unwrap() == data);
}

#[test]
fn resumed_prefix_is_verified_too() {
    let (_dir, store) = temp_store();
    let data = random_bytes(3, 10_000);
    let d = Digest::sha256_of(&data);
    {
        let mut w = crate::ingest(&store, "k", &d, None).unwrap();
        // a garbled prefix (as a crash can leave)
        w.write_all(&[0u8; 5000]).unwrap();
    }
    let mut w = crate::ingest(&store, "k", &d, None).unwrap();
    assert_eq!(w.offset(), 5000);
    w.write_all(&data[5000..]).unwrap();
    assert!(matches!(
        w.commit().unwrap_err(),
        StoreError::Mismatch { .. }
    ));
    assert!(stored_blobs(&store).is_empty());
}

#[test]
fn abort_discards_the_ingest() {
    let (_dir, store) = temp_store();
    let d = Digest::sha256_of(b"abc");
    let mut w = crate::ingest(&store, "k", &d, None).unwrap();
    w.write_all(b"ab").unwrap();
    w.abort().unwrap();
    assert_eq!(crate::ingest(&store, "k", &d, None).unwrap().offset(), 0);
}

#[test]
fn concurrent_ingest_of_one_digest_all_succeed() {
    let (_dir, store) = temp_store();
    let data = Arc::new(random_bytes(4, 2 << 20));
    let d = Digest::sha256_of(&data);
    let threads = 6;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (store, data, d, barrier) =
                (store.clone(), data.clone(), d.clone(), barrier.clone());
            std::thread::spawn(move || {
                // half the threads share a key, half use their own
                let key = if i % 2 == 0 {
                    "shared".to_owned()
                } else {
                    format!("own {i}")
                };
                barrier.wait();
                let mut w = crate::ingest(&store, &key, &d, Some(data.len() as u64)).unwrap();
                for chunk in data.chunks(64 * 1024) {
                    w.write_all(chunk).unwrap();
                }
                w.commit().unwrap()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), d);
    }
    assert_eq!(stored_blobs(&store), vec![d.clone()]);
    assert!(store.read_blob(&d).is_ok());
    assert!(berth_test_support::walk_files(store.root().join("ingest")).is_empty());
}

#[test]
fn concurrent_ingest_from_processes_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| crate::spawn_child("content::child_ingest", "ingest", dir.path(), ""))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let store = berth_store::Store::open(dir.path()).unwrap();
    let data = random_bytes(5, 4 << 20);
    assert_eq!(stored_blobs(&store), vec![Digest::sha256_of(&data)]);
}

#[test]
#[ignore = "child process of concurrent_ingest_from_processes_all_succeed"]
fn child_ingest() {
    let Some((role, dir, _)) = crate::child_env() else {
        return;
    };
    assert_eq!(role, "ingest");
    let store = berth_store::Store::open(&dir).unwrap();
    let data = random_bytes(5, 4 << 20);
    let d = Digest::sha256_of(&data);
    let mut w = crate::ingest(&store, "same key", &d, Some(data.len() as u64)).unwrap();
    let start = w.offset() as usize;
    for chunk in data[start..].chunks(16 * 1024) {
        w.write_all(chunk).unwrap();
    }
    assert_eq!(w.commit().unwrap(), d);
}
