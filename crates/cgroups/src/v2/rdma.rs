//! v2 `rdma`: per-device limits in `rdma.max` (same lines as v1).

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};

pub(super) fn set(fs: &dyn CgroupFs, dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    for line in crate::v1::rdma_lines(r) {
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
    fn lines_go_to_rdma_max() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        let a = LinuxRdma {
            hca_handles: Some(1u32),
            ..Default::default()
        };
        let r = LinuxResources {
            rdma: Some([("mlx5_0".to_owned(), a)].into()),
            ..Default::default()
        };
        set(t.fs(), &dir, &r).unwrap();
        assert_eq!(t.read("c/rdma.max"), "mlx5_0 hca_handle=1");
    }
}
