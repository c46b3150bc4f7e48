//! v2 `hugetlb`: `hugetlb.<size>.max` (and `.rsvd.max` where present; a negative limit is
//! "max"); usage and failures per page size.

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};
use crate::stats::{Hugetlb, Stats};

pub(super) fn set(fs: &dyn CgroupFs, dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    let Some(limits) = &r.hugepage_limits else {
        return Ok(());
    };
    let mut rsvd = true;
    for limit in limits {
        let prefix = format!("hugetlb.{}", limit.page_size);
        let value = if limit.limit < 0 {
            "max".to_owned()
        } else {
            limit.limit.to_string()
        };
        fs::write(fs, dir, &format!("{prefix}.max"), &value)?;
        if rsvd {
            match fs::write(fs, dir, &format!("{prefix}.rsvd.max"), &value) {
                Err(err) if err.is_not_found() => rsvd = false,
                other => other?,
            }
        }
    }
    Ok(())
}

pub(super) fn stats(fs: &dyn CgroupFs, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    let files = match fs.files(dir) {
        Ok(files) => files,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::ReadDir {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let sizes = files
        .iter()
        .filter_map(|f| f.strip_prefix("hugetlb.")?.strip_suffix(".max"))
        .filter(|s| !s.contains('.'));
    for size in sizes {
        let rsvd = format!("hugetlb.{size}.rsvd.current");
        let current = if fs.exists(&dir.join(&rsvd)) {
            rsvd
        } else {
            format!("hugetlb.{size}.current")
        };
        let entry = Hugetlb {
            usage: fs::read_u64(fs, dir, &current)?,
            max: 0,
            failcnt: fs::read_key(fs, dir, &format!("hugetlb.{size}.events"), "max")?,
        };
        stats.hugetlb.insert(size.to_owned(), entry);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;
    use berth_runtime_spec::LinuxHugepageLimit;

    #[test]
    fn limits_reservations_and_stats() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        let r = LinuxResources {
            hugepage_limits: Some(vec![
                LinuxHugepageLimit {
                    page_size: "2MB".to_owned(),
                    limit: 2_097_152i64,
                },
                LinuxHugepageLimit {
                    page_size: "1GB".to_owned(),
                    limit: -1i64,
                },
            ]),
            ..Default::default()
        };
        set(t.fs(), &dir, &r).unwrap();
        assert_eq!(t.read("c/hugetlb.2MB.max"), "2097152");
        assert_eq!(t.read("c/hugetlb.2MB.rsvd.max"), "2097152");
        assert_eq!(t.read("c/hugetlb.1GB.max"), "max");
        t.set_file("c/hugetlb.2MB.rsvd.current", "4096\n");
        t.set_file("c/hugetlb.2MB.events", "max 3\n");
        let mut s = Stats::default();
        stats(t.fs(), &dir, &mut s).unwrap();
        assert_eq!(
            s.hugetlb["2MB"],
            Hugetlb {
                usage: 4096,
                max: 0,
                failcnt: 3
            }
        );
        assert_eq!(s.hugetlb.len(), 2);
    }
}
