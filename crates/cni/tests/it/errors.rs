//! Failures: a plugin's error JSON reaches the caller, a failed ADD is undone, a plugin that
//! hangs is killed at the timeout, a missing plugin is named.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_cni::{Cni, CniError, NetworkConfigList, RuntimeConf};

use crate::requires_cni;
use crate::support::{Env, PLUGIN_DIR};

fn conflist(json: serde_json::Value) -> NetworkConfigList {
    NetworkConfigList::from_bytes(json.to_string().as_bytes(), "test").unwrap()
}

#[test]
fn a_failing_plugins_error_reaches_the_caller_and_the_add_is_rolled_back() {
    requires_cni!();
    let env = Env::new("fail");
    // bridge + host-local succeed (a veth, an address), then tuning fails on a sysctl that
    // does not exist: everything the bridge did must be undone
    let list = conflist(serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "failnet",
        "plugins": [
            {"type": "bridge", "bridge": "cni-br0", "isGateway": true,
             "ipam": {"type": "host-local", "subnet": "10.213.9.0/24", "dataDir": env.ipam_dir()}},
            {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.no_such_knob": "1"}}
        ]
    }));
    let rt = RuntimeConf::new("ctr-fail", env.netns(), "eth0");
    let before = env.resources("failnet", "ctr-fail");
    let e = env.host.run_in(|| env.cni.add(&list, &rt)).unwrap_err();

    let CniError::Plugin {
        plugin,
        command,
        error,
        ..
    } = &e
    else {
        panic!("not a plugin error: {e:?}");
    };
    assert_eq!(plugin, "tuning");
    assert_eq!(*command, "ADD");
    assert!(error.code > 0, "{error:?}");
    assert!(error.msg.contains("no_such_knob"), "{error:?}");
    assert_eq!(e.plugin_error(), Some(&**error));
    let shown = e.to_string();
    assert!(
        shown.contains("CNI plugin tuning failed ADD on network \"failnet\": code"),
        "{shown}"
    );

    // rolled back: no veth, no address, no eth0, no cache entry
    assert_eq!(env.resources("failnet", "ctr-fail"), before);
    assert!(
        env.cni
            .cached("failnet", "ctr-fail", "eth0")
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_plugin_rejecting_its_config_returns_its_code_and_msg() {
    requires_cni!();
    let env = Env::new("badcfg");
    // host-local refuses a range outside its subnet: code and msg come from the plugin
    let list = conflist(serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "badcfg",
        "plugins": [
            {"type": "bridge", "bridge": "cni-br0",
             "ipam": {"type": "host-local", "subnet": "10.213.10.0/24",
                      "rangeStart": "10.99.0.10", "dataDir": env.ipam_dir()}}
        ]
    }));
    let rt = RuntimeConf::new("ctr-badcfg", env.netns(), "eth0");
    let before = env.resources("badcfg", "ctr-badcfg");
    let e = env.host.run_in(|| env.cni.add(&list, &rt)).unwrap_err();
    let pe = e.plugin_error().unwrap_or_else(|| panic!("{e:?}"));
    assert!(pe.code > 0 && !pe.msg.is_empty(), "{pe:?}");
    assert!(e.to_string().contains(&pe.msg), "{e}");
    assert!(
        e.to_string().contains("rangeStart") || pe.msg.contains("10.99.0.10"),
        "{e}"
    );
    assert_eq!(env.resources("badcfg", "ctr-badcfg"), before);
}

#[test]
fn a_plugin_that_never_answers_is_killed_at_the_timeout() {
    requires_cni!();
    let env = Env::new("hang");
    // a plugin binary that hangs (a stuck daemon behind it, say): records its pid, sleeps
    let dir = env.tmp.path().join("plugins");
    std::fs::create_dir(&dir).unwrap();
    let pidfile = env.tmp.path().join("hang.pid");
    let script = dir.join("hang");
    crate::support::write_file(
        &script,
        &format!(
            "#!/bin/sh\nif [ \"$CNI_COMMAND\" = VERSION ]; then echo '{{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"1.0.0\"]}}'; exit 0; fi\necho $$ > {}\nexec sleep 600\n",
            pidfile.display()
        ),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cni = Cni::new(
        vec![dir, PathBuf::from(PLUGIN_DIR)],
        env.tmp.path().join("cache"),
    )
    .with_timeout(Duration::from_millis(500));
    let list = conflist(serde_json::json!({
        "cniVersion": "1.0.0", "name": "hangnet", "plugins": [{"type": "hang"}]
    }));
    let rt = RuntimeConf::new("ctr-hang", env.netns(), "eth0");
    let start = Instant::now();
    let e = env.host.run_in(|| cni.add(&list, &rt)).unwrap_err();
    let took = start.elapsed();
    // the ADD and the rollback DEL each time out
    let CniError::RollbackFailed { add, source } = &e else {
        panic!("{e:?}");
    };
    assert!(
        matches!(**add, CniError::Timeout { command: "ADD", .. }),
        "{add:?}"
    );
    assert!(
        matches!(**source, CniError::Timeout { command: "DEL", .. }),
        "{source:?}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(e.to_string().contains("did not finish within 500ms"), "{e}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the hung plugin {pid} is still there"
    );
}

#[test]
fn a_missing_plugin_is_named_with_the_directories_searched() {
    requires_cni!();
    let env = Env::new("missing");
    let list = conflist(serde_json::json!({
        "cniVersion": "1.0.0", "name": "m", "plugins": [{"type": "bridge"}, {"type": "no-such-plugin"}]
    }));
    let rt = RuntimeConf::new("ctr-missing", env.netns(), "eth0");
    let e = env.host.run_in(|| env.cni.add(&list, &rt)).unwrap_err();
    assert!(
        matches!(&e, CniError::PluginNotFound { plugin, .. } if plugin == "no-such-plugin"),
        "{e:?}"
    );
    assert!(e.to_string().contains("/usr/lib/cni"), "{e}");
    assert_eq!(e.kind(), berth_errdefs::ErrorKind::NotFound);
}
