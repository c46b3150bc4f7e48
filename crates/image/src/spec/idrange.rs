//! Id ranges for `--userns=auto`: parsing `/etc/subuid`/`/etc/subgid` entries and picking a
//! free, non-overlapping range for a new container, as podman's `--userns=auto` does.

/// A range of host ids: `host_start .. host_start + size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdRange {
    pub host_start: u32,
    pub size: u32,
}

impl IdRange {
    /// One past the last id (u64: a range may end at 2^32).
    pub fn end(self) -> u64 {
        u64::from(self.host_start) + u64::from(self.size)
    }

    /// Whether the two ranges share an id.
    pub fn overlaps(self, other: IdRange) -> bool {
        u64::from(self.host_start) < other.end() && u64::from(other.host_start) < self.end()
    }
}

/// The ranges `/etc/subuid` (or `/etc/subgid`) `content` grants to the user named `user`
/// or with the numeric id `id` (`NAME:START:COUNT` lines; comments, blank and malformed
/// lines are skipped, as shadow-utils does).
pub fn subid_ranges(content: &str, user: &str, id: u32) -> Vec<IdRange> {
    let id = id.to_string();
    content
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let mut parts = line.split(':');
            let (owner, start, count) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || (owner != user && owner != id) {
                return None;
            }
            let range = IdRange {
                host_start: start.parse().ok()?,
                size: count.parse().ok()?,
            };
            (range.size > 0 && range.end() <= 1 << 32).then_some(range)
        })
        .collect()
}

/// The lowest range of `size` ids inside one of `available` that overlaps none of
/// `in_use` (the ranges other containers hold), or `None` when none fits.
pub fn pick_range(available: &[IdRange], in_use: &[IdRange], size: u32) -> Option<IdRange> {
    if size == 0 {
        return None;
    }
    let mut available = available.to_vec();
    available.sort_unstable();
    let mut used = in_use.to_vec();
    used.sort_unstable();
    for avail in available {
        let mut start = u64::from(avail.host_start);
        for u in &used {
            let candidate_end = start + u64::from(size);
            if u64::from(u.host_start) < candidate_end && start < u.end() {
                start = u.end();
            }
        }
        if start + u64::from(size) <= avail.end() {
            return u32::try_from(start)
                .ok()
                .map(|host_start| IdRange { host_start, size });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(host_start: u32, size: u32) -> IdRange {
        IdRange { host_start, size }
    }

    #[test]
    fn subid_lines_by_name_or_uid() {
        let content = "# comment\nroot:100000:65536\nalice:165536:65536\n1000:300000:10\nbad:line\nroot:x:5\nroot:500000:0\n";
        assert_eq!(subid_ranges(content, "root", 0), vec![r(100000, 65536)]);
        assert_eq!(subid_ranges(content, "bob", 1000), vec![r(300000, 10)]);
        assert_eq!(subid_ranges(content, "carol", 7), vec![]);
    }

    #[test]
    fn picks_lowest_free_range() {
        let avail = [r(100000, 65536 * 4)];
        assert_eq!(pick_range(&avail, &[], 65536), Some(r(100000, 65536)));
        let used = [r(100000, 65536)];
        assert_eq!(pick_range(&avail, &used, 65536), Some(r(165536, 65536)));
        // a hole between two used ranges too small, the next fits after both
        let used = [r(100000, 1000), r(101500, 1000)];
        assert_eq!(pick_range(&avail, &used, 1000), Some(r(102500, 1000)));
        // a hole that fits exactly is taken
        let used = [r(100000, 1000), r(102000, 1000)];
        assert_eq!(pick_range(&avail, &used, 1000), Some(r(101000, 1000)));
        // in-use ranges given out of order
        let used = [r(102000, 1000), r(100000, 1000), r(101000, 1000)];
        assert_eq!(pick_range(&avail, &used, 1000), Some(r(103000, 1000)));
    }

    #[test]
    fn no_room_and_second_subid_range() {
        let avail = [r(100000, 65536)];
        assert_eq!(pick_range(&avail, &[r(100000, 1)], 65536), None);
        assert_eq!(pick_range(&avail, &[], 65537), None);
        assert_eq!(pick_range(&avail, &[], 0), None);
        let avail = [r(900000, 65536), r(100000, 65536)];
        assert_eq!(
            pick_range(&avail, &[r(100000, 10)], 65536),
            Some(r(900000, 65536))
        );
        // a range that ends at the top of the id space
        let top = [r(u32::MAX - 9, 10)];
        assert_eq!(pick_range(&top, &[], 10), Some(r(u32::MAX - 9, 10)));
    }

    #[test]
    fn picked_ranges_never_overlap() {
        let avail = [r(100000, 1 << 20)];
        let mut used: Vec<IdRange> = Vec::new();
        for size in [65536, 1024, 70000, 3, 65536, 999] {
            let got = pick_range(&avail, &used, size).unwrap();
            assert!(
                used.iter().all(|u| !u.overlaps(got)),
                "{got:?} overlaps {used:?}"
            );
            assert!(got.host_start >= 100000 && got.end() <= 100000 + (1 << 20));
            used.push(got);
        }
    }
}
