//! `spec::parse_config` on arbitrary bytes as `config.json`: never panics. A config it
//! accepts goes through the pure planning `create` does with it — namespaces to create or
//! join, capability sets, every mount's options, the seccomp profile — without panics, and
//! parsing it again (from its own serialisation) is accepted the same.
#![no_main]

use std::path::Path;

use berth_container::namespaces::Plan;
use berth_container::rootfs::options;
use berth_container::{caps, seccomp, spec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("/fuzz/config.json");
    let Ok(config) = spec::parse_config(data, path) else {
        return;
    };
    let types = spec::namespace_types(&config);
    if let Some(linux) = &config.linux {
        let plan = Plan::of(linux);
        for t in &types {
            // each type is created or joined (validation refused duplicates)
            let joined = plan.join.iter().filter(|(j, _)| j == t).count();
            assert_eq!(usize::from(plan.creates(*t)) + joined, 1, "{t:?}");
        }
        if let Some(profile) = &linux.seccomp {
            let _ = seccomp::compile(profile);
        }
    }
    if let Some(c) = config
        .process
        .as_ref()
        .and_then(|p| p.capabilities.as_ref())
    {
        for set in [
            &c.bounding,
            &c.effective,
            &c.permitted,
            &c.inheritable,
            &c.ambient,
        ] {
            let _ = caps::set_of(set.as_ref());
        }
    }
    for m in config.mounts.as_deref().unwrap_or_default() {
        let _ = options::parse(m.options.as_deref().unwrap_or_default());
    }
    let again = serde_json::to_vec(&config).unwrap();
    assert!(
        spec::parse_config(&again, path).is_ok(),
        "re-parsing an accepted config failed"
    );
});
