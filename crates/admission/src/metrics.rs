//! Prometheus metrics, rendered in the text exposition format (version 0.0.4) at `/metrics`:
//!
//! - `berth_admission_requests_total{endpoint, verdict}`: reviews answered (`validate` /
//!   `mutate`; `allowed`, `denied`, `warned` (admitted in audit), `bad_request`);
//! - `berth_admission_images_total{reason}`: image verdicts by reason ([`Reason`]);
//! - `berth_admission_cache_total{result}`: `hit` / `miss`;
//! - `berth_admission_verifications_total`: verifications run (after single-flight);
//! - `berth_admission_registry_seconds` (histogram): each registry round trip of a
//!   verification (tag resolution, listing and fetching signatures);
//! - `berth_admission_review_seconds` (histogram): whole reviews.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why an image got its verdict (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Verified now: the policy's requirement is met.
    Verified,
    /// Verified earlier (a cache hit).
    Cached,
    /// The rule's level is skip, or no rule applies and the default is allow.
    NotVerified,
    /// The namespace is excluded.
    Excluded,
    /// No rule applies and the default is deny.
    NoRule,
    /// The requirement is not met (roles missing, signatures failed).
    Policy,
    /// The signatures are fine but the required provenance is missing.
    Source,
    /// The signatures are fine but the required signed SBOM is missing.
    Sbom,
    /// The signatures are fine but the required scan report is missing, too old or has
    /// findings at or above the rule's severity.
    Scan,
    /// Validation: the image is not pinned to a digest.
    NotPinned,
    /// The image reference does not parse.
    InvalidReference,
    /// The registry could not be asked (unreachable, refused, not found).
    Registry,
    /// The review's deadline passed.
    Deadline,
}

impl Reason {
    pub const ALL: [Reason; 13] = [
        Reason::Verified,
        Reason::Cached,
        Reason::NotVerified,
        Reason::Excluded,
        Reason::NoRule,
        Reason::Policy,
        Reason::Source,
        Reason::Sbom,
        Reason::Scan,
        Reason::NotPinned,
        Reason::InvalidReference,
        Reason::Registry,
        Reason::Deadline,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reason::Verified => "verified",
            Reason::Cached => "cached",
            Reason::NotVerified => "not_verified",
            Reason::Excluded => "excluded",
            Reason::NoRule => "no_rule",
            Reason::Policy => "policy",
            Reason::Source => "source",
            Reason::Sbom => "sbom",
            Reason::Scan => "scan",
            Reason::NotPinned => "not_pinned",
            Reason::InvalidReference => "invalid_reference",
            Reason::Registry => "registry",
            Reason::Deadline => "deadline",
        }
    }
}

/// The endpoint label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Validate,
    Mutate,
}

impl Endpoint {
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}

/// A review's verdict label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
    Warned,
    BadRequest,
}

impl Verdict {
    const ALL: [Verdict; 4] = [
        Verdict::Allowed,
        Verdict::Denied,
        Verdict::Warned,
        Verdict::BadRequest,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
            Verdict::Warned => "warned",
            Verdict::BadRequest => "bad_request",
        }
    }
}

/// Bucket bounds in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
struct Histogram {
    inner: Mutex<(Vec<u64>, u64, f64)>,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.0.is_empty() {
            g.0 = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                g.0[i] += 1;
            }
        }
        g.1 += 1;
        g.2 += s;
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let n = g.0.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", g.1);
        let _ = writeln!(out, "{name}_sum {}", g.2);
        let _ = writeln!(out, "{name}_count {}", g.1);
    }
}

/// The webhook's counters (one per server, shared by every request).
#[derive(Debug, Default)]
pub struct Metrics {
    /// [validate, mutate] × Verdict::ALL
    requests: [[AtomicU64; 4]; 2],
    images: [AtomicU64; Reason::ALL.len()],
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    verifications: AtomicU64,
    registry: Histogram,
    review: Histogram,
}

impl Metrics {
    pub fn request(&self, endpoint: Endpoint, verdict: Verdict) {
        let e = endpoint as usize;
        let v = Verdict::ALL.iter().position(|x| *x == verdict).unwrap_or(0);
        self.requests[e][v].fetch_add(1, Ordering::Relaxed);
    }

    pub fn image(&self, reason: Reason) {
        let i = Reason::ALL.iter().position(|x| *x == reason).unwrap_or(0);
        self.images[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn cache(&self, hit: bool) {
        if hit {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.cache_misses.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn verification(&self) {
        self.verifications.fetch_add(1, Ordering::Relaxed);
    }

    pub fn registry_latency(&self, d: Duration) {
        self.registry.observe(d);
    }

    pub fn review_latency(&self, d: Duration) {
        self.review.observe(d);
    }

    /// Verifications run so far.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Cache hits so far.
    pub fn cache_hits(&self) -> u64 {
        self.cache_hits.load(Ordering::Relaxed)
    }

    /// Images given a verdict for this reason so far.
    pub fn images(&self, reason: Reason) -> u64 {
        let i = Reason::ALL.iter().position(|x| *x == reason).unwrap_or(0);
        self.images[i].load(Ordering::Relaxed)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP berth_admission_requests_total AdmissionReviews answered.\n# TYPE berth_admission_requests_total counter\n");
        for (e, endpoint) in [Endpoint::Validate, Endpoint::Mutate].iter().enumerate() {
            for (v, verdict) in Verdict::ALL.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "berth_admission_requests_total{{endpoint=\"{}\",verdict=\"{}\"}} {}",
                    endpoint.label(),
                    verdict.label(),
                    self.requests[e][v].load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP berth_admission_images_total Image verdicts by reason.\n# TYPE berth_admission_images_total counter\n");
        for (i, r) in Reason::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "berth_admission_images_total{{reason=\"{}\"}} {}",
                r.label(),
                self.images[i].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP berth_admission_cache_total Verdict cache lookups.\n# TYPE berth_admission_cache_total counter\nberth_admission_cache_total{{result=\"hit\"}} {}\nberth_admission_cache_total{{result=\"miss\"}} {}",
            self.cache_hits.load(Ordering::Relaxed),
            self.cache_misses.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP berth_admission_verifications_total Image verifications run.\n# TYPE berth_admission_verifications_total counter\nberth_admission_verifications_total {}",
            self.verifications.load(Ordering::Relaxed)
        );
        self.registry.render(
            "berth_admission_registry_seconds",
            "Registry round trips of verifications.",
            &mut out,
        );
        self.review.render(
            "berth_admission_review_seconds",
            "Time to answer a review.",
            &mut out,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series() {
        let m = Metrics::default();
        m.request(Endpoint::Mutate, Verdict::Denied);
        m.image(Reason::Deadline);
        m.cache(true);
        m.verification();
        m.registry_latency(Duration::from_millis(3));
        let text = m.render();
        assert!(
            text.contains(
                "berth_admission_requests_total{endpoint=\"mutate\",verdict=\"denied\"} 1"
            )
        );
        assert!(text.contains(
            "berth_admission_requests_total{endpoint=\"validate\",verdict=\"allowed\"} 0"
        ));
        assert!(text.contains("berth_admission_images_total{reason=\"deadline\"} 1"));
        assert!(text.contains("berth_admission_cache_total{result=\"hit\"} 1"));
        assert!(text.contains("berth_admission_verifications_total 1"));
        assert!(text.contains("berth_admission_registry_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("berth_admission_registry_seconds_bucket{le=\"0.001\"} 0"));
        assert!(text.contains("berth_admission_registry_seconds_count 1"));
        assert!(text.contains("berth_admission_review_seconds_count 0"));
    }
}
