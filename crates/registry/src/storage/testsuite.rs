//! One conformance suite every [`Driver`] runs (style convention 9).

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::{Driver, UploadWriter};

pub async fn run<D: Driver>(d: &D) {
    // put / get / replace
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

    // stat
    let info = d.stat("a/b/c").await.unwrap();
    assert_eq!(info.size, 3);
    assert!(!info.is_dir);
    assert!(d.stat("a/b").await.unwrap().is_dir);
    assert!(d.stat("nope").await.unwrap_err().is_not_found());

    // list: sorted direct children only
    d.put_content("a/b/a", Bytes::from_static(b"x"))
        .await
        .unwrap();
    d.put_content("a/b/d/e", Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(d.list("a/b").await.unwrap(), vec!["a", "c", "d"]);
    assert!(d.list("zzz").await.unwrap_err().is_not_found());

    // writer appends across writers; commit returns total size
    let mut w = d.writer("up/1/data").await.unwrap();
    w.write(Bytes::from_static(b"hello ")).await.unwrap();
    assert_eq!(w.commit(false).await.unwrap(), 6);
    let mut w = d.writer("up/1/data").await.unwrap();
    w.write(Bytes::from_static(b"world")).await.unwrap();
    assert_eq!(w.commit(true).await.unwrap(), 11);

    // reader from an offset
    let (mut r, size) = d.reader("up/1/data", 6).await.unwrap();
    assert_eq!(size, 11);
    let mut s = String::new();
    r.read_to_string(&mut s).await.unwrap();
    assert_eq!(s, "world");

    // move replaces, source gone
    d.move_to("up/1/data", "blobs/x").await.unwrap();
    assert_eq!(&d.get_content("blobs/x").await.unwrap()[..], b"hello world");
    assert!(d.stat("up/1/data").await.unwrap_err().is_not_found());

    // touch
    let before = d.stat("blobs/x").await.unwrap().modified;
    d.touch("blobs/x").await.unwrap();
    assert!(d.stat("blobs/x").await.unwrap().modified >= before);
    assert!(d.touch("blobs/none").await.unwrap_err().is_not_found());

    // delete file and prefix
    d.delete("blobs/x").await.unwrap();
    assert!(d.stat("blobs/x").await.unwrap_err().is_not_found());
    d.delete("a").await.unwrap();
    assert!(d.stat("a/b/c").await.unwrap_err().is_not_found());
    assert!(d.delete("a").await.unwrap_err().is_not_found());

    // paths cannot escape
    assert!(d.get_content("../etc/passwd").await.is_err());
    assert!(d.get_content("/etc/passwd").await.is_err());
}

#[tokio::test]
async fn fs_driver_passes_suite() {
    let dir = tempfile::tempdir().unwrap();
    let d = super::fs::FsDriver::new(dir.path());
    run(&d).await;
}
