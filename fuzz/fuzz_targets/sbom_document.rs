//! `berth_sbom::format::parse` on arbitrary bytes as an SBOM (an SPDX or CycloneDX JSON
//! document pulled as a referrer or handed to `berth scan`): never panics. An accepted
//! document's inventory, written again by berth as SPDX 2.3 and as CycloneDX 1.6, reads back
//! to the same packages (names, versions, purls, licences, locations, cataloguer, source),
//! subject name and digest, and each skipped entry names where it is and why. The source
//! package `parse` fills in from a Debian or Alpine purl's `upstream` qualifier is among
//! what must read back (berth writes it into both formats). So must the files (path,
//! SHA-256, SHA-1, layer): SPDX `files`, CycloneDX `file` components.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use berth_sbom::format::{self, Format, WriteOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = format::parse(data) else {
        return;
    };
    for s in &parsed.skipped {
        assert!(!s.field.is_empty() && !s.reason.is_empty(), "{s:?}");
    }
    let options = WriteOptions {
        created: UNIX_EPOCH + Duration::from_secs(1_796_444_889),
    };
    for f in [Format::SpdxJson, Format::CycloneDxJson] {
        let bytes = format::write(f, &parsed.inventory, &options)
            .unwrap_or_else(|e| panic!("{f:?}: an accepted inventory cannot be written: {e}"));
        let back = format::parse(&bytes)
            .unwrap_or_else(|e| panic!("{f:?}: berth's own document is refused: {e}"));
        assert_eq!(back.format, f);
        assert!(back.skipped.is_empty(), "{f:?}: {:?}", back.skipped);
        assert_eq!(back.inventory.packages, parsed.inventory.packages, "{f:?}");
        assert_eq!(back.inventory.files, parsed.inventory.files, "{f:?}");
        assert_eq!(back.inventory.subject.name, parsed.inventory.subject.name, "{f:?}");
        assert_eq!(back.inventory.subject.digest, parsed.inventory.subject.digest, "{f:?}");
    }
});
