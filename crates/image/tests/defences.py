#!/usr/bin/env python3
"""Show that each of the unpacker's defences is what makes its hostile-layer test pass.

For each defence: disable it in the source (one textual change), run the tests that guard it,
expect at least one to FAIL, restore the source. Exit 1 if any guard test passes with its
defence disabled (the test would not catch a regression).

Usage (from the repository root, as root, with CARGO_TARGET_DIR set):
    python3 crates/image/tests/defences.py [NAME-SUBSTRING]
Slow (one incremental build per defence); not part of the normal test run.
"""

import os
import subprocess
import sys

SRC = "crates/image/src/unpack/"

# (name, file, text with the defence, text without it, test filters)
MUTATIONS = [
    ("'..' components refused", "unpacker.rs",
     """b".." => return Err("the name contains a '..' component"),""",
     """b".." => out.push(c),""",
     ["hostile::dotdot_name_is_refused", "hostile::hardlink_with_dotdot_is_refused"]),
    ("NUL bytes refused", "unpacker.rs",
     """    if raw.contains(&0) {\n        return Err("the name contains a NUL byte");\n    }""",
     "",
     ["hostile::nul_in_pax_path_is_refused"]),
    ("names longer than PATH_MAX refused", "unpacker.rs",
     "if raw.len() > PATH_MAX {", "if false {",
     ["hostile::overlong_name_is_refused"]),
    ("parents resolved with RESOLVE_IN_ROOT", "root.rs",
     "berth_fsutil::open_dir_in_root_at(&self.fd, os(rel))",
     """Ok(rustix::fs::openat(&self.fd, os(if rel.is_empty() { b"." } else { rel }), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?)""",
     ["hostile::entry_under_symlinked_parent_resolves_as_in_the_container",
      "hostile::write_through_absolute_symlink_lands_inside_when_the_target_exists_there",
      "hostile::whiteout_under_symlinked_parent_is_contained",
      "hostile::opaque_whiteout_under_symlinked_parent_is_contained"]),
    ("regular files replace what is there, never write through it", "unpacker.rs",
     """        self.clear(parent, name, raw)?;
        let fd = rustix::fs::openat(
            parent,
            os(name),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,""",
     """        let fd = rustix::fs::openat(
            parent,
            os(name),
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,""",
     ["hostile::file_replacing_a_symlink_does_not_write_through_it"]),
    ("a directory entry replaces a symlink", "unpacker.rs",
     "            Some(st) if is_dir(&st) => {}\n            other => {",
     "            Some(_) => {}\n            other => {",
     ["hostile::symlink_replaced_by_a_directory_is_a_real_directory"]),
    ("hardlinks never follow a symlink target", "unpacker.rs",
     "rustix::fs::linkat(&tparent, os(tname), parent, os(name), AtFlags::empty())",
     "rustix::fs::linkat(&tparent, os(tname), parent, os(name), AtFlags::SYMLINK_FOLLOW)",
     ["hostile::hardlink_to_a_symlink_links_the_symlink_not_its_target"]),
    ("hardlinks to directories refused by name", "unpacker.rs",
     """            Some(st) if is_dir(&st) => {
                return Err(Self::refused(raw, "a hardlink to a directory"));
            }""",
     "",
     ["hostile::hardlink_to_a_directory_is_refused"]),
    ("whiteouts of '.', '..' and '' refused", "whiteout.rs",
     """target.is_empty() || target == b"." || target == b"..\"""",
     "target.is_empty()",
     ["hostile::whiteout_of_dotdot_is_refused"]),
    ("the root entry must be a directory", "unpacker.rs",
     """            return Err(Self::refused(
                raw,
                "a non-directory entry names the root itself",
            ));""",
     "            return Ok(());",
     ["hostile::non_directory_root_entry_is_refused"]),
    ("device nodes skipped when rootless", "unpacker.rs",
     "if ft != FileType::Fifo && self.opts.devices == DeviceNodes::Skip {", "if false {",
     ["hostile::device_nodes_are_skipped_and_reported_when_rootless"]),
    ("uncompressed size limit", "stream.rs",
     "if total > self.limits.max_uncompressed_bytes {", "if false {",
     ["hostile::bomb_uncompressed_size_limit"]),
    ("entry count limit", "unpacker.rs",
     "if self.stats_entries > self.opts.limits.max_entries {", "if false {",
     ["hostile::bomb_entry_count_limit"]),
    ("metadata size limit", "stream.rs",
     "if meta > self.limits.max_metadata_bytes {", "if false {",
     ["hostile::bomb_long_name_metadata_limit"]),
    ("short entry data is an error", "unpacker.rs",
     "if written != expected {", "if false {",
     ["hostile::tar_ending_inside_a_file_is_an_error"]),
    ("diff ID checked", "mod.rs",
     "&& *expected != diff_id", "&& false",
     ["hostile::diff_id_mismatch_is_an_error"]),
    ("overlayfs xattrs never taken from a layer", "meta.rs",
     """if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {""",
     "if false {",
     ["hostile::overlay_xattrs_from_the_layer_are_not_applied"]),
    ("a layer's whiteouts spare its own files", "whiteout.rs",
     "if self.unpacked.contains(&target_path) {", "if false {",
     ["features::apply_mode_deletes_and_clears_opaque_directories"]),
    ("directory mtimes set after their children", "mod.rs",
     "u.set_dir_times()?;", "",
     ["features::every_entry_kind_with_owners_modes_mtimes_xattrs"]),
    ("mode and capabilities set after chown", "meta.rs",
     """    ) -> Result<(), UnpackError> {
        if let Some((u, g)) = self.ids(meta, raw)? {
            rustix::fs::fchown(fd, Some(u), Some(g))
                .map_err(|e| self.fs_err("change the owner of", raw)(e.into()))?;
        }""",
     """    ) -> Result<(), UnpackError> {
        rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode))
            .map_err(|e| self.fs_err("change the mode of", raw)(e.into()))?;
        for (name, value) in &meta.xattrs {
            let _ = rustix::fs::fsetxattr(fd, os(name), value, XattrFlags::empty());
        }
        if let Some((u, g)) = self.ids(meta, raw)? {
            rustix::fs::fchown(fd, Some(u), Some(g))
                .map_err(|e| self.fs_err("change the owner of", raw)(e.into()))?;
            return Ok(());
        }""",
     ["features::every_entry_kind_with_owners_modes_mtimes_xattrs",
      "features::id_map_shifts_owners_and_keeps_setuid"]),
]


def run_tests(filters):
    env = dict(os.environ, BERTH_TEST_REQUIRE_TOOLS="1")
    failed = []
    for f in filters:
        r = subprocess.run(
            ["cargo", "test", "-q", "-p", "berth-image", "--test", "it", "--", "--exact", f],
            env=env, capture_output=True, text=True)
        if "error[" in r.stderr or "could not compile" in r.stderr:
            return None, r.stderr[-3000:]
        if r.returncode != 0:
            failed.append(f)
    return failed, ""


def main():
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    bad = 0
    for name, file, with_, without, tests in MUTATIONS:
        if not tests or only not in name:
            continue
        path = SRC + file
        original = open(path).read()
        if original.count(with_) != 1:
            print(f"STALE   {name}: the defence's text is not found once in {path}")
            bad += 1
            continue
        try:
            open(path, "w").write(original.replace(with_, without))
            failed, err = run_tests(tests)
        finally:
            open(path, "w").write(original)
        if failed is None:
            print(f"NOBUILD {name}: {err}")
            bad += 1
        elif failed:
            print(f"ok      {name}: without it, {', '.join(failed)} failed")
        else:
            print(f"MISSED  {name}: every guard test passed without it")
            bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
