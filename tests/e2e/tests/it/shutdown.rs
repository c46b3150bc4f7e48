//! Graceful shutdown: SIGTERM lets a download in flight finish with every byte.

use std::io::Read;
use std::time::Duration;

use berth_test_support::{Registry, RegistryOptions, random_bytes, sha256, wait_until};

#[test]
fn sigterm_lets_an_in_flight_blob_download_finish_with_all_bytes() {
    let mut registry = Registry::start(RegistryOptions::new());
    let http = registry.http();
    // far larger than the socket buffers, so the server cannot finish until we read
    let data = random_bytes(7, 64 << 20);
    let d = http.push_blob("slow/download", &data);

    let resp = http
        .try_send("GET", &format!("/v2/slow/download/blobs/{d}"), &[], None)
        .expect("start the download");
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.into_body().into_reader();
    let mut got = vec![0u8; 1 << 20];
    body.read_exact(&mut got).expect("read the first MiB");

    registry.sigterm();
    assert!(
        wait_until(Duration::from_secs(30), || registry
            .log()
            .contains("shutting down")),
        "the registry did not log that it is shutting down"
    );
    body.read_to_end(&mut got)
        .expect("the download in flight completes after SIGTERM");
    assert_eq!(got.len(), data.len(), "bytes received after SIGTERM");
    assert_eq!(sha256(&got), d, "content received after SIGTERM");

    let status = registry
        .wait_exit(Duration::from_secs(60))
        .expect("the registry exits once the download is done");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(
        std::net::TcpStream::connect(registry.addr()).is_err(),
        "the port still accepts connections after shutdown"
    );
}
