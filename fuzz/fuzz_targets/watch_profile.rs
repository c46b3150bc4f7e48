//! The profile of an image (`berth_watch::profile`) from outside input; the first byte
//! chooses. 0: the rest is an uncompressed layer (its diff ID is its SHA-256): reading it
//! never panics; every executable's path is absolute and clean (no empty, `.` or `..`
//! component), and its hash is found by `find_hash`. 1: the rest is a cached profile:
//! `Profile::from_json` never panics, and an accepted one serialises and reads back to
//! itself. 2: the rest is an image config: `ImageConfig::from_json` never panics, and every
//! exposed port it accepts is tcp, udp or sctp.
#![no_main]

use berth_image::unpack::Limits;
use berth_oci::Digest;
use berth_watch::profile::{ImageConfig, ImageFacts, LayerBlob, Profile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    match first % 3 {
        0 => {
            let layer = LayerBlob {
                reader: rest,
                media_type: "application/vnd.oci.image.layer.v1.tar".to_owned(),
                diff_id: Digest::sha256_of(rest),
            };
            let limits = Limits {
                max_entries: 10_000,
                ..Limits::default()
            };
            if let Ok(p) = Profile::from_layers(&ImageFacts::default(), [layer], &limits) {
                for (path, e) in &p.executables {
                    assert!(path.starts_with('/'), "{path:?}");
                    assert!(
                        path[1..].split('/').all(|c| !c.is_empty() && c != "." && c != ".."),
                        "{path:?}"
                    );
                    let found = p.find_hash(&e.sha256).expect("every hash is indexed");
                    assert_eq!(p.executables[found].sha256, e.sha256);
                }
            }
        }
        1 => {
            if let Ok(p) = Profile::from_json(rest) {
                let again = Profile::from_json(&p.to_json()).expect("its own JSON reads back");
                assert_eq!(again, p);
            }
        }
        _ => {
            if let Ok(c) = ImageConfig::from_json(rest) {
                assert!(
                    c.facts
                        .exposed_ports
                        .iter()
                        .all(|p| matches!(p.protocol.as_str(), "tcp" | "udp" | "sctp"))
                );
            }
        }
    }
});
