//! The CVE-2019-5736 guard's fast path on this kernel: the running binary opened through a
//! detached read-only overlayfs, with the state root as its second layer (what kernels
//! before 6.5 need) and with the detached tmpfs (without one). scripts/vm-test runs these
//! on Debian 12's 6.1 kernel too.

use std::io::Read;
use std::os::fd::AsFd;

use berth_container::sealed::overlay_copy;

const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// The descriptor names a read-only overlayfs file with the running binary's bytes.
fn assert_is_a_read_only_overlay_of_this_binary(fd: std::os::fd::OwnedFd) {
    let fs = rustix::fs::fstatfs(&fd).unwrap();
    assert_eq!(fs.f_type, OVERLAYFS_SUPER_MAGIC, "not on an overlayfs");
    let vfs = rustix::fs::fstatvfs(&fd).unwrap();
    assert!(vfs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY));
    // O_PATH: reopen it for reading through its magic link, as fexecve does for exec
    let path = format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd())
    );
    let mut copy = Vec::new();
    std::fs::File::open(&path)
        .unwrap()
        .read_to_end(&mut copy)
        .unwrap();
    let me = std::fs::read("/proc/self/exe").unwrap();
    assert!(copy == me, "the overlay file is not this binary");
    let err = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
}

#[test]
fn sealed_overlay_with_a_spare_directory_as_second_layer() {
    assert!(rustix::process::geteuid().is_root(), "this test needs root");
    let spare = tempfile::tempdir().unwrap();
    assert_is_a_read_only_overlay_of_this_binary(overlay_copy(Some(spare.path())).unwrap());
}

#[test]
fn sealed_overlay_without_a_spare_directory_or_with_one_around_the_binary() {
    assert!(rustix::process::geteuid().is_root(), "this test needs root");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = kernel
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
    // a spare directory containing the binary is never used as a layer (it would overlap)
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    let around = exe.parent().unwrap().parent().unwrap();
    for spare in [None, Some(around)] {
        // Refused on Debian 12's 6.1, accepted on 6.18 (the two kernels measured; the change
        // lies between): where refused, ensure_sealed falls back to a memfd copy.
        match overlay_copy(spare) {
            Ok(fd) => {
                assert!(
                    (major, minor) > (6, 1),
                    "kernel {kernel} accepted a detached layer"
                );
                assert_is_a_read_only_overlay_of_this_binary(fd);
            }
            Err(e) => assert!((major, minor) < (6, 18), "kernel {kernel}: {e}"),
        }
    }
}
