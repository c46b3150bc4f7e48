//! The fork-safety proof for real: `SingleThreaded::check` accepts this single-threaded
//! process and refuses it while a second thread lives, and `create` with a proof taken
//! before that thread started checks again and refuses to fork.

use std::time::Duration;

use berth_container::{Container, ContainerError, ErrorKind, SingleThreaded, ThreadsError};
use berth_test_support::wait_until;

use crate::runtime_core::{Bundle, opts};

fn tasks() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

pub(crate) fn check_accepts_this_single_threaded_process(_proof: SingleThreaded) {
    assert_eq!(tasks(), 1, "the forking test binary must run on one thread");
    SingleThreaded::check().expect("a single-threaded process is accepted");
}

pub(crate) fn a_second_thread_makes_check_and_create_refuse(proof: SingleThreaded) {
    let root = tempfile::tempdir().unwrap();
    let b = Bundle::new(&["true"]);
    let (release, parked) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || parked.recv());
    assert_eq!(tasks(), 2);

    let e = SingleThreaded::check().unwrap_err();
    assert!(matches!(e, ThreadsError::MultiThreaded { count: 2 }), "{e}");
    assert!(e.to_string().contains("the process has 2 threads"), "{e}");

    // a proof taken before the thread started is checked again before the fork
    let err = Container::create(&opts(root.path(), "threads1", &b), proof).unwrap_err();
    assert!(
        matches!(
            err,
            ContainerError::Threads(ThreadsError::MultiThreaded { count: 2 })
        ),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        !root.path().join("threads1").exists(),
        "a refused create left its state directory"
    );

    // once the thread is gone the process is single-threaded again
    release.send(()).unwrap();
    thread.join().unwrap().unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || tasks() == 1),
        "the joined thread never left /proc/self/task"
    );
    SingleThreaded::check().expect("single-threaded again");
}
