//! v1 `rdma`: per-device HCA handle/object limits (`rdma.max`, same format as v2).

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};

/// One `rdma.max` line per device, sorted by device: "mlx4_0 hca_handle=2 hca_object=2000".
pub(crate) fn lines(r: &LinuxResources) -> Vec<String> {
    let Some(rdma) = &r.rdma else {
        return Vec::new();
    };
    let mut devices: Vec<_> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    devices
        .into_iter()
        .map(|(device, limits)| {
            let mut line = device.clone();
            if let Some(h) = &limits.hca_handles {
                line.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = &limits.hca_objects {
                line.push_str(&format!(" hca_object={o}"));
            }
            line
        })
        .collect()
}

pub(super) fn set(
    fs: &dyn CgroupFs,
    dir: Option<&Path>,
    r: &LinuxResources,
) -> Result<(), CgroupError> {
    let lines = lines(r);
    if lines.is_empty() {
        return Ok(());
    }
    let dir = super::require(dir, "rdma", "rdma limits")?;
    for line in lines {
        fs::write(fs, dir, "rdma.max", &line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;
    use berth_runtime_spec::LinuxRdma;

    #[test]
    fn one_line_per_device() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("rdma/c");
        let a = LinuxRdma {
            hca_handles: Some(2u32),
            hca_objects: Some(2000u32),
        };
        let b = LinuxRdma {
            hca_objects: Some(5u32),
            ..Default::default()
        };
        let r = LinuxResources {
            rdma: Some([("mlx4_0".to_owned(), a), ("hfi1".to_owned(), b)].into()),
            ..Default::default()
        };
        set(t.fs(), Some(&dir), &r).unwrap();
        let w: Vec<String> = t.writes().into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            w,
            ["hfi1 hca_object=5", "mlx4_0 hca_handle=2 hca_object=2000"]
        );
        assert!(set(t.fs(), None, &r).is_err());
    }
}
