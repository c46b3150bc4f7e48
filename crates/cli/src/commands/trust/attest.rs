//! `berth attest IMAGE [--source REPO@COMMIT] [--builder-id ID] [--started T] [--finished T]`:
//! records where an image came from — an in-toto Statement v1 with a SLSA provenance v1
//! predicate naming the source repository and commit (read from the git checkout in the
//! current directory by default), the builder and the build's start and end — pushes it as
//! an OCI artifact whose `subject` is the image, and signs that artifact with a Notary
//! signature like any other. Prints the attestation manifest's digest.
//!
//! A checkout with uncommitted changes to tracked files is refused (the image may not be
//! what the commit holds) unless `--allow-dirty`.

#![expect(
    clippy::disallowed_methods,
    reason = "a binary reads its environment: CI systems name the build in theirs"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use berth_oci::Reference;
use berth_trust::provenance::{Build, Source, Statement};
use berth_trust::repository::SignatureRepository;
use berth_trust::{SignOptions, Timestamp};
use clap::Args;

use super::sign::{EnvelopeArg, SignAndPush, load_signer, wanted};
use crate::commands::image::RegistryFlags;

#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The image (`host:port/repo@sha256:…`, or a tag, which is resolved to its digest).
    #[arg(value_parser = crate::commands::image::parse_registry_reference)]
    reference: Reference,
    /// The source, as `REPO@COMMIT` with the full commit (`github.com/acme/app@0123…`);
    /// default: the git checkout at --git-dir (its `origin` remote, else its only remote,
    /// and HEAD).
    #[arg(long, value_name = "REPO@COMMIT")]
    source: Option<String>,
    /// The git checkout to read the source from.
    #[arg(long, value_name = "DIR", default_value = ".")]
    git_dir: PathBuf,
    /// Attest a checkout with uncommitted changes to tracked files.
    #[arg(long)]
    allow_dirty: bool,
    /// Who built the image (`runDetails.builder.id`); default: the CI run's URL from
    /// GitHub Actions' or GitLab CI's environment, else `berth://HOSTNAME`.
    #[arg(long, value_name = "URI")]
    builder_id: Option<String>,
    /// When the build started (RFC 3339, e.g. 2026-12-04T10:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = rfc3339)]
    started: Option<Timestamp>,
    /// When it finished (RFC 3339); default: now.
    #[arg(long, value_name = "TIME", value_parser = rfc3339)]
    finished: Option<Timestamp>,
    /// The signing key (default: the key store's default key).
    #[arg(long, short, value_name = "NAME")]
    key: Option<String>,
    /// The signature's envelope format.
    #[arg(long, value_enum, default_value = "jws")]
    envelope: EnvelopeArg,
    #[command(flatten)]
    registry: RegistryFlags,
}

fn rfc3339(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(s)
        .ok_or_else(|| format!("{s:?} is not an RFC 3339 time such as 2026-12-04T10:00:00Z"))
}

pub fn run(args: AttestArgs) -> anyhow::Result<()> {
    let reference = args.reference;
    let source = match &args.source {
        Some(s) => {
            let req = berth_trust::provenance::SourceRequirement::parse(s)
                .with_context(|| format!("invalid --source {s:?}"))?;
            let Some(commit) = req.commit else {
                bail!(
                    "--source {s:?} names no commit\nhint: give REPO@COMMIT with the full commit (`git rev-parse HEAD`)"
                );
            };
            Source {
                repository: req.repository,
                commit,
                reference: None,
            }
        }
        None => git_source(&args.git_dir, args.allow_dirty)?,
    };
    let build = Build {
        builder_id: args.builder_id.unwrap_or_else(default_builder_id),
        started: args.started,
        finished: Some(args.finished.unwrap_or_else(Timestamp::now)),
        invocation_id: ci_invocation_id(),
    };
    let signer = load_signer(args.key.as_deref())?;
    let opts = SignOptions::new(match args.envelope {
        EnvelopeArg::Jws => berth_trust::EnvelopeFormat::Jws,
        EnvelopeArg::Cose => berth_trust::EnvelopeFormat::Cose,
    });
    let client = args.registry.client()?;
    let scope = reference.name();
    let sigs = super::sign::signatures_in(&client, &reference)?;
    let (by_tag, wanted) = wanted(&reference);
    let (image, attestation) = crate::commands::image::runtime()?.block_on(async {
        let image = sigs
            .resolve(&wanted)
            .await
            .with_context(|| format!("failed to resolve {reference}"))?;
        if by_tag {
            note(&format!(
                "Warning: attesting {scope}@{}, the image the tag {wanted} names now",
                image.digest
            ));
        }
        let digest = berth_oci::Digest::parse(&image.digest)
            .with_context(|| format!("invalid digest {}", image.digest))?;
        let statement = Statement::new(&scope, &digest, &source, &build).to_json();
        let manifest = berth_trust::attestation::attestation_manifest(&image, &statement);
        let attestation = berth_trust::attestation::push_attestation(
            &client,
            sigs.repository(),
            &statement,
            &manifest,
        )
        .await
        .with_context(|| format!("failed to push the attestation of {scope}@{digest}"))?;
        signer
            .sign_and_push(&sigs, &attestation, &opts, None)
            .await?;
        anyhow::Ok((image, attestation))
    })?;
    note(&format!(
        "Attested that {scope}@{} was built from {source} by {}, signed with key {:?}",
        image.digest, build.builder_id, signer.name
    ));
    crate::commands::image::print(&attestation.digest)
}

/// The source of the git checkout at `dir`.
fn git_source(dir: &Path, allow_dirty: bool) -> anyhow::Result<Source> {
    let hint = "hint: run in a git checkout, pass --git-dir DIR, or give --source REPO@COMMIT";
    let commit = git(dir, &["rev-parse", "--verify", "HEAD^{commit}"])
        .with_context(|| format!("cannot read the commit of {}\n{hint}", dir.display()))?;
    let reference = git(dir, &["symbolic-ref", "-q", "HEAD"]).ok();
    let remotes = git(dir, &["remote"]).unwrap_or_default();
    let remotes: Vec<&str> = remotes.lines().collect();
    let remote = match remotes.as_slice() {
        [] => bail!(
            "the checkout {} has no remote, so nothing names its repository\n{hint}",
            dir.display()
        ),
        [only] => *only,
        many if many.contains(&"origin") => "origin",
        many => bail!(
            "the checkout {} has several remotes ({}) and none is `origin`\nhint: give --source REPO@COMMIT",
            dir.display(),
            many.join(", ")
        ),
    };
    let url = git(dir, &["remote", "get-url", remote])
        .with_context(|| format!("cannot read the URL of remote {remote}"))?;
    if !allow_dirty {
        let status = git(dir, &["status", "--porcelain", "--untracked-files=no"])?;
        if !status.is_empty() {
            bail!(
                "the checkout {} has uncommitted changes to tracked files, so the image may not be what commit {commit} holds\nhint: commit them, or pass --allow-dirty",
                dir.display()
            );
        }
    }
    Source::new(&url, &commit, reference)
        .with_context(|| format!("cannot name the source of {}", dir.display()))
}

/// `git -C dir ARGS`'s trimmed standard output; an error with its standard error.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .context("failed to run git\nhint: install git, or give --source REPO@COMMIT")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The CI run's URL (GitHub Actions, GitLab CI), else `berth://HOSTNAME`.
fn default_builder_id() -> String {
    if let (Some(server), Some(repo), Some(run)) = (
        env("GITHUB_SERVER_URL"),
        env("GITHUB_REPOSITORY"),
        env("GITHUB_RUN_ID"),
    ) {
        return format!("{server}/{repo}/actions/runs/{run}");
    }
    if let Some(url) = env("CI_JOB_URL") {
        return url;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    format!("berth://{host}")
}

fn ci_invocation_id() -> Option<String> {
    env("GITHUB_RUN_ID")
        .map(|id| match env("GITHUB_RUN_ATTEMPT") {
            Some(a) => format!("{id}/{a}"),
            None => id,
        })
        .or_else(|| env("CI_JOB_ID"))
}

fn note(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
