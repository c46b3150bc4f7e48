//! The explanation a user reads: `Display` for [`Decision`].

use super::eval::{Decision, Ignored, IgnoredReason, Outcome, SignerRef};
use std::fmt;

/// `sha256:0123456789ab…`
fn short(digest: &str) -> String {
    match digest.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => match hex.get(..12) {
            Some(h) => format!("{alg}:{h}…"),
            None => digest.to_string(),
        },
        _ => digest.to_string(),
    }
}

fn signer(s: &SignerRef) -> String {
    format!("{} ({})", short(&s.signature), s.subject)
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match (self.allowed, self.satisfied) {
            (true, true) => "allowed",
            (true, false) => "allowed (audit: the requirement is not met, nothing is enforced)",
            (false, _) => "denied",
        };
        let ns = match &self.namespace {
            Some(n) => format!(" in namespace {n}"),
            None => String::new(),
        };
        let Some(rule) = &self.rule else {
            return write!(
                f,
                "{verdict}: no rule of the policy applies to {}{ns}; add a rule whose registryScopes and namespaces cover it",
                self.scope
            );
        };
        let level = self.level.as_deref().unwrap_or("?");
        write!(
            f,
            "{verdict}: {}{ns}, rule {rule:?} (level {level})",
            self.scope
        )?;
        match &self.outcome {
            Outcome::NoRule => {}
            Outcome::Skipped => write!(f, "\n  nothing verified: the rule's level is skip")?,
            Outcome::Roles { all, needed, roles } => {
                if *all {
                    write!(
                        f,
                        "\n  requires a distinct signer for each of {} roles",
                        roles.len()
                    )?;
                } else {
                    write!(
                        f,
                        "\n  requires {needed} distinct signers of roles {}; {} counted",
                        roles
                            .iter()
                            .map(|r| r.role.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        self.signers_counted
                    )?;
                }
                for r in roles {
                    match (&r.satisfied_by, &r.missing) {
                        (Some(s), _) => {
                            write!(f, "\n  role {}: satisfied by {}", r.role, signer(s))?;
                        }
                        (None, why) => write!(
                            f,
                            "\n  role {}: missing — {}",
                            r.role,
                            why.as_deref().unwrap_or("no valid signature")
                        )?,
                    }
                }
            }
            Outcome::AnyTrusted { needed, signers } => {
                write!(
                    f,
                    "\n  requires {needed} distinct trusted signing keys; {} counted",
                    signers.len()
                )?;
                for s in signers {
                    write!(f, "\n  signer: {}", signer(s))?;
                }
            }
        }
        for i in &self.ignored {
            write!(f, "\n  {i}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match &self.subject {
            Some(s) => format!("{} ({s})", short(&self.signature)),
            None => short(&self.signature),
        };
        write!(f, "ignored {who}: ")?;
        match &self.reason {
            IgnoredReason::Invalid { detail } => write!(f, "invalid — {detail}"),
            IgnoredReason::WeakerLevel { verified, required } => write!(
                f,
                "verified at level {verified}, the rule requires {required}"
            ),
            IgnoredReason::Untrusted { detail } => write!(f, "untrusted — {detail}"),
            IgnoredReason::NotARoleIdentity => {
                f.write_str("signed by a trusted chain, but by no identity of the required roles")
            }
            IgnoredReason::DuplicateKey { counted } => write!(
                f,
                "duplicate key — the same signing key as {}, which already counts",
                short(counted)
            ),
            IgnoredReason::NotNeeded { roles } => write!(
                f,
                "not needed — role(s) {} already filled by other keys",
                roles.join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_never_splits_a_character() {
        assert_eq!(
            super::short("sha256:0123456789abcdef"),
            "sha256:0123456789ab…"
        );
        assert_eq!(super::short("sha256:aéééééééééé"), "sha256:aéééééééééé");
        assert_eq!(super::short("junk"), "junk");
    }
}
