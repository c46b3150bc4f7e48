//! `berth watch`'s policy file (`berth_watch::detect::Policy`): the first byte chooses TOML
//! (even) or JSON (odd) for the rest. Parsing never panics; an accepted policy's allowed
//! destinations print to a form that parses back to the same destination and contains
//! itself at its own lowest and highest port; its globs and prefixes match any path without
//! panicking. Every line is also tried alone as a destination.
#![no_main]

use std::net::{IpAddr, SocketAddr};

use berth_watch::detect::{Destination, Policy, glob_match};
use libfuzzer_sys::fuzz_target;

fn check_destination(d: &Destination) {
    let printed = d.to_string();
    let back = Destination::parse(&printed)
        .unwrap_or_else(|e| panic!("{printed:?} (from {d:?}) does not parse back: {e}"));
    assert_eq!(&back, d, "{printed}");
    for port in [d.ports.0, d.ports.1] {
        assert!(d.contains(&SocketAddr::new(d.addr, port)), "{printed} holds its own address");
    }
    if let IpAddr::V4(v4) = d.addr {
        let mapped = SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), d.ports.0);
        assert!(d.contains(&mapped), "{printed} holds its IPv4-mapped address");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let parsed = if first % 2 == 0 {
        Policy::from_toml(text)
    } else {
        Policy::from_json(rest)
    };
    if let Ok(p) = parsed {
        for d in &p.allow_connect {
            check_destination(d);
        }
        for line in text.lines().take(16) {
            let _ = p.allowed_exec(line);
            let _ = p.watched_write(line);
        }
        assert!(p.allow_exec.iter().chain(&p.watch_writes).all(|s| s.starts_with('/')));
    }
    for line in text.lines().take(16) {
        if let Ok(d) = Destination::parse(line) {
            check_destination(&d);
        }
        let _ = glob_match(line, "/usr/local/bin/x");
        let _ = glob_match("/usr/**/b?n/*", line);
    }
});
