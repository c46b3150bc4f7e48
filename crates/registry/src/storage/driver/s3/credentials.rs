//! The AWS shared credentials file (`~/.aws/credentials`), as the AWS CLI and SDKs read it:
//! INI sections named by profile, `aws_access_key_id`, `aws_secret_access_key` and
//! `aws_session_token` keys, `#` and `;` comments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The part of the process environment AWS clients read: every `AWS_*` variable and
/// `HOME`. Gathered by the binary (libraries do not read the environment).
#[derive(Clone, Default)]
pub struct AwsEnv {
    pub vars: BTreeMap<String, String>,
    pub home: Option<PathBuf>,
}

impl AwsEnv {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

impl std::fmt::Debug for AwsEnv {
    /// Names only: the values hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsEnv")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("home", &self.home)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("failed to read the AWS credentials file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the AWS credentials file {path} has no profile [{profile}] (AWS_PROFILE names it); add it or choose another profile"
    )]
    NoProfile { path: PathBuf, profile: String },
    #[error(
        "profile [{profile}] in the AWS credentials file {path} lacks {key}; add it, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    Incomplete {
        path: PathBuf,
        profile: String,
        key: &'static str,
    },
}

/// One profile's keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The credentials of profile `AWS_PROFILE` (else `default`) in
/// `AWS_SHARED_CREDENTIALS_FILE` (else `~/.aws/credentials`). `None` when the default file
/// or the default profile is simply absent; an error when what the environment names is
/// missing or a profile is incomplete.
pub fn from_shared_file(env: &AwsEnv) -> Result<Option<Credentials>, CredentialsError> {
    let named_file = env.get("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from);
    let path = match (&named_file, &env.home) {
        (Some(p), _) => p.clone(),
        (None, Some(home)) => home.join(".aws/credentials"),
        (None, None) => return Ok(None),
    };
    let named_profile = env.get("AWS_PROFILE").map(str::to_owned);
    let profile = named_profile
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && named_file.is_none() => {
            return Ok(None);
        }
        Err(source) => return Err(CredentialsError::Read { path, source }),
    };
    match parse(&text, &profile, &path)? {
        Some(c) => Ok(Some(c)),
        None if named_profile.is_some() => Err(CredentialsError::NoProfile { path, profile }),
        None => Ok(None),
    }
}

/// The credentials of `profile` in the file's `text`; `None` when there is no such section.
pub fn parse(
    text: &str,
    profile: &str,
    path: &Path,
) -> Result<Option<Credentials>, CredentialsError> {
    let mut in_profile = false;
    let mut found = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == profile;
            found |= in_profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().to_owned();
        match k.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => id = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    if !found {
        return Ok(None);
    }
    let incomplete = |key| CredentialsError::Incomplete {
        path: path.to_owned(),
        profile: profile.to_owned(),
        key,
    };
    Ok(Some(Credentials {
        access_key_id: id.ok_or_else(|| incomplete("aws_access_key_id"))?,
        secret_access_key: secret.ok_or_else(|| incomplete("aws_secret_access_key"))?,
        session_token: token,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# comment
[default]
aws_access_key_id = AKIDEFAULT
aws_secret_access_key = s3cr3t

[ci]
; another comment
AWS_ACCESS_KEY_ID=AKICI
aws_secret_access_key=ci-secret
aws_session_token = tok
[broken]
aws_access_key_id = only
";

    fn p() -> &'static Path {
        Path::new("/x/credentials")
    }

    #[test]
    fn reads_the_named_profile_only() {
        let d = parse(FILE, "default", p()).unwrap().unwrap();
        assert_eq!(d.access_key_id, "AKIDEFAULT");
        assert_eq!(d.secret_access_key, "s3cr3t");
        assert_eq!(d.session_token, None);
        let c = parse(FILE, "ci", p()).unwrap().unwrap();
        assert_eq!(c.access_key_id, "AKICI");
        assert_eq!(c.secret_access_key, "ci-secret");
        assert_eq!(c.session_token.as_deref(), Some("tok"));
    }

    #[test]
    fn missing_profile_is_none_and_incomplete_is_an_error() {
        assert!(parse(FILE, "nope", p()).unwrap().is_none());
        let e = parse(FILE, "broken", p()).unwrap_err().to_string();
        assert!(e.contains("lacks aws_secret_access_key"), "{e}");
    }

    #[test]
    fn the_environment_names_the_file_and_profile() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("creds");
        berth_fsutil::atomic_write(&file, FILE.as_bytes()).unwrap();
        let env = |vars: &[(&str, &str)], home: Option<&Path>| AwsEnv {
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            home: home.map(Path::to_owned),
        };
        let f = file.to_str().unwrap();
        let c = from_shared_file(&env(
            &[("AWS_SHARED_CREDENTIALS_FILE", f), ("AWS_PROFILE", "ci")],
            None,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(c.access_key_id, "AKICI");
        // ~/.aws/credentials missing: nothing, not an error
        assert!(
            from_shared_file(&env(&[], Some(dir.path())))
                .unwrap()
                .is_none()
        );
        // a named file or profile that is missing is an error
        let e = from_shared_file(&env(
            &[("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")],
            None,
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("/nonexistent"), "{e}");
        let e = from_shared_file(&env(
            &[("AWS_SHARED_CREDENTIALS_FILE", f), ("AWS_PROFILE", "prod")],
            None,
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("no profile [prod]"), "{e}");
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = parse(FILE, "ci", p()).unwrap().unwrap();
        let s = format!("{c:?}");
        assert!(!s.contains("ci-secret") && !s.contains("tok"), "{s}");
    }
}
