//! Whether an installed version is in an `affected[]` entry: the OSV schema's "Evaluation"
//! pseudo-code (`IsVulnerable`, `IncludedInRanges`, `BeforeLimits`), over any version order.

use std::cmp::Ordering;

use crate::osv::record::{Affected, Event, EventKind, RangeType};
use crate::package::Ecosystem;

/// Which order a comparison is in: a range's type decides (`SEMVER` ranges are semantic
/// versions whatever the ecosystem; `ECOSYSTEM` ranges use the package's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Semver,
    Ecosystem(Ecosystem),
}

/// A total order on version strings, per scheme. `berth_sbom::version` provides the real
/// per-ecosystem orders; any `Fn(Scheme, &str, &str) -> Result<Ordering, E>` is one too.
pub trait VersionOrder {
    type Error: std::error::Error + Send + Sync + 'static;
    fn compare(&self, scheme: Scheme, a: &str, b: &str) -> Result<Ordering, Self::Error>;
}

impl<F, E> VersionOrder for F
where
    F: Fn(Scheme, &str, &str) -> Result<Ordering, E>,
    E: std::error::Error + Send + Sync + 'static,
{
    type Error = E;
    fn compare(&self, scheme: Scheme, a: &str, b: &str) -> Result<Ordering, E> {
        self(scheme, a, b)
    }
}

/// The outcome for one `affected[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    pub affected: bool,
    /// `fixed` events above the installed version in the ranges that contain it (sorted,
    /// lowest first, by the range's order).
    pub fixed: Vec<String>,
}

/// Evaluate `version` of a package of `ecosystem` against one `affected[]` entry (its
/// package already matched). `GIT` ranges are skipped: commits cannot be compared with an
/// installed version; the record's `versions[]` lists the tags they cover.
pub fn evaluate<O: VersionOrder>(
    affected: &Affected,
    ecosystem: Ecosystem,
    version: &str,
    order: &O,
) -> Result<Verdict, O::Error> {
    evaluate_ranges(
        affected.versions.iter().any(|v| v == version),
        affected
            .ranges
            .iter()
            .map(|r| (r.kind, r.events.as_slice())),
        ecosystem,
        version,
        order,
    )
}

/// One event of a range, however it is held: an owned [`Event`] of a [`Record`], or one
/// borrowed from the database's bytes by a scan (`osv::view`).
///
/// [`Record`]: crate::osv::Record
pub(crate) trait RangeEvent {
    fn kind(&self) -> EventKind;
    fn version(&self) -> &str;
}

impl RangeEvent for Event {
    fn kind(&self) -> EventKind {
        Event::kind(self)
    }
    fn version(&self) -> &str {
        Event::version(self)
    }
}

/// [`evaluate`] over an entry's parts: whether `versions[]` lists `version`, and each
/// range's type and events.
pub(crate) fn evaluate_ranges<'e, O, E>(
    listed: bool,
    ranges: impl Iterator<Item = (RangeType, &'e [E])>,
    ecosystem: Ecosystem,
    version: &str,
    order: &O,
) -> Result<Verdict, O::Error>
where
    O: VersionOrder,
    E: RangeEvent + 'e,
{
    let mut verdict = Verdict {
        affected: listed,
        fixed: Vec::new(),
    };
    for (kind, range_events) in ranges {
        let scheme = match kind {
            RangeType::Semver => Scheme::Semver,
            RangeType::Ecosystem => Scheme::Ecosystem(ecosystem),
            RangeType::Git => continue,
        };
        let cmp = |a: &str, b: &str| -> Result<Ordering, O::Error> {
            // `introduced: "0"` is before every version
            match (a == "0", b == "0") {
                (true, true) => Ok(Ordering::Equal),
                (true, false) => Ok(Ordering::Less),
                (false, true) => Ok(Ordering::Greater),
                (false, false) => order.compare(scheme, a, b),
            }
        };
        if !before_limits(range_events, version, &cmp)? {
            continue;
        }
        let events = sorted(range_events, &cmp)?;
        let mut vulnerable = false;
        for evt in &events {
            let v = evt.version();
            match evt.kind() {
                EventKind::Introduced if cmp(version, v)? != Ordering::Less => vulnerable = true,
                EventKind::Fixed if cmp(version, v)? != Ordering::Less => vulnerable = false,
                EventKind::LastAffected if cmp(version, v)? == Ordering::Greater => {
                    vulnerable = false
                }
                _ => {}
            }
        }
        if vulnerable {
            verdict.affected = true;
            for evt in &events {
                let f = evt.version();
                if evt.kind() == EventKind::Fixed
                    && cmp(version, f)? == Ordering::Less
                    && !verdict.fixed.iter().any(|x| x == f)
                {
                    verdict.fixed.push(f.to_owned());
                    // the first fixed above the version closes its interval
                    break;
                }
            }
        }
    }
    Ok(verdict)
}

fn before_limits<V: RangeEvent, E>(
    events: &[V],
    version: &str,
    cmp: &impl Fn(&str, &str) -> Result<Ordering, E>,
) -> Result<bool, E> {
    let mut any = false;
    for evt in events {
        if evt.kind() == EventKind::Limit {
            any = true;
            if cmp(version, evt.version())? == Ordering::Less {
                return Ok(true);
            }
        }
    }
    Ok(!any)
}

/// Events sorted by version (a stable insertion sort: the comparison can fail, and a
/// range has a handful of events).
fn sorted<'e, V: RangeEvent, E>(
    events: &'e [V],
    cmp: &impl Fn(&str, &str) -> Result<Ordering, E>,
) -> Result<Vec<&'e V>, E> {
    let mut out: Vec<&V> = Vec::with_capacity(events.len());
    for evt in events {
        let mut at = out.len();
        while at > 0 && cmp(out[at - 1].version(), evt.version())? == Ordering::Greater {
            at -= 1;
        }
        out.insert(at, evt);
    }
    Ok(out)
}
