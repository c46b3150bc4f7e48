//! Bearer tokens: compact JWTs signed with HS256 (`ring::hmac`), and their signing key.
//!
//! The 256-bit secret lives in `<state_dir>/token.key` (raw bytes, mode 0600), created on
//! first start, so tokens survive restarts and replicas sharing a state directory accept each
//! other's tokens. Access and refresh tokens are signed with two keys derived from that
//! secret (HMAC-SHA256 over a fixed label), so neither can be used as the other.
//! Verification is constant-time (`ring::hmac::verify`), accepts only our own fixed header
//! (`alg` HS256), and checks `aud`, `exp` and `nbf` with [`LEEWAY_SECS`] of clock skew.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::AuthError;

/// Allowed clock skew when checking `exp` and `nbf`.
pub(crate) const LEEWAY_SECS: u64 = 60;
/// Name of the key file inside the state directory.
pub(crate) const KEY_FILE: &str = "token.key";
/// Longest token we try to verify.
const MAX_TOKEN_LEN: usize = 64 * 1024;
/// base64url of `{"alg":"HS256","typ":"JWT"}`.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// Why a presented token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was issued for another service")]
    WrongAudience,
}

/// One `access` claim entry (docker token spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ResourceActions {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) actions: Vec<String>,
}

/// Access-token claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) exp: u64,
    pub(crate) nbf: u64,
    pub(crate) iat: u64,
    pub(crate) jti: String,
    #[serde(default)]
    pub(crate) access: Vec<ResourceActions>,
}

/// Refresh-token claims; `fp` fingerprints the user's password hash at issue time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RefreshClaims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) exp: u64,
    pub(crate) nbf: u64,
    pub(crate) iat: u64,
    pub(crate) jti: String,
    pub(crate) fp: String,
}

/// The signing keys. `Debug` never shows key material.
pub(crate) struct TokenKeys {
    access: hmac::Key,
    refresh: hmac::Key,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(<redacted>)")
    }
}

impl TokenKeys {
    pub(crate) fn from_secret(secret: &[u8]) -> TokenKeys {
        let master = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derive =
            |label: &[u8]| hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&master, label).as_ref());
        TokenKeys {
            access: derive(b"berth-registry access token v1"),
            refresh: derive(b"berth-registry refresh token v1"),
        }
    }

    /// Load `<state_dir>/token.key`, creating it (mode 0600) if it does not exist.
    pub(crate) fn load_or_create(state_dir: &Path) -> Result<TokenKeys, AuthError> {
        let path = state_dir.join(KEY_FILE);
        let secret = match std::fs::read(&path) {
            Ok(bytes) => {
                refuse_if_exposed(&path)?;
                bytes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(state_dir)?,
            Err(source) => return Err(AuthError::ReadTokenKey { path, source }),
        };
        TokenKeys::checked(path, &secret)
    }

    /// Load the configured key file `path` (`auth.token_key`, shared by replicas): it must
    /// exist, hold 32 bytes and be readable by its owner only. Never created here: replicas
    /// starting together would each make their own.
    pub(crate) fn load(path: &Path) -> Result<TokenKeys, AuthError> {
        let secret = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AuthError::TokenKeyMissing {
                    path: path.to_owned(),
                });
            }
            Err(source) => {
                return Err(AuthError::ReadTokenKey {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        refuse_if_exposed(path)?;
        TokenKeys::checked(path.to_owned(), &secret)
    }

    fn checked(path: std::path::PathBuf, secret: &[u8]) -> Result<TokenKeys, AuthError> {
        if secret.len() != 32 {
            return Err(AuthError::TokenKeyLength {
                path,
                len: secret.len(),
            });
        }
        Ok(TokenKeys::from_secret(secret))
    }

    pub(crate) fn sign_access(&self, claims: &Claims) -> String {
        sign(&self.access, claims)
    }

    pub(crate) fn sign_refresh(&self, claims: &RefreshClaims) -> String {
        sign(&self.refresh, claims)
    }

    /// Verify signature, audience and validity window of an access token.
    pub(crate) fn verify_access(
        &self,
        token: &str,
        aud: &str,
        now: u64,
    ) -> Result<Claims, TokenError> {
        let c: Claims = verify(&self.access, token)?;
        check(&c.aud, c.exp, c.nbf, aud, now)?;
        Ok(c)
    }

    /// Verify signature, audience and validity window of a refresh token.
    pub(crate) fn verify_refresh(
        &self,
        token: &str,
        aud: &str,
        now: u64,
    ) -> Result<RefreshClaims, TokenError> {
        let c: RefreshClaims = verify(&self.refresh, token)?;
        check(&c.aud, c.exp, c.nbf, aud, now)?;
        Ok(c)
    }
}

fn check(claim_aud: &str, exp: u64, nbf: u64, aud: &str, now: u64) -> Result<(), TokenError> {
    if claim_aud != aud {
        return Err(TokenError::WrongAudience);
    }
    if now > exp.saturating_add(LEEWAY_SECS) {
        return Err(TokenError::Expired);
    }
    if nbf > now.saturating_add(LEEWAY_SECS) {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

fn sign<T: Serialize>(key: &hmac::Key, claims: &T) -> String {
    // Serializing these plain structs cannot fail; an empty payload would fail verification.
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let mut out = String::with_capacity(HEADER_B64.len() + payload.len() * 4 / 3 + 48);
    out.push_str(HEADER_B64);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
    let tag = hmac::sign(key, out.as_bytes());
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut out);
    out
}

fn verify<T: DeserializeOwned>(key: &hmac::Key, token: &str) -> Result<T, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (signed, sig) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let (header, payload) = signed.split_once('.').ok_or(TokenError::Malformed)?;
    if header != HEADER_B64 {
        return Err(TokenError::Malformed);
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TokenError::Malformed)?;
    hmac::verify(key, signed.as_bytes(), &sig).map_err(|_| TokenError::BadSignature)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)
}

fn create_key(state_dir: &Path) -> Result<Vec<u8>, AuthError> {
    let path = state_dir.join(KEY_FILE);
    let mut secret = vec![0u8; 32];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| AuthError::GenerateTokenKey { path: path.clone() })?;
    berth_fsutil::create_dir_all_durable(state_dir).map_err(|source| AuthError::WriteTokenKey {
        path: path.clone(),
        source,
    })?;
    let tmp = state_dir.join(format!(
        ".{KEY_FILE}.tmp.{}.{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let io_err = |source: std::io::Error| AuthError::WriteTokenKey {
        path: path.clone(),
        source: berth_fsutil::FsError::Write {
            path: tmp.clone(),
            source,
        },
    };
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(&secret)?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(e));
    }
    // Publish without clobbering: if another process sharing this state directory created
    // the key first, use theirs so both accept the same tokens. Filesystems without hard
    // links fall back to an atomic rename.
    let published = match std::fs::hard_link(&tmp, &path) {
        Ok(()) => berth_fsutil::sync_dir(state_dir).map(|()| secret),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&tmp);
            return std::fs::read(&path).map_err(|source| AuthError::ReadTokenKey { path, source });
        }
        Err(_) => berth_fsutil::rename_durable(&tmp, &path).map(|()| secret),
    };
    let _ = std::fs::remove_file(&tmp);
    let secret = published.map_err(|source| AuthError::WriteTokenKey {
        path: path.clone(),
        source,
    })?;
    tracing::info!(path = %path.display(), "created token signing key");
    Ok(secret)
}

/// A signing key others can read lets them mint tokens for any user: refuse to start.
fn refuse_if_exposed(path: &Path) -> Result<(), AuthError> {
    let mode = std::fs::metadata(path)
        .map_err(|source| AuthError::ReadTokenKey {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        return Err(AuthError::TokenKeyExposed {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 3339 UTC timestamp (`2024-01-02T03:04:05Z`) for Unix seconds.
pub(crate) fn rfc3339(secs: u64) -> String {
    berth_oci::timefmt::rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: u64, ttl: u64) -> Claims {
        Claims {
            iss: "svc".into(),
            sub: "alice".into(),
            aud: "svc".into(),
            exp: now + ttl,
            nbf: now,
            iat: now,
            jti: "j1".into(),
            access: vec![ResourceActions {
                kind: "repository".into(),
                name: "a/b".into(),
                actions: vec!["pull".into()],
            }],
        }
    }

    #[test]
    fn round_trip_and_checks() {
        let keys = TokenKeys::from_secret(&[7u8; 32]);
        let now = now_secs();
        let t = keys.sign_access(&claims(now, 300));
        assert_eq!(t.split('.').count(), 3);
        let c = keys.verify_access(&t, "svc", now).unwrap();
        assert_eq!(c.sub, "alice");
        assert_eq!(c.access[0].name, "a/b");
        assert_eq!(
            keys.verify_access(&t, "other", now).unwrap_err(),
            TokenError::WrongAudience
        );
        // Skew: still valid 60 s after expiry, not after that.
        assert!(
            keys.verify_access(&t, "svc", now + 300 + LEEWAY_SECS)
                .is_ok()
        );
        assert_eq!(
            keys.verify_access(&t, "svc", now + 300 + LEEWAY_SECS + 1)
                .unwrap_err(),
            TokenError::Expired
        );
        assert_eq!(
            keys.verify_access(&t, "svc", now - LEEWAY_SECS - 1)
                .unwrap_err(),
            TokenError::NotYetValid
        );
        // Another key, or the refresh key, does not verify it.
        let other = TokenKeys::from_secret(&[8u8; 32]);
        assert_eq!(
            other.verify_access(&t, "svc", now).unwrap_err(),
            TokenError::BadSignature
        );
        assert!(keys.verify_refresh(&t, "svc", now).is_err());
    }

    #[test]
    fn tampered_or_malformed_tokens_are_refused() {
        let keys = TokenKeys::from_secret(&[7u8; 32]);
        let now = now_secs();
        let t = keys.sign_access(&claims(now, 300));
        let parts: Vec<&str> = t.split('.').collect();
        let mut c = claims(now, 300);
        c.access[0].actions.push("push".into());
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(
            keys.verify_access(&forged, "svc", now).unwrap_err(),
            TokenError::BadSignature
        );
        let none_alg = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        );
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            &none_alg,
            &format!("{}.{}", parts[0], parts[1]),
        ] {
            assert!(keys.verify_access(bad, "svc", now).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let k1 = TokenKeys::load_or_create(&state).unwrap();
        let path = state.join(KEY_FILE);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
        let k2 = TokenKeys::load_or_create(&state).unwrap();
        let now = now_secs();
        let t = k1.sign_access(&claims(now, 300));
        assert!(
            k2.verify_access(&t, "svc", now).is_ok(),
            "same key after reload"
        );
        assert_eq!(
            std::fs::read_dir(&state).unwrap().count(),
            1,
            "no temp files"
        );
        assert_eq!(format!("{k1:?}"), "TokenKeys(<redacted>)");

        berth_fsutil::atomic_write(&path, b"short").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = TokenKeys::load_or_create(&state).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("token key {} has 5 bytes, expected 32", path.display())
        );
    }

    #[test]
    fn a_configured_key_file_is_loaded_never_created_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.key");
        let err = TokenKeys::load(&path).unwrap_err();
        assert!(
            err.to_string().contains("does not exist") && err.to_string().contains("head -c 32"),
            "{err}"
        );
        assert!(!path.exists(), "a configured key is never created");
        berth_fsutil::atomic_write(&path, &[7u8; 32]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = TokenKeys::load(&path).unwrap_err();
        assert!(err.to_string().contains("has mode 644"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        // two replicas loading the same file sign and verify each other's tokens
        let (a, b) = (
            TokenKeys::load(&path).unwrap(),
            TokenKeys::load(&path).unwrap(),
        );
        let now = now_secs();
        assert!(
            b.verify_access(&a.sign_access(&claims(now, 300)), "svc", now)
                .is_ok()
        );
        // and a different key does not
        let other = dir.path().join("other");
        let c = TokenKeys::load_or_create(&other).unwrap();
        assert!(
            c.verify_access(&a.sign_access(&claims(now, 300)), "svc", now)
                .is_err()
        );
        berth_fsutil::atomic_write(&path, &[7u8; 31]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(
            TokenKeys::load(&path)
                .unwrap_err()
                .to_string()
                .contains("31 bytes")
        );
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
