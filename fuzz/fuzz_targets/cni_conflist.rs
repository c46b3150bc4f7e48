//! `NetworkConfigList::from_bytes` on arbitrary bytes as a `.conflist` or `.conf` (a file
//! anyone who can write to /etc/cni/net.d controls): never panics. An accepted list has a
//! valid name, at least one plugin each with a `type`, versions berth speaks (highest
//! first), and its own bytes (what the result cache keeps for DEL) parse back to the same
//! list; the request each plugin would get is a JSON object carrying the list's name and
//! version and no `capabilities`. The same bytes read as a plugin result never panic, and an
//! accepted result written in each version berth speaks reads back to the same addresses.
//! A list that asks berth for its host rules (`"berth": {"hostRules": …}`) gives `iptables`
//! checks whose every value (bridge, subnet, comment) is one argument that is not an option.
#![no_main]

use berth_cni::{Cni, CniResult, NetworkConfigList, RuntimeConf, SUPPORTED};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = NetworkConfigList::from_bytes(data, "fuzz") {
        assert!(!list.name.is_empty());
        assert!(!list.plugins.is_empty());
        assert!(!list.versions.is_empty());
        assert!(list.versions.windows(2).all(|w| w[0] > w[1]), "{:?}", list.versions);
        assert!(list.versions.iter().all(|v| v.is_supported()));
        let again = NetworkConfigList::from_bytes(&list.bytes, "again")
            .unwrap_or_else(|e| panic!("own bytes of {:?} refused: {e}", list.name));
        assert_eq!(again.name, list.name);
        assert_eq!(again.versions, list.versions);
        assert_eq!(again.plugins, list.plugins);
        let rt = RuntimeConf::new("c", "/run/netns/c", "eth0")
            .with_mac("02:00:00:00:00:01")
            .with_ips(&["10.0.0.2/24".to_owned()]);
        for p in &list.plugins {
            assert!(!p.plugin_type.is_empty() && !p.plugin_type.contains('/'));
            let req = Cni::request(&list, p, list.cni_version(), None, Some(&rt));
            let v: serde_json::Value = serde_json::from_slice(&req).expect("request is JSON");
            assert_eq!(v["name"], list.name.as_str());
            assert_eq!(v["cniVersion"], list.cni_version().to_string().as_str());
            assert!(v.get("capabilities").is_none());
        }
    }
    if let Ok(list) = NetworkConfigList::from_bytes(data, "fuzz")
        && let Ok(Some(rules)) = berth_engine::hostrules::HostRules::of(&list)
    {
        let checks = rules.checks();
        assert!(!checks.is_empty());
        for argv in &checks {
            assert!(argv[0] == "iptables" || argv[0] == "ip6tables", "{argv:?}");
            for pair in argv.windows(2) {
                if matches!(pair[0].as_str(), "-i" | "-o" | "-s" | "--comment") {
                    assert!(!pair[1].starts_with('-') && !pair[1].is_empty(), "{argv:?}");
                }
            }
            assert!(argv.contains(&format!("berth network {}", list.name)), "{argv:?}");
        }
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(result) = CniResult::from_json(&value)
    {
        for version in SUPPORTED {
            let written = result.to_json(version);
            let back = CniResult::from_json(&written)
                .unwrap_or_else(|e| panic!("{written} (as {version}) refused: {e}"));
            assert_eq!(back.ips, result.ips, "as {version}");
            assert_eq!(back.interfaces.len(), result.interfaces.len());
        }
    }
});
