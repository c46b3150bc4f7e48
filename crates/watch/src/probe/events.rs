//! [`EventReader`]: the ring buffer and the drop counters, read with poll(2).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aya::Ebpf;
use aya::maps::{MapData, PerCpuArray, RingBuf};
use rustix::event::{PollFd, PollFlags, Timespec};

use super::{ProbeCounters, ProbeError, wire};
use crate::event::Event;

/// Reads the events of the watched cgroups. Holds the programs loaded while it lives (with
/// the [`super::ProbeControl`] split from the same [`super::Probes`]).
pub struct EventReader {
    pub(super) _ebpf: Arc<Ebpf>,
    pub(super) ring: RingBuf<MapData>,
    pub(super) drops: PerCpuArray<MapData, u64>,
    pub(super) counters: ProbeCounters,
    pub(super) write_prefixes: Vec<PathBuf>,
    /// When the drop counters were last read.
    pub(super) drops_read: Option<Instant>,
}

impl std::fmt::Debug for EventReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReader")
            .field("counters", &self.counters)
            .field("write_prefixes", &self.write_prefixes)
            .finish_non_exhaustive()
    }
}

/// While events keep coming, the drop counters (a syscall) are read at most this often; they
/// are read at every call that finds no event.
const DROPS_EVERY: Duration = Duration::from_millis(10);

impl EventReader {
    /// What was counted since the probes were loaded.
    pub fn counters(&self) -> ProbeCounters {
        self.counters
    }

    /// The events waiting in the ring buffer; when there are none, wait up to `timeout`
    /// (`None`: until there are) for some, with poll(2). Events the kernel side had to drop
    /// since the drop counters were last read come last, as one [`Event::Dropped`] (read at
    /// every call that finds no event, else at most every 10 ms). May return no event when
    /// the timeout passes or a signal interrupts the wait.
    pub fn next_events(&mut self, timeout: Option<Duration>) -> Result<Vec<Event>, ProbeError> {
        let mut out = Vec::new();
        self.drain(&mut out);
        if out.is_empty() {
            let timespec = timeout.map(|d| Timespec {
                tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(d.subsec_nanos()),
            });
            let mut fds = [PollFd::new(&self.ring, PollFlags::IN)];
            match rustix::event::poll(&mut fds, timespec.as_ref()) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(ProbeError::Poll { source: e.into() }),
            }
            self.drain(&mut out);
        }
        if !out.is_empty() && self.drops_read.is_some_and(|t| t.elapsed() < DROPS_EVERY) {
            return Ok(out);
        }
        self.drops_read = Some(Instant::now());
        let dropped = self.dropped_total()?;
        if dropped > self.counters.dropped {
            out.push(Event::Dropped {
                count: dropped - self.counters.dropped,
            });
            self.counters.dropped = dropped;
        }
        Ok(out)
    }

    fn drain(&mut self, out: &mut Vec<Event>) {
        loop {
            let decoded = match self.ring.next() {
                Some(record) => wire::decode(&record),
                None => break,
            };
            match decoded {
                Ok(event) => {
                    self.counters.received += 1;
                    if self.wanted(&event) {
                        out.push(event);
                    } else {
                        self.counters.filtered += 1;
                    }
                }
                Err(error) => {
                    self.counters.malformed += 1;
                    tracing::warn!(%error, "undecodable ring buffer record");
                }
            }
        }
    }

    fn wanted(&self, event: &Event) -> bool {
        match event {
            Event::OpenWrite(open) if !self.write_prefixes.is_empty() => {
                if !open.path.starts_with('/') {
                    return true;
                }
                let clean = crate::event::clean_path(&open.path);
                let path = Path::new(&clean);
                self.write_prefixes.iter().any(|p| path.starts_with(p))
            }
            _ => true,
        }
    }

    /// The per-CPU drop counters, added up.
    fn dropped_total(&self) -> Result<u64, ProbeError> {
        let values = self
            .drops
            .get(&0, 0)
            .map_err(|source| ProbeError::MapRead {
                map: "drops",
                source,
            })?;
        Ok(values.iter().sum())
    }
}
