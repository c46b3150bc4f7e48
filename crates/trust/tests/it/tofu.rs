//! Trust on first use: pin, refuse a changed identity, accept it; the pin file.

use crate::pki::{pki, signed_by};
use berth_trust::Timestamp;
use berth_trust::roles::Policy;
use berth_trust::tofu::{PinStore, TofuError, TofuOutcome};
use std::os::unix::fs::PermissionsExt;

fn statement() -> berth_trust::policy::PolicyStatement {
    let p = Policy::parse(&crate::roles::fixture("acme.json")).unwrap();
    p.select("registry.acme.test/x", None)
        .unwrap()
        .statement
        .clone()
}

const REPO: &str = "registry.acme.test/shop/web";

#[test]
fn first_use_pins_then_the_same_signer_passes_and_another_is_refused_until_accepted() {
    let st = statement();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("trust/pins.json");
    let mut store = PinStore::load(&path).unwrap();
    assert_eq!(store.pins().count(), 0, "a missing file is an empty store");

    let ci = signed_by("ci", &st);
    let got = store
        .check(REPO, std::slice::from_ref(&ci), Timestamp(1_800_000_000))
        .unwrap();
    let TofuOutcome::FirstUse(pinned) = got else {
        panic!("{got:?}")
    };
    assert_eq!(pinned.subject, "CN=ci,OU=builds,O=Acme,ST=WA,C=US");
    assert_eq!(
        pinned.certificate_sha256,
        crate::pki::digest_of(pki().signer("ci").leaf_der())
    );
    store.save(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // a new image by the same signer (another envelope) passes, after a reload
    let mut store = PinStore::load(&path).unwrap();
    let again = signed_by("ci", &st);
    assert!(matches!(
        store.check(REPO, &[again], Timestamp::now()),
        Ok(TofuOutcome::Match(_))
    ));

    // a different identity, even under the same trusted CA, is refused naming both and the command
    let mallory = signed_by("mallory", &st);
    let err = store
        .check(REPO, std::slice::from_ref(&mallory), Timestamp::now())
        .unwrap_err();
    let msg = err.to_string();
    let new_fp = crate::pki::digest_of(pki().signer("mallory").leaf_der());
    assert!(matches!(err, TofuError::Changed(_)), "{msg}");
    assert!(
        msg.contains(&pinned.certificate_sha256) && msg.contains("CN=ci,OU=builds"),
        "{msg}"
    );
    assert!(
        msg.contains(&new_fp) && msg.contains("CN=mallory,OU=builds"),
        "{msg}"
    );
    assert!(
        msg.contains("pinned to") && msg.contains("2027-01-15T08:00:00Z"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("berth trust accept {REPO} --certificate {new_fp}")),
        "{msg}"
    );
    // an image with a pinned signature among others passes
    let ci = signed_by("ci", &st);
    assert!(matches!(
        store.check(REPO, &[mallory.clone(), ci], Timestamp::now()),
        Ok(TofuOutcome::Match(_))
    ));
    // accepting another fingerprint than the refused one fails; the refused one succeeds
    let other = crate::pki::digest_of(pki().signer("bob").leaf_der());
    assert!(matches!(
        store.accept(REPO, Some(&other), Timestamp::now()),
        Err(TofuError::NotTheRefused { .. })
    ));
    let (old, new) = store.accept(REPO, Some(&new_fp), Timestamp::now()).unwrap();
    assert_eq!(old.unwrap(), pinned);
    assert_eq!(new.certificate_sha256, new_fp);
    store.save(&path).unwrap();
    let mut store = PinStore::load(&path).unwrap();
    assert!(matches!(
        store.check(REPO, &[mallory], Timestamp::now()),
        Ok(TofuOutcome::Match(_))
    ));
    // and now the old CI identity is the stranger
    let ci = signed_by("ci", &st);
    assert!(matches!(
        store.check(REPO, &[ci], Timestamp::now()),
        Err(TofuError::Changed(_))
    ));
}

#[test]
fn invalid_or_untrusted_signatures_neither_pin_nor_pass() {
    let st = statement();
    let mut store = PinStore::default();
    let forged = crate::pki::forged_by("ci", &st);
    let outsider = signed_by("outsider", &st);
    assert!(matches!(
        store.check(REPO, &[forged, outsider], Timestamp::now()),
        Err(TofuError::NoValidSignature { .. })
    ));
    assert_eq!(store.pins().count(), 0);
}

#[test]
fn accept_by_fingerprint_alone_learns_the_subject_later() {
    let st = statement();
    let mut store = PinStore::default();
    assert!(matches!(
        store.accept(REPO, None, Timestamp::now()),
        Err(TofuError::NothingToAccept { .. })
    ));
    let fp = crate::pki::digest_of(pki().signer("ci").leaf_der());
    let upper = fp[7..].to_uppercase();
    let (_, id) = store.accept(REPO, Some(&upper), Timestamp::now()).unwrap();
    assert_eq!(id.certificate_sha256, fp, "normalised");
    assert!(id.subject.is_empty());
    let got = store
        .check(REPO, &[signed_by("ci", &st)], Timestamp::now())
        .unwrap();
    assert!(matches!(got, TofuOutcome::Match(i) if i.subject.starts_with("CN=ci")));
    assert!(
        store
            .accept(REPO, Some("sha256:12"), Timestamp::now())
            .is_err()
    );
}

#[test]
fn a_pin_file_others_may_write_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("pins.json");
    PinStore::default().save(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = PinStore::load(&path).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
    // and a corrupt or foreign file is refused, not emptied
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&path, br#"{"version":"berth.pins/v9","pins":{}}"#).unwrap();
    assert!(matches!(
        PinStore::load(&path),
        Err(TofuError::Version { .. })
    ));
    std::fs::write(&path, b"{").unwrap();
    assert!(matches!(
        PinStore::load(&path),
        Err(TofuError::Parse { .. })
    ));
}
