//! The report's data model: what a check is, what it saw, what it concluded. The JSON report
//! is [`Report`] serialized as it is; renderers (HTML, JUnit) read only these types, so every
//! field is public, named for what it holds, and kept stable.

use serde::{Deserialize, Serialize};

/// The distribution-spec release the checks follow.
pub const SPEC_VERSION: &str = "v1.1.1";
/// Where the spec sections are: `{SPEC_URL}#{anchor}`.
pub const SPEC_URL: &str =
    "https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md";
/// Where the `main` group's sections are: the spec on its `main` branch, past the release.
pub const MAIN_SPEC_URL: &str =
    "https://github.com/opencontainers/distribution-spec/blob/main/spec.md";
/// Version of the report format; bumped when a field changes meaning or disappears.
pub const REPORT_FORMAT: u32 = 1;

/// The spec's workflow categories, plus authentication, plus the optional `main` group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workflow {
    /// `GET /v2/`, authentication challenges and the token flow.
    Auth,
    /// Pulling manifests and blobs (every registry MUST support it).
    Pull,
    /// Pushing blobs and manifests.
    Push,
    /// Tags list and referrers.
    Discovery,
    /// Deleting tags, manifests and blobs.
    Management,
    /// What Notary Project signing needs of a registry: signatures with a `subject` in the
    /// referrers API, `artifactType` filtering, the referrers tag schema, tag moves and
    /// deleted subjects. Not in [`Workflow::ALL`]: run when asked; its failures count.
    Signatures,
    /// Optional: requirements added on the spec's `main` branch after the release the other
    /// workflows follow. Run only when asked; its failures never make a run non-conformant.
    Main,
    /// Notary Project signing: a verifier given the checker's own corpus (signatures it
    /// built at run time from its test PKI).
    Verifier,
    /// Notary Project signing: a verifier given notation's own test vectors.
    Vectors,
    /// Notary Project signing: the signatures a signer produced.
    Signer,
}

impl Workflow {
    /// Every workflow of the release ([`SPEC_VERSION`]), in the order they run: what a run
    /// checks unless told otherwise. [`Workflow::Main`] is not one of them.
    pub const ALL: [Workflow; 5] = [
        Workflow::Auth,
        Workflow::Pull,
        Workflow::Push,
        Workflow::Discovery,
        Workflow::Management,
    ];

    /// The lowercase name (`--only` values).
    pub fn as_str(self) -> &'static str {
        match self {
            Workflow::Auth => "auth",
            Workflow::Pull => "pull",
            Workflow::Push => "push",
            Workflow::Discovery => "discovery",
            Workflow::Management => "management",
            Workflow::Signatures => "signatures",
            Workflow::Main => "main",
            Workflow::Verifier => "verifier",
            Workflow::Vectors => "vectors",
            Workflow::Signer => "signer",
        }
    }

    /// Whether the workflow is optional: beyond the release, reported but never failing a
    /// run ([`Workflow::Main`]).
    pub fn is_optional(self) -> bool {
        self == Workflow::Main
    }
}

impl std::str::FromStr for Workflow {
    type Err = String;

    fn from_str(s: &str) -> Result<Workflow, String> {
        Workflow::ALL
            .into_iter()
            .chain([Workflow::Signatures, Workflow::Main])
            .find(|w| w.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown workflow {s:?} (expected auth, pull, push, discovery, management, signatures or main)"
                )
            })
    }
}

impl std::fmt::Display for Workflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 2119 requirement level of what a check verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Must,
    Should,
    May,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        })
    }
}

/// The result of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The registry does what the check verifies.
    Pass,
    /// A MUST (or a claimed MAY feature) is violated.
    Fail,
    /// A SHOULD is violated.
    Warn,
    /// Not checked: an optional feature the registry does not offer, or a prerequisite
    /// failed; the reason says which.
    Skip,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::Skip => "skip",
        })
    }
}

/// What a check function concluded, before its level is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Conforms.
    Pass,
    /// Does not conform: `reason` says what was expected and what came.
    Violation(String),
    /// The registry declines an optional feature in a way the spec allows.
    Unsupported(String),
    /// Could not be checked (a prerequisite failed, or the run's options exclude it).
    NotRun(String),
}

impl Verdict {
    /// A violation with `reason`.
    pub fn violation(reason: impl Into<String>) -> Verdict {
        Verdict::Violation(reason.into())
    }

    /// The status and reason at requirement `level`: a violated MUST fails, a violated
    /// SHOULD warns, a MAY the registry claims to support (it answered as if it did) but
    /// gets wrong fails; unsupported and not-run checks are skipped.
    pub fn outcome(self, level: Level) -> Outcome {
        match self {
            Verdict::Pass => Outcome {
                status: Status::Pass,
                reason: String::new(),
            },
            Verdict::Violation(reason) => Outcome {
                status: if level == Level::Should {
                    Status::Warn
                } else {
                    Status::Fail
                },
                reason,
            },
            Verdict::Unsupported(reason) | Verdict::NotRun(reason) => Outcome {
                status: Status::Skip,
                reason,
            },
        }
    }
}

/// A check's status and its one-line reason (empty on a pass).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub status: Status,
    pub reason: String,
}

/// A header, as sent or received (credentials redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// A request or response body as recorded: its full size, and its first bytes (text when
/// they are UTF-8, else base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyView {
    /// Size of the whole body in bytes.
    pub size: u64,
    /// Whether `content` holds only the first bytes.
    pub truncated: bool,
    /// `utf-8` or `base64`.
    pub encoding: String,
    /// The (first) bytes, credentials redacted.
    pub content: String,
}

/// One HTTP request and its response, as a check made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    pub method: String,
    /// The URL requested (secret query parameters redacted).
    pub url: String,
    pub request_headers: Vec<Header>,
    pub request_body: Option<BodyView>,
    /// `None` when no response came (the error is in `error`).
    pub status: Option<u16>,
    pub response_headers: Vec<Header>,
    pub response_body: Option<BodyView>,
    /// Transport failure, when no response came.
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// What a report judges: a registry (distribution-spec) or a signing tool (Notary Project).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    /// A registry against distribution-spec ([`SPEC_VERSION`]).
    #[default]
    Registry,
    /// A signature verifier against the Notary Project specification
    /// ([`NOTARY_SPEC_VERSION`]).
    Verifier,
    /// A signer against the Notary Project specification.
    Signer,
}

impl Subject {
    /// `registry`, `verifier` or `signer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Registry => "registry",
            Subject::Verifier => "verifier",
            Subject::Signer => "signer",
        }
    }

    /// Whether this is a registry report (the default, and the only kind before signing).
    pub fn is_registry(&self) -> bool {
        *self == Subject::Registry
    }
}

/// The Notary Project specification release the signing checks follow.
pub const NOTARY_SPEC_VERSION: &str = "v1.1.0";
/// Where its documents are: `{NOTARY_SPEC_URL}/<document>.md#{anchor}`.
pub const NOTARY_SPEC_URL: &str =
    "https://github.com/notaryproject/specifications/blob/v1.1.0/specs";

/// One labelled piece of what a check gave the implementation, readable as it is (an
/// envelope's protected headers decoded, a certificate summarised, a trust policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputItem {
    pub label: String,
    pub text: String,
}

/// What a signing check showed the implementation, what it did, and what the
/// specification requires of it (a registry check's evidence is its exchanges instead).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub input: Vec<InputItem>,
    /// What the implementation did: its verdict, exit status and the end of its output.
    pub observed: String,
    /// What the specification requires.
    pub required: String,
}

/// What a check is: its identity, the spec clause and the level of its requirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInfo {
    /// Stable identifier: `<workflow>.<name>`.
    pub id: String,
    pub title: String,
    pub workflow: Workflow,
    pub level: Level,
    /// The spec section's anchor (`pulling-manifests`).
    pub section: String,
    /// The section's URL in the spec release the checks follow (on the spec's `main` branch
    /// for an optional check).
    pub spec_url: String,
    /// Whether the check is optional (the `main` group: beyond the release; its failure does
    /// not make the run non-conformant).
    #[serde(default)]
    pub optional: bool,
}

/// A check as it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    #[serde(flatten)]
    pub info: CheckInfo,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub duration_ms: u64,
    /// Every request the check made, in order.
    pub exchanges: Vec<Exchange>,
    /// For a signing check: its input, what the implementation did and what the
    /// specification requires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

/// Counts of each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub pass: u32,
    pub fail: u32,
    pub warn: u32,
    pub skip: u32,
}

impl Counts {
    pub(crate) fn add(&mut self, status: Status) {
        match status {
            Status::Pass => self.pass += 1,
            Status::Fail => self.fail += 1,
            Status::Warn => self.warn += 1,
            Status::Skip => self.skip += 1,
        }
    }

    /// All checks counted.
    pub fn total(&self) -> u32 {
        self.pass + self.fail + self.warn + self.skip
    }
}

/// Counts for one workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowSummary {
    pub workflow: Workflow,
    /// Whether the workflow is optional ([`Workflow::is_optional`]).
    #[serde(default)]
    pub optional: bool,
    #[serde(flatten)]
    pub counts: Counts,
}

/// The totals and per-workflow counts of `results`, one summary per workflow of
/// `workflows` in that order.
pub(crate) fn summarize(
    workflows: &[Workflow],
    results: &[CheckResult],
) -> (Counts, Vec<WorkflowSummary>) {
    let mut totals = Counts::default();
    let summary = workflows
        .iter()
        .map(|w| {
            let mut counts = Counts::default();
            for r in results.iter().filter(|r| r.info.workflow == *w) {
                counts.add(r.outcome.status);
                totals.add(r.outcome.status);
            }
            WorkflowSummary {
                workflow: *w,
                optional: w.is_optional(),
                counts,
            }
        })
        .collect();
    (totals, summary)
}

/// A whole run: the JSON report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_FORMAT`].
    pub format: u32,
    /// What is judged: a registry (the default), a verifier or a signer.
    #[serde(default, skip_serializing_if = "Subject::is_registry")]
    pub subject: Subject,
    /// For a signing report: the implementation's command line as given (placeholders
    /// unexpanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implementation: Option<String>,
    /// `berth-conformance <version>`.
    pub tool: String,
    /// [`SPEC_VERSION`] ([`NOTARY_SPEC_VERSION`] for a signing report).
    pub spec_version: String,
    /// The registry host checked (`host[:port]`).
    pub registry: String,
    /// The repository the checks pushed to and pulled from.
    pub namespace: String,
    /// The existing content (tag or digest in `namespace`) checked read-only, if the run
    /// was read-only (then nothing was pushed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing: Option<String>,
    /// Start of the run, RFC 3339 UTC.
    pub started_at: String,
    pub duration_ms: u64,
    /// The workflows selected.
    pub workflows: Vec<Workflow>,
    /// Whether every MUST passed (the run's verdict: no check failed, optional ones aside).
    pub conformant: bool,
    /// Counts of every check, optional ones included ([`Report::required`] leaves them out).
    pub totals: Counts,
    pub summary: Vec<WorkflowSummary>,
    pub checks: Vec<CheckResult>,
    /// Requests that pushed the test data before the checks ran.
    pub setup: Vec<Exchange>,
    /// Requests that deleted the test data afterwards.
    pub cleanup: Vec<Exchange>,
}

impl Report {
    /// Counts of the checks that decide the verdict: every check but the optional ones.
    pub fn required(&self) -> Counts {
        let mut c = Counts::default();
        for r in self.checks.iter().filter(|r| !r.info.optional) {
            c.add(r.outcome.status);
        }
        c
    }

    /// The report's one-line verdict: `conforms`, or `does not conform: N MUST violations`
    /// (what the signing reports state; a registry report words its own).
    pub fn verdict(&self) -> String {
        let n = self.required().fail;
        if self.conformant {
            "conforms".to_owned()
        } else {
            format!(
                "does not conform: {n} MUST violation{}",
                if n == 1 { "" } else { "s" }
            )
        }
    }

    /// Counts of the optional checks (the `main` group).
    pub fn optional(&self) -> Counts {
        let mut c = Counts::default();
        for r in self.checks.iter().filter(|r| r.info.optional) {
            c.add(r.outcome.status);
        }
        c
    }

    /// The results with `status`.
    pub fn with_status(&self, status: Status) -> impl Iterator<Item = &CheckResult> {
        self.checks
            .iter()
            .filter(move |c| c.outcome.status == status)
    }
}
