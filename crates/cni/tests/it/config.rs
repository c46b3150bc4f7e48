//! Finding networks by name in configuration directories, as go-cni does.

use std::path::Path;

use berth_cni::{CniError, NetworkConfigList};

fn write(dir: &Path, file: &str, json: serde_json::Value) {
    std::fs::create_dir_all(dir).unwrap();
    crate::support::write_file(&dir.join(file), &json.to_string());
}

fn net(name: &str, bridge: &str) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "1.0.0", "name": name,
        "plugins": [{"type": "bridge", "bridge": bridge}]
    })
}

#[test]
fn the_first_directory_then_the_first_file_in_lexical_order_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let berth = tmp.path().join("berth");
    let system = tmp.path().join("net.d");
    // the system directory's file sorts first, but berth's directory is searched first
    write(&system, "00-a.conflist", net("shared", "from-system"));
    write(&berth, "20-b.conflist", net("shared", "from-berth-20"));
    write(&berth, "10-a.conflist", net("shared", "from-berth-10"));
    write(&system, "50-only.conflist", net("systemonly", "sys"));
    // a single-plugin .conf is a list of one
    write(
        &berth,
        "30-single.conf",
        serde_json::json!({"cniVersion": "0.4.0", "name": "single", "type": "bridge", "bridge": "b1"}),
    );
    crate::support::write_file(&berth.join("README.md"), "not a config");
    let dirs = vec![berth.clone(), system.clone()];

    let l = berth_cni::load(&dirs, "shared").unwrap();
    assert_eq!(l.plugins[0].raw["bridge"], "from-berth-10");
    assert_eq!(
        l.origin.as_deref(),
        Some(berth.join("10-a.conflist").as_path())
    );
    assert_eq!(
        berth_cni::load(&dirs, "systemonly").unwrap().plugins[0].raw["bridge"],
        "sys"
    );
    let single = berth_cni::load(&dirs, "single").unwrap();
    assert_eq!(single.plugins.len(), 1);
    assert_eq!(single.cni_version().to_string(), "0.4.0");

    let (all, broken) = berth_cni::load_all(&dirs).unwrap();
    let names: Vec<&str> = all.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["shared", "single", "systemonly"]);
    assert!(broken.is_empty());
}

#[test]
fn a_broken_file_is_named_when_the_network_is_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    write(&dir, "10-ok.conflist", net("ok", "b0"));
    crate::support::write_file(
        &dir.join("20-broken.conflist"),
        r#"{"cniVersion": "1.0.0", "name": "wanted", "plugins": [{"bridge": "b"}]}"#,
    );
    // the broken file does not stop other networks from loading
    assert_eq!(
        berth_cni::load(std::slice::from_ref(&dir), "ok")
            .unwrap()
            .name,
        "ok"
    );
    let e = berth_cni::load(std::slice::from_ref(&dir), "wanted").unwrap_err();
    assert!(matches!(e, CniError::NetworkNotFound { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("no CNI network named \"wanted\""), "{msg}");
    assert!(
        msg.contains("20-broken.conflist: plugins[0].type: missing"),
        "names the file and the field: {msg}"
    );
    let (all, broken) = berth_cni::load_all(&[dir]).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(broken.len(), 1);
}

#[test]
fn plugins_in_the_sibling_directory_are_appended_unless_inlined_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "10-agg.conflist", net("agg", "b0"));
    write(
        &dir.join("agg"),
        "20-portmap.conf",
        serde_json::json!({"type": "portmap", "capabilities": {"portMappings": true}}),
    );
    write(
        &dir.join("agg"),
        "10-tuning.conf",
        serde_json::json!({"type": "tuning"}),
    );
    let l = NetworkConfigList::from_file(&dir.join("10-agg.conflist")).unwrap();
    let types: Vec<&str> = l.plugins.iter().map(|p| p.plugin_type.as_str()).collect();
    assert_eq!(types, ["bridge", "tuning", "portmap"]);
    // the cached bytes carry the aggregated list, so DEL from the cache runs all three
    let again = NetworkConfigList::from_bytes(&l.bytes, "cache").unwrap();
    assert_eq!(again.plugins, l.plugins);

    let mut inlined = net("agg", "b0");
    inlined["loadOnlyInlinedPlugins"] = true.into();
    write(dir, "10-agg.conflist", inlined);
    let l = NetworkConfigList::from_file(&dir.join("10-agg.conflist")).unwrap();
    assert_eq!(l.plugins.len(), 1);
}
