//! Prometheus metrics, rendered in the text exposition format at `/metrics`.
//!
//! Requests are counted by route, method and status; bytes in and out by route; upload
//! durations in a fixed-bucket histogram. Counters are plain atomics behind one small map
//! keyed by (route, method, status), so recording is a short, uncontended critical section.
//! The storage read cache's hits, misses and size are read from its own counters
//! ([`CacheStats`]) when rendering.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::storage::cache::{CacheStats, Lookup};
use crate::storage::disk_cache::DiskStats;
use crate::storage::driver::DriverMetric;

const UPLOAD_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    bytes_in: Mutex<BTreeMap<&'static str, u64>>,
    bytes_out: Mutex<BTreeMap<&'static str, u64>>,
    upload_buckets: [AtomicU64; UPLOAD_BUCKETS.len()],
    upload_count: AtomicU64,
    upload_sum_micros: AtomicU64,
    storage_cache: Option<Arc<CacheStats>>,
    disk_cache: Option<Arc<DiskStats>>,
}

fn add<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K, n: u64) {
    if let Ok(mut g) = m.lock() {
        *g.entry(k).or_insert(0) += n;
    }
}

/// Method names as static labels (no allocation per request); anything unusual is "OTHER".
fn static_method(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Metrics that also report the storage read cache behind `stats` and its disk tier's
    /// `disk`, when there is one.
    pub fn with_storage_cache(stats: Arc<CacheStats>, disk: Option<Arc<DiskStats>>) -> Metrics {
        Metrics {
            storage_cache: Some(stats),
            disk_cache: disk,
            ..Metrics::default()
        }
    }

    /// One finished request; `bytes_out` is the response body length.
    pub fn record_request(&self, route: &'static str, method: &str, status: u16, bytes_out: u64) {
        add(&self.requests, (route, static_method(method), status), 1);
        if bytes_out > 0 {
            add(&self.bytes_out, route, bytes_out);
        }
    }

    /// Request body bytes actually read (uploads may be chunked, without Content-Length).
    pub fn record_bytes_in(&self, route: &'static str, n: u64) {
        if n > 0 {
            add(&self.bytes_in, route, n);
        }
    }

    /// A completed blob upload session, from POST to the final PUT.
    pub fn record_upload(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, le) in UPLOAD_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.upload_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.upload_count.fetch_add(1, Ordering::Relaxed);
        self.upload_sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(4096);
        s.push_str(
            "# HELP berth_registry_requests_total HTTP requests by route, method and status.\n",
        );
        s.push_str("# TYPE berth_registry_requests_total counter\n");
        if let Ok(g) = self.requests.lock() {
            for ((route, method, status), n) in g.iter() {
                let _ = writeln!(
                    s,
                    "berth_registry_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
                );
            }
        }
        for (name, help, m) in [
            (
                "berth_registry_bytes_received_total",
                "Request body bytes received, by route.",
                &self.bytes_in,
            ),
            (
                "berth_registry_bytes_sent_total",
                "Response body bytes sent, by route.",
                &self.bytes_out,
            ),
        ] {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
            if let Ok(g) = m.lock() {
                for (route, n) in g.iter() {
                    let _ = writeln!(s, "{name}{{route=\"{route}\"}} {n}");
                }
            }
        }
        s.push_str("# HELP berth_registry_upload_duration_seconds Blob upload sessions, first request to commit.\n");
        s.push_str("# TYPE berth_registry_upload_duration_seconds histogram\n");
        for (i, le) in UPLOAD_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "berth_registry_upload_duration_seconds_bucket{{le=\"{le}\"}} {}",
                self.upload_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.upload_count.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "berth_registry_upload_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            s,
            "berth_registry_upload_duration_seconds_sum {}",
            self.upload_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "berth_registry_upload_duration_seconds_count {count}");
        if let Some(c) = &self.storage_cache {
            render_cache(&mut s, c);
        }
        if let Some(d) = &self.disk_cache {
            render_disk_cache(&mut s, d);
        }
        s
    }

    /// [`Metrics::render`] with the storage driver's own metrics after it.
    pub fn render_with(&self, driver: &[DriverMetric]) -> String {
        let mut s = self.render();
        for m in driver {
            let _ = writeln!(
                s,
                "# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}",
                m.name,
                m.help,
                m.kind.as_str(),
                m.value
            );
        }
        s
    }
}

fn render_cache(s: &mut String, c: &CacheStats) {
    for (name, help, get) in [
        (
            "berth_registry_storage_cache_hits_total",
            "Reads of blob data answered by the storage read cache, by kind.",
            CacheStats::hits as fn(&CacheStats, Lookup) -> u64,
        ),
        (
            "berth_registry_storage_cache_misses_total",
            "Reads of blob data the storage read cache sent to storage, by kind.",
            CacheStats::misses,
        ),
    ] {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
        for (kind, k) in [("size", Lookup::Size), ("content", Lookup::Content)] {
            let _ = writeln!(s, "{name}{{kind=\"{kind}\"}} {}", get(c, k));
        }
    }
    for (name, help, v) in [
        (
            "berth_registry_storage_cache_bytes",
            "Bytes the storage read cache holds (content plus a fixed charge per entry).",
            c.bytes(),
        ),
        (
            "berth_registry_storage_cache_entries",
            "Entries in the storage read cache.",
            c.entries(),
        ),
    ] {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
}

fn render_disk_cache(s: &mut String, d: &DiskStats) {
    for (name, kind, help, v) in [
        (
            "berth_registry_disk_cache_hits_total",
            "counter",
            "Blob GETs served from the disk tier's files.",
            d.hits(),
        ),
        (
            "berth_registry_disk_cache_misses_total",
            "counter",
            "Blob GETs the disk tier could have served that went to storage.",
            d.misses(),
        ),
        (
            "berth_registry_disk_cache_fills_total",
            "counter",
            "Blobs copied whole to the disk tier as they streamed to a client.",
            d.fills(),
        ),
        (
            "berth_registry_disk_cache_abandoned_total",
            "counter",
            "Copies to the disk tier given up (client gone, writer behind, write failed, collection).",
            d.abandoned(),
        ),
        (
            "berth_registry_disk_cache_bytes",
            "gauge",
            "Bytes in the disk tier's files.",
            d.bytes(),
        ),
        (
            "berth_registry_disk_cache_entries",
            "gauge",
            "Files in the disk tier.",
            d.entries(),
        ),
    ] {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::driver::MetricKind;

    #[test]
    fn a_drivers_metrics_follow_the_rest() {
        let m = Metrics::new();
        let text = m.render_with(&[
            DriverMetric {
                name: "berth_registry_s3_read_ahead_bytes",
                help: "Bytes held.",
                kind: MetricKind::Gauge,
                value: 42,
            },
            DriverMetric {
                name: "berth_registry_s3_large_reads_ranged_total",
                help: "Reads.",
                kind: MetricKind::Counter,
                value: 7,
            },
        ]);
        assert!(text.starts_with(&m.render()));
        assert!(text.ends_with(
            "# HELP berth_registry_s3_read_ahead_bytes Bytes held.\n\
             # TYPE berth_registry_s3_read_ahead_bytes gauge\n\
             berth_registry_s3_read_ahead_bytes 42\n\
             # HELP berth_registry_s3_large_reads_ranged_total Reads.\n\
             # TYPE berth_registry_s3_large_reads_ranged_total counter\n\
             berth_registry_s3_large_reads_ranged_total 7\n"
        ));
        assert_eq!(m.render_with(&[]), m.render());
    }

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::new();
        m.record_request("manifest", "GET", 200, 512);
        m.record_request("manifest", "GET", 200, 512);
        m.record_request("blob", "HEAD", 404, 0);
        m.record_bytes_in("upload", 100);
        m.record_upload(Duration::from_millis(200));
        let text = m.render();
        assert!(text.contains(
            "berth_registry_requests_total{route=\"manifest\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains("berth_registry_bytes_sent_total{route=\"manifest\"} 1024"));
        assert!(text.contains("berth_registry_bytes_received_total{route=\"upload\"} 100"));
        assert!(text.contains("berth_registry_upload_duration_seconds_bucket{le=\"0.1\"} 0"));
        assert!(text.contains("berth_registry_upload_duration_seconds_bucket{le=\"0.25\"} 1"));
        assert!(text.contains("berth_registry_upload_duration_seconds_count 1"));
        assert!(
            !text.contains("storage_cache"),
            "no cache, no cache metrics"
        );
    }

    #[test]
    fn renders_the_storage_cache() {
        let cache = crate::storage::BlobCache::new(crate::storage::CacheLimits::default());
        let d = berth_oci::Digest::sha256_of(b"m");
        assert!(cache.content(&d).is_none());
        cache.insert_content(&d, bytes::Bytes::from_static(b"m"));
        assert!(cache.content(&d).is_some());
        assert!(cache.size(&d).is_some());
        let text = Metrics::with_storage_cache(cache.stats(), None).render();
        assert!(
            !text.contains("disk_cache"),
            "no disk tier, no disk metrics"
        );
        for line in [
            "berth_registry_storage_cache_hits_total{kind=\"content\"} 1",
            "berth_registry_storage_cache_hits_total{kind=\"size\"} 1",
            "berth_registry_storage_cache_misses_total{kind=\"content\"} 1",
            "berth_registry_storage_cache_misses_total{kind=\"size\"} 0",
            "# TYPE berth_registry_storage_cache_bytes gauge",
            "berth_registry_storage_cache_entries 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        let bytes = 1 + crate::storage::cache::ENTRY_OVERHEAD;
        assert!(text.contains(&format!("berth_registry_storage_cache_bytes {bytes}\n")));
    }

    #[test]
    fn renders_the_disk_tier() {
        let cache = crate::storage::BlobCache::new(crate::storage::CacheLimits::default());
        let tmp = tempfile::tempdir().unwrap();
        let disk = crate::storage::DiskCache::open(tmp.path(), 1 << 20).unwrap();
        let text = Metrics::with_storage_cache(cache.stats(), Some(disk.stats())).render();
        for line in [
            "# TYPE berth_registry_disk_cache_hits_total counter\nberth_registry_disk_cache_hits_total 0\n",
            "# TYPE berth_registry_disk_cache_bytes gauge\nberth_registry_disk_cache_bytes 0\n",
            "berth_registry_disk_cache_fills_total 0\n",
            "berth_registry_disk_cache_abandoned_total 0\n",
            "berth_registry_disk_cache_misses_total 0\n",
            "berth_registry_disk_cache_entries 0\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
