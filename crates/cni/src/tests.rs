//! Unit tests of what needs no plugin: parsing, validation, request derivation.

use serde_json::{Value, json};

use super::*;

fn list(v: Value) -> NetworkConfigList {
    NetworkConfigList::from_bytes(v.to_string().as_bytes(), "test.conflist").unwrap()
}

fn err(v: &str) -> String {
    NetworkConfigList::from_bytes(v.as_bytes(), "bad.conflist")
        .unwrap_err()
        .to_string()
}

#[test]
fn conflist_fields_are_read() {
    let l = list(json!({
        "cniVersion": "1.0.0",
        "cniVersions": ["0.4.0", "9.9.9", "1.1.0"],
        "name": "berth0",
        "disableCheck": "TRUE",
        "disableGC": true,
        "plugins": [
            {"type": "bridge", "bridge": "b0", "ipam": {"type": "host-local"}},
            {"type": "portmap", "capabilities": {"portMappings": true}, "x": [1]}
        ]
    }));
    assert_eq!(l.name, "berth0");
    // 9.9.9 is above what berth implements: skipped, as libcni does
    assert_eq!(
        l.versions,
        vec![
            Version::new(1, 1, 0),
            Version::new(1, 0, 0),
            Version::new(0, 4, 0)
        ]
    );
    assert!(l.disable_check && l.disable_gc && !l.load_only_inlined_plugins);
    assert_eq!(l.plugins[1].plugin_type, "portmap");
    assert_eq!(l.plugins[1].capabilities.get("portMappings"), Some(&true));
    assert_eq!(l.plugins[1].raw["x"], json!([1]));
}

#[test]
fn a_single_conf_becomes_a_list_of_one() {
    let l =
        list(json!({"cniVersion": "0.4.0", "name": "old", "type": "bridge", "isGateway": true}));
    assert_eq!(l.name, "old");
    assert_eq!(l.cni_version(), Version::new(0, 4, 0));
    assert_eq!(l.plugins.len(), 1);
    assert_eq!(l.plugins[0].raw["isGateway"], json!(true));
    let again = NetworkConfigList::from_bytes(&l.bytes, "again").unwrap();
    assert_eq!(again.plugins, l.plugins);
}

#[test]
fn invalid_configs_name_the_file_and_field() {
    let cases = [
        ("[]", "(whole file): the configuration is not a JSON object"),
        ("{", "(whole file): EOF"),
        (
            r#"{"cniVersion":"1.0.0","plugins":[{"type":"x"}]}"#,
            "name: missing",
        ),
        (
            r#"{"name":"-x","cniVersion":"1.0.0","plugins":[{"type":"x"}]}"#,
            "name: \"-x\" is not a network name",
        ),
        (
            r#"{"name":"a/b","cniVersion":"1.0.0","plugins":[{"type":"x"}]}"#,
            "name: \"a/b\"",
        ),
        (
            r#"{"name":"n","plugins":[{"type":"x"}]}"#,
            "cniVersion: missing",
        ),
        (
            r#"{"name":"n","cniVersion":1,"plugins":[{"type":"x"}]}"#,
            "cniVersion: a number is not a string",
        ),
        (
            r#"{"name":"n","cniVersion":"one","plugins":[{"type":"x"}]}"#,
            "cniVersion: \"one\" is not a version",
        ),
        (
            r#"{"name":"n","cniVersion":"0.2.0","plugins":[{"type":"x"}]}"#,
            "cniVersion: berth speaks CNI versions 0.3.0",
        ),
        (
            r#"{"name":"n","cniVersions":["1.0.0",2],"plugins":[{"type":"x"}]}"#,
            "cniVersions[1]: a number",
        ),
        (
            r#"{"name":"n","cniVersion":"1.0.0","disableCheck":"yes","plugins":[{"type":"x"}]}"#,
            "disableCheck: \"yes\" is not true or false",
        ),
        (
            r#"{"name":"n","cniVersion":"1.0.0","plugins":[]}"#,
            "plugins: the list is empty",
        ),
        (
            r#"{"name":"n","cniVersion":"1.0.0"}"#,
            "plugins: the network has no plugins",
        ),
        (
            r#"{"name":"n","cniVersion":"1.0.0","loadOnlyInlinedPlugins":true}"#,
            "plugins: missing, and loadOnlyInlinedPlugins",
        ),
        (
            r#"{"name":"n","cniVersion":"1.0.0","plugins":{}}"#,
            "plugins: an object is not a list",
        ),
        (
            r#"{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"a"},3]}"#,
            "plugins[1]: a number is not an object",
        ),
        (
            r#"{"name":"n","cniVersion":"1.0.0","plugins":[{"bridge":"x"}]}"#,
            "plugins[0].type: missing",
        ),
        (
            r#"{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"../sbin/x"}]}"#,
            "plugins[0].type: \"../sbin/x\"",
        ),
        (
            r#"{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"a","capabilities":{"mac":1}}]}"#,
            "plugins[0].capabilities.mac: a number is not true or false",
        ),
        (
            r#"{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"a","ipam":{"type":"/bin/sh"}}]}"#,
            "plugins[0].ipam.type",
        ),
    ];
    for (input, want) in cases {
        let e = err(input);
        assert!(
            e.starts_with("invalid CNI network configuration bad.conflist: "),
            "{input}: {e}"
        );
        assert!(e.contains(want), "{input}:\n  got  {e}\n  want {want}");
    }
}

#[test]
fn request_carries_name_version_prev_result_and_only_declared_capabilities() {
    let l = list(json!({
        "cniVersion": "1.0.0", "name": "net1",
        "plugins": [
            {"type": "bridge", "name": "ignored", "cniVersion": "0.1.0"},
            {"type": "portmap", "capabilities": {"portMappings": true, "bandwidth": false}},
        ]
    }));
    let rt = RuntimeConf::new("c1", "/run/netns/c1", "eth0")
        .with_port_mappings(&[PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: String::new(),
        }])
        .with_bandwidth(Bandwidth {
            ingress_rate: 1_000_000,
            ingress_burst: 2_000_000,
            ..Bandwidth::default()
        })
        .with_mac("02:00:00:00:00:01");
    let prev = CniResult {
        cni_version: "1.0.0".into(),
        ips: vec![IpConfig {
            address: "10.9.0.2/24".into(),
            ..IpConfig::default()
        }],
        ..CniResult::default()
    };
    let v = Version::new(1, 0, 0);
    let first: Value =
        serde_json::from_slice(&Cni::request(&l, &l.plugins[0], v, None, Some(&rt))).unwrap();
    assert_eq!(first["name"], "net1");
    assert_eq!(first["cniVersion"], "1.0.0");
    assert!(first.get("prevResult").is_none());
    assert!(
        first.get("runtimeConfig").is_none(),
        "bridge declares no capability: {first}"
    );
    let second: Value =
        serde_json::from_slice(&Cni::request(&l, &l.plugins[1], v, Some(&prev), Some(&rt)))
            .unwrap();
    assert_eq!(
        second["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}),
        "only portMappings: bandwidth is declared false, mac not at all"
    );
    assert_eq!(second["prevResult"]["ips"][0]["address"], "10.9.0.2/24");
    assert!(
        second.get("capabilities").is_none(),
        "SPEC.md: capabilities must not be set"
    );
    // a 0.4.0 network gets a 0.4.0 prevResult
    let old: Value = serde_json::from_slice(&Cni::request(
        &l,
        &l.plugins[1],
        Version::new(0, 4, 0),
        Some(&prev),
        None,
    ))
    .unwrap();
    assert_eq!(old["prevResult"]["cniVersion"], "0.4.0");
    assert_eq!(old["prevResult"]["ips"][0]["version"], "4");
}

#[test]
fn config_ips_reach_every_plugin_as_args_cni_ips_beside_the_lists_own_args() {
    let l = list(json!({"cniVersion": "1.0.0", "name": "n", "plugins": [
        {"type": "bridge", "args": {"cni": {"labels": {"a": "b"}}, "other": 1}},
        {"type": "portmap", "args": "not an object"},
    ]}));
    let rt = RuntimeConf::new("c1", "/run/netns/c1", "eth0")
        .with_config_ips(&["10.9.0.7".to_owned(), "fd00::7".to_owned()]);
    let v = Version::new(1, 0, 0);
    let first: Value =
        serde_json::from_slice(&Cni::request(&l, &l.plugins[0], v, None, Some(&rt))).unwrap();
    assert_eq!(
        first["args"],
        json!({"cni": {"labels": {"a": "b"}, "ips": ["10.9.0.7", "fd00::7"]}, "other": 1})
    );
    let second: Value =
        serde_json::from_slice(&Cni::request(&l, &l.plugins[1], v, None, Some(&rt))).unwrap();
    assert_eq!(
        second["args"],
        json!({"cni": {"ips": ["10.9.0.7", "fd00::7"]}})
    );
    // none asked: the list's args as they are
    let plain = RuntimeConf::new("c1", "/run/netns/c1", "eth0");
    let first: Value =
        serde_json::from_slice(&Cni::request(&l, &l.plugins[0], v, None, Some(&plain))).unwrap();
    assert_eq!(
        first["args"],
        json!({"cni": {"labels": {"a": "b"}}, "other": 1})
    );
}

#[test]
fn attachment_parameters_are_validated() {
    let l = list(json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge"}]}));
    let cni = Cni::new(vec![], "/nonexistent-berth-cni-cache");
    for (rt, want) in [
        (RuntimeConf::new("", "/run/netns/x", "eth0"), "container id"),
        (
            RuntimeConf::new("-c", "/run/netns/x", "eth0"),
            "container id",
        ),
        (
            RuntimeConf::new("c/1", "/run/netns/x", "eth0"),
            "container id",
        ),
        (
            RuntimeConf::new("c", "/run/netns/x", "a-very-long-ifname"),
            "interface name",
        ),
        (
            RuntimeConf::new("c", "/run/netns/x", "et h0"),
            "interface name",
        ),
        (
            RuntimeConf::new("c", "/run/netns/x", ".."),
            "interface name",
        ),
        (RuntimeConf::new("c", "", "eth0"), "network namespace"),
        (
            RuntimeConf::new("c", "/x", "eth0").with_arg("A;B", "1"),
            "CNI_ARGS",
        ),
    ] {
        let e = cni.add(&l, &rt).unwrap_err();
        assert!(
            matches!(e, CniError::InvalidParameter { .. }) && e.to_string().contains(want),
            "{rt:?}: {e}"
        );
        assert_eq!(e.kind(), berth_errdefs::ErrorKind::InvalidInput);
    }
}

#[test]
fn cni_args_are_joined_as_plugins_read_them() {
    let rt = RuntimeConf::new("c", "/x", "eth0")
        .with_arg("IgnoreUnknown", "1")
        .with_arg("K8S_POD_NAME", "web");
    assert_eq!(
        rt.cni_args().as_deref(),
        Some("IgnoreUnknown=1;K8S_POD_NAME=web")
    );
    assert_eq!(RuntimeConf::new("c", "/x", "eth0").cni_args(), None);
}
