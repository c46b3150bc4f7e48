//! The AWS shared credentials file (`~/.aws/credentials`, or `AWS_SHARED_CREDENTIALS_FILE`)
//! as the registry's S3 driver reads it (`berth_registry::storage::s3::credentials::parse`),
//! with the profile to look up on the input's first line: never panics; a profile it returns
//! has its section in the text, keys with no surrounding whitespace, and an
//! error names the profile and the file.
#![no_main]

use std::path::Path;

use berth_registry::storage::s3::credentials::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (profile, file) = text.split_once('\n').unwrap_or(("default", text));
    let path = Path::new("/fuzz/credentials");
    match parse(file, profile, path) {
        Ok(Some(c)) => {
            let section = file.lines().any(|l| {
                l.trim()
                    .strip_prefix('[')
                    .and_then(|l| l.strip_suffix(']'))
                    .is_some_and(|name| name.trim() == profile)
            });
            assert!(section, "credentials for [{profile}] without its section");
            for v in [&c.access_key_id, &c.secret_access_key] {
                assert_eq!(v.trim(), v.as_str(), "a value kept its whitespace");
                assert!(file.contains(v.as_str()), "a value not in the file: {v:?}");
            }
            if let Some(t) = &c.session_token {
                assert!(file.contains(t.as_str()), "a token not in the file");
            }
        }
        Ok(None) => {}
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("/fuzz/credentials"), "error without the file: {msg}");
            assert!(msg.contains(profile), "error without the profile: {msg}");
        }
    }
});
