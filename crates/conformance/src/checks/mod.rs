//! The checks: one function each, tagged with its spec section and requirement level.
//!
//! A check returns `Ok(verdict)` or `Err(verdict)` (so that `?` can end it at the first
//! violation); either way the verdict is its result. Checks run in the order listed, one
//! at a time, over the shared context (the client, the repository and the test data).

mod auth;
mod discovery;
mod main_branch;
mod management;
mod pull;
mod push;
mod signatures;

use futures_util::future::LocalBoxFuture;

use crate::model::{CheckInfo, Level, MAIN_SPEC_URL, SPEC_URL, Verdict, Workflow};
use crate::session::Ctx;

pub(crate) type CheckResult = Result<Verdict, Verdict>;
type CheckFn = for<'a> fn(&'a mut Ctx) -> LocalBoxFuture<'a, CheckResult>;

/// A check: what it is and the function that runs it.
#[derive(Clone, Copy)]
pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
    pub workflow: Workflow,
    pub level: Level,
    /// Anchor of the spec section the requirement is in.
    pub section: &'static str,
    pub(crate) run: CheckFn,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Check {
    /// The check's description, as reports carry it.
    pub fn info(&self) -> CheckInfo {
        CheckInfo {
            id: self.id.to_owned(),
            title: self.title.to_owned(),
            workflow: self.workflow,
            level: self.level,
            section: self.section.to_owned(),
            spec_url: if self.workflow.is_optional() {
                format!("{MAIN_SPEC_URL}#{}", self.section)
            } else {
                format!("{SPEC_URL}#{}", self.section)
            },
            optional: self.workflow.is_optional(),
        }
    }
}

macro_rules! check {
    ($id:literal, $wf:ident, $level:ident, $section:literal, $title:literal, $f:path) => {
        Check {
            id: $id,
            title: $title,
            workflow: Workflow::$wf,
            level: Level::$level,
            section: $section,
            run: |c| Box::pin($f(c)),
        }
    };
}
pub(crate) use check;

/// Every check, in the order they run.
pub fn all() -> Vec<Check> {
    let mut v = auth::checks();
    v.extend(pull::checks());
    v.extend(push::checks());
    v.extend(discovery::checks());
    v.extend(management::checks());
    v.extend(signatures::checks());
    v.extend(main_branch::checks());
    v
}

/// Err(not run) when the shared test data could not be pushed (or, in a read-only run,
/// the content named could not be read).
pub(crate) fn need_setup(c: &Ctx) -> Result<(), Verdict> {
    match (&c.setup_error, &c.read_only) {
        (Some(e), None) => Err(Verdict::NotRun(format!(
            "the test data could not be pushed: {e}"
        ))),
        (Some(e), Some(r)) => Err(Verdict::NotRun(format!("{r} could not be read: {e}"))),
        (None, _) => Ok(()),
    }
}

/// Err(violation) unless `cond`.
pub(crate) fn ensure(cond: bool, reason: impl FnOnce() -> String) -> Result<(), Verdict> {
    if cond {
        Ok(())
    } else {
        Err(Verdict::Violation(reason()))
    }
}

/// The media type of a `Content-Type` value, parameters dropped.
pub(crate) fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// The manifest types a client accepts.
pub(crate) const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_named_for_their_workflow() {
        let all = all();
        let mut ids: Vec<&str> = all.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        for c in &all {
            assert!(c.id.starts_with(&format!("{}.", c.workflow)), "{}", c.id);
            assert!(c.info().spec_url.contains("#"), "{}", c.id);
        }
    }
}
