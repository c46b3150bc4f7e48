//! berth's role-based signature policy (`berth.policy/v1`, docs/policy.md): what notation's
//! trust policy cannot say — a signature from **each** of several roles (developer, CI,
//! production), or **k of n distinct signing keys** — per registry scope and per Kubernetes
//! namespace pattern.
//!
//! - [`Policy::parse`] reads and checks a policy file; every problem carries its `LINE:COL`.
//! - [`Policy::select`] picks the rule for a repository and namespace (most specific wins);
//!   its [`Rule::statement`] is the notation statement each envelope is verified with
//!   ([`crate::verify()`]).
//! - [`evaluate`] turns those verdicts into a [`Decision`] with its explanation. It is pure
//!   and fast (no I/O, no allocation proportional to anything but the signatures): the
//!   admission webhook calls it on every pod.
//!
//! The counting rule to know: signers are counted by **signing key** (the SHA-256 of the leaf
//! certificate's public key), and one key fills at most one role, so one person cannot be both
//! "dev" and "ci" by signing twice or by holding two certificates for one key.

mod eval;
mod explain;
mod parse;
mod spans;

pub use eval::{
    Decision, Ignored, IgnoredReason, Outcome, RoleOutcome, SignerRef, VerifiedSignature, evaluate,
    evaluate_with_labels,
};
pub use parse::{PolicyFileError, Problem};
pub use spans::Position;

/// Lowercase hex of a digest.
pub fn hex_digest(d: &[u8]) -> String {
    eval::hex(d)
}

/// SHA-256 of a certificate's DER: what a role identity's `certificateSha256` pins.
pub fn certificate_sha256(leaf: &crate::Certificate) -> [u8; 32] {
    eval::sha256(leaf.der())
}

/// A SHA-256 in hex (64 digits, optionally after `sha256:`, colons allowed).
pub fn parse_sha256_text(s: &str) -> Option<[u8; 32]> {
    parse::parse_sha256(s)
}

use crate::policy::{PolicyStatement, TrustedIdentity};

/// The `version` this reader accepts.
pub const VERSION: &str = "berth.policy/v1";

/// A checked role policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The trust stores the policy declares (`ca:NAME`, `signingAuthority:NAME`, `tsa:NAME`).
    pub trust_stores: Vec<String>,
    /// The roles, in file order (names are unique).
    pub roles: Vec<Role>,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}

/// A role: a name for a set of trusted signing identities.
#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub identities: Vec<RoleIdentity>,
}

/// One identity of a role: a notation `x509.subject` and, optionally, the one leaf
/// certificate (SHA-256 of its DER) it must also be.
#[derive(Debug, Clone)]
pub struct RoleIdentity {
    /// As written in the file (`x509.subject: C=US, ST=WA, O=Acme, CN=ci`).
    pub text: String,
    pub subject: TrustedIdentity,
    pub certificate_sha256: Option<[u8; 32]>,
}

impl RoleIdentity {
    /// Whether a signer's leaf certificate is this identity.
    pub fn matches(&self, leaf: &crate::Certificate, certificate_sha256: &[u8; 32]) -> bool {
        self.subject.matches(&leaf.subject)
            && self
                .certificate_sha256
                .is_none_or(|pin| &pin == certificate_sha256)
    }
}

/// A registry scope pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopePattern {
    /// `*`: every repository.
    Any,
    /// `registry/team/*`: every repository under `registry/team/` (any depth). Holds the
    /// prefix with its trailing `/`.
    Prefix(String),
    /// `registry/team/app`: that repository only.
    Exact(String),
}

/// A Kubernetes namespace pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespacePattern {
    /// `*`: any namespace (but not "no namespace").
    Any,
    /// `prod-*`: names starting with `prod-`. Holds the prefix.
    Prefix(String),
    /// `payments`: that namespace.
    Exact(String),
}

/// What a rule requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// A distinct signing key for each of these roles.
    AllOf(Vec<String>),
    /// At least `count` distinct signing keys among `of`.
    AtLeast { count: usize, of: Signers },
}

/// Whom an `atLeast` requirement counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signers {
    /// Keys filling distinct roles of this list.
    Roles(Vec<String>),
    /// Any key whose certificate chains to the rule's trust stores (`"any-trusted"`).
    AnyTrusted,
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub scopes: Vec<ScopePattern>,
    /// Empty: the rule applies in every namespace and outside Kubernetes.
    pub namespaces: Vec<NamespacePattern>,
    /// `namespaceSelector.matchLabels`: the rule applies only in namespaces that carry every
    /// one of these labels (known to the caller: the admission webhook's namespace labels).
    /// Empty: no selector.
    pub namespace_selector: std::collections::BTreeMap<String, String>,
    /// The notation statement to verify each envelope with: the rule's level, overrides,
    /// `verifyTimestamp` and trust stores, and the wildcard identity (identities are matched
    /// per role by [`evaluate`], so that a signer outside the roles is reported as such).
    pub statement: PolicyStatement,
    /// `None` only at level `skip`.
    pub requirement: Option<Requirement>,
    /// A signed provenance attestation must name this source (`requireSource`).
    pub require_source: Option<crate::provenance::SourceRequirement>,
    /// An SBOM referrer signed by a role (`requireSbom`).
    pub require_sbom: Option<crate::evidence::SbomRequirement>,
    /// A recent scan report referrer signed by a role, with no finding at or above a
    /// severity (`requireScan`).
    pub require_scan: Option<crate::evidence::ScanRequirement>,
}

/// How specific a match is; larger is more specific. Namespace first (its pattern, then the
/// number of labels its selector requires), then scope.
pub(crate) type Rank = ((u8, usize, usize), (u8, usize));

impl ScopePattern {
    fn rank(&self, scope: &str) -> Option<(u8, usize)> {
        match self {
            ScopePattern::Any => Some((0, 0)),
            ScopePattern::Prefix(p) => scope
                .starts_with(p.as_str())
                .then(|| (1, p.matches('/').count())),
            ScopePattern::Exact(e) => (e == scope).then_some((2, 0)),
        }
    }
}

impl NamespacePattern {
    fn rank(&self, namespace: Option<&str>) -> Option<(u8, usize)> {
        let ns = namespace?;
        match self {
            NamespacePattern::Any => Some((1, 0)),
            NamespacePattern::Prefix(p) => ns.starts_with(p.as_str()).then_some((2, p.len())),
            NamespacePattern::Exact(e) => (e == ns).then_some((3, 0)),
        }
    }
}

impl std::fmt::Display for ScopePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScopePattern::Any => f.write_str("*"),
            ScopePattern::Prefix(p) => write!(f, "{p}*"),
            ScopePattern::Exact(e) => f.write_str(e),
        }
    }
}

impl std::fmt::Display for NamespacePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NamespacePattern::Any => f.write_str("*"),
            NamespacePattern::Prefix(p) => write!(f, "{p}*"),
            NamespacePattern::Exact(e) => f.write_str(e),
        }
    }
}

impl Rule {
    /// How specifically this rule matches, or `None` when it does not apply.
    pub(crate) fn rank(
        &self,
        scope: &str,
        namespace: Option<&str>,
        labels: Option<&std::collections::BTreeMap<String, String>>,
    ) -> Option<Rank> {
        let ns = if !self.namespaces.is_empty() {
            self.namespaces
                .iter()
                .filter_map(|p| p.rank(namespace))
                .max()?
        } else if !self.namespace_selector.is_empty() {
            // a selector alone is as "*" narrowed by labels: it needs a namespace
            NamespacePattern::Any.rank(namespace)?
        } else {
            (0, 0)
        };
        if !self.namespace_selector.is_empty() {
            let labels = labels?;
            if !self
                .namespace_selector
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
            {
                return None;
            }
        }
        let sc = self.scopes.iter().filter_map(|p| p.rank(scope)).max()?;
        Some(((ns.0, ns.1, self.namespace_selector.len()), sc))
    }
}

impl Policy {
    /// The rule for a repository (`registry/path`, no tag or digest) in a namespace (`None`
    /// outside Kubernetes): the most specific by namespace, then by scope (docs/policy.md,
    /// "Which rule applies"). `None` when no rule applies: callers deny.
    pub fn select(&self, scope: &str, namespace: Option<&str>) -> Option<&Rule> {
        self.select_with_labels(scope, namespace, None)
    }

    /// [`Policy::select`] for a namespace whose labels are known: rules with a
    /// `namespaceSelector` apply only when the labels carry all of its `matchLabels` (with
    /// `labels` `None`, never). Among rules of equal namespace pattern, the one whose selector
    /// requires more labels is the more specific (docs/policy.md, "Which rule applies").
    pub fn select_with_labels(
        &self,
        scope: &str,
        namespace: Option<&str>,
        labels: Option<&std::collections::BTreeMap<String, String>>,
    ) -> Option<&Rule> {
        let mut best: Option<(Rank, &Rule)> = None;
        for rule in &self.rules {
            if let Some(rank) = rule.rank(scope, namespace, labels)
                && best.as_ref().is_none_or(|(b, _)| rank > *b)
            {
                best = Some((rank, rule));
            }
        }
        best.map(|(_, r)| r)
    }

    /// A role by name.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// The whole check for one image, for `berth verify --policy`, `pull`/`run` and the
    /// webhook: selects the rule, verifies each fetched envelope under its statement against
    /// `store` (which reads the trust store's files: the one step that is not pure), and
    /// evaluates. With no applicable rule nothing is verified and the decision denies.
    pub fn verify_and_evaluate(
        &self,
        scope: &str,
        namespace: Option<&str>,
        artifact: &crate::TargetArtifact,
        signatures: &[FetchedSignature<'_>],
        store: &crate::TrustStore,
        now: crate::Timestamp,
    ) -> Decision {
        let Some(rule) = self.select(scope, namespace) else {
            return evaluate(self, scope, namespace, &[]);
        };
        let opts = crate::VerifyOptions {
            statement: &rule.statement,
            artifact: Some(artifact),
            now,
            revocation: &crate::revocation::HTTP,
        };
        let verified: Vec<VerifiedSignature> = signatures
            .iter()
            .map(|s| {
                VerifiedSignature::new(
                    s.digest,
                    crate::verify(s.envelope, s.media_type, store, &opts),
                )
            })
            .collect();
        evaluate(self, scope, namespace, &verified)
    }
}

/// One signature as fetched from the registry: the signature manifest's digest and its
/// envelope layer (media type and bytes).
#[derive(Debug, Clone, Copy)]
pub struct FetchedSignature<'a> {
    pub digest: &'a str,
    pub media_type: &'a str,
    pub envelope: &'a [u8],
}
