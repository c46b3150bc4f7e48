//! What a rule can require of an image beside its signatures (issue 21 §3, docs/policy.md):
//! an **SBOM** and a recent **scan report**, each attached to the image as a referrer
//! (`berth sbom --attach`, `berth scan --attach`) and signed by a role of the policy.
//!
//! Checking walks image → its referrers of the artifact types wanted (newest first, by the
//! `org.opencontainers.image.created` annotation the referrers API lists, at most
//! [`MAX_REFERRERS`]) → each referrer's Notary signatures, verified under the rule's statement
//! ([`verify_image`]), one of which must pass **and** be an identity of the required role →
//! its content. Anyone with push rights can attach an unsigned report that says "no
//! findings", so only a role's signature makes one count.
//!
//! - An SBOM counts when it is an SPDX or CycloneDX JSON document of the type its
//!   `artifactType` declares.
//! - Among the scan reports signed by the role, the **newest** (by the `created` time inside
//!   the signed report) decides: it must be at most `maxAgeDays` old and hold no finding at or
//!   above `failOn`. An older clean report does not hide a newer one that found something.
//!
//! This crate reads only what the decision needs of a `berth.scan/v1` report (`schema`,
//! `created`, each finding's `id`, `package`, `installed_version` and `severity`): the report
//! itself is written by `berth-sbom`, beside this crate in the layers.

use std::fmt;

use berth_distribution::{Client, Repository};
use berth_oci::Digest;

use crate::attestation::{SourceCheckError, SourceVerification, fetch_referrer, verify_source};
use crate::envelope::TargetArtifact;
use crate::image_policy::ImageDecision;
use crate::policy::TrustPolicy;
use crate::repository::{RegistrySignatures, RepositoryError, VerifyImageOptions, verify_image};
use crate::roles::Role;
use crate::time::Timestamp;
use crate::truststore::TrustStore;

pub use berth_oci::media_type::{BERTH_SCAN_REPORT as SCAN_REPORT, CYCLONEDX_JSON, SPDX_JSON};
/// The `schema` of a scan report this crate reads.
pub const SCAN_SCHEMA: &str = "berth.scan/v1";
/// The largest `maxAgeDays` a policy may give (ten years).
pub const MAX_SCAN_AGE_DAYS: u64 = 3650;
/// Referrers of one kind looked at, at most, per image (newest first): a bound on what
/// anyone with push rights can make a verifier fetch.
pub const MAX_REFERRERS: usize = 16;
/// The largest SBOM or report read.
const MAX_CONTENT: u64 = 64 << 20;
/// How far in the future a report's `created` may be (clocks differ).
const FUTURE_SKEW_SECS: i64 = 300;
const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// A finding's severity, in `berth scan`'s order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScanSeverity {
    Unknown,
    Negligible,
    Low,
    Medium,
    High,
    Critical,
}

impl ScanSeverity {
    /// The lowercase name (`berth.scan/v1`'s `severity` values).
    pub fn parse(s: &str) -> Option<ScanSeverity> {
        Some(match s {
            "unknown" => ScanSeverity::Unknown,
            "negligible" => ScanSeverity::Negligible,
            "low" => ScanSeverity::Low,
            "medium" => ScanSeverity::Medium,
            "high" => ScanSeverity::High,
            "critical" => ScanSeverity::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ScanSeverity::Unknown => "unknown",
            ScanSeverity::Negligible => "negligible",
            ScanSeverity::Low => "low",
            ScanSeverity::Medium => "medium",
            ScanSeverity::High => "high",
            ScanSeverity::Critical => "critical",
        }
    }
}

impl fmt::Display for ScanSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `requireSbom`: an SBOM referrer signed by `signed_by`.
#[derive(Debug, Clone)]
pub struct SbomRequirement {
    /// The role whose identity must have signed it (name checked against the policy's roles).
    pub signed_by: String,
}

impl fmt::Display for SbomRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an SBOM signed by role {:?}", self.signed_by)
    }
}

/// `requireScan`: a scan report referrer signed by `signed_by`, the newest of which is at
/// most `max_age_days` old and has no finding at or above `fail_on`.
#[derive(Debug, Clone)]
pub struct ScanRequirement {
    pub signed_by: String,
    pub max_age_days: u64,
    pub fail_on: Option<ScanSeverity>,
}

impl fmt::Display for ScanRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a scan report signed by role {:?} at most {} day(s) old",
            self.signed_by, self.max_age_days
        )?;
        if let Some(s) = self.fail_on {
            write!(f, " with no finding at or above {s}")?;
        }
        Ok(())
    }
}

/// What became of one referrer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerOutcome {
    /// The referrer's manifest digest.
    pub digest: String,
    pub artifact_type: String,
    /// The subject of the role identity whose signature passed.
    pub signer: Option<String>,
    /// The content's creation time (scan reports).
    pub created: Option<String>,
    /// Why it does not satisfy the requirement, when it does not.
    pub error: Option<String>,
}

/// The verdict on one requirement (`requireSbom` or `requireScan`).
#[derive(Debug, Clone)]
pub struct ReferrerVerification {
    /// The requirement, as a phrase ("an SBOM signed by role \"ci\"").
    pub required: String,
    /// What attaches one (`berth sbom --attach`, `berth scan --attach`) and the role, for the
    /// hint when none is attached.
    attach_hint: String,
    /// Each referrer looked at, newest first.
    pub referrers: Vec<ReferrerOutcome>,
    /// Referrers of the kind listed beyond [`MAX_REFERRERS`], not looked at.
    pub ignored: usize,
    /// The referrer that satisfies it.
    pub accepted: Option<String>,
    /// The accepted referrer's content (an SBOM: `berth run` keeps it for `berth watch`).
    pub accepted_content: Option<Vec<u8>>,
}

impl ReferrerVerification {
    pub fn passed(&self) -> bool {
        self.accepted.is_some()
    }

    /// Why it failed (one line per referrer), or which referrer satisfied it.
    pub fn explain(&self) -> String {
        if self.referrers.is_empty() {
            return format!("none is attached to the image\nhint: {}", self.attach_hint);
        }
        self.referrers
            .iter()
            .map(|r| match &r.error {
                Some(e) => format!("{} {}: {e}", r.artifact_type, r.digest),
                None => format!(
                    "{} {}: accepted, signed by {}",
                    r.artifact_type,
                    r.digest,
                    r.signer.as_deref().unwrap_or("?")
                ),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Everything a rule requires beside the signatures, checked.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub source: Option<SourceVerification>,
    pub sbom: Option<ReferrerVerification>,
    pub scan: Option<ReferrerVerification>,
}

impl Evidence {
    /// Whether every requirement checked is met (true when there was none).
    pub fn passed(&self) -> bool {
        self.source.as_ref().is_none_or(SourceVerification::passed)
            && self.sbom.as_ref().is_none_or(ReferrerVerification::passed)
            && self.scan.as_ref().is_none_or(ReferrerVerification::passed)
    }

    /// One entry per unmet requirement: what is required, then why each candidate did not
    /// count (lines).
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(s) = self.source.as_ref().filter(|s| !s.passed()) {
            out.push(format!(
                "requires a signed provenance attestation naming {}:\n{}",
                s.required,
                s.explain()
            ));
        }
        for v in [&self.sbom, &self.scan].into_iter().flatten() {
            if !v.passed() {
                out.push(format!("requires {}:\n{}", v.required, v.explain()));
            }
        }
        out
    }

    /// One line per met requirement, for a success message.
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(found) = self.source.as_ref().and_then(|s| s.source.as_ref()) {
            out.push(format!(
                "source: {found}, as a signed provenance attestation says"
            ));
        }
        for (what, v) in [("SBOM", &self.sbom), ("scan report", &self.scan)] {
            if let Some(v) = v
                && let Some(d) = &v.accepted
            {
                let signer = v
                    .referrers
                    .iter()
                    .find(|r| &r.digest == d)
                    .and_then(|r| r.signer.as_deref())
                    .unwrap_or("?");
                out.push(format!("{what}: {d}, signed by {signer}"));
            }
        }
        out
    }
}

/// Checks what `d`'s rule requires beside signatures — `requireSource`, `requireSbom`,
/// `requireScan` — for image `image` of repository `scope` in `repo`. Nothing is fetched for
/// a rule that requires none of them.
pub async fn check(
    client: &Client,
    repo: &Repository,
    scope: &str,
    image: &TargetArtifact,
    d: &ImageDecision,
    store: &TrustStore,
    opts: &VerifyImageOptions,
) -> Result<Evidence, SourceCheckError> {
    let mut out = Evidence::default();
    let Some(policy) = &d.rule_policy else {
        return Ok(out);
    };
    let ctx = Ctx {
        client,
        repo,
        scope,
        image,
        policy,
        store,
        opts,
    };
    if let Some(required) = &d.require_source {
        out.source =
            Some(verify_source(client, repo, scope, image, required, policy, store, opts).await?);
    }
    if let Some(req) = &d.require_sbom {
        let role = d.role(&req.signed_by);
        out.sbom = Some(verify_sbom(&ctx, req, role).await?);
    }
    if let Some(req) = &d.require_scan {
        let role = d.role(&req.signed_by);
        out.scan = Some(verify_scan(&ctx, req, role).await?);
    }
    Ok(out)
}

/// Where one image's referrers are and how their signatures are verified.
struct Ctx<'a> {
    client: &'a Client,
    repo: &'a Repository,
    scope: &'a str,
    image: &'a TargetArtifact,
    policy: &'a TrustPolicy,
    store: &'a TrustStore,
    opts: &'a VerifyImageOptions,
}

/// A referrer signed by the role, with its content.
struct Signed {
    index: usize,
    content: Vec<u8>,
}

async fn verify_sbom(
    ctx: &Ctx<'_>,
    req: &SbomRequirement,
    role: Option<&Role>,
) -> Result<ReferrerVerification, SourceCheckError> {
    let (mut v, signed) = signed_referrers(ctx, &[SPDX_JSON, CYCLONEDX_JSON], role).await?;
    v.required = req.to_string();
    v.attach_hint = format!(
        "`berth sbom --attach --key KEY IMAGE`, with a key of role {:?}",
        req.signed_by
    );
    for s in signed {
        let r = &mut v.referrers[s.index];
        match sbom_shape(&r.artifact_type, &s.content) {
            Ok(()) => {
                if v.accepted.is_none() {
                    v.accepted = Some(r.digest.clone());
                    v.accepted_content = Some(s.content);
                }
            }
            Err(e) => r.error = Some(e),
        }
    }
    Ok(v)
}

/// An SBOM's content is the document its type says: SPDX (`spdxVersion: SPDX-…`) or
/// CycloneDX (`bomFormat: CycloneDX`) JSON.
fn sbom_shape(artifact_type: &str, content: &[u8]) -> Result<(), String> {
    let v: serde_json::Value =
        serde_json::from_slice(content).map_err(|e| format!("its content is not JSON: {e}"))?;
    let ok = match artifact_type {
        SPDX_JSON => v["spdxVersion"]
            .as_str()
            .is_some_and(|s| s.starts_with("SPDX-")),
        _ => v["bomFormat"] == "CycloneDX",
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "its content is not the {artifact_type} document its type declares"
        ))
    }
}

/// The fields of a `berth.scan/v1` report the decision reads.
#[derive(serde::Deserialize)]
struct ReportView {
    schema: String,
    created: Option<String>,
    #[serde(default)]
    findings: Vec<FindingView>,
}

#[derive(serde::Deserialize)]
struct FindingView {
    id: String,
    package: String,
    #[serde(default)]
    installed_version: String,
    severity: String,
}

async fn verify_scan(
    ctx: &Ctx<'_>,
    req: &ScanRequirement,
    role: Option<&Role>,
) -> Result<ReferrerVerification, SourceCheckError> {
    let (mut v, signed) = signed_referrers(ctx, &[SCAN_REPORT], role).await?;
    v.required = req.to_string();
    v.attach_hint = format!(
        "`berth scan --attach --key KEY IMAGE`, with a key of role {:?}",
        req.signed_by
    );
    let mut reports: Vec<(std::time::SystemTime, usize, ReportView)> = Vec::new();
    for s in signed {
        let r = &mut v.referrers[s.index];
        match read_report(&s.content) {
            Ok((created, report)) => {
                r.created = report.created.clone();
                reports.push((created, s.index, report));
            }
            Err(e) => r.error = Some(e),
        }
    }
    v.accepted = decide(req, ctx.opts.now, &reports, &mut v.referrers);
    Ok(v)
}

/// The newest of the role's `reports` (made at, index in `referrers`, report) decides;
/// reports made at the same instant must all pass (fail closed). Each report's outcome goes
/// to its entry of `referrers`; returns the accepted report's digest.
fn decide(
    req: &ScanRequirement,
    now: Timestamp,
    reports: &[(std::time::SystemTime, usize, ReportView)],
    referrers: &mut [ReferrerOutcome],
) -> Option<String> {
    let newest = reports.iter().map(|(t, _, _)| *t).max()?;
    let mut accepted = None;
    let mut failed = false;
    for (t, index, report) in reports {
        let r = referrers.get_mut(*index)?;
        if *t != newest {
            r.error = Some("superseded by a newer report".to_string());
            continue;
        }
        match judge_report(req, *t, report, now) {
            Ok(()) => {
                accepted.get_or_insert_with(|| r.digest.clone());
            }
            Err(e) => {
                r.error = Some(e);
                failed = true;
            }
        }
    }
    if failed { None } else { accepted }
}

/// A report's `schema` and `created`, checked.
fn read_report(content: &[u8]) -> Result<(std::time::SystemTime, ReportView), String> {
    let report: ReportView = serde_json::from_slice(content)
        .map_err(|e| format!("its content is not a {SCAN_SCHEMA} report: {e}"))?;
    if report.schema != SCAN_SCHEMA {
        return Err(format!(
            "its content is a {:?} report, not {SCAN_SCHEMA}",
            report.schema
        ));
    }
    let created = report
        .created
        .as_deref()
        .and_then(berth_oci::timefmt::parse_rfc3339)
        .ok_or_else(|| {
            "the report has no valid \"created\" time (written by berth scan since December 2026): scan again and attach".to_string()
        })?;
    Ok((created, report))
}

/// The newest report, against the requirement's age and severity.
fn judge_report(
    req: &ScanRequirement,
    created: std::time::SystemTime,
    report: &ReportView,
    now: Timestamp,
) -> Result<(), String> {
    let when = report.created.as_deref().unwrap_or("?");
    let created = Timestamp(
        created
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
    );
    if created.0 > now.0.saturating_add(FUTURE_SKEW_SECS) {
        return Err(format!(
            "the report says it was made at {when}, in the future (this machine's time is {now})"
        ));
    }
    let max_age = i64::try_from(req.max_age_days.saturating_mul(86_400)).unwrap_or(i64::MAX);
    let age = now.0.saturating_sub(created.0);
    if age > max_age {
        return Err(format!(
            "the newest report was made at {when}, {} day(s) ago, more than {}\nhint: `berth scan --attach IMAGE` with a fresh database",
            age / 86_400,
            req.max_age_days
        ));
    }
    let Some(threshold) = req.fail_on else {
        return Ok(());
    };
    let mut at_or_above = Vec::new();
    for f in &report.findings {
        // a severity this version does not know counts as the highest: fail closed
        let sev = ScanSeverity::parse(&f.severity).unwrap_or(ScanSeverity::Critical);
        if sev >= threshold {
            at_or_above.push(f);
        }
    }
    if at_or_above.is_empty() {
        return Ok(());
    }
    let examples: Vec<String> = at_or_above
        .iter()
        .take(3)
        .map(|f| {
            format!(
                "{} in {} {} ({})",
                f.id, f.package, f.installed_version, f.severity
            )
        })
        .collect();
    Err(format!(
        "the newest report ({when}) has {} finding(s) at or above {threshold}: {}{}",
        at_or_above.len(),
        examples.join(", "),
        if at_or_above.len() > 3 { ", …" } else { "" }
    ))
}

/// The referrers of `ctx.image` of one of `types`, newest first (at most [`MAX_REFERRERS`]),
/// each judged on its signatures: the ones a passing signature of `role` signs are returned
/// with their content; every other one carries its error.
async fn signed_referrers(
    ctx: &Ctx<'_>,
    types: &[&str],
    role: Option<&Role>,
) -> Result<(ReferrerVerification, Vec<Signed>), SourceCheckError> {
    let list_error = |source: RepositoryError| SourceCheckError::List {
        scope: ctx.scope.to_string(),
        digest: ctx.image.digest.clone(),
        source,
    };
    let image_digest = Digest::parse(&ctx.image.digest).map_err(|e| {
        list_error(RepositoryError::UnsupportedTarget {
            reference: ctx.image.digest.clone(),
            reason: e.to_string(),
        })
    })?;
    let filter = match types {
        [one] => Some(*one),
        _ => None,
    };
    let listed = ctx
        .client
        .referrers(ctx.repo, &image_digest, filter)
        .await
        .map_err(|e| list_error(e.into()))?;
    let mut candidates: Vec<(String, String, &berth_oci::oci_spec::image::Descriptor)> = listed
        .iter()
        .filter_map(|d| {
            let t = d.artifact_type().as_ref()?.to_string();
            types.contains(&t.as_str()).then(|| {
                let created = d
                    .annotations()
                    .as_ref()
                    .and_then(|a| a.get(CREATED_ANNOTATION).cloned())
                    .unwrap_or_default();
                (created, t, d)
            })
        })
        .collect();
    // newest first; RFC 3339 UTC times order as strings, and a referrer without the
    // annotation goes last; ties in digest order, so that every reader lists them alike
    candidates.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.2.digest().to_string().cmp(&b.2.digest().to_string()))
    });
    let mut v = ReferrerVerification {
        required: String::new(),
        attach_hint: String::new(),
        referrers: Vec::new(),
        ignored: candidates.len().saturating_sub(MAX_REFERRERS),
        accepted: None,
        accepted_content: None,
    };
    let mut signed = Vec::new();
    let sigs = RegistrySignatures::new(ctx.client, ctx.repo.clone());
    for (_, artifact_type, desc) in candidates.into_iter().take(MAX_REFERRERS) {
        let Ok(digest) = berth_oci::descriptor_digest(desc) else {
            continue;
        };
        let mut outcome = ReferrerOutcome {
            digest: digest.to_string(),
            artifact_type: artifact_type.clone(),
            signer: None,
            created: None,
            error: None,
        };
        let fetched = fetch_referrer(
            ctx.client,
            ctx.repo,
            &digest,
            desc.size(),
            &image_digest,
            &artifact_type,
            MAX_CONTENT,
        )
        .await;
        match fetched {
            Err(e) => outcome.error = Some(e),
            Ok((target, content)) => {
                let found =
                    verify_image(&sigs, ctx.scope, &target, ctx.policy, ctx.store, ctx.opts)
                        .await?;
                match role_signer(&found, role) {
                    Ok(signer) => {
                        outcome.signer = Some(signer);
                        signed.push(Signed {
                            index: v.referrers.len(),
                            content,
                        });
                    }
                    Err(e) => outcome.error = Some(e),
                }
            }
        }
        v.referrers.push(outcome);
    }
    Ok((v, signed))
}

/// The subject of the first passing signature made by an identity of `role`, or why there
/// is none.
fn role_signer(
    found: &crate::repository::ImageVerification,
    role: Option<&Role>,
) -> Result<String, String> {
    let Some(role) = role else {
        return Err("the policy's rule names a role it does not define".to_string());
    };
    let mut others = Vec::new();
    for s in found.signatures.iter().filter(|s| s.passed()) {
        let Some(leaf) = s
            .verdict
            .as_ref()
            .and_then(|v| v.envelope.as_ref())
            .and_then(|e| e.certificate_chain.first())
        else {
            continue;
        };
        let pin = crate::roles::certificate_sha256(leaf);
        if role.identities.iter().any(|id| id.matches(leaf, &pin)) {
            return Ok(leaf.subject.to_string());
        }
        others.push(leaf.subject.to_string());
    }
    if !others.is_empty() {
        return Err(format!(
            "signed by {}, which is no identity of role {:?}",
            others.join("; "),
            role.name
        ));
    }
    Err(found.refusal())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(created: &str, severities: &[&str]) -> (std::time::SystemTime, ReportView) {
        let findings: Vec<serde_json::Value> = severities
            .iter()
            .enumerate()
            .map(|(i, s)| {
                serde_json::json!({"id": format!("CVE-2026-{i}"), "package": "zlib",
                    "installed_version": "1.2", "severity": s})
            })
            .collect();
        let bytes = serde_json::to_vec(&serde_json::json!({
            "schema": SCAN_SCHEMA, "created": created, "findings": findings,
            "subject": {"name": "x"}, "database": {}, "warnings": []
        }))
        .unwrap();
        read_report(&bytes).unwrap()
    }

    fn req(days: u64, fail_on: Option<ScanSeverity>) -> ScanRequirement {
        ScanRequirement {
            signed_by: "ci".into(),
            max_age_days: days,
            fail_on,
        }
    }

    const NOW: &str = "2026-12-05T12:00:00Z";

    fn now() -> Timestamp {
        Timestamp::parse_rfc3339(NOW).unwrap()
    }

    #[test]
    fn a_fresh_clean_report_passes_and_a_stale_one_does_not() {
        let (t, r) = report("2026-12-01T12:00:00Z", &["low", "medium"]);
        assert_eq!(
            judge_report(&req(7, Some(ScanSeverity::High)), t, &r, now()),
            Ok(())
        );
        let e = judge_report(&req(3, Some(ScanSeverity::High)), t, &r, now()).unwrap_err();
        assert!(e.contains("4 day(s) ago, more than 3"), "{e}");
    }

    #[test]
    fn a_finding_at_the_threshold_fails_and_names_it() {
        let (t, r) = report("2026-12-05T11:00:00Z", &["critical", "high", "low"]);
        let e = judge_report(&req(7, Some(ScanSeverity::High)), t, &r, now()).unwrap_err();
        assert!(e.contains("2 finding(s) at or above high"), "{e}");
        assert!(e.contains("CVE-2026-0 in zlib 1.2 (critical)"), "{e}");
        let e = judge_report(&req(7, Some(ScanSeverity::Critical)), t, &r, now()).unwrap_err();
        assert!(e.contains("1 finding(s) at or above critical"), "{e}");
        // no failOn: age only
        assert_eq!(judge_report(&req(7, None), t, &r, now()), Ok(()));
    }

    fn outcomes(n: usize) -> Vec<ReferrerOutcome> {
        (0..n)
            .map(|i| ReferrerOutcome {
                digest: format!("sha256:{i}"),
                artifact_type: SCAN_REPORT.into(),
                signer: Some("CN=ci".into()),
                created: None,
                error: None,
            })
            .collect()
    }

    #[test]
    fn the_newest_report_decides_and_ties_fail_closed() {
        let high = Some(ScanSeverity::High);
        // an older clean report does not hide a newer one with a finding
        let reports = vec![
            {
                let (t, r) = report("2026-12-01T12:00:00Z", &[]);
                (t, 0, r)
            },
            {
                let (t, r) = report("2026-12-04T12:00:00.5Z", &["critical"]);
                (t, 1, r)
            },
        ];
        let mut out = outcomes(2);
        assert_eq!(decide(&req(7, high), now(), &reports, &mut out), None);
        assert!(out[0].error.as_deref() == Some("superseded by a newer report"));
        assert!(
            out[1]
                .error
                .as_deref()
                .unwrap()
                .contains("at or above high")
        );
        // fractions of a second order reports
        let reports = vec![
            {
                let (t, r) = report("2026-12-04T12:00:00.5Z", &["critical"]);
                (t, 0, r)
            },
            {
                let (t, r) = report("2026-12-04T12:00:00.75Z", &[]);
                (t, 1, r)
            },
        ];
        let mut out = outcomes(2);
        assert_eq!(
            decide(&req(7, high), now(), &reports, &mut out),
            Some("sha256:1".to_string())
        );
        // two made at the same instant: both must pass
        let reports = vec![
            {
                let (t, r) = report("2026-12-04T12:00:00Z", &[]);
                (t, 0, r)
            },
            {
                let (t, r) = report("2026-12-04T12:00:00Z", &["high"]);
                (t, 1, r)
            },
        ];
        let mut out = outcomes(2);
        assert_eq!(decide(&req(7, high), now(), &reports, &mut out), None);
        assert_eq!(
            decide(&req(7, None), now(), &reports, &mut outcomes(2)),
            Some("sha256:0".to_string())
        );
    }

    #[test]
    fn an_unknown_severity_word_fails_closed() {
        let (t, r) = report("2026-12-05T11:00:00Z", &["catastrophic"]);
        assert!(judge_report(&req(7, Some(ScanSeverity::Critical)), t, &r, now()).is_err());
    }

    #[test]
    fn a_report_from_the_future_is_refused() {
        let (t, r) = report("2026-12-06T12:00:00Z", &[]);
        let e = judge_report(&req(7, None), t, &r, now()).unwrap_err();
        assert!(e.contains("in the future"), "{e}");
        // within the skew
        let (t, r) = report("2026-12-05T12:04:00Z", &[]);
        assert_eq!(judge_report(&req(7, None), t, &r, now()), Ok(()));
    }

    #[test]
    fn reports_without_schema_or_created_are_refused() {
        let e = read_report(br#"{"schema":"other/v1","created":"2026-12-05T11:00:00Z"}"#)
            .err()
            .unwrap();
        assert!(e.contains("not berth.scan/v1"), "{e}");
        let e = read_report(br#"{"schema":"berth.scan/v1","findings":[]}"#)
            .err()
            .unwrap();
        assert!(e.contains("no valid \"created\""), "{e}");
        assert!(read_report(b"[").is_err());
    }

    #[test]
    fn sbom_content_must_be_the_declared_document() {
        assert!(sbom_shape(SPDX_JSON, br#"{"spdxVersion":"SPDX-2.3"}"#).is_ok());
        assert!(sbom_shape(CYCLONEDX_JSON, br#"{"bomFormat":"CycloneDX"}"#).is_ok());
        assert!(sbom_shape(SPDX_JSON, br#"{"bomFormat":"CycloneDX"}"#).is_err());
        assert!(sbom_shape(CYCLONEDX_JSON, b"not json").is_err());
    }

    #[test]
    fn severities_order_as_berth_scan_does() {
        assert!(ScanSeverity::Critical > ScanSeverity::High);
        assert!(ScanSeverity::Low > ScanSeverity::Negligible);
        assert!(ScanSeverity::Negligible > ScanSeverity::Unknown);
        for s in ["unknown", "negligible", "low", "medium", "high", "critical"] {
            assert_eq!(ScanSeverity::parse(s).unwrap().as_str(), s);
        }
    }
}
