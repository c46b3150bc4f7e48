//! `berth verify IMAGE [--format text|json] [--max-signatures N]`: verifies the Notary Project
//! signatures of an image in its registry against the trust policy, printing each
//! signature, its signer, the policy statement used and every step's outcome. Exit status 1
//! when the image fails the policy.
//!
//! The trust policy and trust store are berth's (`<config>/trustpolicy.oci.json`, else
//! `<config>/trustpolicy.json`, with `<config>/truststore/`), else notation's
//! (`$XDG_CONFIG_HOME/notation`, else `~/.config/notation`) when berth has none.

#![expect(
    clippy::disallowed_methods,
    reason = "binaries read the environment: notation's configuration directory follows XDG_CONFIG_HOME and HOME"
)]

use std::path::PathBuf;

use anyhow::Context;
use berth_oci::Reference;
use berth_trust::provenance::SourceRequirement;
use berth_trust::repository::{
    DEFAULT_MAX_SIGNATURES, ImageVerification, SignatureRepository, VerifyImageOptions,
    verify_image,
};
use berth_trust::verify::Outcome;
use berth_trust::{Level, TrustPolicy, TrustStore};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use crate::commands::image::RegistryFlags;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The image (`host:port/repo:tag` or `host:port/repo@sha256:…`; a tag is resolved to
    /// its digest first).
    #[arg(value_parser = crate::commands::image::parse_registry_reference)]
    reference: Reference,
    /// Output format (`json`: one stable JSON document on stdout).
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Signatures evaluated at most; more are ignored, and said so (notation's default).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SIGNATURES, value_parser = positive)]
    max_signatures: usize,
    /// Also require a signed provenance attestation (`berth attest`) saying the image was
    /// built from this source: `REPO` or `REPO@COMMIT` (the full commit).
    #[arg(long, value_name = "REPO[@COMMIT]", value_parser = require_source, conflicts_with = "policy")]
    require_source: Option<SourceRequirement>,
    /// Evaluate this role policy (`berth.policy/v1`, docs/policy.md) instead of the trust
    /// policy: which roles are satisfied, by which signatures, which are missing.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The Kubernetes namespace the image is for (selects the role policy's rule).
    #[arg(long, value_name = "NS", requires = "policy")]
    namespace: Option<String>,
    #[command(flatten)]
    registry: RegistryFlags,
}

fn require_source(s: &str) -> Result<SourceRequirement, String> {
    SourceRequirement::parse(s).map_err(|e| e.to_string())
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

/// Where the trust policy and trust store were found.
#[derive(Debug, Clone)]
pub struct TrustConfig {
    pub policy_path: PathBuf,
    pub truststore: PathBuf,
}

/// notation's configuration directory: `$XDG_CONFIG_HOME/notation`, else
/// `~/.config/notation` (Go's `os.UserConfigDir`).
fn notation_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("notation"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".config/notation"))
}

/// The trust policy and store in `dir`, if it has a trust policy.
pub fn trust_config_in(dir: &std::path::Path) -> Option<TrustConfig> {
    ["trustpolicy.oci.json", "trustpolicy.json"]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .map(|policy_path| TrustConfig {
            policy_path,
            truststore: dir.join("truststore"),
        })
}

/// berth's trust policy and store, else notation's.
pub fn trust_config() -> anyhow::Result<TrustConfig> {
    let mut dirs = vec![crate::dirs::config_dir()?];
    dirs.extend(notation_dir());
    if let Some(found) = dirs.iter().find_map(|d| trust_config_in(d)) {
        return Ok(found);
    }
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    anyhow::bail!(
        "no trust policy: looked for trustpolicy.oci.json and trustpolicy.json in {}\nhint: write a trust policy (notation's format) to {}/trustpolicy.oci.json, with its trust store in {}/truststore/x509/…",
        looked.join(" and "),
        looked[0],
        looked[0]
    )
}

/// The trust store a role policy's `ca:NAME` references resolve in: berth's, else
/// notation's when berth has no trust configuration and notation has.
fn role_truststore() -> anyhow::Result<PathBuf> {
    let berth = crate::dirs::config_dir()?;
    if berth.join("truststore").is_dir() {
        return Ok(berth.join("truststore"));
    }
    Ok(notation_dir()
        .map(|d| d.join("truststore"))
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| berth.join("truststore")))
}

/// Reads a role policy, pointing at `berth policy check` for the details of a bad one.
pub fn load_role_policy(path: &std::path::Path) -> anyhow::Result<berth_trust::roles::Policy> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    berth_trust::roles::Policy::parse(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "invalid role policy {}: {e}\nhint: `berth policy check {}` lists every problem with its line and column",
            path.display(),
            path.display()
        )
    })
}

/// What the rule requires beside signatures (`requireSource`, `requireSbom`,
/// `requireScan`), checked when the signatures satisfied an enforced rule: `None` when there
/// is nothing to check.
pub async fn required_evidence(
    client: &berth_distribution::Client,
    sigs: &berth_trust::repository::RegistrySignatures<'_>,
    scope: &str,
    target: &berth_trust::TargetArtifact,
    d: &berth_trust::image_policy::ImageDecision,
    store: &TrustStore,
) -> anyhow::Result<Option<berth_trust::evidence::Evidence>> {
    if !(d.requires_evidence() && d.decision.allowed && d.decision.enforced) {
        return Ok(None);
    }
    let v = berth_trust::evidence::check(
        client,
        sigs.repository(),
        scope,
        target,
        d,
        store,
        &verify_image_options()?,
    )
    .await
    .with_context(|| {
        format!(
            "failed to check the attestations, SBOMs and scan reports of {scope}@{}",
            target.digest
        )
    })?;
    Ok(Some(v))
}

fn run_role_policy(args: &VerifyArgs, path: &std::path::Path) -> anyhow::Result<()> {
    let reference = &args.reference;
    let policy = load_role_policy(path)?;
    let store = TrustStore::new(role_truststore()?);
    let client = args.registry.client()?;
    let scope = reference.name();
    let sigs = super::sign::signatures_in(&client, reference)?;
    let opts = VerifyImageOptions {
        max_signatures: args.max_signatures,
        ..verify_image_options()?
    };
    let (_, wanted) = super::sign::wanted(reference);
    let result = crate::commands::image::runtime()?.block_on(async {
        let target = sigs
            .resolve(&wanted)
            .await
            .with_context(|| format!("failed to resolve {reference}"))?;
        let d = berth_trust::image_policy::evaluate_image(
            &sigs,
            &policy,
            &scope,
            args.namespace.as_deref(),
            &target,
            &store,
            &opts,
        )
        .await
        .with_context(|| format!("failed to verify {reference}"))?;
        let evidence = required_evidence(&client, &sigs, &scope, &target, &d, &store).await?;
        anyhow::Ok((d, evidence))
    })?;
    let (result, evidence) = result;
    // What is printed is the whole answer: signatures that satisfy the rule but evidence that
    // does not is a denial, in the text and in the JSON (`evidence` then says why).
    let mut decision = result.decision.clone();
    if evidence.as_ref().is_some_and(|v| !v.passed()) {
        decision.allowed = false;
    }
    match args.format {
        Format::Text => crate::commands::image::print(&decision.to_string())?,
        Format::Json => {
            let mut json = serde_json::to_value(&decision).context("failed to render JSON")?;
            if let Some(v) = &evidence {
                json["evidence"] = serde_json::json!({
                    "passed": v.passed(),
                    "failures": v.failures(),
                    "notes": v.notes(),
                });
            }
            crate::commands::image::print(
                &serde_json::to_string_pretty(&json).context("failed to render JSON")?,
            )?
        }
    }
    if result.ignored > 0 {
        eprintln_warning(&format!(
            "{} more signature(s) were not evaluated (--max-signatures {})",
            result.ignored, args.max_signatures
        ));
    }
    if let Some(v) = &evidence {
        for note in v.notes() {
            eprintln_warning(&note);
        }
        if !v.passed() {
            anyhow::bail!(
                "{scope} is signed as the role policy {} requires, but its rule {:?} also {}",
                path.display(),
                result.decision.rule.as_deref().unwrap_or("-"),
                v.failures().join("\nand ")
            );
        }
    }
    if result.decision.allowed {
        Ok(())
    } else {
        anyhow::bail!("{scope} is denied by the role policy {}", path.display())
    }
}

pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    if let Some(path) = args.policy.clone() {
        return run_role_policy(&args, &path);
    }
    let reference = args.reference;
    let config = trust_config()?;
    let policy_bytes = std::fs::read(&config.policy_path)
        .with_context(|| format!("failed to read {}", config.policy_path.display()))?;
    let policy = TrustPolicy::parse(&policy_bytes)
        .with_context(|| format!("invalid trust policy {}", config.policy_path.display()))?;
    let store = TrustStore::new(&config.truststore);
    let client = args.registry.client()?;
    let scope = reference.name();
    let sigs = super::sign::signatures_in(&client, &reference)?;
    let opts = VerifyImageOptions {
        max_signatures: args.max_signatures,
        ..verify_image_options()?
    };
    let (by_tag, wanted) = match (reference.digest(), reference.tag()) {
        (Some(d), _) => (false, d.to_string()),
        (None, t) => (true, t.unwrap_or(berth_oci::DEFAULT_TAG).to_string()),
    };
    let result = crate::commands::image::runtime()?.block_on(async {
        let target = sigs
            .resolve(&wanted)
            .await
            .with_context(|| format!("failed to resolve {reference}"))?;
        let result = verify_image(&sigs, &scope, &target, &policy, &store, &opts)
            .await
            .with_context(|| format!("failed to verify {reference}"))?;
        let source = match &args.require_source {
            Some(required) => Some(
                berth_trust::attestation::verify_source(
                    &client,
                    sigs.repository(),
                    &scope,
                    &target,
                    required,
                    &policy,
                    &store,
                    &opts,
                )
                .await
                .with_context(|| format!("failed to check the source of {reference}"))?,
            ),
            None => None,
        };
        anyhow::Ok((result, source))
    })?;
    let (result, source) = result;
    if by_tag {
        eprintln_warning(&format!(
            "Warning: always verify an image by digest ({scope}@{}) rather than by tag ({}): a tag may be moved to another image",
            result.target.digest, wanted
        ));
    }
    match args.format {
        Format::Text => crate::commands::image::print(&render_text(&reference, &config, &result))?,
        Format::Json => crate::commands::image::print(
            &serde_json::to_string_pretty(&render_json(&reference, &config, &result))
                .context("failed to render JSON")?,
        )?,
    }
    if let Some(source) = &source {
        match &source.source {
            Some(found) => eprintln_warning(&format!(
                "source: {found}, as a signed provenance attestation says (required: {})",
                source.required
            )),
            None if result.passed => anyhow::bail!(
                "{scope}@{} is signed, but no signed provenance attestation says it was built from {}:\n{}",
                result.target.digest,
                source.required,
                source.explain()
            ),
            None => {}
        }
    }
    if result.passed {
        Ok(())
    } else {
        let evaluated = result.signatures.len();
        let why = if evaluated == 0 && result.ignored == 0 {
            "no signature found".to_string()
        } else {
            format!("none of the {evaluated} signatures evaluated passed")
        };
        anyhow::bail!(
            "{scope}@{} failed signature verification: {why} (trust policy statement {:?})",
            result.target.digest,
            result.statement
        )
    }
}

fn eprintln_warning(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Strict => "strict",
        Level::Permissive => "permissive",
        Level::Audit => "audit",
        Level::Skip => "skip",
    }
}

fn step_name(s: berth_trust::Step) -> &'static str {
    use berth_trust::Step;
    match s {
        Step::Integrity => "integrity",
        Step::Authenticity => "authenticity",
        Step::Expiry => "expiry",
        Step::AuthenticTimestamp => "authenticTimestamp",
        Step::Revocation => "revocation",
    }
}

fn action_name(a: berth_trust::Action) -> &'static str {
    match a {
        berth_trust::Action::Enforce => "enforce",
        berth_trust::Action::Log => "log",
        berth_trust::Action::Skip => "skip",
    }
}

fn render_text(reference: &Reference, config: &TrustConfig, r: &ImageVerification) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "image: {}@{} ({}, {} bytes) from {reference}",
        r.scope, r.target.digest, r.target.media_type, r.target.size
    );
    let _ = writeln!(
        s,
        "trust policy: statement {:?} (level {}) of {}",
        r.statement,
        level_name(r.level),
        config.policy_path.display()
    );
    if r.level == Level::Skip {
        let _ = writeln!(
            s,
            "signature verification skipped: the trust policy's level is skip"
        );
    }
    for sig in &r.signatures {
        let _ = writeln!(
            s,
            "signature {} ({})",
            sig.digest,
            sig.envelope_media_type
                .as_deref()
                .unwrap_or("envelope not read")
        );
        if let Some(signer) = sig.signer() {
            let _ = writeln!(s, "  signer: {signer}");
        }
        if let Some(e) = &sig.error {
            let _ = writeln!(s, "  error: {e}");
        }
        if let Some(v) = &sig.verdict {
            if let Some(e) = &v.error {
                let _ = writeln!(s, "  error: {e}");
            }
            for step in &v.steps {
                let outcome = match &step.outcome {
                    Outcome::Passed => "passed".to_string(),
                    Outcome::Skipped => "skipped".to_string(),
                    Outcome::Failed(reason) => format!("failed: {reason}"),
                };
                let _ = writeln!(
                    s,
                    "  {} ({}): {outcome}",
                    step_name(step.step),
                    action_name(step.action)
                );
                if step.step == berth_trust::Step::Revocation {
                    for c in &v.revocation {
                        let _ = writeln!(s, "    {}", revocation_line(c));
                    }
                }
            }
        }
        let _ = writeln!(
            s,
            "  result: {}",
            if sig.passed() { "passed" } else { "failed" }
        );
    }
    if r.ignored > 0 {
        let _ = writeln!(
            s,
            "{} more signatures ignored: at most {} are evaluated (--max-signatures)",
            r.ignored,
            r.signatures.len()
        );
    }
    let _ = write!(
        s,
        "{}: {}@{}",
        if r.passed {
            "verified"
        } else {
            "verification failed"
        },
        r.scope,
        r.target.digest
    );
    s
}

/// The verification options berth's commands use: CRLs and OCSP over HTTP, CRLs kept in
/// `<cache dir>/crl` while they are current (as notation keeps its CRL cache).
pub(crate) fn verify_image_options() -> anyhow::Result<VerifyImageOptions> {
    static CACHE: std::sync::OnceLock<berth_trust::revocation::CrlCache<'static>> =
        std::sync::OnceLock::new();
    let dir = crate::dirs::cache_dir()?.join("crl");
    let cache = CACHE.get_or_init(|| {
        berth_trust::revocation::CrlCache::new(dir, &berth_trust::revocation::HTTP)
    });
    Ok(VerifyImageOptions {
        revocation: cache,
        ..VerifyImageOptions::default()
    })
}

/// One certificate's revocation result: `certificate "CN=…" (serial 1a): good (OCSP URL)`.
fn revocation_line(c: &berth_trust::revocation::CertResult) -> String {
    use berth_trust::revocation::{Method, Status};
    let status = match c.status {
        Status::Good => "good",
        Status::Revoked => "revoked",
        Status::Unknown => "unknown",
        Status::NonRevokable => "no OCSP or CRL to check",
    };
    let servers: Vec<String> = c
        .servers
        .iter()
        .map(|sv| {
            let m = if sv.method == Method::Ocsp {
                "OCSP"
            } else {
                "CRL"
            };
            match &sv.detail {
                Some(d) => format!("{m} {}: {d}", sv.url),
                None => format!("{m} {}", sv.url),
            }
        })
        .collect();
    let mut line = format!(
        "certificate {:?} (serial {}): {status}",
        c.subject, c.serial
    );
    if !servers.is_empty() {
        line.push_str(&format!(" ({})", servers.join("; ")));
    }
    line
}

fn render_json(reference: &Reference, config: &TrustConfig, r: &ImageVerification) -> Value {
    let signatures: Vec<Value> = r
        .signatures
        .iter()
        .map(|sig| {
            let steps: Vec<Value> = sig
                .verdict
                .iter()
                .flat_map(|v| v.steps.iter().map(move |st| (v, st)))
                .map(|(v, st)| {
                    let (result, reason) = match &st.outcome {
                        Outcome::Passed => ("passed", None),
                        Outcome::Skipped => ("skipped", None),
                        Outcome::Failed(r) => ("failed", Some(r.clone())),
                    };
                    let mut step = json!({
                        "step": step_name(st.step),
                        "action": action_name(st.action),
                        "result": result,
                        "reason": reason,
                    });
                    if st.step == berth_trust::Step::Revocation && !v.revocation.is_empty() {
                        step["certificates"] = json!(v.revocation);
                    }
                    step
                })
                .collect();
            json!({
                "digest": sig.digest.to_string(),
                "envelopeMediaType": sig.envelope_media_type,
                "signer": sig.signer(),
                "passed": sig.passed(),
                "failure": sig.failure(),
                "steps": steps,
            })
        })
        .collect();
    json!({
        "reference": reference.to_string(),
        "target": {
            "mediaType": r.target.media_type,
            "digest": r.target.digest,
            "size": r.target.size,
        },
        "scope": r.scope,
        "trustPolicy": {
            "file": config.policy_path.display().to_string(),
            "statement": r.statement,
            "level": level_name(r.level),
        },
        "passed": r.passed,
        "signatures": signatures,
        "ignored": r.ignored,
    })
}
