//! `berth_sbom::version` (issue 21 §2) on arbitrary text: the input's lines are versions
//! (the first three are used), tried in every ecosystem's order. Parsing never panics; a
//! refusal names the version and the ecosystem; an accepted version keeps its text; and the
//! order is an order: reflexive, antisymmetric, transitive over the three (but Maven's, which
//! is not transitive in Maven either), `compare` agrees with `Ord` of the parsed values, and
//! `==` with `Ordering::Equal`.
#![no_main]

use std::cmp::Ordering;

use berth_sbom::package::Ecosystem;
use berth_sbom::version::{Version, VersionError, compare};
use libfuzzer_sys::fuzz_target;

const ECOSYSTEMS: [Ecosystem; 8] = [
    Ecosystem::Debian,
    Ecosystem::Alpine,
    Ecosystem::Rpm,
    Ecosystem::CratesIo,
    Ecosystem::Go,
    Ecosystem::Npm,
    Ecosystem::PyPI,
    Ecosystem::Maven,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let (a, b, c) = (
        lines.next().unwrap_or(""),
        lines.next().unwrap_or(""),
        lines.next().unwrap_or(""),
    );
    for eco in ECOSYSTEMS {
        let parsed: Vec<Version> = [a, b, c]
            .into_iter()
            .filter_map(|s| match Version::parse(eco, s) {
                Ok(v) => {
                    assert_eq!(v.as_str(), s);
                    Some(v)
                }
                Err(e) => {
                    let VersionError::Invalid { ecosystem, version, .. } = &e;
                    assert_eq!((*ecosystem, version.as_str()), (eco, s));
                    let message = e.to_string();
                    assert!(message.contains(eco.osv_name()), "{message}");
                    None
                }
            })
            .collect();
        for x in &parsed {
            assert_eq!(x.cmp(x), Ordering::Equal, "{x:?} is not equal to itself");
            for y in &parsed {
                let o = x.cmp(y);
                assert_eq!(y.cmp(x), o.reverse(), "{eco:?}: {x} vs {y} is not antisymmetric");
                assert_eq!(x == y, o == Ordering::Equal);
                assert_eq!(x.partial_cmp(y), Some(o));
                assert_eq!(compare(eco, x.as_str(), y.as_str()), Ok(o));
                // Maven's ComparableVersion is not transitive (`1-alpha-1` < `1` < `1.sp-1` <
                // `1-alpha-1` in Maven 3.8's own jar; berth_sbom::version::MavenVersion keeps
                // its order), so only the other orders are held to transitivity.
                if eco == Ecosystem::Maven {
                    continue;
                }
                for z in &parsed {
                    if x <= y && y <= z {
                        assert!(x <= z, "{eco:?}: {x} <= {y} <= {z} but {x} > {z}");
                    }
                }
            }
        }
    }
});
