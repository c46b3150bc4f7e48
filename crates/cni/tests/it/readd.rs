//! `Cni::readd`: the last plugin of a live attachment re-run with new capability arguments
//! (a running container's bandwidth changed), the cache kept true, and DEL still undoing
//! everything.

use berth_cni::{Bandwidth, CniError, CniResult, NetworkConfigList, RuntimeConf};

use crate::requires_cni;
use crate::support::{Env, standard_conflist};

/// bridge (+ host-local) → bandwidth: the shape of berth's own lists (bandwidth last).
fn shaped_conflist(env: &Env) -> NetworkConfigList {
    let json = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "readdtest",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni-br1",
                "isGateway": true,
                "ipam": {
                    "type": "host-local",
                    "subnet": "10.213.9.0/24",
                    "dataDir": env.ipam_dir(),
                }
            },
            {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]
    });
    NetworkConfigList::from_bytes(json.to_string().as_bytes(), "test").unwrap()
}

fn bandwidth(ingress_mbit: u64, egress_mbit: u64) -> Bandwidth {
    Bandwidth {
        ingress_rate: ingress_mbit * 1_000_000,
        ingress_burst: if ingress_mbit > 0 { 1_000_000 } else { 0 },
        egress_rate: egress_mbit * 1_000_000,
        egress_burst: if egress_mbit > 0 { 1_000_000 } else { 0 },
    }
}

/// What the bandwidth plugin's DEL leaves (its qdiscs on the host veth) removed, and the
/// result without the interfaces that are gone: what the engine does between DEL and ADD.
fn remove_veth_qdiscs(env: &Env, result: &CniResult) -> Result<CniResult, String> {
    let links = env.host.exec(&["ip", "-o", "link", "show", "type", "veth"]);
    for line in links.lines() {
        let name = line
            .split(": ")
            .nth(1)
            .and_then(|n| n.split('@').next())
            .unwrap();
        let q = env.host.exec(&["tc", "qdisc", "show", "dev", name]);
        if q.contains("qdisc tbf") {
            env.host.exec(&["tc", "qdisc", "del", "dev", name, "root"]);
        }
        if q.contains("qdisc ingress") {
            env.host
                .exec(&["tc", "qdisc", "del", "dev", name, "ingress"]);
        }
    }
    let all = env.host.exec(&["ip", "-o", "link", "show"]);
    let mut prev = result.clone();
    prev.interfaces
        .retain(|i| i.sandbox.is_some() || all.contains(&format!(": {}", i.name)));
    Ok(prev)
}

#[test]
fn readd_changes_the_bandwidth_of_a_live_attachment_and_del_still_cleans_up() {
    requires_cni!();
    let env = Env::new("readd");
    let list = shaped_conflist(&env);
    let cid = "ctr-readd-1";
    let rt = RuntimeConf::new(cid, env.netns(), "eth0").with_bandwidth(bandwidth(1, 2));
    let before = env.resources("readdtest", cid);
    env.host.run_in(|| env.cni.add(&list, &rt)).unwrap();
    let q = env.host.exec(&["tc", "qdisc", "show"]);
    assert!(q.contains("rate 1Mbit") && q.contains("rate 2Mbit"), "{q}");

    // a second ADD over the first is what the plugin refuses: hence readd
    let cached = env.cni.cached("readdtest", cid, "eth0").unwrap().unwrap();
    let new_caps = RuntimeConf::new(cid, "", "eth0")
        .with_bandwidth(bandwidth(3, 5))
        .capability_args;
    let result = env
        .host
        .run_in(|| {
            env.cni.readd(&cached, "bandwidth", new_caps.clone(), |r| {
                remove_veth_qdiscs(&env, r)
            })
        })
        .unwrap();
    let q = env.host.exec(&["tc", "qdisc", "show"]);
    assert!(q.contains("rate 3Mbit") && q.contains("rate 5Mbit"), "{q}");
    assert!(
        !q.contains("rate 1Mbit") && !q.contains("rate 2Mbit"),
        "{q}"
    );
    let now = env.resources("readdtest", cid);
    assert_eq!(now.tbf_qdiscs, before.tbf_qdiscs + 2, "{now:?}");
    assert_eq!(now.ifbs, before.ifbs + 1, "one IFB, not two: {now:?}");
    // the cache holds the new arguments and a result with one IFB
    let cached = env.cni.cached("readdtest", cid, "eth0").unwrap().unwrap();
    assert_eq!(cached.capability_args, new_caps);
    let ifbs = |r: &CniResult| {
        r.interfaces
            .iter()
            .filter(|i| i.name.starts_with("bwp"))
            .count()
    };
    assert_eq!(ifbs(&result), 1, "{result:?}");
    let cached_result = CniResult::from_json(cached.result.as_ref().unwrap()).unwrap();
    assert_eq!(ifbs(&cached_result), 1);

    // DEL from the cache alone undoes everything there is
    env.host.run_in(|| env.cni.del_attachment(&cached)).unwrap();
    assert_eq!(env.resources("readdtest", cid), before);
}

#[test]
fn a_failed_readd_is_undone_and_the_cache_says_the_plugin_is_unset() {
    requires_cni!();
    let env = Env::new("readdfail");
    let list = shaped_conflist(&env);
    let cid = "ctr-readd-2";
    let rt = RuntimeConf::new(cid, env.netns(), "eth0").with_bandwidth(bandwidth(1, 0));
    let before = env.resources("readdtest", cid);
    env.host.run_in(|| env.cni.add(&list, &rt)).unwrap();
    let cached = env.cni.cached("readdtest", cid, "eth0").unwrap().unwrap();
    let new_caps = RuntimeConf::new(cid, "", "eth0")
        .with_bandwidth(bandwidth(4, 0))
        .capability_args;
    // the first prepare leaves the old qdisc: the plugin's ADD fails on it; the second
    // (the rollback's) removes it
    let mut calls = 0;
    let e = env
        .host
        .run_in(|| {
            env.cni.readd(&cached, "bandwidth", new_caps, |r| {
                calls += 1;
                if calls == 1 {
                    Ok(r.clone())
                } else {
                    remove_veth_qdiscs(&env, r)
                }
            })
        })
        .unwrap_err();
    assert!(matches!(&e, CniError::Plugin { command: "ADD", .. }), "{e}");
    let cached = env.cni.cached("readdtest", cid, "eth0").unwrap().unwrap();
    assert!(
        !cached.capability_args.contains_key("bandwidth"),
        "the cache still claims a bandwidth: {:?}",
        cached.capability_args
    );
    let q = env.host.exec(&["tc", "qdisc", "show"]);
    assert!(!q.contains("qdisc tbf"), "{q}");
    env.host.run_in(|| env.cni.del_attachment(&cached)).unwrap();
    assert_eq!(env.resources("readdtest", cid), before);
}

#[test]
fn readd_refuses_a_plugin_that_is_not_the_last_of_its_list() {
    requires_cni!();
    let env = Env::new("readdmid");
    // bandwidth is followed by tuning and portmap here
    let list = standard_conflist("berthtest", "1.0.0", &env.ipam_dir());
    let cid = "ctr-readd-3";
    let rt = RuntimeConf::new(cid, env.netns(), "eth0").with_bandwidth(bandwidth(1, 1));
    env.host.run_in(|| env.cni.add(&list, &rt)).unwrap();
    let cached = env.cni.cached("berthtest", cid, "eth0").unwrap().unwrap();
    let e = env
        .cni
        .readd(&cached, "bandwidth", cached.capability_args.clone(), |r| {
            Ok(r.clone())
        })
        .unwrap_err();
    assert!(matches!(e, CniError::NotLastPlugin { .. }), "{e}");
    let q = env.host.exec(&["tc", "qdisc", "show"]);
    assert!(q.contains("rate 1Mbit"), "nothing was run: {q}");
    env.host.run_in(|| env.cni.del(&list, &rt)).unwrap();
}
