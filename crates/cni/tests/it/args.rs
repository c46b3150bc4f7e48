//! What reaches the plugins: `CNI_ARGS` and capability arguments, observed through what the
//! real plugins do with them; and a conflist as nerdctl writes it.

use berth_cni::{NetworkConfigList, RuntimeConf};

use crate::requires_cni;
use crate::support::Env;

fn bridge_list(env: &Env, name: &str, capabilities: serde_json::Value) -> NetworkConfigList {
    let json = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [{
            "type": "bridge", "bridge": "cni-br0", "isGateway": true,
            "capabilities": capabilities,
            "ipam": {"type": "host-local", "subnet": "10.213.11.0/24", "dataDir": env.ipam_dir()}
        }]
    });
    NetworkConfigList::from_bytes(json.to_string().as_bytes(), "test").unwrap()
}

fn addr_of(env: &Env) -> String {
    env.ctr
        .exec(&["ip", "-o", "-4", "addr", "show", "dev", "eth0"])
}

#[test]
fn cni_args_reach_the_plugins() {
    requires_cni!();
    let env = Env::new("args");
    let list = bridge_list(&env, "argsnet", serde_json::json!({}));
    // host-local takes a requested address from CNI_ARGS (IP=…); IgnoreUnknown keeps other
    // plugins from refusing a key they do not know
    let rt = RuntimeConf::new("ctr-args", env.netns(), "eth0")
        .with_arg("IgnoreUnknown", "1")
        .with_arg("IP", "10.213.11.50");
    let r = env.host.run_in(|| env.cni.add(&list, &rt)).unwrap();
    assert_eq!(r.ips[0].address, "10.213.11.50/24");
    assert!(addr_of(&env).contains("inet 10.213.11.50/24"));
    env.host.run_in(|| env.cni.del(&list, &rt)).unwrap();
}

#[test]
fn capability_arguments_reach_only_plugins_that_declare_them() {
    requires_cni!();
    // the `ips` capability: host-local (behind bridge) honours runtimeConfig.ips
    let rt_for = |env: &Env, cid: &str| {
        RuntimeConf::new(cid, env.netns(), "eth0").with_ips(&["10.213.11.60/24".to_owned()])
    };
    let env = Env::new("capon");
    let declared = bridge_list(&env, "capnet", serde_json::json!({"ips": true}));
    let rt = rt_for(&env, "ctr-cap-on");
    let r = env.host.run_in(|| env.cni.add(&declared, &rt)).unwrap();
    assert_eq!(
        r.ips[0].address, "10.213.11.60/24",
        "declared: the static address"
    );
    env.host.run_in(|| env.cni.del(&declared, &rt)).unwrap();

    let env = Env::new("capoff");
    let undeclared = bridge_list(&env, "capnet", serde_json::json!({"ips": false}));
    let rt = rt_for(&env, "ctr-cap-off");
    let r = env.host.run_in(|| env.cni.add(&undeclared, &rt)).unwrap();
    assert_ne!(
        r.ips[0].address, "10.213.11.60/24",
        "not declared: runtimeConfig.ips must not reach the plugin"
    );
    assert!(r.ips[0].address.starts_with("10.213.11."));
    env.host.run_in(|| env.cni.del(&undeclared, &rt)).unwrap();
}

#[test]
fn a_conflist_written_by_nerdctl_works_unchanged() {
    requires_cni!();
    let env = Env::new("nerdctl");
    // nerdctl's default network (`nerdctl network inspect bridge`), with only host-local's
    // dataDir moved into the test's directory
    let json = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "bridge",
        "nerdctlID": "17f29b073143d8cd97b5bbe492bdeffec1c5fee55cc1fe2112c8b9335f8b6121",
        "nerdctlLabels": {},
        "plugins": [
            {"type": "bridge", "bridge": "nerdctl0", "isGateway": true, "ipMasq": true,
             "hairpinMode": true,
             "ipam": {"ranges": [[{"gateway": "10.4.0.1", "subnet": "10.4.0.0/24"}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "type": "host-local",
                      "dataDir": env.ipam_dir()}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "firewall", "ingressPolicy": "same-bridge"},
            {"type": "tuning"}
        ]
    });
    let list = NetworkConfigList::from_bytes(json.to_string().as_bytes(), "nerdctl").unwrap();
    let cid = "ctr-nerdctl";
    let rt = RuntimeConf::new(cid, env.netns(), "eth0");
    let rules = |ip: &str| {
        let all = env.host.exec(&["iptables-save"]);
        all.lines()
            .filter(|l| l.contains(cid) || (!ip.is_empty() && l.contains(ip)))
            .count()
    };
    let before = env.resources("bridge", cid);
    let r = env.host.run_in(|| env.cni.add(&list, &rt)).unwrap();
    let ip = r.ips[0].ip().unwrap().to_string();
    assert!(ip.starts_with("10.4.0."), "{ip}");
    assert!(addr_of(&env).contains(&format!("inet {ip}/24")));
    let added = rules(&ip);
    assert!(added > 0, "masquerade and firewall rules for {ip}");
    env.host.run_in(|| env.cni.del(&list, &rt)).unwrap();
    assert_eq!(rules(&ip), 0, "{}", env.host.exec(&["iptables-save"]));
    assert_eq!(env.resources("bridge", cid), before);
}
