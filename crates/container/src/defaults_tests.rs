//! `berth_runtime_spec::defaults` against this runtime: the configs `berth-runtime spec`
//! writes are valid, and Docker's seccomp profile compiles with every syscall name known.

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
