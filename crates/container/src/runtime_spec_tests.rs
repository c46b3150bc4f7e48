//! `berth_runtime_spec` against this runtime: the configs `berth-runtime spec` writes
//! (`defaults`) are valid and Docker's seccomp profile compiles with every syscall name
//! known; the features document and the statuses this runtime writes are the shared
//! types' (`features`, `state`), field for field.

use berth_runtime_spec::defaults::{self, Flavor};

/// The locked-down default's seccomp profile, compiled by our own compiler: every name is
/// known to a syscall table.
#[test]
fn the_default_seccomp_profile_compiles_with_every_name_known() {
    for rootless in [None, Some((1000, 1000))] {
        let spec = defaults::default_spec(rootless, false);
        let linux = spec.linux.as_ref().unwrap();
        let sc = linux.seccomp.as_ref().expect("a seccomp profile");
        let filter = crate::seccomp::compile(sc).unwrap();
        assert!(
            filter.unknown_syscalls().is_empty(),
            "names no table knows: {:?}",
            filter.unknown_syscalls()
        );
    }
}

/// Every default `spec` writes, as written, passes the runtime's validation.
#[test]
fn the_defaults_are_valid_configs() {
    for flavor in [Flavor::Locked, Flavor::RuncCompat] {
        for rootless in [None, Some((1000, 1000))] {
            for v2 in [false, true] {
                let text = defaults::to_json(&defaults::spec(flavor, rootless, v2)).unwrap();
                let spec: berth_runtime_spec::Spec = serde_json::from_str(&text).unwrap();
                crate::spec::validate(&spec).unwrap();
            }
        }
    }
}

/// `berth-runtime features` is a `berth_runtime_spec::features::Features` document: it
/// parses as one, with the values this runtime means, and writes back the same JSON (no
/// field the shared types do not know).
#[test]
fn the_features_document_is_the_shared_types() {
    use berth_runtime_spec::features::Features;
    let doc = crate::features::features();
    let parsed: Features = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(parsed.oci_version_max, crate::SPEC_VERSION);
    let linux = parsed.linux.as_ref().unwrap();
    let seccomp = linux.seccomp.as_ref().unwrap();
    assert_eq!(seccomp.enabled, Some(true));
    assert!(
        seccomp
            .actions
            .as_ref()
            .unwrap()
            .contains(&"SCMP_ACT_NOTIFY".to_owned())
    );
    assert_eq!(linux.cgroup.as_ref().unwrap().systemd, Some(false));
    assert_eq!(serde_json::to_value(&parsed).unwrap(), doc);
}

/// The statuses this runtime records and reports are spelled as the shared `state::Status`.
#[test]
fn the_statuses_are_the_shared_types() {
    use crate::state::Status;
    use berth_runtime_spec::state::Status as SpecStatus;
    for (ours, theirs) in [
        (Status::Creating, SpecStatus::Creating),
        (Status::Created, SpecStatus::Created),
        (Status::Running, SpecStatus::Running),
        (Status::Paused, SpecStatus::Paused),
        (Status::Stopped, SpecStatus::Stopped),
    ] {
        let v = serde_json::to_value(ours).unwrap();
        assert_eq!(v, serde_json::to_value(theirs).unwrap());
        assert_eq!(ours.to_string(), theirs.to_string());
    }
}
