//! Version negotiation against the plugins' real VERSION answers (containernetworking-plugins
//! 1.1.1 speak up to spec 1.0.0).

use berth_cni::{CniError, NetworkConfigList, RuntimeConf, Version};

use crate::requires_cni;
use crate::support::Env;

fn conflist(json: serde_json::Value) -> NetworkConfigList {
    NetworkConfigList::from_bytes(json.to_string().as_bytes(), "test").unwrap()
}

#[test]
fn plugin_versions_are_what_the_plugins_answer() {
    requires_cni!();
    let env = Env::new("ver");
    for plugin in [
        "bridge",
        "host-local",
        "portmap",
        "bandwidth",
        "tuning",
        "firewall",
    ] {
        let ours = env.cni.plugin_versions("n", plugin).unwrap();
        // what the binary itself prints for VERSION
        let out = std::process::Command::new(format!("/usr/lib/cni/{plugin}"))
            .env("CNI_COMMAND", "VERSION")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let theirs: Vec<String> = serde_json::from_value(v["supportedVersions"].clone()).unwrap();
        assert_eq!(ours, theirs, "{plugin}");
        assert!(ours.contains(&"1.0.0".to_owned()), "{plugin}: {ours:?}");
    }
}

#[test]
fn the_highest_version_every_plugin_speaks_is_chosen_and_others_refused() {
    requires_cni!();
    let env = Env::new("nego");
    let plugins = serde_json::json!([{"type": "bridge"}, {"type": "firewall"}]);
    // 1.1.0 alone: no plugin here speaks it → a clear refusal before anything runs
    let only_11 =
        conflist(serde_json::json!({"cniVersion": "1.1.0", "name": "n", "plugins": plugins}));
    let e = env.cni.negotiate(&only_11).unwrap_err();
    let CniError::VersionUnsupported {
        wanted,
        plugin,
        supported,
        ..
    } = &e
    else {
        panic!("{e:?}");
    };
    assert_eq!(wanted, "1.1.0");
    assert_eq!(plugin, "bridge");
    assert!(supported.contains(&"1.0.0".to_owned()));
    assert!(
        e.to_string()
            .contains("hint: set the network's \"cniVersion\""),
        "{e}"
    );
    let rt = RuntimeConf::new("ctr-nego", env.netns(), "eth0");
    let before = env.resources("n", "ctr-nego");
    assert!(matches!(
        env.host.run_in(|| env.cni.add(&only_11, &rt)),
        Err(CniError::VersionUnsupported { .. })
    ));
    assert_eq!(env.resources("n", "ctr-nego"), before);

    // cniVersions offers 1.0.0 as well: that is used
    let offers = conflist(serde_json::json!({
        "cniVersion": "1.1.0", "cniVersions": ["0.3.1", "1.0.0"], "name": "n", "plugins": plugins
    }));
    assert_eq!(env.cni.negotiate(&offers).unwrap(), Version::new(1, 0, 0));
    // STATUS and GC exist from 1.1.0 only: not asked of these plugins
    assert!(!env.cni.status(&offers).unwrap());

    // firewall speaks 0.4.0 and 1.0.0 only; bridge also 0.3.1: firewall is the one named
    let old = conflist(serde_json::json!({"cniVersion": "0.3.1", "name": "n", "plugins": plugins}));
    let e = env.cni.negotiate(&old).unwrap_err();
    assert!(
        matches!(&e, CniError::VersionUnsupported { plugin, .. } if plugin == "firewall"),
        "{e:?}"
    );
}

/// A plugin script that answers VERSION with `versions` and counts how often it was asked.
fn counting_plugin(dir: &std::path::Path, versions: &str) {
    use std::os::unix::fs::PermissionsExt;
    let script = format!(
        "#!/bin/sh\nif [ \"$CNI_COMMAND\" = VERSION ]; then echo asked >> {}; \
         echo '{{\"cniVersion\":\"1.0.0\",\"supportedVersions\":{versions}}}'; fi\n",
        dir.join("asked").display()
    );
    // written anew and renamed into place (atomic_write), as a package upgrade replaces a
    // binary
    let path = dir.join("plugins/counter");
    berth_test_support::write_file(&path, script.as_bytes());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn version_answers_are_kept_in_the_cache_directory_until_the_binary_changes() {
    let dir = tempfile::tempdir().unwrap();
    let asked = || {
        std::fs::read_to_string(dir.path().join("asked"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    counting_plugin(dir.path(), r#"["0.4.0","1.0.0"]"#);
    let plugins = vec![dir.path().join("plugins")];
    let cache = dir.path().join("cache");
    let first = berth_cni::Cni::new(plugins.clone(), &cache);
    assert_eq!(
        first.plugin_versions("n", "counter").unwrap(),
        ["0.4.0", "1.0.0"]
    );
    assert_eq!(
        first.plugin_versions("n", "counter").unwrap(),
        ["0.4.0", "1.0.0"]
    );
    assert_eq!(asked(), 1);
    // another process (each `berth run` is one) takes the answer from the cache directory
    let second = berth_cni::Cni::new(plugins.clone(), &cache);
    assert_eq!(
        second.plugin_versions("n", "counter").unwrap(),
        ["0.4.0", "1.0.0"]
    );
    assert_eq!(asked(), 1, "asked again despite the cached answer");
    assert!(cache.join(berth_cni::VERSIONS_FILE).exists());
    // a replaced binary is asked again
    counting_plugin(dir.path(), r#"["1.0.0"]"#);
    let third = berth_cni::Cni::new(plugins.clone(), &cache);
    assert_eq!(third.plugin_versions("n", "counter").unwrap(), ["1.0.0"]);
    assert_eq!(asked(), 2);
    // and a cache file that does not parse is ignored (and replaced)
    berth_test_support::write_file(cache.join(berth_cni::VERSIONS_FILE), b"{not json");
    let fourth = berth_cni::Cni::new(plugins, &cache);
    assert_eq!(fourth.plugin_versions("n", "counter").unwrap(), ["1.0.0"]);
    assert_eq!(asked(), 3);
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.join(berth_cni::VERSIONS_FILE)).unwrap())
            .unwrap();
    assert!(kept.is_object(), "{kept}");
}
