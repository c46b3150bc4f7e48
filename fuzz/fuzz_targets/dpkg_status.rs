//! dpkg's database as `berth_sbom::catalog::dpkg` reads it (`/var/lib/dpkg/status`, a
//! distroless `status.d/` file) and a package's `/usr/share/doc/NAME/copyright`, from any
//! image: never panics; every entry's package name and version appear in the input, and its
//! purl is written. The input is split at the first `\0` into the status file and the
//! copyright file.
#![no_main]

use berth_sbom::catalog::dpkg::{Entry, parse_copyright, parse_status, purl};
use berth_sbom::package::Distro;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (status, copyright) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(status);
    let distro = Distro {
        id: "debian".into(),
        version_id: Some("12".into()),
        ..Distro::default()
    };
    for e in parse_status(status) {
        assert!(!e.package.is_empty());
        // values are trimmed and their continuation lines joined: each line is in the input
        for v in [&e.package, &e.version, &e.architecture] {
            for line in v.lines() {
                assert!(text.contains(line), "{e:?}");
            }
        }
        let _ = Entry::installed(&e);
        let p = purl(&e, Some(&distro)).to_string();
        assert!(p.starts_with("pkg:deb/debian/"), "{p}");
    }
    let ctext = String::from_utf8_lossy(copyright);
    for l in parse_copyright(copyright) {
        assert!(!l.is_empty());
        assert!(ctext.contains(l.as_str()), "{l}");
    }
});
