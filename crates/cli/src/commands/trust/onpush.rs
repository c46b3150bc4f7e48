//! Signing with no extra steps: with `sign_on_push = true` in berth.toml (`berth trust
//! init`), every `berth push` signs what it pushed. The first one makes a key and a
//! self-signed certificate when there is none (named after the user and the host, made the
//! default key, its certificate added to berth's trust store), so signing never needs a
//! separate set-up step.

#![expect(
    clippy::disallowed_methods,
    reason = "a binary reads its environment: the user's name names the first key"
)]

use anyhow::Context;
use berth_oci::Reference;
use berth_trust::SignOptions;

use super::sign::{SignAndPush, load_signer};

fn note(quiet: bool, line: &str) {
    if !quiet {
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// The name of the key made at the first signed push: `USER.HOST`, in the characters key
/// names allow.
fn first_key_name() -> String {
    let uid = rustix::process::geteuid().as_raw();
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| passwd_name(uid))
        .unwrap_or_else(|| uid.to_string());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}.{host}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The name of `uid` in `/etc/passwd` (a shell started by `su` or `sudo -s` may have no USER).
fn passwd_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

/// After `reference` was pushed (its top manifest `record`): signs it when signing on push
/// is configured.
pub fn after_push(
    client: &berth_distribution::Client,
    reference: &Reference,
    record: &berth_store::ImageRecord,
    quiet: bool,
) -> anyhow::Result<()> {
    let config = super::config::load()?;
    if !config.trust.sign_on_push {
        return Ok(());
    }
    let format = config.trust.envelope_format()?;
    let keys = super::key::key_store()?;
    let no_key = config.trust.key.is_none()
        && keys
            .default_key()
            .context("failed to read the default signing key")?
            .is_none();
    if no_key {
        let name = first_key_name();
        super::cert::generate_default_test_key(&name).with_context(|| {
            format!("signing on push is on and there is no key: failed to make key {name:?}")
        })?;
        note(
            quiet,
            &format!(
                "made signing key {name:?} and its self-signed certificate (the first signed push); verifiers trust it once they have that certificate: `berth key export {name}`"
            ),
        );
    }
    let signer = load_signer(config.trust.key.as_deref())?;
    let sigs = super::sign::signatures_in(client, reference)?;
    let target = super::sign::record_target(record);
    let opts = SignOptions::new(format);
    let stamp = config.trust.timestamper()?;
    let signature = crate::commands::image::runtime()?
        .block_on(signer.sign_and_push(&sigs, &target, &opts, stamp.as_ref()))
        .with_context(|| {
            format!(
                "pushed {reference}, but failed to sign it (sign_on_push is on)\nhint: `berth sign {}@{}` once the problem is fixed",
                reference.name(),
                record.digest
            )
        })?;
    note(
        quiet,
        &format!(
            "signed {}@{} with key {:?}: signature {}",
            reference.name(),
            record.digest,
            signer.name,
            signature.digest
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_without_user_is_named_from_passwd() {
        // uid 0 is root in every /etc/passwd; a uid nobody has gives no name
        assert_eq!(passwd_name(0).as_deref(), Some("root"));
        assert_eq!(passwd_name(4_000_000_123), None);
    }
}
