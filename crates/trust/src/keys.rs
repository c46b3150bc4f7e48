//! Signing keys and berth's key store.
//!
//! Keys: ECDSA P-256 (the default) and P-384 are generated with `ring`; PKCS#8 keys (PEM or
//! DER; also the older `EC PRIVATE KEY` / `RSA PRIVATE KEY` PEM forms, which are wrapped into
//! PKCS#8) are imported for EC P-256/P-384 and RSA 2048/3072/4096 (RSASSA-PSS signing).
//! ring cannot generate RSA keys: make them with `openssl genpkey -algorithm RSA` and import
//! them. Encrypted PKCS#8 is refused (decrypt it with `openssl pkcs8` first).
//!
//! The store, `<config>/keys/` (mode 0700), mirrors notation's `localkeys` + `signingkeys.json`
//! with berth's own files:
//!
//! ```text
//! <config>/keys/NAME.key   PKCS#8 PEM, mode 0600, written atomically (temp file, fsync, rename)
//! <config>/keys/NAME.crt   the certificate chain, PEM, leaf first (mode 0644)
//! <config>/keys/default    the name of the default signing key
//! ```
//!
//! A key file readable by group or others is refused when loaded, as ssh refuses one.

use crate::cert::{Certificate, Curve, PublicKey, oid};
use crate::der::{self, Reader};
use crate::der_writer as w;
use crate::envelope::SignatureAlgorithm;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What a key store or key operation failed on.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "invalid key name {0:?}: names are [a-zA-Z0-9_.-]+, at most 128 characters, not starting with '.'"
    )]
    InvalidName(String),
    #[error("key {0:?} already exists (remove it first, or pass --force to replace it)")]
    Exists(String),
    #[error("no key named {0:?} (see `berth key list`)")]
    NotFound(String),
    #[error(
        "no default signing key: pass --key NAME, or make one the default (berth key set-default NAME)"
    )]
    NoDefault,
    #[error(
        "key {0:?} has no certificate, so it cannot sign: import one (berth key import NAME --key KEY --cert CHAIN --force)"
    )]
    NoCertificate(String),
    #[error("unsupported key: {0}")]
    Unsupported(String),
    #[error("invalid key: {0}")]
    Invalid(String),
    #[error(
        "the certificate does not match the key {name:?} (its public key is {cert_key}, the key's is {key})"
    )]
    CertificateMismatch {
        name: String,
        cert_key: String,
        key: String,
    },
    #[error("invalid certificate for key {name:?}")]
    Certificate {
        name: String,
        #[source]
        source: crate::cert::CertError,
    },
    #[error("key file {path} is readable by group or others (mode {mode:o}): run chmod 600 on it")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{path} is not a regular file (symlinks are refused)")]
    NotRegular { path: PathBuf },
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KeyError {
    let path = path.to_path_buf();
    move |source| KeyError::Io { op, path, source }
}

/// The kind and size of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeySpec {
    /// ECDSA on P-256 (ES256): the default.
    #[default]
    EcP256,
    /// ECDSA on P-384 (ES384).
    EcP384,
    /// RSA of this many bits (2048, 3072 or 4096), signing with RSASSA-PSS.
    Rsa(usize),
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::EcP256 => f.write_str("EC P-256"),
            KeySpec::EcP384 => f.write_str("EC P-384"),
            KeySpec::Rsa(bits) => write!(f, "RSA {bits}"),
        }
    }
}

impl KeySpec {
    /// The envelope algorithm the specification's table selects for this key.
    pub fn signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            KeySpec::EcP256 => SignatureAlgorithm::Es256,
            KeySpec::EcP384 => SignatureAlgorithm::Es384,
            KeySpec::Rsa(bits) if bits >= 4096 => SignatureAlgorithm::Ps512,
            KeySpec::Rsa(bits) if bits >= 3072 => SignatureAlgorithm::Ps384,
            KeySpec::Rsa(_) => SignatureAlgorithm::Ps256,
        }
    }
}

enum Inner {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private key berth can sign with. Its Debug output never shows the private key.
pub struct SigningKey {
    spec: KeySpec,
    pkcs8: Vec<u8>,
    inner: Inner,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        // best effort: do not leave the private key bytes in freed memory
        self.pkcs8.fill(0);
        std::hint::black_box(&self.pkcs8);
    }
}

const PEM_PRIVATE_KEY: &str = "PRIVATE KEY";
const PEM_EC_PRIVATE_KEY: &str = "EC PRIVATE KEY";
const PEM_RSA_PRIVATE_KEY: &str = "RSA PRIVATE KEY";
const PEM_ENCRYPTED: &str = "ENCRYPTED PRIVATE KEY";

impl SigningKey {
    /// A new ECDSA key. RSA keys cannot be generated (ring has no RSA key generation):
    /// import one made by `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072`.
    pub fn generate(spec: KeySpec) -> Result<SigningKey, KeyError> {
        let rng = SystemRandom::new();
        let alg = match spec {
            KeySpec::EcP256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            KeySpec::EcP384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            KeySpec::Rsa(_) => {
                return Err(KeyError::Unsupported(
                    "berth cannot generate RSA keys (ring has no RSA key generation): make one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072` and import it".to_string(),
                ));
            }
        };
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng)
            .map_err(|_| KeyError::Invalid("ECDSA key generation failed".to_string()))?;
        SigningKey::from_pkcs8_der(doc.as_ref())
    }

    /// A key from PKCS#8 DER (unencrypted `PrivateKeyInfo`).
    pub fn from_pkcs8_der(der_bytes: &[u8]) -> Result<SigningKey, KeyError> {
        let bad = |what: &str| KeyError::Invalid(format!("not a PKCS#8 private key: {what}"));
        let outer = der::parse_single(der_bytes, der::SEQUENCE, "PrivateKeyInfo")
            .map_err(|e| bad(&e.to_string()))?;
        let mut r = Reader::new(outer.value);
        r.read(der::INTEGER, "version")
            .map_err(|e| bad(&e.to_string()))?;
        let alg = r
            .read(der::SEQUENCE, "AlgorithmIdentifier")
            .map_err(|e| bad(&e.to_string()))?;
        let mut a = Reader::new(alg.value);
        let id = a
            .read(der::OID, "algorithm")
            .map_err(|e| bad(&e.to_string()))?;
        match id.value {
            oid::EC_PUBLIC_KEY => {
                let curve = a
                    .read(der::OID, "namedCurve")
                    .map_err(|e| bad(&format!("EC parameters: {e}")))?;
                let (spec, alg) = match curve.value {
                    oid::P256 => (KeySpec::EcP256, &signature::ECDSA_P256_SHA256_FIXED_SIGNING),
                    oid::P384 => (KeySpec::EcP384, &signature::ECDSA_P384_SHA384_FIXED_SIGNING),
                    oid::P521 => {
                        return Err(KeyError::Unsupported(
                            "EC P-521 keys cannot sign: ring has no P-521 (use P-256 or P-384)"
                                .to_string(),
                        ));
                    }
                    other => {
                        return Err(KeyError::Unsupported(format!(
                            "EC curve {} (use P-256 or P-384)",
                            der::oid_to_string(other)
                        )));
                    }
                };
                let kp = EcdsaKeyPair::from_pkcs8(alg, der_bytes, &SystemRandom::new())
                    .map_err(|e| KeyError::Invalid(format!("EC key rejected: {e}")))?;
                Ok(SigningKey {
                    spec,
                    pkcs8: der_bytes.to_vec(),
                    inner: Inner::Ec(kp),
                })
            }
            oid::RSA_ENCRYPTION => {
                let private = r
                    .read(der::OCTET_STRING, "privateKey")
                    .map_err(|e| bad(&e.to_string()))?;
                // RSAPrivateKey { version, modulus, … }: the size, for a message that says it
                let claimed = der::parse_single(private.value, der::SEQUENCE, "RSAPrivateKey")
                    .and_then(|seq| {
                        let mut k = Reader::new(seq.value);
                        k.read(der::INTEGER, "version")?;
                        Ok(w::sequence(&[k.read(der::INTEGER, "modulus")?.raw]))
                    })
                    .map(|n| rsa_bits(&n))
                    .unwrap_or(0);
                if claimed != 0 && !matches!(claimed, 2048 | 3072 | 4096) {
                    return Err(KeyError::Unsupported(format!(
                        "RSA key of {claimed} bits: the Notary Project allows RSA 2048, 3072 or 4096"
                    )));
                }
                let kp = RsaKeyPair::from_pkcs8(der_bytes)
                    .map_err(|e| KeyError::Invalid(format!("RSA key rejected: {e}")))?;
                let bits = rsa_bits(kp.public().as_ref());
                if !matches!(bits, 2048 | 3072 | 4096) {
                    return Err(KeyError::Unsupported(format!(
                        "RSA key of {bits} bits: the Notary Project allows RSA 2048, 3072 or 4096"
                    )));
                }
                Ok(SigningKey {
                    spec: KeySpec::Rsa(bits),
                    pkcs8: der_bytes.to_vec(),
                    inner: Inner::Rsa(kp),
                })
            }
            other => Err(KeyError::Unsupported(format!(
                "key algorithm {} (EC P-256/P-384 or RSA only)",
                der::oid_to_string(other)
            ))),
        }
    }

    /// A key from a file's bytes: PEM (`PRIVATE KEY`, `EC PRIVATE KEY`, `RSA PRIVATE KEY`) or
    /// PKCS#8 DER.
    pub fn from_pem_or_der(data: &[u8]) -> Result<SigningKey, KeyError> {
        if data.first() == Some(&der::SEQUENCE) {
            return SigningKey::from_pkcs8_der(data);
        }
        let text = std::str::from_utf8(data)
            .map_err(|_| KeyError::Invalid("neither DER nor UTF-8 PEM".to_string()))?;
        let blocks = pem_blocks(text)?;
        let mut keys = blocks
            .iter()
            .filter(|(label, _)| label.ends_with("PRIVATE KEY"));
        let (label, body) = keys
            .next()
            .ok_or_else(|| KeyError::Invalid("no PRIVATE KEY block in the PEM".to_string()))?;
        if keys.next().is_some() {
            return Err(KeyError::Invalid(
                "more than one private key in the PEM".to_string(),
            ));
        }
        match label.as_str() {
            PEM_PRIVATE_KEY => SigningKey::from_pkcs8_der(body),
            PEM_EC_PRIVATE_KEY => SigningKey::from_pkcs8_der(&sec1_to_pkcs8(body)?),
            PEM_RSA_PRIVATE_KEY => {
                // PKCS#1 RSAPrivateKey → PrivateKeyInfo { 0, rsaEncryption NULL, OCTET STRING }
                let info = w::sequence(&[
                    &w::small_integer(0),
                    &w::sequence(&[&w::oid(oid::RSA_ENCRYPTION), &w::null()]),
                    &w::octet_string(body),
                ]);
                SigningKey::from_pkcs8_der(&info)
            }
            PEM_ENCRYPTED => Err(KeyError::Unsupported(
                "encrypted private keys: decrypt it first (openssl pkcs8 -in KEY -out PLAIN)"
                    .to_string(),
            )),
            other => Err(KeyError::Unsupported(format!("PEM block {other:?}"))),
        }
    }

    /// The key's kind and size.
    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// The envelope signature algorithm this key signs with.
    pub fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.spec.signature_algorithm()
    }

    /// The private key as PKCS#8 DER.
    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        self.pkcs8.clone()
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pkcs8_pem(&self) -> String {
        pem_encode(PEM_PRIVATE_KEY, &self.pkcs8)
    }

    /// The public key as berth's certificate code sees it.
    pub fn public_key(&self) -> PublicKey {
        match &self.inner {
            Inner::Ec(kp) => PublicKey::Ec {
                curve: if self.spec == KeySpec::EcP384 {
                    Curve::P384
                } else {
                    Curve::P256
                },
                point: kp.public_key().as_ref().to_vec(),
            },
            Inner::Rsa(kp) => PublicKey::Rsa {
                der: kp.public().as_ref().to_vec(),
                bits: rsa_bits(kp.public().as_ref()),
            },
        }
    }

    /// The public key as a DER `SubjectPublicKeyInfo`.
    pub fn public_key_spki_der(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Ec(kp) => {
                let curve = if self.spec == KeySpec::EcP384 {
                    oid::P384
                } else {
                    oid::P256
                };
                w::sequence(&[
                    &w::sequence(&[&w::oid(oid::EC_PUBLIC_KEY), &w::oid(curve)]),
                    &w::bit_string(kp.public_key().as_ref()),
                ])
            }
            Inner::Rsa(kp) => w::sequence(&[
                &w::sequence(&[&w::oid(oid::RSA_ENCRYPTION), &w::null()]),
                &w::bit_string(kp.public().as_ref()),
            ]),
        }
    }

    /// The public key as PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.public_key_spki_der())
    }

    /// Whether `cert` certifies this key.
    pub fn matches(&self, cert: &Certificate) -> bool {
        cert.public_key == self.public_key()
    }

    /// Signs `message` as the envelopes need it: ECDSA as fixed-width r||s, RSA as
    /// RSASSA-PSS with the hash the key size selects (salt = hash length).
    pub fn sign_envelope(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Ec(kp) => kp
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Sign("ECDSA signing failed".to_string())),
            Inner::Rsa(kp) => {
                let padding: &'static dyn signature::RsaEncoding = match self.signature_algorithm()
                {
                    SignatureAlgorithm::Ps512 => &signature::RSA_PSS_SHA512,
                    SignatureAlgorithm::Ps384 => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA256,
                };
                let mut sig = vec![0; kp.public().modulus_len()];
                kp.sign(padding, &rng, message, &mut sig)
                    .map_err(|_| KeyError::Sign("RSA-PSS signing failed".to_string()))?;
                Ok(sig)
            }
        }
    }

    /// Signs a certificate's TBS bytes: (the DER AlgorithmIdentifier, the signature). ECDSA
    /// with the curve's hash (DER `ECDSA-Sig-Value`), RSA with sha256WithRSAEncryption, as Go's
    /// x509 package (and so notation) does.
    pub(crate) fn sign_certificate(&self, tbs: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.inner {
            Inner::Ec(_) => Ok(w::ecdsa_fixed_to_der(&self.sign_envelope(tbs)?)),
            Inner::Rsa(kp) => {
                let mut sig = vec![0; kp.public().modulus_len()];
                kp.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    tbs,
                    &mut sig,
                )
                .map_err(|_| KeyError::Sign("RSA signing failed".to_string()))?;
                Ok(sig)
            }
        }
    }

    /// The AlgorithmIdentifier of [`SigningKey::sign_certificate`]'s signatures.
    pub(crate) fn certificate_signature_algorithm(&self) -> Vec<u8> {
        match self.spec {
            KeySpec::EcP256 => w::sequence(&[&w::oid(oid::ECDSA_SHA256)]),
            KeySpec::EcP384 => w::sequence(&[&w::oid(oid::ECDSA_SHA384)]),
            KeySpec::Rsa(_) => w::sequence(&[&w::oid(oid::SHA256_WITH_RSA), &w::null()]),
        }
    }
}

/// Modulus size of a DER RSAPublicKey.
fn rsa_bits(rsa_public_key: &[u8]) -> usize {
    let modulus = der::parse_single(rsa_public_key, der::SEQUENCE, "RSAPublicKey")
        .and_then(|seq| Reader::new(seq.value).read(der::INTEGER, "modulus"));
    match modulus {
        Ok(n) => {
            let m = match n.value.split_first() {
                Some((0, rest)) => rest,
                _ => n.value,
            };
            m.first()
                .map_or(0, |b| m.len() * 8 - b.leading_zeros() as usize)
        }
        Err(_) => 0,
    }
}

/// SEC1 `ECPrivateKey` (with its curve parameters) → PKCS#8.
fn sec1_to_pkcs8(sec1: &[u8]) -> Result<Vec<u8>, KeyError> {
    let bad = |e: der::DerError| KeyError::Invalid(format!("not an EC PRIVATE KEY: {e}"));
    let seq = der::parse_single(sec1, der::SEQUENCE, "ECPrivateKey").map_err(bad)?;
    let mut r = Reader::new(seq.value);
    r.read(der::INTEGER, "version").map_err(bad)?;
    r.read(der::OCTET_STRING, "privateKey").map_err(bad)?;
    let params = r
        .read_optional(0xa0)
        .map_err(bad)?
        .ok_or_else(|| KeyError::Invalid("EC PRIVATE KEY without curve parameters".to_string()))?;
    let curve = der::parse_single(params.value, der::OID, "namedCurve").map_err(bad)?;
    Ok(w::sequence(&[
        &w::small_integer(0),
        &w::sequence(&[&w::oid(oid::EC_PUBLIC_KEY), curve.raw]),
        &w::octet_string(sec1),
    ]))
}

/// PEM text for one block, 64 columns.
pub fn pem_encode(label: &str, der_bytes: &[u8]) -> String {
    let b64 = STANDARD.encode(der_bytes);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Every PEM block of a text: (label, decoded bytes). Headers (`Proc-Type:`) are refused:
/// they mean an encrypted legacy key.
fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, KeyError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after
            .find("-----")
            .ok_or_else(|| KeyError::Invalid("unterminated PEM BEGIN line".to_string()))?;
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let end = body_start
            .find(&end_marker)
            .ok_or_else(|| KeyError::Invalid(format!("PEM block {label:?} has no END line")))?;
        let body = &body_start[..end];
        if body.contains(':') {
            return Err(KeyError::Unsupported(
                "encrypted PEM (Proc-Type/DEK-Info headers): decrypt the key first".to_string(),
            ));
        }
        let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = STANDARD
            .decode(compact)
            .map_err(|e| KeyError::Invalid(format!("PEM block {label:?} is not base64: {e}")))?;
        out.push((label.to_string(), bytes));
        rest = &body_start[end + end_marker.len()..];
    }
    Ok(out)
}

/// Key names: `[a-zA-Z0-9_.-]+`, at most 128 characters, not starting with '.'.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// One key of a [`KeyStore`].
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub name: String,
    pub key_path: PathBuf,
    /// The certificate chain file, when there is one.
    pub cert_path: Option<PathBuf>,
    pub is_default: bool,
}

/// A key ready to sign: its name, the key, its certificate chain (leaf first).
#[derive(Debug)]
pub struct Signer {
    pub name: String,
    pub key: SigningKey,
    pub chain: Vec<Certificate>,
}

/// How [`KeyStore::add`] treats an existing name and the default marker.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddOptions {
    /// Replace a key of the same name.
    pub force: bool,
    /// Make this the default signing key.
    pub default: bool,
}

/// berth's key store: `<config>/keys/`.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

const DEFAULT_MARKER: &str = "default";

impl KeyStore {
    /// The key store under a configuration directory (`<config_dir>/keys`); nothing is created
    /// until a key is added.
    pub fn new(config_dir: impl AsRef<Path>) -> KeyStore {
        KeyStore {
            dir: config_dir.as_ref().join("keys"),
        }
    }

    /// The `keys` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn checked(&self, name: &str) -> Result<(), KeyError> {
        if is_valid_key_name(name) {
            Ok(())
        } else {
            Err(KeyError::InvalidName(name.to_string()))
        }
    }

    /// `keys/NAME.key`.
    pub fn key_path(&self, name: &str) -> Result<PathBuf, KeyError> {
        self.checked(name)?;
        Ok(self.dir.join(format!("{name}.key")))
    }

    /// `keys/NAME.crt`.
    pub fn cert_path(&self, name: &str) -> Result<PathBuf, KeyError> {
        self.checked(name)?;
        Ok(self.dir.join(format!("{name}.crt")))
    }

    /// Whether a key of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.key_path(name)
            .map(|p| fs::symlink_metadata(p).is_ok())
            .unwrap_or(false)
    }

    fn ensure_dir(&self) -> Result<(), KeyError> {
        if let Some(parent) = self.dir.parent()
            && !parent.exists()
        {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(io("creating", parent))?;
        }
        match fs::symlink_metadata(&self.dir) {
            Ok(m) if m.is_dir() => {
                if m.mode() & 0o077 != 0 {
                    fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                        .map_err(io("setting mode 0700 on", &self.dir))?;
                }
                Ok(())
            }
            Ok(_) => Err(KeyError::NotRegular {
                path: self.dir.clone(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::DirBuilder::new()
                .mode(0o700)
                .create(&self.dir)
                .map_err(io("creating", &self.dir)),
            Err(e) => Err(io("reading", &self.dir)(e)),
        }
    }

    /// Stores a key (and its certificate chain, leaf first, which must certify the key). The
    /// key becomes the default when asked to, or when there is no (existing) default key.
    pub fn add(
        &self,
        name: &str,
        key: &SigningKey,
        chain: Option<&[Certificate]>,
        opts: AddOptions,
    ) -> Result<(), KeyError> {
        let key_path = self.key_path(name)?;
        let cert_path = self.cert_path(name)?;
        if let Some(chain) = chain {
            check_chain_matches(name, key, chain)?;
        }
        if !opts.force && self.contains(name) {
            return Err(KeyError::Exists(name.to_string()));
        }
        self.ensure_dir()?;
        self.remove_stale_temporaries(name)?;
        write_atomic(&key_path, key.to_pkcs8_pem().as_bytes(), 0o600)?;
        match chain {
            Some(chain) => write_atomic(&cert_path, chain_pem(chain).as_bytes(), 0o644)?,
            None => remove_if_exists(&cert_path)?,
        }
        // the first key is the default one, so that signing needs no flag
        if opts.default || self.default_key()?.is_none_or(|d| !self.contains(&d)) {
            self.set_default(name)?;
        }
        Ok(())
    }

    /// Removes what a write of NAME's files that crashed left behind (`.NAME.key.tmp.*`,
    /// `.NAME.crt.tmp.*`): a temporary key file holds a private key.
    fn remove_stale_temporaries(&self, name: &str) -> Result<(), KeyError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("reading", &self.dir)(e)),
        };
        let prefixes = [format!(".{name}.key.tmp."), format!(".{name}.crt.tmp.")];
        for entry in entries {
            let entry = entry.map_err(io("reading", &self.dir))?;
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            // the rest is fsutil's "PID.N": digits and dots only
            let ours = prefixes.iter().any(|p| {
                file_name.strip_prefix(p.as_str()).is_some_and(|rest| {
                    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                })
            });
            if ours {
                remove_if_exists(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Replaces the certificate chain of an existing key.
    pub fn set_certificate(&self, name: &str, chain: &[Certificate]) -> Result<(), KeyError> {
        let key = self.load(name)?;
        check_chain_matches(name, &key, chain)?;
        write_atomic(&self.cert_path(name)?, chain_pem(chain).as_bytes(), 0o644)
    }

    /// Reads a key.
    pub fn load(&self, name: &str) -> Result<SigningKey, KeyError> {
        let path = self.key_path(name)?;
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::NotFound(name.to_string()));
            }
            Err(e) => return Err(io("reading", &path)(e)),
        };
        if !meta.file_type().is_file() {
            return Err(KeyError::NotRegular { path });
        }
        if meta.mode() & 0o077 != 0 {
            return Err(KeyError::TooOpen {
                path,
                mode: meta.mode() & 0o7777,
            });
        }
        let data = fs::read(&path).map_err(io("reading", &path))?;
        SigningKey::from_pem_or_der(&data)
    }

    /// The key's certificate chain (leaf first), if it has one.
    pub fn chain(&self, name: &str) -> Result<Option<Vec<Certificate>>, KeyError> {
        let path = self.cert_path(name)?;
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_file() => {}
            Ok(_) => return Err(KeyError::NotRegular { path }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("reading", &path)(e)),
        }
        let data = fs::read(&path).map_err(io("reading", &path))?;
        Certificate::parse_many(&data)
            .map(Some)
            .map_err(|source| KeyError::Certificate {
                name: name.to_string(),
                source,
            })
    }

    /// What `berth sign --key NAME` signs with: the named key (or, with `None`, the default
    /// key), its certificate chain, checked to certify the key.
    pub fn signer(&self, name: Option<&str>) -> Result<Signer, KeyError> {
        let name = match name {
            Some(n) => n.to_string(),
            None => self.default_key()?.ok_or(KeyError::NoDefault)?,
        };
        let key = self.load(&name)?;
        let chain = self
            .chain(&name)?
            .ok_or_else(|| KeyError::NoCertificate(name.clone()))?;
        check_chain_matches(&name, &key, &chain)?;
        Ok(Signer { name, key, chain })
    }

    /// Every key, by name.
    pub fn list(&self) -> Result<Vec<KeyEntry>, KeyError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("reading", &self.dir)(e)),
        };
        let default = self.default_key()?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io("reading", &self.dir))?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let Some(name) = file_name.strip_suffix(".key") else {
                continue;
            };
            if !is_valid_key_name(name) {
                continue; // temporary files (".NAME.key.tmp…") and strays
            }
            let cert_path = self.dir.join(format!("{name}.crt"));
            out.push(KeyEntry {
                name: name.to_string(),
                key_path: entry.path(),
                cert_path: cert_path.exists().then_some(cert_path),
                is_default: default.as_deref() == Some(name),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes a key, its certificate and the default marker if it names it.
    pub fn remove(&self, name: &str) -> Result<(), KeyError> {
        let key_path = self.key_path(name)?;
        if !self.contains(name) {
            return Err(KeyError::NotFound(name.to_string()));
        }
        if self.default_key()?.as_deref() == Some(name) {
            remove_if_exists(&self.dir.join(DEFAULT_MARKER))?;
        }
        remove_if_exists(&self.cert_path(name)?)?;
        remove_if_exists(&key_path)?;
        self.remove_stale_temporaries(name)?;
        sync_dir(&self.dir)
    }

    /// The default signing key's name, if one is set.
    pub fn default_key(&self) -> Result<Option<String>, KeyError> {
        let path = self.dir.join(DEFAULT_MARKER);
        match fs::read_to_string(&path) {
            Ok(s) => {
                let name = s.trim();
                Ok(is_valid_key_name(name).then(|| name.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("reading", &path)(e)),
        }
    }

    /// Makes an existing key the default.
    pub fn set_default(&self, name: &str) -> Result<(), KeyError> {
        self.checked(name)?;
        if !self.contains(name) {
            return Err(KeyError::NotFound(name.to_string()));
        }
        write_atomic(
            &self.dir.join(DEFAULT_MARKER),
            format!("{name}\n").as_bytes(),
            0o600,
        )
    }
}

fn check_chain_matches(
    name: &str,
    key: &SigningKey,
    chain: &[Certificate],
) -> Result<(), KeyError> {
    let leaf = chain
        .first()
        .ok_or_else(|| KeyError::Invalid(format!("the certificate chain for {name:?} is empty")))?;
    if !key.matches(leaf) {
        return Err(KeyError::CertificateMismatch {
            name: name.to_string(),
            cert_key: leaf.public_key.describe(),
            key: key.spec().to_string(),
        });
    }
    Ok(())
}

/// PEM of a chain, leaf first.
pub fn chain_pem(chain: &[Certificate]) -> String {
    chain
        .iter()
        .map(|c| pem_encode("CERTIFICATE", c.der()))
        .collect()
}

fn remove_if_exists(path: &Path) -> Result<(), KeyError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("removing", path)(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), KeyError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing", dir))
}

/// Writes `data` to `path` so that `path` is either its old content (or absent) or the whole
/// new content, also after a crash: `berth_fsutil::AtomicFile` (a temporary file in the same
/// directory, written, fsynced, renamed over `path`, the directory fsynced), its mode set to
/// `mode` before a byte is written. On failure the temporary file is removed.
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), KeyError> {
    let fs_err = |op: &'static str| {
        let path = path.to_path_buf();
        move |e: berth_fsutil::FsError| KeyError::Io {
            op,
            path,
            source: std::io::Error::other(e),
        }
    };
    let mut f = berth_fsutil::AtomicFile::create(path).map_err(fs_err("creating"))?;
    let tmp = f.temp_path().to_path_buf();
    f.file()
        .ok_or_else(|| KeyError::Invalid(format!("{} is not open", tmp.display())))?
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io("setting the mode of", &tmp))?;
    f.write_all(data).map_err(io("writing", &tmp))?;
    f.commit().map_err(fs_err("writing"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "wabbit-networks.io", "A_b.c-1"] {
            assert!(is_valid_key_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", "..", "a/b", "a b", "ü", &"x".repeat(129)] {
            assert!(!is_valid_key_name(bad), "{bad}");
        }
    }

    #[test]
    fn generated_keys_round_trip_through_pem() {
        for spec in [KeySpec::EcP256, KeySpec::EcP384] {
            let k = SigningKey::generate(spec).expect("generate");
            assert_eq!(k.spec(), spec);
            let again = SigningKey::from_pem_or_der(k.to_pkcs8_pem().as_bytes()).expect("import");
            assert_eq!(again.public_key(), k.public_key());
            assert!(!format!("{k:?}").contains("pkcs8"));
        }
        assert!(matches!(
            SigningKey::generate(KeySpec::Rsa(3072)),
            Err(KeyError::Unsupported(_))
        ));
    }
}
