//! The conformance suite every [`Driver`] runs (style convention 9; model: distribution's
//! `registry/storage/driver/testsuites`).
//!
//! Compiled for this crate's tests and, with the `driver-testsuite` feature, for anyone's:
//! a new driver's test calls [`run_all`] on a fresh, empty instance inside a multi-threaded
//! tokio runtime. Each part is also public, so a failure points at one property. Failures
//! panic with what the driver did instead.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite: failing loudly with the driver's answer is the point"
)]

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::{Driver, UploadWriter};

/// A written file's whole content (`get_content` reads only files stored whole).
async fn read_all<D: Driver>(d: &D, path: &str) -> Vec<u8> {
    let (mut r, size) = d.reader(path, 0).await.unwrap();
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    assert_eq!(
        got.len() as u64,
        size,
        "{path}: the reader's size is not what it read"
    );
    got
}

/// `path` read from each of `offsets` is `data` from there, and its reader's size `data`'s.
async fn reads_from<D: Driver>(d: &D, path: &str, data: &[u8], offsets: &[usize]) {
    for &offset in offsets {
        let (mut r, size) = d.reader(path, offset as u64).await.unwrap();
        assert_eq!(size, data.len() as u64, "{path}: the reader's size");
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        assert!(
            got == data[offset..],
            "{path}: content differs read from offset {offset}"
        );
    }
}

/// Every part, each under its own prefix of `d` (which should start empty).
pub async fn run_all<D: Driver + Clone>(d: &D) {
    run_all_but_the_create_race(d).await;
    conditional_create_race(d).await;
}

/// Every part but [`conditional_create_race`]: for a backend whose conditional create is
/// known not to be atomic (s3s-fs 0.14 checks that the key exists, then writes), where
/// that one part cannot pass and says nothing about the driver. A driver meant for
/// production runs [`run_all`] against a backend that is.
pub async fn run_all_but_the_create_race<D: Driver + Clone>(d: &D) {
    basics(d).await;
    listing(d).await;
    large_objects(d).await;
    concurrency(d).await;
    conditional_create(d).await;
    gc_clock(d).await;
    hints_beside_deletes(d).await;
    upload_sessions(d).await;
    adoption(d).await;
}

/// put/get/replace, stat, appends, readers at offsets, moves, deletes, path checks.
pub async fn basics<D: Driver>(d: &D) {
    d.put_content("a/b/c", Bytes::from_static(b"one"))
        .await
        .unwrap();
    assert_eq!(&d.get_content("a/b/c").await.unwrap()[..], b"one");
    d.put_content("a/b/c", Bytes::from_static(b"two"))
        .await
        .unwrap();
    assert_eq!(&d.get_content("a/b/c").await.unwrap()[..], b"two");
    assert!(
        d.get_content("a/b/missing")
            .await
            .unwrap_err()
            .is_not_found()
    );
    // an empty file is a file
    d.put_content("a/empty", Bytes::new()).await.unwrap();
    assert_eq!(d.stat("a/empty").await.unwrap().size, 0);

    let info = d.stat("a/b/c").await.unwrap();
    assert_eq!(info.size, 3);
    assert!(!info.is_dir);
    assert!(d.stat("a/b").await.unwrap().is_dir);
    assert!(d.stat("nope").await.unwrap_err().is_not_found());

    // a writer appends across writers; commit returns the total size
    let mut w = d.writer("up/1/data").await.unwrap();
    w.write(Bytes::from_static(b"hello ")).await.unwrap();
    assert_eq!(w.commit(false).await.unwrap(), 6);
    let mut w = d.writer("up/1/data").await.unwrap();
    w.write(Bytes::from_static(b"world")).await.unwrap();
    assert_eq!(w.commit(true).await.unwrap(), 11);
    // a writer with nothing written creates the file
    assert_eq!(
        d.writer("up/2/data")
            .await
            .unwrap()
            .commit(true)
            .await
            .unwrap(),
        0
    );
    assert_eq!(d.stat("up/2/data").await.unwrap().size, 0);

    let (mut r, size) = d.reader("up/1/data", 6).await.unwrap();
    assert_eq!(size, 11);
    let mut s = String::new();
    r.read_to_string(&mut s).await.unwrap();
    assert_eq!(s, "world");
    assert!(matches!(d.reader("up/none", 0).await, Err(e) if e.is_not_found()));

    // a move replaces the target whole and the source is gone
    d.put_content("blobs/x", Bytes::from_static(b"old content, longer"))
        .await
        .unwrap();
    d.move_to("up/1/data", "blobs/x").await.unwrap();
    assert_eq!(&d.get_content("blobs/x").await.unwrap()[..], b"hello world");
    assert!(d.stat("up/1/data").await.unwrap_err().is_not_found());
    assert!(
        d.move_to("up/1/data", "blobs/y")
            .await
            .unwrap_err()
            .is_not_found()
    );

    // delete a file, then a prefix and everything under it
    d.delete("blobs/x").await.unwrap();
    assert!(d.stat("blobs/x").await.unwrap_err().is_not_found());
    d.delete("a").await.unwrap();
    assert!(d.stat("a/b/c").await.unwrap_err().is_not_found());
    assert!(d.delete("a").await.unwrap_err().is_not_found());
    d.delete("up").await.unwrap();

    // paths cannot escape
    for bad in ["../etc/passwd", "/etc/passwd", "a/../../b"] {
        assert!(d.get_content(bad).await.is_err(), "{bad}");
        assert!(
            d.put_content(bad, Bytes::from_static(b"x")).await.is_err(),
            "{bad}"
        );
    }
}

/// Listing returns the sorted names of direct children only; a prefix with nothing under it
/// does not exist.
pub async fn listing<D: Driver>(d: &D) {
    for p in ["l/b/c", "l/b/a", "l/b/d/e", "l/b/d/f/g", "l/bb", "l/b-"] {
        d.put_content(p, Bytes::from_static(b"x")).await.unwrap();
    }
    assert_eq!(d.list("l/b").await.unwrap(), vec!["a", "c", "d"]);
    assert_eq!(d.list("l").await.unwrap(), vec!["b", "b-", "bb"]);
    assert_eq!(d.list("l/b/d").await.unwrap(), vec!["e", "f"]);
    assert!(d.list("zzz").await.unwrap_err().is_not_found());
    // many entries, sorted
    for i in (0..300).rev() {
        d.put_content(&format!("l/many/{i:04}"), Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    let names = d.list("l/many").await.unwrap();
    assert_eq!(names.len(), 300);
    assert!(names.windows(2).all(|w| w[0] < w[1]), "not sorted");
    // once everything under a prefix is deleted, the prefix is gone from its parent's list
    d.delete("l/b/d/f/g").await.unwrap();
    d.delete("l/b/d/e").await.unwrap();
    assert_eq!(d.list("l/b").await.unwrap(), vec!["a", "c"]);
    assert!(d.list("l/b/d").await.unwrap_err().is_not_found());
    d.delete("l").await.unwrap();
    assert!(d.list("l").await.unwrap_err().is_not_found());
}

/// 64 MiB through a writer in uneven chunks, read back whole and from offsets, moved.
pub async fn large_objects<D: Driver>(d: &D) {
    const SIZE: usize = 64 << 20;
    let data: Vec<u8> = (0..SIZE)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
        .collect();
    let data = Bytes::from(data);
    let mut w = d.writer("big/upload").await.unwrap();
    let mut at = 0;
    let mut step = 1;
    while at < SIZE {
        let end = (at + step).min(SIZE);
        w.write(data.slice(at..end)).await.unwrap();
        at = end;
        step = (step * 7 + 13) % (3 << 20) + 1;
    }
    assert_eq!(w.commit(true).await.unwrap(), SIZE as u64);
    // offsets at and around the edges of the windows a driver may read in (5, 8, 16 MiB)
    let offsets = [
        0,
        1,
        5 << 20,
        (8 << 20) - 1,
        8 << 20,
        (16 << 20) + 3,
        SIZE / 3,
        SIZE - 1,
        SIZE,
    ];
    reads_from(d, "big/upload", &data, &offsets).await;
    d.move_to("big/upload", "big/blob").await.unwrap();
    reads_from(d, "big/blob", &data, &offsets).await;
    assert_eq!(d.stat("big/blob").await.unwrap().size, SIZE as u64);
    d.delete("big").await.unwrap();
}

/// Many tasks at once: distinct files, the same file replaced (always whole), writers on
/// distinct paths, and the same source moved by two tasks (exactly one content lands).
pub async fn concurrency<D: Driver + Clone>(d: &D) {
    let mut tasks = Vec::new();
    for i in 0..32u32 {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let own = format!("c/own/{i}");
            d.put_content(&own, Bytes::from(vec![i as u8; 1000]))
                .await
                .unwrap();
            // everyone replaces one shared file with a whole value of its own
            d.put_content("c/shared", Bytes::from(vec![i as u8; 4096]))
                .await
                .unwrap();
            let got = d.get_content("c/shared").await.unwrap();
            assert_eq!(got.len(), 4096, "a replaced file was read torn");
            assert!(got.iter().all(|b| *b == got[0]), "mixed content");
            let mut w = d.writer(&format!("c/up/{i}")).await.unwrap();
            for _ in 0..16 {
                w.write(Bytes::from(vec![i as u8; 777])).await.unwrap();
            }
            assert_eq!(w.commit(true).await.unwrap(), 16 * 777);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let own = d.list("c/own").await.unwrap();
    assert_eq!(own.len(), 32);
    for i in 0..32u32 {
        let got = read_all(d, &format!("c/up/{i}")).await;
        assert!(got.len() == 16 * 777 && got.iter().all(|b| *b == i as u8));
    }
    // two tasks move the same source: at least one succeeds, the target is whole
    for round in 0..8u8 {
        d.put_content("c/src", Bytes::from(vec![round; 2048]))
            .await
            .unwrap();
        let (a, b) = (d.clone(), d.clone());
        let t1 = tokio::spawn(async move { a.move_to("c/src", "c/dst1").await });
        let t2 = tokio::spawn(async move { b.move_to("c/src", "c/dst2").await });
        let (r1, r2) = (t1.await.unwrap(), t2.await.unwrap());
        assert!(r1.is_ok() || r2.is_ok(), "both moves failed");
        for (r, p) in [(r1, "c/dst1"), (r2, "c/dst2")] {
            match r {
                Ok(()) => {
                    let got = d.get_content(p).await.unwrap();
                    assert!(got.len() == 2048 && got.iter().all(|b| *b == round));
                    d.delete(p).await.unwrap();
                }
                Err(e) => assert!(e.is_not_found(), "{e}"),
            }
        }
        assert!(d.stat("c/src").await.unwrap_err().is_not_found());
    }
    d.delete("c").await.unwrap();
}

/// [`Driver::put_new`]: creates only where nothing is stored, never replaces, and of many
/// concurrent creators of one path exactly one wins — what the collector's lease rests on
/// (`lease.rs`).
pub async fn conditional_create<D: Driver + Clone>(d: &D) {
    let p = "cc/lease/0001";
    d.put_new(p, Bytes::from_static(b"first")).await.unwrap();
    assert_eq!(&d.get_content(p).await.unwrap()[..], b"first");
    match d.put_new(p, Bytes::from_static(b"second, longer")).await {
        Err(e) if e.is_already_exists() => {
            assert!(e.to_string().contains(p), "the error names no path: {e}")
        }
        other => panic!("put_new over an existing file answered {other:?}, not AlreadyExists"),
    }
    let got = d.get_content(p).await.unwrap();
    assert!(
        &got[..] == b"first",
        "a refused put_new changed the stored content to {got:?}"
    );
    // an empty file is something stored too
    d.put_new("cc/empty", Bytes::new()).await.unwrap();
    let r = d.put_new("cc/empty", Bytes::from_static(b"x")).await;
    assert!(
        matches!(&r, Err(e) if e.is_already_exists()),
        "put_new over an empty file answered {r:?}"
    );
    assert_eq!(d.stat("cc/empty").await.unwrap().size, 0);
    // so is an upload's scratch file once its writer committed, even with nothing appended…
    let w = d.writer("cc/up/data").await.unwrap();
    assert_eq!(w.commit(true).await.unwrap(), 0);
    let r = d.put_new("cc/up/data", Bytes::from_static(b"x")).await;
    assert!(
        matches!(&r, Err(e) if e.is_already_exists()),
        "put_new over a writer's file answered {r:?}"
    );
    assert_eq!(
        d.stat("cc/up/data").await.unwrap().size,
        0,
        "put_new wrote into an upload"
    );
    // …and a file put_new made is whole: a later writer appends after all of it
    d.put_new("cc/up/other", Bytes::from_static(b"head"))
        .await
        .unwrap();
    let mut w = d.writer("cc/up/other").await.unwrap();
    w.write(Bytes::from_static(b"+tail")).await.unwrap();
    assert_eq!(w.commit(true).await.unwrap(), 9);
    assert_eq!(&read_all(d, "cc/up/other").await[..], b"head+tail");
    // (whether something can be created under a file is left open: an object store allows
    // `a` and `a/b` both, a filesystem does not)
    // after a delete the path is free again, also when its prefix went with it
    d.delete(p).await.unwrap();
    d.put_new(p, Bytes::from_static(b"again")).await.unwrap();
    assert_eq!(&d.get_content(p).await.unwrap()[..], b"again");
    d.delete("cc/lease").await.unwrap();
    d.put_new(p, Bytes::from_static(b"third")).await.unwrap();
    assert_eq!(&d.get_content(p).await.unwrap()[..], b"third");

    d.delete("cc").await.unwrap();
    assert!(d.list("cc").await.unwrap_err().is_not_found());
}

/// 16 creators at once, each with its own content: exactly one wins, and what is stored is
/// the winner's, whole.
pub async fn conditional_create_race<D: Driver + Clone>(d: &D) {
    for round in 0..8u8 {
        let path = format!("cc/race/{round}");
        let mut tasks = Vec::new();
        for i in 0..16u8 {
            let (d, path) = (d.clone(), path.clone());
            tasks.push(tokio::spawn(async move {
                let r = d
                    .put_new(&path, Bytes::from(vec![i; 1000 + i as usize]))
                    .await;
                (i, r)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (i, r) = t.await.unwrap();
            match r {
                Ok(()) => winners.push(i),
                Err(e) if e.is_already_exists() => {}
                Err(e) => panic!("concurrent put_new {i} on {path} failed otherwise: {e:?}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "{} of 16 concurrent put_news on {path} succeeded: {winners:?}",
            winners.len()
        );
        let w = winners[0];
        let got = d.get_content(&path).await.unwrap();
        assert!(
            got.len() == 1000 + w as usize && got.iter().all(|b| *b == w),
            "the stored content ({} bytes, first {:?}) is not the winner {w}'s",
            got.len(),
            got.first()
        );
    }
    d.delete("cc").await.unwrap();
    assert!(d.list("cc").await.unwrap_err().is_not_found());
}

/// What the garbage collector's safety argument needs from a driver (see `gc.rs`): the
/// "last referenced" clock is a small file written with `put_hint`, so its writes and
/// deletes are seen at once by
/// every later call (read-after-write), a blob moved aside and back keeps its content and
/// leaves the clock alone, and a delete is seen at once. Modification times may be absent
/// and are not preserved by a move: nothing here reads them.
pub async fn gc_clock<D: Driver + Clone>(d: &D) {
    let data = "g/blobs/x/data";
    let clock = "g/blobs/x/lastref";
    d.put_content(data, Bytes::from_static(b"blob"))
        .await
        .unwrap();
    for t in [100u64, 200, 50] {
        // another task writes the clock; this one reads it right after
        let w = d.clone();
        tokio::spawn(async move {
            w.put_content(clock, Bytes::from(t.to_string()))
                .await
                .unwrap();
        })
        .await
        .unwrap();
        assert_eq!(d.get_content(clock).await.unwrap(), t.to_string());
    }
    // aside and back (the sweep's check-then-restore) keeps content, not the clock
    d.move_to(data, "g/trash/x").await.unwrap();
    assert!(d.stat(data).await.unwrap_err().is_not_found());
    assert_eq!(d.get_content(clock).await.unwrap(), "50");
    d.move_to("g/trash/x", data).await.unwrap();
    assert_eq!(&d.get_content(data).await.unwrap()[..], b"blob");
    // deleting the data leaves the clock, and a delete is seen at once by others
    d.delete(data).await.unwrap();
    let r = d.clone();
    let seen = tokio::spawn(async move { r.stat(data).await.map(|_| ()) })
        .await
        .unwrap();
    assert!(seen.unwrap_err().is_not_found());
    assert_eq!(d.get_content(clock).await.unwrap(), "50");
    d.delete("g").await.unwrap();
}

/// A hint written while another task (a collector on another replica) deletes it and its
/// directory: every write succeeds — the file may be gone right after, which is not the
/// writer's failure — and no write leaves a temporary file behind. On a multi-threaded
/// runtime the two really run at once.
pub async fn hints_beside_deletes<D: Driver + Clone>(d: &D) {
    const ROUNDS: u32 = 200;
    let clock = "hd/blobs/x/lastref";
    let deleter = {
        let d = d.clone();
        tokio::spawn(async move {
            let mut deleted = 0u32;
            for _ in 0..ROUNDS {
                match d.delete(clock).await {
                    Ok(()) => deleted += 1,
                    Err(e) if e.is_not_found() => {}
                    Err(e) => panic!("deleting {clock}: {e}"),
                }
                tokio::task::yield_now().await;
            }
            deleted
        })
    };
    for i in 0..ROUNDS {
        if let Err(e) = d.put_hint(clock, Bytes::from(i.to_string())).await {
            panic!("write {i} of a hint beside deletes failed: {e}");
        }
    }
    deleter.await.unwrap();
    d.put_hint(clock, Bytes::from_static(b"last"))
        .await
        .unwrap();
    assert_eq!(&d.get_content(clock).await.unwrap()[..], b"last");
    let files = d.list_files("hd/blobs/x").await.unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["lastref"], "what the writes left beside the hint");
    d.delete("hd").await.unwrap();
}

/// What an upload session's requests use: [`Driver::list_files`] (names with sizes, a
/// written file as one file of its whole size, a directory as one entry),
/// [`Driver::writer_at`] at a size a listing reported (and at a stale one: never an
/// overwrite or an interleaving), and [`Driver::stat_stored`] of files stored whole.
pub async fn upload_sessions<D: Driver>(d: &D) {
    d.put_content("sess/1/startedat", Bytes::from_static(b"123"))
        .await
        .unwrap();
    for chunk in [&b"abc"[..], b"de"] {
        let mut w = d.writer("sess/1/data").await.unwrap();
        w.write(Bytes::from_static(chunk)).await.unwrap();
        w.commit(false).await.unwrap();
    }
    d.put_content("sess/1/sub/x", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let files = d.list_files("sess/1").await.unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["data", "startedat", "sub"], "list_files(sess/1)");
    let info = |name: &str| files.iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!(info("data").size, 5, "a written file counts whole");
    assert!(!info("data").is_dir);
    assert_eq!(info("startedat").size, 3);
    assert!(!info("startedat").is_dir);
    assert!(info("sub").is_dir);
    assert!(
        d.list_files("sess/none").await.unwrap_err().is_not_found(),
        "list_files of a directory with nothing under it"
    );

    // appends at the size the listing said
    let mut w = d.writer_at("sess/1/data", 5).await.unwrap();
    w.write(Bytes::from_static(b"fg")).await.unwrap();
    assert_eq!(w.commit(true).await.unwrap(), 7);
    assert_eq!(read_all(d, "sess/1/data").await, b"abcdefg");
    // at a stale size: refused, or (a filesystem) appended after what is there
    let mut w = d.writer_at("sess/1/data", 5).await.unwrap();
    let stale = async {
        w.write(Bytes::from_static(b"XY")).await?;
        w.commit(false).await
    }
    .await;
    let after = read_all(d, "sess/1/data").await;
    match stale {
        Err(_) => assert_eq!(after, b"abcdefg", "a refused stale append changed the file"),
        Ok(size) => {
            assert_eq!(size, 9);
            assert_eq!(
                after, b"abcdefgXY",
                "a stale append overwrote or interleaved"
            );
        }
    }

    // nothing there: a writer at 0 with nothing written creates the file empty, and the
    // first data replaces that empty file
    let w = d.writer_at("sess/2/data", 0).await.unwrap();
    assert_eq!(w.commit(true).await.unwrap(), 0);
    assert_eq!(d.stat("sess/2/data").await.unwrap().size, 0);
    let mut w = d.writer_at("sess/2/data", 0).await.unwrap();
    w.write(Bytes::from_static(b"z")).await.unwrap();
    assert_eq!(w.commit(true).await.unwrap(), 1);
    assert_eq!(read_all(d, "sess/2/data").await, b"z");

    // files stored whole
    assert_eq!(d.stat_stored("sess/1/startedat").await.unwrap().size, 3);
    assert!(
        d.stat_stored("sess/1/none")
            .await
            .unwrap_err()
            .is_not_found()
    );
    d.move_to("sess/2/data", "sess/blob").await.unwrap();
    assert_eq!(d.stat_stored("sess/blob").await.unwrap().size, 1);
    d.delete("sess").await.unwrap();
}

/// [`Driver::adopt`]: a written file (of two appends) becomes the content of a path stored
/// whole. At or above [`Driver::reference_min`] by reference: the target reads whole and
/// from offsets, stats, moves (as the collector moves a blob aside and back) and deletes as
/// a file stored whole; [`Driver::adopted_from`] names the written file, which stays stored
/// and is left by the target's delete; a size the file does not hold is refused. Below it,
/// or on a driver that always moves, a move.
pub async fn adoption<D: Driver>(d: &D) {
    let min = d.reference_min();
    let size = min.map_or(3, |m| usize::try_from(m).unwrap() + 1000);
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let data = Bytes::from(data);
    for range in [0..size / 2, size / 2..size] {
        let mut w = d.writer("adopt/up/data").await.unwrap();
        w.write(data.slice(range)).await.unwrap();
        w.commit(true).await.unwrap();
    }
    d.adopt("adopt/up/data", "adopt/blob", size as u64)
        .await
        .unwrap();
    assert_eq!(d.stat_stored("adopt/blob").await.unwrap().size, size as u64);
    assert_eq!(d.stat("adopt/blob").await.unwrap().size, size as u64);
    assert!(read_all(d, "adopt/blob").await == data, "adopted content");
    assert!(d.get_content("adopt/blob").await.unwrap()[..] == data[..]);
    let offsets = [1, size / 2 - 1, size / 2, size - 1, size];
    reads_from(d, "adopt/blob", &data, &offsets).await;
    let of = d.adopted_from("adopt/blob").await.unwrap();
    if min.is_some() {
        assert_eq!(of.as_deref(), Some("adopt/up/data"), "adopted_from");
        assert_eq!(d.stat("adopt/up/data").await.unwrap().size, size as u64);
    } else {
        assert_eq!(of, None, "adopted_from after a move");
        assert!(d.stat("adopt/up/data").await.unwrap_err().is_not_found());
    }

    // moved aside and back, as the collector does: the same content, the same reference
    d.move_to("adopt/blob", "adopt/trash").await.unwrap();
    assert!(
        d.stat_stored("adopt/blob")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        read_all(d, "adopt/trash").await == data,
        "moved adopted content"
    );
    assert_eq!(d.adopted_from("adopt/trash").await.unwrap(), of);
    d.move_to("adopt/trash", "adopt/blob").await.unwrap();
    assert!(read_all(d, "adopt/blob").await == data);

    // the target's delete leaves a referenced written file
    d.delete("adopt/blob").await.unwrap();
    assert!(
        d.stat_stored("adopt/blob")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        d.adopted_from("adopt/blob")
            .await
            .unwrap_err()
            .is_not_found()
    );
    if min.is_some() {
        assert!(
            read_all(d, "adopt/up/data").await == data,
            "the referenced file"
        );

        // below the minimum: moved
        let mut w = d.writer("adopt/small/data").await.unwrap();
        w.write(Bytes::from_static(b"abc")).await.unwrap();
        w.commit(true).await.unwrap();
        d.adopt("adopt/small/data", "adopt/sblob", 3).await.unwrap();
        assert_eq!(d.adopted_from("adopt/sblob").await.unwrap(), None);
        assert_eq!(&d.get_content("adopt/sblob").await.unwrap()[..], b"abc");
        assert!(d.stat("adopt/small/data").await.unwrap_err().is_not_found());

        // a size the written file does not hold: nothing is stored
        for wrong in [size as u64 + 1, size as u64 - 1] {
            assert!(
                d.adopt("adopt/up/data", "adopt/wrong", wrong)
                    .await
                    .is_err(),
                "adopting {size} bytes as {wrong}"
            );
            assert!(
                d.stat_stored("adopt/wrong")
                    .await
                    .unwrap_err()
                    .is_not_found()
            );
        }
        d.delete("adopt").await.unwrap();
    } else {
        assert!(
            d.list("adopt").await.unwrap_err().is_not_found(),
            "a move and a delete left something"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fs_driver_passes_suite() {
        let dir = tempfile::tempdir().unwrap();
        let d = super::super::fs::FsDriver::new(dir.path());
        run_all(&d).await;
        // the root itself is never removed, even when emptied
        assert!(dir.path().is_dir());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_driver_passes_suite() {
        run_all(&super::super::memory::MemoryDriver::new()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn object_store_like_memory_driver_passes_suite() {
        let d = super::super::memory::MemoryDriver::object_store_like();
        run_all(&d).await;
        d.put_content("m/x", Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert!(
            d.stat("m/x").await.unwrap().modified.is_none(),
            "object_store_like keeps no modification times"
        );
    }
}
