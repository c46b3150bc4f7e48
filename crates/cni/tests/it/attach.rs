//! ADD, CHECK and DEL of a real chain, and the cleanup promises: DEL removes everything ADD
//! made, also from the cache alone, also twice.

use berth_cni::{Bandwidth, Cni, CniError, NetworkConfigList, PortMapping, RuntimeConf};

use crate::requires_cni;
use crate::support::{Env, PLUGIN_DIR, assert_check_passes, standard_conflist};

const MAC: &str = "02:42:0a:d5:07:99";

fn runtime_conf(env: &Env, cid: &str) -> RuntimeConf {
    RuntimeConf::new(cid, env.netns(), "eth0")
        .with_arg("IgnoreUnknown", "1")
        .with_port_mappings(&[PortMapping {
            host_port: 18080,
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: String::new(),
        }])
        .with_bandwidth(Bandwidth {
            ingress_rate: 1_000_000,
            ingress_burst: 1_000_000,
            egress_rate: 2_000_000,
            egress_burst: 1_000_000,
        })
        .with_mac(MAC)
}

#[test]
fn add_check_del_of_bridge_portmap_bandwidth_tuning_leaves_nothing() {
    requires_cni!();
    let env = Env::new("full");
    let list = standard_conflist("berthtest", "1.0.0", &env.ipam_dir());
    let cid = "ctr-full-1";
    let rt = runtime_conf(&env, cid);
    let before = env.resources("berthtest", cid);

    let result = env.host.run_in(|| env.cni.add(&list, &rt)).unwrap();

    // the result: the container's eth0 with the address host-local allocated
    assert_eq!(result.cni_version, "1.0.0");
    let (idx, eth0) = result
        .container_interface("eth0")
        .expect("eth0 in the result");
    assert_eq!(eth0.sandbox.as_deref(), Some(env.netns().as_str()));
    assert_eq!(
        eth0.mac.as_deref(),
        Some(MAC),
        "tuning applied the mac capability"
    );
    let ip = result
        .ips
        .iter()
        .find(|i| i.interface == Some(idx))
        .expect("an address on eth0");
    let addr = ip.ip().unwrap().to_string();
    assert!(addr.starts_with("10.213.7."), "{addr}");
    assert_eq!(ip.prefix_len(), Some(24));
    assert_eq!(ip.gateway.as_deref(), Some("10.213.7.1"));

    // …and the kernel agrees: address, mac, default route inside the container
    let link = env.ctr.exec(&["ip", "-o", "addr", "show", "dev", "eth0"]);
    assert!(link.contains(&format!("inet {addr}/24")), "{link}");
    let l2 = env.ctr.exec(&["ip", "-o", "link", "show", "dev", "eth0"]);
    assert!(l2.contains(MAC), "{l2}");
    let routes = env.ctr.exec(&["ip", "route"]);
    assert!(
        routes.contains("default via 10.213.7.1 dev eth0"),
        "{routes}"
    );

    // bandwidth: TBF at the asked rates, on the host veth (into the container) and on the
    // IFB device (out of it)
    let qdiscs = env.host.exec(&["tc", "qdisc", "show"]);
    assert!(qdiscs.contains("rate 1Mbit"), "ingress rate in:\n{qdiscs}");
    assert!(qdiscs.contains("rate 2Mbit"), "egress rate in:\n{qdiscs}");
    let after_add = env.resources("berthtest", cid);
    assert_eq!(after_add.veths, before.veths + 1, "{after_add:?}");
    assert_eq!(after_add.ifbs, before.ifbs + 1);
    assert_eq!(after_add.tbf_qdiscs, before.tbf_qdiscs + 2);
    assert_eq!(after_add.ip_allocations, vec![addr.clone()]);
    // portmap: DNAT rules for the container, found by its id in their comments
    assert!(after_add.nat_rules_of_container > 0, "{after_add:?}");
    let nat = env.host.exec(&["iptables-save", "-t", "nat"]);
    assert!(nat.contains("--dport 18080"), "{nat}");

    // the cache holds the config, the args and the result
    let cached = env.cni.cached("berthtest", cid, "eth0").unwrap().unwrap();
    assert_eq!(cached.netns, env.netns());
    assert_eq!(cached.args, vec![("IgnoreUnknown".into(), "1".into())]);
    assert!(cached.capability_args.contains_key("bandwidth"));
    assert_eq!(
        cached.result.as_ref().unwrap()["ips"][0]["address"],
        ip.address
    );

    assert_check_passes(env.host.run_in(|| env.cni.check(&list, &rt)));

    env.host.run_in(|| env.cni.del(&list, &rt)).unwrap();
    assert_eq!(env.resources("berthtest", cid), before);
    assert!(env.cni.cached("berthtest", cid, "eth0").unwrap().is_none());
    // CNI requires a second DEL to succeed
    env.host.run_in(|| env.cni.del(&list, &rt)).unwrap();
    assert_eq!(env.resources("berthtest", cid), before);
    // and CHECK after DEL says it is not attached
    let e = env.host.run_in(|| env.cni.check(&list, &rt)).unwrap_err();
    assert!(matches!(e, berth_cni::CniError::NotAttached { .. }), "{e}");
}

#[test]
fn del_from_the_cache_alone_after_the_engine_lost_its_state() {
    requires_cni!();
    let env = Env::new("cache");
    let cid = "ctr-cache-1";
    let before = env.resources("berthtest", cid);
    {
        let list = standard_conflist("berthtest", "1.0.0", &env.ipam_dir());
        let rt = runtime_conf(&env, cid);
        env.host.run_in(|| env.cni.add(&list, &rt)).unwrap();
        // the engine is killed: list, runtime conf and Cni are gone
    }
    let added = env.resources("berthtest", cid);
    assert_eq!(added.veths, before.veths + 1);
    assert_eq!(added.ip_allocations.len(), 1);

    let restarted = Cni::new(vec![PLUGIN_DIR.into()], env.cni.cache_dir());
    let attachments = restarted.cached_attachments(Some(cid)).unwrap();
    assert_eq!(attachments.len(), 1, "{attachments:?}");
    assert_eq!(attachments[0].network, "berthtest");
    assert!(
        restarted
            .cached_attachments(Some("other"))
            .unwrap()
            .is_empty()
    );
    env.host
        .run_in(|| restarted.del_attachment(&attachments[0]))
        .unwrap();
    assert_eq!(env.resources("berthtest", cid), before);
    assert!(restarted.cached_attachments(None).unwrap().is_empty());
}

#[test]
fn del_of_an_attachment_never_added_succeeds() {
    requires_cni!();
    let env = Env::new("never");
    let list = standard_conflist("berthtest", "1.0.0", &env.ipam_dir());
    let rt = RuntimeConf::new("ctr-never", env.netns(), "eth0");
    let before = env.resources("berthtest", "ctr-never");
    env.host.run_in(|| env.cni.del(&list, &rt)).unwrap();
    // without a namespace too (DEL after the container's namespace is gone)
    let gone = RuntimeConf::new("ctr-never", "", "eth0");
    env.host.run_in(|| env.cni.del(&list, &gone)).unwrap();
    assert_eq!(env.resources("berthtest", "ctr-never"), before);
}

#[test]
fn a_0_4_0_conflist_adds_checks_and_deletes() {
    requires_cni!();
    let env = Env::new("v040");
    let list = standard_conflist("old", "0.4.0", &env.ipam_dir());
    let cid = "ctr-v040";
    let rt = runtime_conf(&env, cid);
    let before = env.resources("old", cid);
    let result = env.host.run_in(|| env.cni.add(&list, &rt)).unwrap();
    assert_eq!(result.cni_version, "0.4.0");
    let addr = result.ips[0].ip().unwrap().to_string();
    assert!(
        env.ctr
            .exec(&["ip", "-o", "addr", "show", "dev", "eth0"])
            .contains(&addr)
    );
    // cached as the plugins speak it: a 0.4.0 result with the IP version field
    let cached = env.cni.cached("old", cid, "eth0").unwrap().unwrap();
    let r = cached.result.unwrap();
    assert_eq!(r["cniVersion"], "0.4.0");
    assert_eq!(r["ips"][0]["version"], "4");
    assert_check_passes(env.host.run_in(|| env.cni.check(&list, &rt)));
    env.host.run_in(|| env.cni.del(&list, &rt)).unwrap();
    assert_eq!(env.resources("old", cid), before);
}

#[test]
fn gc_deletes_cached_attachments_that_are_no_longer_valid() {
    requires_cni!();
    let env = Env::new("gc");
    let list = standard_conflist("berthtest", "1.0.0", &env.ipam_dir());
    // a second container namespace for the stale attachment
    let ctr2 = crate::support::Netns::new("gc-c2");
    let keep = RuntimeConf::new("ctr-keep", env.netns(), "eth0");
    let stale = RuntimeConf::new("ctr-stale", ctr2.path.display().to_string(), "eth0");
    let before = env.resources("berthtest", "ctr-stale");
    env.host.run_in(|| env.cni.add(&list, &keep)).unwrap();
    env.host.run_in(|| env.cni.add(&list, &stale)).unwrap();
    assert_eq!(env.resources("berthtest", "x").ip_allocations.len(), 2);

    env.host
        .run_in(|| env.cni.gc(&list, &[("ctr-keep".into(), "eth0".into())]))
        .unwrap();
    let after = env.resources("berthtest", "ctr-stale");
    assert_eq!(after.ip_allocations.len(), 1, "{after:?}");
    assert_eq!(
        after.veths,
        before.veths + 1,
        "only ctr-keep's veth is left"
    );
    let left = env.cni.cached_attachments(None).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].container_id, "ctr-keep");
    assert!(
        ctr2.exec(&["ip", "-o", "link", "show"]).lines().count() == 1,
        "only lo"
    );

    env.host.run_in(|| env.cni.del(&list, &keep)).unwrap();
    assert_eq!(env.resources("berthtest", "ctr-keep"), before);
}

#[test]
fn check_passes_on_a_healthy_attachment_and_fails_once_its_interface_is_gone() {
    requires_cni!();
    let env = Env::new("check");
    let list = NetworkConfigList::from_bytes(
        serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "checknet",
            "plugins": [
                {"type": "bridge", "bridge": "cni-br0", "isGateway": true,
                 "ipam": {"type": "host-local", "subnet": "10.213.8.0/24", "dataDir": env.ipam_dir()}},
                {"type": "bandwidth", "capabilities": {"bandwidth": true}},
                {"type": "tuning", "capabilities": {"mac": true}}
            ]
        })
        .to_string()
        .as_bytes(),
        "test",
    )
    .unwrap();
    let rt = runtime_conf(&env, "ctr-check");
    let before = env.resources("checknet", "ctr-check");
    env.host.run_in(|| env.cni.add(&list, &rt)).unwrap();
    env.host.run_in(|| env.cni.check(&list, &rt)).unwrap();

    // the container's interface disappears: bridge's CHECK (the first plugin) says so
    env.ctr.exec(&["ip", "link", "del", "eth0"]);
    let e = env.host.run_in(|| env.cni.check(&list, &rt)).unwrap_err();
    assert!(
        matches!(&e, CniError::Plugin { plugin, command: "CHECK", .. } if plugin == "bridge"),
        "{e:?}"
    );

    // disableCheck: the runtime must not call CHECK at all
    let mut disabled = list.clone();
    disabled.disable_check = true;
    env.host.run_in(|| env.cni.check(&disabled, &rt)).unwrap();

    env.host.run_in(|| env.cni.del(&list, &rt)).unwrap();
    assert_eq!(env.resources("checknet", "ctr-check"), before);
}

#[test]
fn del_given_only_the_ids_takes_the_namespace_and_arguments_from_the_cache() {
    requires_cni!();
    let env = Env::new("ids");
    let list = standard_conflist("berthtest", "1.0.0", &env.ipam_dir());
    let cid = "ctr-ids";
    let before = env.resources("berthtest", cid);
    env.host
        .run_in(|| env.cni.add(&list, &runtime_conf(&env, cid)))
        .unwrap();
    // the caller no longer knows the namespace path nor the capability arguments: without
    // the cached namespace, bridge would release the address but leave the veth
    let ids_only = RuntimeConf::new(cid, "", "eth0");
    env.host.run_in(|| env.cni.del(&list, &ids_only)).unwrap();
    assert_eq!(env.resources("berthtest", cid), before);
}
