//! v1 `hugetlb`: per page size limits (and the reservation limits where the kernel has them).

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};
use crate::stats::{Hugetlb, Stats};

pub(super) fn set(
    fs: &dyn CgroupFs,
    dir: Option<&Path>,
    r: &LinuxResources,
) -> Result<(), CgroupError> {
    let Some(limits) = r.hugepage_limits.as_ref().filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let dir = super::require(dir, "hugetlb", "hugepage limits")?;
    let mut rsvd = true;
    for limit in limits {
        let prefix = format!("hugetlb.{}", limit.page_size);
        let value = limit.limit.to_string();
        fs::write(fs, dir, &format!("{prefix}.limit_in_bytes"), &value)?;
        if rsvd {
            match fs::write(fs, dir, &format!("{prefix}.rsvd.limit_in_bytes"), &value) {
                // kernels before 5.7 have no reservation accounting
                Err(err) if err.is_not_found() => rsvd = false,
                other => other?,
            }
        }
    }
    Ok(())
}

/// The page sizes the cgroup has limit files for ("2MB", "1GB").
pub(crate) fn page_sizes(
    fs: &dyn CgroupFs,
    dir: &Path,
    suffix: &str,
) -> Result<Vec<String>, CgroupError> {
    let files = fs.files(dir).map_err(|source| CgroupError::ReadDir {
        path: dir.to_owned(),
        source,
    })?;
    Ok(files
        .iter()
        .filter_map(|f| f.strip_prefix("hugetlb.")?.strip_suffix(suffix))
        .filter(|size| !size.contains('.'))
        .map(str::to_owned)
        .collect())
}

pub(super) fn stats(fs: &dyn CgroupFs, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    if !fs.exists(dir) {
        return Ok(());
    }
    for size in page_sizes(fs, dir, ".limit_in_bytes")? {
        let rsvd = format!("hugetlb.{size}.rsvd");
        let prefix = if fs.exists(&dir.join(format!("{rsvd}.usage_in_bytes"))) {
            rsvd
        } else {
            format!("hugetlb.{size}")
        };
        let entry = Hugetlb {
            usage: fs::read_u64(fs, dir, &format!("{prefix}.usage_in_bytes"))?,
            max: fs::read_u64(fs, dir, &format!("{prefix}.max_usage_in_bytes"))?,
            failcnt: fs::read_u64(fs, dir, &format!("{prefix}.failcnt"))?,
        };
        stats.hugetlb.insert(size, entry);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;
    use berth_runtime_spec::LinuxHugepageLimit;

    fn resources() -> LinuxResources {
        LinuxResources {
            hugepage_limits: Some(vec![
                LinuxHugepageLimit {
                    page_size: "2MB".to_owned(),
                    limit: 4_194_304i64,
                },
                LinuxHugepageLimit {
                    page_size: "1GB".to_owned(),
                    limit: 0i64,
                },
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn limits_and_reservations() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("hugetlb/c");
        set(t.fs(), Some(&dir), &resources()).unwrap();
        assert_eq!(t.read("hugetlb/c/hugetlb.2MB.limit_in_bytes"), "4194304");
        assert_eq!(
            t.read("hugetlb/c/hugetlb.2MB.rsvd.limit_in_bytes"),
            "4194304"
        );
        assert_eq!(t.read("hugetlb/c/hugetlb.1GB.limit_in_bytes"), "0");
        // without rsvd files (old kernels): only the limits
        t.remove_file("hugetlb/c/hugetlb.2MB.rsvd.limit_in_bytes");
        t.remove_file("hugetlb/c/hugetlb.1GB.rsvd.limit_in_bytes");
        t.clear_writes();
        set(t.fs(), Some(&dir), &resources()).unwrap();
        assert_eq!(t.writes().len(), 2);
        // an unknown page size is an error naming the file
        let r = LinuxResources {
            hugepage_limits: Some(vec![LinuxHugepageLimit {
                page_size: "3MB".to_owned(),
                limit: 1i64,
            }]),
            ..Default::default()
        };
        assert!(
            set(t.fs(), Some(&dir), &r)
                .unwrap_err()
                .to_string()
                .contains("hugetlb.3MB.limit_in_bytes")
        );
        // not mounted (this host): a clear error
        let err = set(t.fs(), None, &resources()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the hugetlb cgroup controller is not mounted on this host, but the configuration sets hugepage limits"
        );
    }

    #[test]
    fn stats_per_page_size() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("hugetlb/c");
        t.set_file("hugetlb/c/hugetlb.2MB.rsvd.usage_in_bytes", "2097152\n");
        t.set_file("hugetlb/c/hugetlb.2MB.rsvd.failcnt", "1\n");
        let mut s = Stats::default();
        stats(t.fs(), &dir, &mut s).unwrap();
        assert_eq!(
            s.hugetlb["2MB"],
            Hugetlb {
                usage: 2_097_152,
                max: 0,
                failcnt: 1
            }
        );
        assert!(s.hugetlb.contains_key("1GB"));
    }
}
