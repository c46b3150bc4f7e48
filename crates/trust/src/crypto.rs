//! Signature checks through `ring`. ring 0.17 has no P-521: ES512 envelopes and P-521 keys are
//! refused with a message that says so.

use crate::cert::{CertSignatureAlgorithm, Curve, PublicKey};
use crate::envelope::SignatureAlgorithm;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};

pub(crate) fn verify_cert_signature(
    alg: CertSignatureAlgorithm,
    key: &PublicKey,
    message: &[u8],
    sig: &[u8],
) -> Result<(), String> {
    use CertSignatureAlgorithm as A;
    let (algorithm, key_bytes): (&'static dyn VerificationAlgorithm, &[u8]) = match (alg, key) {
        (A::RsaPkcs1Sha256, PublicKey::Rsa { der, .. }) => {
            (&signature::RSA_PKCS1_2048_8192_SHA256, der)
        }
        (A::RsaPkcs1Sha384, PublicKey::Rsa { der, .. }) => {
            (&signature::RSA_PKCS1_2048_8192_SHA384, der)
        }
        (A::RsaPkcs1Sha512, PublicKey::Rsa { der, .. }) => {
            (&signature::RSA_PKCS1_2048_8192_SHA512, der)
        }
        (A::RsaPssSha256, PublicKey::Rsa { der, .. }) => {
            (&signature::RSA_PSS_2048_8192_SHA256, der)
        }
        (A::RsaPssSha384, PublicKey::Rsa { der, .. }) => {
            (&signature::RSA_PSS_2048_8192_SHA384, der)
        }
        (A::RsaPssSha512, PublicKey::Rsa { der, .. }) => {
            (&signature::RSA_PSS_2048_8192_SHA512, der)
        }
        (
            A::EcdsaSha256,
            PublicKey::Ec {
                curve: Curve::P256,
                point,
            },
        ) => (&signature::ECDSA_P256_SHA256_ASN1, point),
        (
            A::EcdsaSha384,
            PublicKey::Ec {
                curve: Curve::P256,
                point,
            },
        ) => (&signature::ECDSA_P256_SHA384_ASN1, point),
        (
            A::EcdsaSha256,
            PublicKey::Ec {
                curve: Curve::P384,
                point,
            },
        ) => (&signature::ECDSA_P384_SHA256_ASN1, point),
        (
            A::EcdsaSha384,
            PublicKey::Ec {
                curve: Curve::P384,
                point,
            },
        ) => (&signature::ECDSA_P384_SHA384_ASN1, point),
        (
            _,
            PublicKey::Ec {
                curve: Curve::P521, ..
            },
        ) => {
            return Err("P-521 keys are not supported (ring has no P-521)".to_string());
        }
        (alg, key) => {
            return Err(format!(
                "certificate signature {alg:?} does not fit an issuer key {}",
                key.describe()
            ));
        }
    };
    UnparsedPublicKey::new(algorithm, key_bytes)
        .verify(message, sig)
        .map_err(|_| "certificate signature does not verify with the issuer's key".to_string())
}

/// Checks an envelope signature (`sig` in the JWS/COSE form: raw r||s for ECDSA).
pub(crate) fn verify_envelope_signature(
    alg: SignatureAlgorithm,
    key: &PublicKey,
    message: &[u8],
    sig: &[u8],
) -> Result<(), String> {
    use SignatureAlgorithm as S;
    let (algorithm, key_bytes): (&'static dyn VerificationAlgorithm, &[u8]) = match (alg, key) {
        (S::Ps256, PublicKey::Rsa { der, .. }) => (&signature::RSA_PSS_2048_8192_SHA256, der),
        (S::Ps384, PublicKey::Rsa { der, .. }) => (&signature::RSA_PSS_2048_8192_SHA384, der),
        (S::Ps512, PublicKey::Rsa { der, .. }) => (&signature::RSA_PSS_2048_8192_SHA512, der),
        (
            S::Es256,
            PublicKey::Ec {
                curve: Curve::P256,
                point,
            },
        ) => (&signature::ECDSA_P256_SHA256_FIXED, point),
        (
            S::Es384,
            PublicKey::Ec {
                curve: Curve::P384,
                point,
            },
        ) => (&signature::ECDSA_P384_SHA384_FIXED, point),
        (S::Es512, _) => {
            return Err("ES512 (P-521) is not supported: ring has no P-521".to_string());
        }
        (alg, key) => {
            return Err(format!(
                "{} does not fit a {} key",
                alg.name(),
                key.describe()
            ));
        }
    };
    UnparsedPublicKey::new(algorithm, key_bytes)
        .verify(message, sig)
        .map_err(|_| "the signature does not verify with the signing certificate's key".to_string())
}
