//! `berth key import --key FILE --cert FILE` reads files a user was handed: the private key
//! (PKCS#8 PEM or DER, SEC1 and PKCS#1 PEM) and the certificate chain. Parsing must never
//! panic; an accepted key is one berth can sign with, and it reads back the same from the
//! PKCS#8 PEM berth stores.
#![no_main]

use berth_trust::Certificate;
use berth_trust::keys::{KeySpec, SigningKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = SigningKey::from_pem_or_der(data) {
        assert!(matches!(
            key.spec(),
            KeySpec::EcP256 | KeySpec::EcP384 | KeySpec::Rsa(2048 | 3072 | 4096)
        ));
        let stored = key.to_pkcs8_pem();
        let again = SigningKey::from_pem_or_der(stored.as_bytes())
            .unwrap_or_else(|e| panic!("berth's own PKCS#8 PEM is refused: {e}"));
        assert_eq!(again.spec(), key.spec());
        assert_eq!(again.public_key(), key.public_key());
        assert!(key.public_key_pem().starts_with("-----BEGIN PUBLIC KEY-----\n"));
    }
    if let Ok(chain) = Certificate::parse_many(data) {
        assert!(!chain.is_empty());
    }
});
