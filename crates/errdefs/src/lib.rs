//! `berth-errdefs`: the classes of failure shared by berth's libraries, as containerd's
//! `errdefs` package.
//!
//! Every library error type keeps its own variants (what failed, on what) and answers
//! `kind()` with an [`ErrorKind`], so a caller that decides on the class — an exit code, a
//! message, a retry — maps errors once, whichever crate they come from, and a crate that
//! wraps another's error passes the class through instead of translating it.

/// The class of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// What was asked for does not exist: an image, tag, platform, blob, container.
    NotFound,
    /// Creating something that is already there.
    AlreadyExists,
    /// The caller's input is unusable: a malformed reference or config, content that does
    /// not match its digest, options that do not fit together.
    InvalidInput,
    /// The request conflicts with the current state (a container's status, a concurrent
    /// writer).
    Conflict,
    /// Credentials are missing or refused, or the kernel or host refused permission.
    Denied,
    /// The service or the calling process cannot do it now (a registry that cannot be
    /// reached or is overloaded, a process with threads that must not fork); worth retrying
    /// later or elsewhere.
    Unavailable,
    /// Anything else: I/O, corrupt state, a failed system call or task.
    Internal,
}

/// "a: b: c" from an error and its sources, for a log line or a message that must carry the
/// whole cause on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use std::io;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to read {0}")]
    struct Outer(&'static str, #[source] io::Error);

    #[test]
    fn error_chain_joins_every_source() {
        let e = Outer("config.json", io::Error::other("disk on fire"));
        assert_eq!(
            super::error_chain(&e),
            "failed to read config.json: disk on fire"
        );
        assert_eq!(super::error_chain(&io::Error::other("alone")), "alone");
    }
}
