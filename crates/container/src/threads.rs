//! Fork safety: proof that the process is single-threaded.
//!
//! `create`, `run` and `exec` fork the calling process and go on running Rust in the child
//! (the container's stage 1 and init: allocation, formatting, JSON over the sync channel).
//! After `fork(2)` only the forking thread exists in the child; any lock another thread held
//! at that moment (the allocator's, stdio's, the environment's) stays locked forever, so the
//! child could deadlock or see torn state. That is sound only when the parent has one thread.
//!
//! The promise used to live in a comment. It is now a value: [`SingleThreaded`], obtained by
//! [`SingleThreaded::check`] (which counts `/proc/self/task`), is required by every call that
//! forks, and the fork itself checks again (a thread started after the proof was taken is
//! caught there). The token is neither `Send` nor `Sync`: it cannot be taken to another thread.

use std::marker::PhantomData;
use std::path::Path;

/// Why the process cannot prove it is single-threaded.
#[derive(Debug, thiserror::Error)]
pub enum ThreadsError {
    #[error(
        "the process has {count} threads: berth-container forks and runs code in the child, \
         which is only sound in a single-threaded process (hint: call it before starting any \
         thread, or run the berth-runtime binary instead of the library)"
    )]
    MultiThreaded { count: usize },
    #[error("failed to count the threads of this process in {path}; is /proc mounted?")]
    Count {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Proof, checked at run time, that this process had exactly one thread. Required by every
/// library call that forks ([`crate::Container::create`], [`crate::Container::exec`]).
#[derive(Debug, Clone, Copy)]
pub struct SingleThreaded {
    /// Neither `Send` nor `Sync`: the proof stays on the thread that took it.
    _not_send: PhantomData<*const ()>,
}

const TASKS: &str = "/proc/self/task";

impl SingleThreaded {
    /// Count this process's threads (`/proc/self/task`); one, or an error naming how many.
    pub fn check() -> Result<SingleThreaded, ThreadsError> {
        Self::check_tasks(Path::new(TASKS))
    }

    fn check_tasks(dir: &Path) -> Result<SingleThreaded, ThreadsError> {
        let count_err = |source| ThreadsError::Count {
            path: TASKS,
            source,
        };
        let mut count = 0;
        for entry in std::fs::read_dir(dir).map_err(count_err)? {
            entry.map_err(count_err)?;
            count += 1;
        }
        if count == 1 {
            Ok(SingleThreaded {
                _not_send: PhantomData,
            })
        } else {
            Err(ThreadsError::MultiThreaded { count })
        }
    }

    /// In the child of a `fork(2)`: only the forking thread exists there (POSIX), so the
    /// child is single-threaded whatever the parent was.
    pub(crate) fn in_forked_child() -> SingleThreaded {
        SingleThreaded {
            _not_send: PhantomData,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_task_entry_is_single_threaded_and_more_are_refused_with_the_count() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("100")).unwrap();
        assert!(SingleThreaded::check_tasks(dir.path()).is_ok());
        std::fs::create_dir(dir.path().join("101")).unwrap();
        std::fs::create_dir(dir.path().join("102")).unwrap();
        let e = SingleThreaded::check_tasks(dir.path()).unwrap_err();
        assert!(matches!(e, ThreadsError::MultiThreaded { count: 3 }), "{e}");
        assert!(e.to_string().contains("3 threads"), "{e}");
    }

    #[test]
    fn an_unreadable_task_list_is_an_error_not_a_proof() {
        let e = SingleThreaded::check_tasks(Path::new("/nonexistent/task")).unwrap_err();
        assert!(matches!(e, ThreadsError::Count { .. }), "{e}");
    }

    /// With a second thread alive (parked here; the harness may have more of its own),
    /// `check` refuses and says how many threads it counted.
    #[test]
    fn a_process_with_a_second_thread_is_refused() {
        let (release, parked) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || parked.recv());
        let e = SingleThreaded::check().unwrap_err();
        release.send(()).unwrap();
        thread.join().unwrap().unwrap();
        match e {
            ThreadsError::MultiThreaded { count } => {
                assert!(count >= 2, "{count}");
                assert!(
                    e.to_string().contains(&format!("has {count} threads")),
                    "{e}"
                );
            }
            other => panic!("unexpected error {other}"),
        }
    }
}
