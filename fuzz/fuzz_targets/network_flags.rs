//! The network flags and image fields `run` reads, on arbitrary text: `-p` (`parse_publish`),
//! an image's `ExposedPorts` key (`parse_exposed`, an image author's input),
//! `--network-bandwidth` (`parse_bandwidth`), the Kubernetes bandwidth annotations
//! (`kubernetes_bandwidth`) and `--mac-address` (`parse_mac`). Never panics; what is
//! accepted is in range, a published port written back as docker writes it reads back the
//! same, and an accepted MAC is a normalized unicast one that reads back as itself.
#![no_main]

use std::collections::HashMap;

use berth_engine::network::{parse_bandwidth, parse_exposed, parse_mac, parse_publish};
use berth_engine::shaping::{EGRESS_ANNOTATION, INGRESS_ANNOTATION, kubernetes_bandwidth};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = parse_publish(s) {
        assert!(p.host_port > 0 && p.container_port > 0, "{s:?}");
        assert!(matches!(p.protocol.as_str(), "tcp" | "udp" | "sctp"), "{s:?}");
        let ip = match p.host_ip.parse::<std::net::IpAddr>() {
            _ if p.host_ip.is_empty() => String::new(),
            Ok(std::net::IpAddr::V6(_)) => format!("[{}]:", p.host_ip),
            Ok(_) => format!("{}:", p.host_ip),
            Err(e) => panic!("{s:?}: accepted host address {:?}: {e}", p.host_ip),
        };
        let written = format!("{ip}{}:{}/{}", p.host_port, p.container_port, p.protocol);
        let again = parse_publish(&written).unwrap_or_else(|e| panic!("{written:?}: {e}"));
        assert_eq!(again, p, "{s:?} as {written:?}");
    }
    if let Ok((port, proto)) = parse_exposed(s) {
        assert!(port > 0, "{s:?}");
        assert!(matches!(proto.as_str(), "tcp" | "udp" | "sctp"), "{s:?}");
    }
    if let Ok(bw) = parse_bandwidth(s) {
        assert!(bw.egress_rate > 0 || bw.ingress_rate > 0, "{s:?}");
        for (rate, burst) in [
            (bw.egress_rate, bw.egress_burst),
            (bw.ingress_rate, bw.ingress_burst),
        ] {
            assert!(rate <= 1_000_000_000_000, "{s:?}");
            // a direction is shaped with a bucket, or not at all
            assert_eq!(rate == 0, burst == 0, "{s:?}");
        }
    }
    if let Ok(mac) = parse_mac(s) {
        assert_eq!(mac.len(), 17, "{s:?}: {mac}");
        assert!(
            mac.bytes().enumerate().all(|(i, b)| if i % 3 == 2 {
                b == b':'
            } else {
                matches!(b, b'0'..=b'9' | b'a'..=b'f')
            }),
            "{s:?}: {mac}"
        );
        let first = u8::from_str_radix(&mac[..2], 16).unwrap_or(1);
        assert_eq!(first & 1, 0, "{s:?}: a multicast address accepted: {mac}");
        assert_ne!(mac, "00:00:00:00:00:00", "{s:?}");
        assert_eq!(parse_mac(&mac).as_deref(), Ok(mac.as_str()), "{s:?}");
    }
    for key in [INGRESS_ANNOTATION, EGRESS_ANNOTATION] {
        let annotations = HashMap::from([(key.to_owned(), s.to_owned())]);
        if let Ok(Some(bw)) = kubernetes_bandwidth(&annotations) {
            let (rate, burst, other) = if key == INGRESS_ANNOTATION {
                (bw.ingress_rate, bw.ingress_burst, bw.egress_rate)
            } else {
                (bw.egress_rate, bw.egress_burst, bw.ingress_rate)
            };
            assert!((1_000..=1_000_000_000_000_000).contains(&rate), "{s:?}: {rate}");
            assert!(burst > 0 && other == 0, "{s:?}");
        }
    }
});
