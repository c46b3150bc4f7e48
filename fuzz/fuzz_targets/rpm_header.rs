//! rpm's database as `berth_sbom::catalog::rpm` reads it, from any image: an input starting
//! with SQLite's header is an `rpmdb.sqlite` file (berth's own read-only SQLite reader: the
//! schema, the `Packages` table b-tree, overflow pages, records), anything else one rpm
//! header blob (index entries + data store). Never panics; an accepted header has a name.
#![no_main]

use berth_sbom::catalog::rpm::{parse_header, parse_sqlite, purl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.starts_with(b"SQLite format 3\0") {
        if let Ok(headers) = parse_sqlite(data) {
            for h in headers.into_iter().flatten() {
                assert!(!h.name.is_empty());
                let _ = purl(&h, None).to_string();
            }
        }
    } else if let Ok(h) = parse_header(data) {
        assert!(!h.name.is_empty());
        let _ = purl(&h, None).to_string();
    }
});
