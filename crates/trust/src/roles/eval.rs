//! Evaluating a rule's requirement over verified signatures (docs/policy.md, "How signers are
//! counted"). Pure: no I/O; cost linear in the signatures plus a bipartite matching of
//! signing keys to roles (at most 64 roles per requirement).

use super::{Policy, Requirement, Signers};
use crate::cert::{Certificate, PublicKey};
use crate::policy::Level;
use crate::verify::{Outcome as StepOutcome, Step, Verdict};

/// One signature as the verifier left it: the signature manifest's digest, the verdict of
/// [`crate::verify()`] under the selected rule's [`super::Rule::statement`], and the signing
/// leaf certificate (taken from the verdict's envelope, so the two cannot disagree).
#[derive(Debug, Clone)]
pub struct VerifiedSignature {
    digest: String,
    verdict: Verdict,
    certificate_sha256: [u8; 32],
    key_sha256: [u8; 32],
}

impl VerifiedSignature {
    /// `digest` is the signature manifest's digest (`sha256:…`), for the explanation.
    pub fn new(digest: impl Into<String>, verdict: Verdict) -> VerifiedSignature {
        let (certificate_sha256, key_sha256) = match leaf_of(&verdict) {
            Some(leaf) => (sha256(leaf.der()), key_id(leaf)),
            None => ([0; 32], [0; 32]),
        };
        VerifiedSignature {
            digest: digest.into(),
            verdict,
            certificate_sha256,
            key_sha256,
        }
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// The signing certificate, when the envelope parsed.
    pub fn leaf(&self) -> Option<&Certificate> {
        leaf_of(&self.verdict)
    }

    /// SHA-256 of the leaf certificate's DER (what `certificateSha256` pins and TOFU stores).
    pub fn certificate_sha256(&self) -> Option<[u8; 32]> {
        self.leaf().map(|_| self.certificate_sha256)
    }

    /// SHA-256 of the leaf's public key (RSAPublicKey DER, or the uncompressed EC point):
    /// the signer's identity for counting.
    pub fn key_sha256(&self) -> Option<[u8; 32]> {
        self.leaf().map(|_| self.key_sha256)
    }
}

fn leaf_of(v: &Verdict) -> Option<&Certificate> {
    v.envelope.as_ref()?.certificate_chain.first()
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn key_id(leaf: &Certificate) -> [u8; 32] {
    match &leaf.public_key {
        PublicKey::Rsa { der, .. } => sha256(der),
        PublicKey::Ec { point, .. } => sha256(point),
        // never verifies; distinct per certificate
        PublicKey::Other { .. } => sha256(leaf.der()),
    }
}

pub(crate) fn hex(d: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(d.len() * 2);
    for b in d {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A signature that counts, and its signer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignerRef {
    /// The signature manifest's digest.
    pub signature: String,
    /// The leaf certificate's subject (RFC 4514 order).
    pub subject: String,
    /// `sha256:` of the leaf certificate's DER.
    pub certificate_sha256: String,
    /// `sha256:` of the signing public key.
    pub key_sha256: String,
}

/// One role of the requirement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleOutcome {
    pub role: String,
    /// The signature that fills the role.
    pub satisfied_by: Option<SignerRef>,
    /// Why it is missing, when it is.
    pub missing: Option<String>,
}

/// What the requirement came to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Outcome {
    /// No rule applies to the image: denied.
    NoRule,
    /// The rule's level is skip: nothing verified, allowed.
    Skipped,
    /// `allOf` (`needed` = every role) or `atLeast … of` (`needed` = count).
    Roles {
        all: bool,
        needed: usize,
        roles: Vec<RoleOutcome>,
    },
    /// `atLeast … signers: any-trusted`: the distinct keys counted.
    AnyTrusted {
        needed: usize,
        signers: Vec<SignerRef>,
    },
}

/// Why a signature does not count.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "reason")]
pub enum IgnoredReason {
    /// Verification failed.
    Invalid { detail: String },
    /// Verified at a weaker level than the rule's.
    WeakerLevel { verified: String, required: String },
    /// The chain does not lead to the rule's trust stores (a logged authenticity failure).
    Untrusted { detail: String },
    /// A trusted chain, but the signer is no identity of the requirement's roles.
    NotARoleIdentity,
    /// Another signature by the same key already counts.
    DuplicateKey { counted: String },
    /// Valid, but every role it could fill is filled by another key.
    NotNeeded { roles: Vec<String> },
}

/// A signature that does not count, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ignored {
    pub signature: String,
    /// The signer's subject, when the envelope parsed.
    pub subject: Option<String>,
    #[serde(flatten)]
    pub reason: IgnoredReason,
}

/// The policy's answer for one image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Whether the image may be used.
    pub allowed: bool,
    /// Whether the requirement is met (at level audit an unmet requirement is allowed).
    pub satisfied: bool,
    /// False at levels audit and skip: the decision is reported, not enforced.
    pub enforced: bool,
    pub scope: String,
    pub namespace: Option<String>,
    /// The rule chosen (`None`: no rule applies).
    pub rule: Option<String>,
    /// The rule's level (`strict`, `permissive`, `audit`, `skip`).
    pub level: Option<String>,
    /// Distinct signing keys that count.
    pub signers_counted: usize,
    pub outcome: Outcome,
    /// The signatures that do not count, with the reason.
    pub ignored: Vec<Ignored>,
}

pub(crate) fn level_name(l: Level) -> &'static str {
    match l {
        Level::Strict => "strict",
        Level::Permissive => "permissive",
        Level::Audit => "audit",
        Level::Skip => "skip",
    }
}

fn strength(l: Level) -> u8 {
    match l {
        Level::Strict => 3,
        Level::Permissive => 2,
        Level::Audit => 1,
        Level::Skip => 0,
    }
}

/// One signing key and what it could fill.
struct Key {
    id: [u8; 32],
    /// roles of the requirement (bits) any of its valid signatures matches
    mask: u64,
    /// (signature index, its own mask), in input order
    sigs: Vec<(usize, u64)>,
}

fn signer_ref(s: &VerifiedSignature) -> SignerRef {
    SignerRef {
        signature: s.digest.clone(),
        subject: s.leaf().map(|l| l.subject.to_string()).unwrap_or_default(),
        certificate_sha256: format!("sha256:{}", hex(&s.certificate_sha256)),
        key_sha256: format!("sha256:{}", hex(&s.key_sha256)),
    }
}

/// Evaluates the policy for an image of repository `scope` (`registry/path`) used in
/// `namespace` (`None` outside Kubernetes), given every signature found on it, each verified
/// under the selected rule's statement. Invalid, untrusted and extra signatures are reported
/// in [`Decision::ignored`] and never make a sufficient set fail.
pub fn evaluate(
    policy: &Policy,
    scope: &str,
    namespace: Option<&str>,
    signatures: &[VerifiedSignature],
) -> Decision {
    evaluate_with_labels(policy, scope, namespace, None, signatures)
}

/// [`evaluate`] in a namespace whose labels are known (the rule is chosen by
/// [`Policy::select_with_labels`]).
pub fn evaluate_with_labels(
    policy: &Policy,
    scope: &str,
    namespace: Option<&str>,
    labels: Option<&std::collections::BTreeMap<String, String>>,
    signatures: &[VerifiedSignature],
) -> Decision {
    let mut d = Decision {
        allowed: false,
        satisfied: false,
        enforced: true,
        scope: scope.to_string(),
        namespace: namespace.map(str::to_string),
        rule: None,
        level: None,
        signers_counted: 0,
        outcome: Outcome::NoRule,
        ignored: Vec::new(),
    };
    let Some(rule) = policy.select_with_labels(scope, namespace, labels) else {
        return d;
    };
    let level = rule.statement.verification.level;
    d.rule = Some(rule.name.clone());
    d.level = Some(level_name(level).to_string());
    d.enforced = matches!(level, Level::Strict | Level::Permissive);
    let Some(requirement) = &rule.requirement else {
        d.outcome = Outcome::Skipped;
        d.allowed = true;
        d.satisfied = true;
        return d;
    };
    let (role_names, needed, all): (&[String], usize, bool) = match requirement {
        Requirement::AllOf(r) => (r, r.len(), true),
        Requirement::AtLeast {
            count,
            of: Signers::Roles(r),
        } => (r, *count, false),
        Requirement::AtLeast {
            count,
            of: Signers::AnyTrusted,
        } => (&[], *count, false),
    };
    let any_trusted = matches!(
        requirement,
        Requirement::AtLeast {
            of: Signers::AnyTrusted,
            ..
        }
    );
    let roles: Vec<Option<&super::Role>> = role_names.iter().map(|n| policy.role(n)).collect();

    // classify each signature; group the counting ones by key
    let mut keys: Vec<Key> = Vec::new();
    for (i, s) in signatures.iter().enumerate() {
        let subject = s.leaf().map(|l| l.subject.to_string());
        let ignore = |reason| Ignored {
            signature: s.digest.clone(),
            subject: subject.clone(),
            reason,
        };
        let v = &s.verdict;
        if !v.passed {
            d.ignored.push(ignore(IgnoredReason::Invalid {
                detail: v
                    .failure()
                    .unwrap_or_else(|| "verification did not pass".to_string()),
            }));
            continue;
        }
        if strength(v.level) < strength(level) {
            d.ignored.push(ignore(IgnoredReason::WeakerLevel {
                verified: level_name(v.level).to_string(),
                required: level_name(level).to_string(),
            }));
            continue;
        }
        let Some(leaf) = s.leaf() else {
            d.ignored.push(ignore(IgnoredReason::Invalid {
                detail: "no signing certificate".to_string(),
            }));
            continue;
        };
        match v.steps.iter().find(|st| st.step == Step::Authenticity) {
            Some(st) if st.outcome == StepOutcome::Passed => {}
            Some(st) => {
                let detail = match &st.outcome {
                    StepOutcome::Failed(r) => r.clone(),
                    _ => "authenticity was not checked".to_string(),
                };
                d.ignored.push(ignore(IgnoredReason::Untrusted { detail }));
                continue;
            }
            None => {
                d.ignored.push(ignore(IgnoredReason::Untrusted {
                    detail: "authenticity was not checked".to_string(),
                }));
                continue;
            }
        }
        let mask = if any_trusted {
            1
        } else {
            let mut m = 0u64;
            for (bit, role) in roles.iter().enumerate().take(64) {
                if role.is_some_and(|r| {
                    r.identities
                        .iter()
                        .any(|id| id.matches(leaf, &s.certificate_sha256))
                }) {
                    m |= 1 << bit;
                }
            }
            m
        };
        if mask == 0 {
            d.ignored.push(ignore(IgnoredReason::NotARoleIdentity));
            continue;
        }
        match keys.iter_mut().find(|k| k.id == s.key_sha256) {
            Some(k) => {
                k.mask |= mask;
                k.sigs.push((i, mask));
            }
            None => keys.push(Key {
                id: s.key_sha256,
                mask,
                sigs: vec![(i, mask)],
            }),
        }
    }

    if any_trusted {
        let mut signers = Vec::new();
        for k in &keys {
            let (first, _) = k.sigs[0];
            signers.push(signer_ref(&signatures[first]));
            for &(i, _) in &k.sigs[1..] {
                d.ignored.push(Ignored {
                    signature: signatures[i].digest.clone(),
                    subject: signatures[i].leaf().map(|l| l.subject.to_string()),
                    reason: IgnoredReason::DuplicateKey {
                        counted: signatures[first].digest.clone(),
                    },
                });
            }
        }
        d.signers_counted = signers.len();
        d.satisfied = d.signers_counted >= needed;
        d.outcome = Outcome::AnyTrusted { needed, signers };
        d.allowed = d.satisfied || !d.enforced;
        return d;
    }

    // one key fills at most one role: a maximum bipartite matching (Kuhn), keys in order
    let n_roles = role_names.len().min(64);
    let mut owner: Vec<Option<usize>> = vec![None; n_roles];
    for k in 0..keys.len() {
        let mut seen = vec![false; n_roles];
        augment(k, &keys, &mut owner, &mut seen);
    }
    let mut role_of_key: Vec<Option<usize>> = vec![None; keys.len()];
    for (r, o) in owner.iter().enumerate() {
        if let Some(k) = o {
            role_of_key[*k] = Some(r);
        }
    }
    let mut outcomes: Vec<RoleOutcome> = role_names
        .iter()
        .map(|n| RoleOutcome {
            role: n.clone(),
            satisfied_by: None,
            missing: None,
        })
        .collect();
    for (k, key) in keys.iter().enumerate() {
        match role_of_key[k] {
            Some(r) => {
                let counted = key
                    .sigs
                    .iter()
                    .find(|(_, m)| m & (1 << r) != 0)
                    .map(|(i, _)| *i)
                    .unwrap_or(key.sigs[0].0);
                if let Some(o) = outcomes.get_mut(r) {
                    o.satisfied_by = Some(signer_ref(&signatures[counted]));
                }
                for &(i, _) in key.sigs.iter().filter(|(i, _)| *i != counted) {
                    d.ignored.push(Ignored {
                        signature: signatures[i].digest.clone(),
                        subject: signatures[i].leaf().map(|l| l.subject.to_string()),
                        reason: IgnoredReason::DuplicateKey {
                            counted: signatures[counted].digest.clone(),
                        },
                    });
                }
            }
            None => {
                let roles = bits(key.mask)
                    .filter_map(|b| role_names.get(b).cloned())
                    .collect::<Vec<_>>();
                for &(i, _) in &key.sigs {
                    d.ignored.push(Ignored {
                        signature: signatures[i].digest.clone(),
                        subject: signatures[i].leaf().map(|l| l.subject.to_string()),
                        reason: IgnoredReason::NotNeeded {
                            roles: roles.clone(),
                        },
                    });
                }
            }
        }
    }
    // why each missing role is missing
    for (r, o) in outcomes.iter_mut().enumerate() {
        if o.satisfied_by.is_some() {
            continue;
        }
        let takers: Vec<String> = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| k.mask & (1 << r) != 0)
            .filter_map(|(ki, k)| {
                let other = role_names.get(role_of_key[ki]?)?;
                let subject = signatures[k.sigs[0].0]
                    .leaf()
                    .map(|l| l.subject.to_string())
                    .unwrap_or_default();
                Some(format!(
                    "key sha256:{}… ({subject}) already fills role {other}",
                    &hex(&k.id)[..12]
                ))
            })
            .collect();
        o.missing = Some(if takers.is_empty() {
            format!(
                "no valid signature by a trusted identity of {}",
                o.role.as_str()
            )
        } else {
            format!("{}; one key fills at most one role", takers.join(", "))
        });
    }
    d.signers_counted = owner.iter().filter(|o| o.is_some()).count();
    d.satisfied = d.signers_counted >= needed;
    d.outcome = Outcome::Roles {
        all,
        needed,
        roles: outcomes,
    };
    d.allowed = d.satisfied || !d.enforced;
    d
}

fn bits(mask: u64) -> impl Iterator<Item = usize> {
    (0..64).filter(move |b| mask & (1 << b) != 0)
}

/// Kuhn's augmenting path from key `k`; true when it got a role.
fn augment(k: usize, keys: &[Key], owner: &mut [Option<usize>], seen: &mut [bool]) -> bool {
    for r in bits(keys[k].mask) {
        if r >= owner.len() || seen[r] {
            continue;
        }
        seen[r] = true;
        let free = match owner[r] {
            None => true,
            Some(other) => augment(other, keys, owner, seen),
        };
        if free {
            owner[r] = Some(k);
            return true;
        }
    }
    false
}
