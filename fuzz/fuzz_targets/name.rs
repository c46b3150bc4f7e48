//! `validate_repository_name` and `validate_tag` on arbitrary UTF-8: never
//! panic, and agree with the distribution-spec regular expressions.
#![no_main]

use std::sync::LazyLock;

use berth_oci::{MAX_NAME_LEN, validate_repository_name, validate_tag};
use libfuzzer_sys::fuzz_target;
use regex::Regex;

static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
        .expect("valid regex")
});
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("valid regex"));

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let name_ok = validate_repository_name(input).is_ok();
    assert_eq!(
        name_ok,
        input.len() <= MAX_NAME_LEN && NAME.is_match(input),
        "repository name matcher disagrees with the regex on {input:?}"
    );
    assert_eq!(
        validate_tag(input).is_ok(),
        TAG.is_match(input),
        "tag matcher disagrees with the regex on {input:?}"
    );
});
