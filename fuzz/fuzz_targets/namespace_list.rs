//! The API server's answer to `GET /api/v1/namespaces` as the admission webhook reads it
//! (`berth_admission::kube::parse_namespace_list`): never panics; every namespace it returns
//! is named in the input.
#![no_main]

use berth_admission::kube::parse_namespace_list;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(labels) = parse_namespace_list(data) else { return };
    let text = String::from_utf8_lossy(data);
    for name in labels.keys() {
        // JSON escapes may spell a name differently; a plain one is in the text as is
        if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            assert!(text.contains(name.as_str()), "{name}");
        }
    }
});
