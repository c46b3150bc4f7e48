//! Container ids: runc's rules (`[A-Za-z0-9_+.-]+`, not `.` or `..`), so an id is always a
//! single safe path component under `--root`.

/// Whether `id` is a valid container id.
pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc_rules() {
        for ok in ["a", "abc-123_x+y.z", "0", "..a", "a.."] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ä", "a\0", "/x"] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }
}
