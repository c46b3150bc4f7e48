//! A Secret as the API server answers `GET /api/v1/namespaces/NS/secrets/NAME`, read by the
//! admission webhook for a Pod's `imagePullSecrets`
//! (`berth_admission::pull_secrets::parse_secret`): never panics; a host it returns has
//! credentials with a user name or a password, and no host comes twice.
#![no_main]

use berth_admission::pull_secrets::parse_secret;
use berth_distribution::Credential;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entries) = parse_secret(data) else { return };
    for (i, (host, credential)) in entries.iter().enumerate() {
        assert!(entries[..i].iter().all(|(h, _)| h != host), "{host} twice");
        if let Credential::Basic { username, password } = credential {
            assert!(!username.is_empty() || !password.expose().is_empty(), "{host}");
        }
    }
});
