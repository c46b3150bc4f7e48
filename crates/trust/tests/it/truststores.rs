use berth_trust::{StoreType, TrustStore, TrustStoreError};
use std::os::unix::fs::symlink;

fn store() -> TrustStore {
    TrustStore::new(crate::vectors().join("notation-go/verifier/testdata/truststore"))
}

#[test]
fn notation_trust_stores_load_as_notation_loads_them() {
    let s = store();
    let certs = s
        .certificates(StoreType::Ca, "valid-trust-store")
        .expect("valid-trust-store");
    assert_eq!(certs.len(), 6, "one certificate per file");
    assert_eq!(
        s.certificates(StoreType::Ca, "valid-trust-store-2")
            .map(|c| c.len())
            .ok(),
        Some(2)
    );
    assert_eq!(
        s.certificates(StoreType::Ca, "valid-trust-store-self-signed")
            .map(|c| c.len())
            .ok(),
        Some(1)
    );
    assert!(
        s.certificates(StoreType::SigningAuthority, "valid-trust-store")
            .is_ok()
    );
    assert!(s.certificates(StoreType::Tsa, "test-timestamp").is_ok());
    assert!(
        s.certificates(StoreType::Tsa, "test-mismatch").is_ok(),
        "loads; mismatch shows at verification"
    );

    let err = s
        .certificates(StoreType::Ca, "trust-store-with-invalid-certs")
        .expect_err("invalid");
    assert!(
        matches!(err, TrustStoreError::BadCertificate { .. }),
        "{err}"
    );
    let err = s
        .certificates(StoreType::Ca, "trust-store-with-leaf-certs")
        .expect_err("leaf");
    assert!(matches!(err, TrustStoreError::NotCa { .. }), "{err}");
    let err = s
        .certificates(StoreType::Ca, "trust-store-with-leaf-certs-in-single-file")
        .expect_err("leaf");
    assert!(matches!(err, TrustStoreError::NotCa { .. }), "{err}");
    let err = s
        .certificates(StoreType::Tsa, "test-nonCA")
        .expect_err("non-CA tsa");
    assert!(matches!(err, TrustStoreError::NotTsaRoot { .. }), "{err}");
    let err = s
        .certificates(StoreType::Tsa, "test-nonSelfIssued")
        .expect_err("not self-issued tsa");
    assert!(matches!(err, TrustStoreError::NotTsaRoot { .. }), "{err}");
    assert!(matches!(
        s.certificates(StoreType::Ca, "absent"),
        Err(TrustStoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.certificates(StoreType::Ca, "../ca"),
        Err(TrustStoreError::InvalidName(_))
    ));
}

#[test]
fn symlinked_stores_and_certificates_are_refused_and_subdirectories_ignored() {
    let vectors = crate::vectors().join("notation-go/verifier/testdata/truststore/x509");
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = tmp.path().join("x509/ca");
    std::fs::create_dir_all(ca.join("files/sub-dir")).expect("mkdir");
    std::fs::create_dir_all(ca.join("links")).expect("mkdir");
    let root =
        std::fs::read(vectors.join("ca/valid-trust-store/GlobalSignRootCA.crt")).expect("read");
    std::fs::write(ca.join("files/root.crt"), &root).expect("write");
    std::fs::write(ca.join("files/sub-dir/garbage.crt"), b"not a certificate").expect("write");
    symlink(vectors.join("ca/valid-trust-store"), ca.join("dirlink")).expect("symlink");
    symlink(ca.join("files/root.crt"), ca.join("links/root.crt")).expect("symlink");
    let s = TrustStore::new(tmp.path());
    assert_eq!(
        s.certificates(StoreType::Ca, "files").map(|c| c.len()).ok(),
        Some(1),
        "sub-dir ignored"
    );
    assert!(matches!(
        s.certificates(StoreType::Ca, "dirlink"),
        Err(TrustStoreError::Symlink { .. })
    ));
    assert!(matches!(
        s.certificates(StoreType::Ca, "links"),
        Err(TrustStoreError::Symlink { .. })
    ));
}
