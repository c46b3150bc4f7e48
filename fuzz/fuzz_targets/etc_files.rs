//! A container's `/etc/hosts` and `/etc/resolv.conf` from the host's files and the flags, on
//! arbitrary input: never panics, and the results stay well-formed. The input is split at
//! `\0\0` into the host's `resolv.conf`, the host's `hosts`, and flag lines (`add-host=…`,
//! `dns=…`, `dns-search=…`, `dns-option=…`, `hostname=…`, `name=…`, `host-network`).
#![no_main]

use berth_engine::etcfiles::{EtcOptions, hosts_file, parse_add_host, resolv_conf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, "\0\0");
    let resolv = parts.next().unwrap_or_default();
    let hosts = parts.next().unwrap_or_default();
    let flags = parts.next().unwrap_or_default();
    let mut opts = EtcOptions::default();
    for line in flags.lines().take(64) {
        let (name, value) = line.split_once('=').unwrap_or((line, ""));
        match name {
            "add-host" => {
                if let Ok(h) = parse_add_host(value) {
                    opts.add_hosts.push(h);
                }
            }
            "dns" => {
                if let Ok(ip) = value.parse() {
                    opts.dns.push(ip);
                }
            }
            "dns-search" => opts.dns_search.push(value.to_owned()),
            "dns-option" => opts.dns_options.push(value.to_owned()),
            "hostname" => opts.hostname = value.to_owned(),
            "name" => opts.name = Some(value.to_owned()),
            "host-network" => opts.host_network = true,
            _ => {}
        }
    }
    let r = resolv_conf(&opts, resolv);
    assert!(r.lines().any(|l| l.starts_with("nameserver ")), "{r:?}");
    assert!(r.is_empty() || r.ends_with('\n'));
    let h = hosts_file(&opts, hosts);
    assert!(h.is_empty() || h.ends_with('\n'));
});
