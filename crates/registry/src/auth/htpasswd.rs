//! The htpasswd user file: bcrypt only, reloaded when it changes, with a verification cache.
//!
//! Format: one `user:hash` per line, `#` comments and blank lines skipped. Only bcrypt hashes
//! (`$2y$`, `$2a$`, `$2b$`, as written by `htpasswd -B`) are accepted; MD5 (`$apr1$`), SHA-1
//! (`{SHA}`), crypt and plain-text entries are refused at load with the line number.
//!
//! bcrypt is slow by design (~50-100 ms), so successful verifications are remembered for
//! [`CACHE_TTL`] under a SHA-256 of (user, password, stored hash); the password itself is
//! never kept. Changing a user's hash invalidates its cache entries, because the hash is part
//! of the key. The file's metadata is re-checked at most once per `recheck` interval and the
//! file re-read when its mtime, size or inode changed; a file that fails to parse on reload
//! is logged and the previous users are kept.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use ring::digest;

use super::AuthError;

/// How long a successful verification is remembered.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(300);
/// Upper bound on remembered verifications.
const CACHE_MAX: usize = 1024;
/// How often the file's metadata is checked for changes.
pub(crate) const RECHECK: Duration = Duration::from_secs(1);

type Users = HashMap<String, String>;

/// A loaded htpasswd file. `Debug` shows the path and the user count, never hashes.
pub(crate) struct Htpasswd {
    path: PathBuf,
    recheck: Duration,
    state: RwLock<Loaded>,
    cache: Mutex<HashMap<[u8; 32], Instant>>,
    dummy_hash: OnceLock<Option<String>>,
}

struct Loaded {
    users: Arc<Users>,
    stamp: Stamp,
    checked: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    mtime: Option<SystemTime>,
    len: u64,
    ino: u64,
}

impl std::fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users = self.read_state().users.len();
        f.debug_struct("Htpasswd")
            .field("path", &self.path)
            .field("users", &users)
            .finish_non_exhaustive()
    }
}

impl Htpasswd {
    /// Load `path`; fails if it is missing, unreadable or malformed.
    pub(crate) fn load(path: &Path, recheck: Duration) -> Result<Htpasswd, AuthError> {
        let (users, stamp) = read_file(path)?;
        if users.is_empty() {
            tracing::warn!(path = %path.display(), "htpasswd file has no users: nobody can log in");
        }
        Ok(Htpasswd {
            path: path.to_owned(),
            recheck,
            state: RwLock::new(Loaded {
                users: Arc::new(users),
                stamp,
                checked: Instant::now(),
            }),
            cache: Mutex::new(HashMap::new()),
            dummy_hash: OnceLock::new(),
        })
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current users, re-reading the file if it changed.
    fn users(&self) -> Arc<Users> {
        {
            let s = self.read_state();
            if s.checked.elapsed() < self.recheck {
                return Arc::clone(&s.users);
            }
        }
        let mut s = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if s.checked.elapsed() < self.recheck {
            return Arc::clone(&s.users);
        }
        s.checked = Instant::now();
        match stamp_of(&self.path) {
            Ok(stamp) if stamp == s.stamp => {}
            Ok(_) => match read_file(&self.path) {
                Ok((users, stamp)) => {
                    tracing::info!(path = %self.path.display(), users = users.len(), "reloaded htpasswd file");
                    s.users = Arc::new(users);
                    s.stamp = stamp;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "htpasswd file changed but could not be loaded; keeping the previous users");
                }
            },
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot stat htpasswd file; keeping the previous users");
            }
        }
        Arc::clone(&s.users)
    }

    /// Whether `password` is `user`'s password.
    pub(crate) fn verify(&self, user: &str, password: &str) -> bool {
        let users = self.users();
        let Some(hash) = users.get(user) else {
            // Spend the same time as for a known user so user names cannot be probed.
            if let Some(dummy) = self.dummy_hash(&users) {
                let _ = blocking(|| bcrypt::verify(password, dummy));
            }
            return false;
        };
        let key = cache_key(user, password, hash);
        if self.cache_hit(&key) {
            return true;
        }
        let ok = blocking(|| bcrypt::verify(password, hash)).unwrap_or(false);
        if ok {
            self.cache_insert(key);
        }
        ok
    }

    /// A short fingerprint of `user`'s stored hash (`None` if the user no longer exists):
    /// refresh tokens carry it, so changing a password or removing a user revokes them.
    pub(crate) fn fingerprint(&self, user: &str) -> Option<String> {
        let users = self.users();
        let hash = users.get(user)?;
        let d = digest::digest(&digest::SHA256, hash.as_bytes());
        Some(
            d.as_ref()[..12]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }

    fn dummy_hash(&self, users: &Users) -> Option<&str> {
        self.dummy_hash
            .get_or_init(|| {
                let cost = users
                    .values()
                    .next()
                    .and_then(|h| h.get(4..6))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(10);
                bcrypt::hash("berth-dummy-password", cost).ok()
            })
            .as_deref()
    }

    fn cache_hit(&self, key: &[u8; 32]) -> bool {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.get(key).is_some_and(|t| t.elapsed() < CACHE_TTL)
    }

    fn cache_insert(&self, key: [u8; 32]) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, t| t.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, Instant::now());
    }

    #[cfg(test)]
    fn cache_len(&self) -> usize {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Run a CPU-heavy closure without stalling the other tasks of a multi-threaded runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn cache_key(user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [user, password, hash] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

fn stamp_of(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        mtime: m.modified().ok(),
        len: m.len(),
        ino: m.ino(),
    })
}

fn read_file(path: &Path) -> Result<(Users, Stamp), AuthError> {
    let read_err = |source| AuthError::ReadHtpasswd {
        path: path.to_owned(),
        source,
    };
    let stamp = stamp_of(path).map_err(read_err)?;
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    Ok((parse(path, &text)?, stamp))
}

/// Parse htpasswd text; `path` is only used in errors.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Users, AuthError> {
    let mut users = Users::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| AuthError::ParseHtpasswd {
            path: path.to_owned(),
            line: i + 1,
            reason,
        };
        let Some((user, hash)) = line.split_once(':') else {
            return Err(bad("expected `user:hash`".into()));
        };
        if user.is_empty() {
            return Err(bad("empty user name".into()));
        }
        check_hash(hash).map_err(|r| bad(format!("user {user:?}: {r}")))?;
        if users.insert(user.to_owned(), hash.to_owned()).is_some() {
            return Err(bad(format!("user {user:?} is listed twice")));
        }
    }
    Ok(users)
}

const BCRYPT_HINT: &str = "only bcrypt is supported (create entries with `htpasswd -B`)";

fn check_hash(hash: &str) -> Result<(), String> {
    let kind = if hash.starts_with("$apr1$") {
        Some("MD5 ($apr1$)")
    } else if hash.starts_with("{SHA}") {
        Some("SHA-1 ({SHA})")
    } else if hash.starts_with("$1$") {
        Some("MD5-crypt ($1$)")
    } else if hash.starts_with("$5$") || hash.starts_with("$6$") {
        Some("SHA-crypt ($5$/$6$)")
    } else {
        None
    };
    if let Some(kind) = kind {
        return Err(format!("{kind} hashes are not supported; {BCRYPT_HINT}"));
    }
    let Some(rest) = ["$2y$", "$2a$", "$2b$"]
        .iter()
        .find_map(|p| hash.strip_prefix(p))
    else {
        return Err(format!(
            "unrecognised password hash (plain text or crypt?); {BCRYPT_HINT}"
        ));
    };
    // `$2y$` + two-digit cost + `$` + 22 salt + 31 hash characters.
    let cost = rest.get(..2).and_then(|c| c.parse::<u32>().ok());
    let ok = hash.len() == 60
        && rest.as_bytes().get(2) == Some(&b'$')
        && matches!(cost, Some(4..=31))
        && rest[3..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
    if ok {
        Ok(())
    } else {
        Err("malformed bcrypt hash".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_htpasswd(dir: &Path, entries: &[(&str, &str)]) -> PathBuf {
        let mut text = String::from("# test users\n\n");
        for (u, p) in entries {
            text.push_str(&format!("{u}:{}\n", bcrypt::hash(p, 4).unwrap()));
        }
        let path = dir.join("htpasswd");
        berth_fsutil::atomic_write(&path, text.as_bytes()).unwrap();
        path
    }

    #[test]
    fn parses_bcrypt_lines_and_skips_comments() {
        let h = bcrypt::hash("pw", 4).unwrap();
        let y = h.replacen("$2b$", "$2y$", 1);
        let a = h.replacen("$2b$", "$2a$", 1);
        let text = format!("# c\n\n  alice:{h}  \r\nbob:{y}\ncarol:{a}\n   # indented comment\n");
        let users = parse(Path::new("/x/htpasswd"), &text).unwrap();
        assert_eq!(users.len(), 3);
        assert_eq!(users["alice"], h);
        assert_eq!(users["bob"], y);
    }

    #[test]
    fn refuses_other_formats_naming_the_line() {
        let h = bcrypt::hash("pw", 4).unwrap();
        let cases = [
            ("alice:$apr1$abc$defghijklmnopqrstuv", "MD5 ($apr1$)"),
            ("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "SHA-1"),
            ("alice:$6$salt$hash", "SHA-crypt"),
            ("alice:plaintext", "unrecognised password hash"),
            ("alice", "expected `user:hash`"),
            (":nobody", "empty user name"),
            ("alice:$2y$05$tooshort", "malformed bcrypt hash"),
            ("alice:$2y$99$", "malformed bcrypt hash"),
        ];
        for (line, want) in cases {
            let text = format!("# comment\nok:{h}\n{line}\n");
            let err = parse(Path::new("/etc/berth/htpasswd"), &text).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.starts_with("invalid htpasswd file /etc/berth/htpasswd line 3: "),
                "{msg}"
            );
            assert!(msg.contains(want), "{msg} should mention {want}");
            assert!(!msg.contains("W6ph5"), "hash leaked in {msg}");
        }
        let dup = format!("a:{h}\na:{h}\n");
        let err = parse(Path::new("f"), &dup).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn md5_apr1_refused_at_load_with_line_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        berth_fsutil::atomic_write(
            &path,
            b"\n# md5\nbob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n",
        )
        .unwrap();
        let err = Htpasswd::load(&path, RECHECK).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid htpasswd file {} line 3: user \"bob\": MD5 ($apr1$) hashes are not supported; {BCRYPT_HINT}",
                path.display()
            )
        );
    }

    #[test]
    fn missing_file_is_an_error_naming_the_path() {
        let err = Htpasswd::load(Path::new("/nonexistent/berth/htpasswd"), RECHECK).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to read htpasswd file /nonexistent/berth/htpasswd"
        );
    }

    #[test]
    fn verify_and_cache_hit() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_htpasswd(dir.path(), &[("alice", "secret"), ("bob", "hunter2")]);
        let h = Htpasswd::load(&path, RECHECK).unwrap();
        assert!(!h.verify("alice", "wrong"));
        assert_eq!(h.cache_len(), 0, "failures are not cached");
        assert!(h.verify("alice", "secret"));
        assert_eq!(h.cache_len(), 1);
        // A cache hit needs no bcrypt: it is orders of magnitude faster.
        let start = Instant::now();
        for _ in 0..1000 {
            assert!(h.verify("alice", "secret"));
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(h.cache_len(), 1);
        assert!(!h.verify("bob", "secret"));
        assert!(!h.verify("nobody", "secret"));
        assert!(h.verify("bob", "hunter2"));
        let dbg = format!("{h:?}");
        assert!(dbg.contains("users: 2") && !dbg.contains("$2"), "{dbg}");
    }

    #[test]
    fn reloads_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_htpasswd(dir.path(), &[("alice", "secret")]);
        let h = Htpasswd::load(&path, Duration::ZERO).unwrap();
        assert!(h.verify("alice", "secret"));
        assert!(!h.verify("carol", "pw"));
        write_htpasswd(dir.path(), &[("alice", "newpass"), ("carol", "pw")]);
        assert!(h.verify("carol", "pw"));
        assert!(
            !h.verify("alice", "secret"),
            "old cached password must not survive"
        );
        assert!(h.verify("alice", "newpass"));
        // A broken file keeps the previous users.
        berth_fsutil::atomic_write(&path, b"carol:$apr1$x$y\n").unwrap();
        assert!(h.verify("carol", "pw"));
    }

    #[test]
    fn fingerprint_changes_with_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_htpasswd(dir.path(), &[("alice", "a")]);
        let h = Htpasswd::load(&path, Duration::ZERO).unwrap();
        let f1 = h.fingerprint("alice").unwrap();
        assert_eq!(f1.len(), 24);
        write_htpasswd(dir.path(), &[("alice", "b")]);
        assert_ne!(h.fingerprint("alice").unwrap(), f1);
        assert_eq!(h.fingerprint("bob"), None);
    }
}
