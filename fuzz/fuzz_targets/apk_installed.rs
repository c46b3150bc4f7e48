//! apk's database (`/lib/apk/db/installed`) as `berth_sbom::catalog::apk` reads it, from any
//! image: never panics; every package has a name, its fields appear in the input, and its
//! purl is written.
#![no_main]

use berth_sbom::catalog::apk::{parse_installed, purl};
use berth_sbom::package::Distro;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let distro = Distro {
        id: "alpine".into(),
        version_id: Some("3.19.1".into()),
        ..Distro::default()
    };
    for e in parse_installed(data) {
        assert!(!e.name.is_empty());
        for field in [&e.name, &e.version, &e.arch, &e.origin, &e.license] {
            assert!(text.contains(field.as_str()), "{e:?}");
        }
        let p = purl(&e, Some(&distro)).to_string();
        assert!(p.starts_with("pkg:apk/alpine/"), "{p}");
    }
});
