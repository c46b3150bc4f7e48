//! berth's key store on disk: file modes, atomic writes (a failed write leaves no key), the
//! default marker, names, refusals.

use berth_trust::certgen;
use berth_trust::keys::{AddOptions, KeyError, KeySpec, KeyStore, SigningKey};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).expect("stat").mode() & 0o7777
}

#[test]
fn keys_are_written_0600_in_a_0700_directory_with_their_chain() {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = KeyStore::new(tmp.path().join("config"));
    assert!(store.list().expect("empty list").is_empty());
    let key = SigningKey::generate(KeySpec::EcP256).expect("key");
    let cert = certgen::generate_test("alice", &key).expect("cert");
    store
        .add(
            "alice",
            &key,
            Some(std::slice::from_ref(&cert)),
            AddOptions {
                force: false,
                default: true,
            },
        )
        .expect("add");
    assert_eq!(mode(store.dir()), 0o700);
    assert_eq!(mode(&store.key_path("alice").expect("path")), 0o600);
    assert_eq!(mode(&store.cert_path("alice").expect("path")), 0o644);
    let pem = std::fs::read_to_string(store.key_path("alice").expect("p")).expect("read");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    let loaded = store.load("alice").expect("load");
    assert_eq!(loaded.public_key(), key.public_key());
    assert_eq!(
        store.chain("alice").expect("chain").expect("some"),
        vec![cert.clone()]
    );
    assert_eq!(
        store.default_key().expect("default").as_deref(),
        Some("alice")
    );

    // a second key without a certificate, not default
    let bob = SigningKey::generate(KeySpec::EcP384).expect("key");
    store
        .add("bob", &bob, None, AddOptions::default())
        .expect("add bob");
    let list = store.list().expect("list");
    let names: Vec<_> = list
        .iter()
        .map(|e| (e.name.as_str(), e.is_default, e.cert_path.is_some()))
        .collect();
    assert_eq!(names, [("alice", true, true), ("bob", false, false)]);
    assert!(store.chain("bob").expect("chain").is_none());

    // an existing name is refused without force, replaced with it
    let err = store
        .add("bob", &key, None, AddOptions::default())
        .expect_err("exists");
    assert!(matches!(err, KeyError::Exists(_)), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(
        store.load("bob").expect("bob").spec(),
        KeySpec::EcP384,
        "unchanged"
    );
    store
        .add(
            "bob",
            &key,
            None,
            AddOptions {
                force: true,
                default: false,
            },
        )
        .expect("force");
    assert_eq!(store.load("bob").expect("bob").spec(), KeySpec::EcP256);

    // a certificate for another key is refused
    let err = store
        .add(
            "carol",
            &bob,
            Some(std::slice::from_ref(&cert)),
            AddOptions::default(),
        )
        .expect_err("mismatch");
    assert!(matches!(err, KeyError::CertificateMismatch { .. }), "{err}");
    assert!(!store.contains("carol"), "nothing written on refusal");

    // removing the default key removes the marker
    store.remove("alice").expect("rm");
    assert!(!store.key_path("alice").expect("p").exists());
    assert!(!store.cert_path("alice").expect("p").exists());
    assert_eq!(store.default_key().expect("default"), None);
    assert!(matches!(store.remove("alice"), Err(KeyError::NotFound(_))));
    assert!(matches!(store.load("alice"), Err(KeyError::NotFound(_))));
    // no temporary files left behind
    let stray: Vec<_> = std::fs::read_dir(store.dir())
        .expect("ls")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn names_and_unsafe_files_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = KeyStore::new(tmp.path());
    let key = SigningKey::generate(KeySpec::EcP256).expect("key");
    for bad in ["../x", "a/b", ".hidden", "", "sp ace"] {
        assert!(
            matches!(
                store.add(bad, &key, None, AddOptions::default()),
                Err(KeyError::InvalidName(_))
            ),
            "{bad:?}"
        );
    }
    store
        .add("k", &key, None, AddOptions::default())
        .expect("add");
    let path = store.key_path("k").expect("p");
    // group-readable: refused like ssh refuses it
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let err = store.load("k").expect_err("too open");
    assert!(
        matches!(err, KeyError::TooOpen { mode: 0o640, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod 600"), "{err}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    store.load("k").expect("0600 loads");
    // a symlinked key file is refused
    std::fs::rename(&path, tmp.path().join("elsewhere.key")).expect("mv");
    std::os::unix::fs::symlink(tmp.path().join("elsewhere.key"), &path).expect("ln");
    assert!(matches!(store.load("k"), Err(KeyError::NotRegular { .. })));
}

/// A write that fails half way (the filesystem is full: a 64 KiB tmpfs, filled) leaves
/// neither the key nor a temporary file, and an existing key of that name intact.
#[test]
fn a_failed_write_leaves_no_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mnt = tmp.path().join("small");
    std::fs::create_dir(&mnt).expect("mkdir");
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
        .arg(&mnt)
        .status()
        .expect("mount (the tests run as root)");
    assert!(st.success(), "mount tmpfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&mnt);
    let store = KeyStore::new(&mnt);
    let old = SigningKey::generate(KeySpec::EcP256).expect("key");
    store
        .add("k", &old, None, AddOptions::default())
        .expect("first write fits");
    // fill the filesystem but for ~100 bytes: a key PEM (~240 bytes) cannot fit
    let fill = mnt.join("fill");
    let mut f = std::fs::File::create(&fill).expect("fill");
    let chunk = vec![0u8; 4096];
    use std::io::Write;
    while f.write_all(&chunk).is_ok() {}
    let mut small = vec![0u8; 1];
    while f.write_all(&small).is_ok() {}
    small.clear();
    drop(f);
    let new = SigningKey::generate(KeySpec::EcP384).expect("key");
    let err = store
        .add(
            "k",
            &new,
            None,
            AddOptions {
                force: true,
                default: false,
            },
        )
        .expect_err("the disk is full");
    assert!(
        err.to_string().contains("writing") || err.to_string().contains("creating"),
        "{err}"
    );
    assert_eq!(
        store.load("k").expect("old key intact").public_key(),
        old.public_key()
    );
    let err = store
        .add("fresh", &new, None, AddOptions::default())
        .expect_err("full");
    assert!(!store.contains("fresh"), "no half-written key: {err}");
    let mut names: Vec<String> = std::fs::read_dir(store.dir())
        .expect("ls")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // k is the default (the first key); "fresh" left nothing, not even a temporary file
    assert_eq!(names, ["default", "k.key"], "no temporary file left");
    assert_eq!(store.default_key().expect("default").as_deref(), Some("k"));
}

#[test]
fn the_signer_is_the_named_or_default_key_with_its_chain() {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = KeyStore::new(tmp.path());
    assert!(matches!(store.signer(None), Err(KeyError::NoDefault)));
    let key = SigningKey::generate(KeySpec::EcP256).expect("key");
    let cert = certgen::generate_test("alice", &key).expect("cert");
    // the first key becomes the default without being asked to
    store
        .add(
            "alice",
            &key,
            Some(std::slice::from_ref(&cert)),
            AddOptions::default(),
        )
        .expect("add");
    assert_eq!(store.default_key().expect("d").as_deref(), Some("alice"));
    let bare = SigningKey::generate(KeySpec::EcP384).expect("key");
    store
        .add("bare", &bare, None, AddOptions::default())
        .expect("add");
    let s = store.signer(None).expect("default signer");
    assert_eq!(s.name, "alice");
    assert_eq!(s.chain, vec![cert.clone()]);
    assert_eq!(s.key.public_key(), key.public_key());
    assert_eq!(store.signer(Some("alice")).expect("named").name, "alice");
    let err = store.signer(Some("bare")).expect_err("no certificate");
    assert!(matches!(err, KeyError::NoCertificate(_)), "{err}");
    assert!(matches!(
        store.signer(Some("nobody")),
        Err(KeyError::NotFound(_))
    ));
    // a chain file replaced by another key's certificate is refused at use
    let other = certgen::generate_test("x", &bare).expect("cert");
    std::fs::write(
        store.cert_path("alice").expect("p"),
        berth_trust::keys::chain_pem(&[other]),
    )
    .expect("write");
    assert!(matches!(
        store.signer(None),
        Err(KeyError::CertificateMismatch { .. })
    ));
}
