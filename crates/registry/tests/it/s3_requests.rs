//! What one pushed or pulled blob costs in S3 requests, counted from moto's access log (one
//! line per request) around each HTTP request a client makes to a registry served over
//! [`S3Driver`](berth_registry::storage::s3::S3Driver): the small-blob push of issue 20
//! (docs/performance.md, "Small blobs"). Each flow asserts the budget it is held to, so a
//! change that adds requests to the common path fails here; `--nocapture` prints the table
//! with every S3 request of every step.

#![allow(
    clippy::print_stdout,
    reason = "the table of requests per step is the measurement (--nocapture)"
)]

use berth_oci::Digest;
use berth_registry::Config;
use berth_test_support::{S3Kind, S3Server};

use crate::s3::{driver, server};
use crate::{TestRegistry, random_bytes};

/// S3 request lines of moto's access log, e.g. `"PUT /registry/p/x HTTP/1.1" 200`.
fn s3_requests(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            let start = l.find('"')?;
            let rest = &l[start + 1..];
            let end = rest.find('"')?;
            let line = &rest[..end];
            let method = line.split(' ').next()?;
            let status = rest[end + 1..].split_whitespace().next().unwrap_or("");
            ["GET", "PUT", "POST", "HEAD", "DELETE"]
                .contains(&method)
                .then(|| format!("{line} {status}"))
        })
        .collect()
}

/// A registry on moto counting the S3 requests behind each client request.
struct Counted {
    s3: S3Server,
    reg: TestRegistry,
    seen: usize,
    table: Vec<(String, Vec<String>)>,
}

impl Counted {
    fn start(s3: S3Server, prefix: &str) -> Counted {
        let mut config = Config::default();
        config.storage.min_free_bytes = 0;
        let reg = TestRegistry::serve(driver(&s3, prefix), config);
        let mut c = Counted {
            s3,
            reg,
            seen: 0,
            table: Vec::new(),
        };
        c.mark();
        c
    }

    fn mark(&mut self) {
        self.seen = s3_requests(&self.s3.log()).len();
    }

    /// One client request; records (and returns the response of) it with the S3 requests
    /// it caused.
    fn req(
        &mut self,
        label: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> crate::Resp {
        self.mark();
        let r = self.reg.req(method, path, headers, body);
        let all = s3_requests(&self.s3.log());
        let new = all[self.seen.min(all.len())..].to_vec();
        self.seen = all.len();
        self.table
            .push((format!("{label}: {method} → {}", r.status), new));
        r
    }

    /// S3 requests of the steps recorded since `from`.
    fn total_since(&self, from: usize) -> usize {
        self.table[from..].iter().map(|(_, r)| r.len()).sum()
    }

    fn print(&self, title: &str, from: usize) {
        println!("\n== {title}: {} S3 requests", self.total_since(from));
        for (step, reqs) in &self.table[from..] {
            println!("  {step}: {}", reqs.len());
            for r in reqs {
                println!("      {r}");
            }
        }
    }
}

fn location(r: &crate::Resp) -> String {
    r.header("location").expect("a Location").to_owned()
}

/// The requests a push and a pull of one 4 KiB blob cost, for each way a client can
/// push it: skopeo's (HEAD, POST, one PATCH, PUT without a body), a chunked upload with
/// `Content-Range` and a last chunk on the PUT, a monolithic POST, and POST then PUT.
#[test]
fn s3_requests_per_small_blob_on_moto() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let mut c = Counted::start(s3, "count");
    let name = "count/small";
    let octet = ("content-type", "application/octet-stream");

    // skopeo (containers/image): does the blob exist, start, stream it, commit
    let blob = random_bytes(1, 4096);
    let d = Digest::sha256_of(&blob);
    let from = c.table.len();
    let r = c.req(
        "HEAD blob",
        "HEAD",
        &format!("/v2/{name}/blobs/{d}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 404);
    let r = c.req(
        "POST",
        "POST",
        &format!("/v2/{name}/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let loc = location(&r);
    let r = c.req("PATCH 4 KiB", "PATCH", &loc, &[octet], &blob);
    assert_eq!(r.status, 202, "{}", r.text());
    let loc = location(&r);
    let r = c.req("PUT ?digest", "PUT", &format!("{loc}?digest={d}"), &[], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    let skopeo = c.total_since(from);
    c.print("skopeo-style push (HEAD, POST, PATCH, PUT)", from);

    // pull: HEAD then GET, as clients do
    let from = c.table.len();
    let r = c.req(
        "HEAD blob",
        "HEAD",
        &format!("/v2/{name}/blobs/{d}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    let r = c.req(
        "GET blob",
        "GET",
        &format!("/v2/{name}/blobs/{d}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, blob);
    let pull = c.total_since(from);
    c.print("pull (HEAD, GET)", from);

    // chunked with Content-Range, the last chunk on the PUT
    let blob = random_bytes(2, 4096);
    let d = Digest::sha256_of(&blob);
    let from = c.table.len();
    let r = c.req(
        "POST",
        "POST",
        &format!("/v2/{name}/blobs/uploads/"),
        &[],
        b"",
    );
    let loc = location(&r);
    let r = c.req(
        "PATCH 0-2047",
        "PATCH",
        &loc,
        &[octet, ("content-range", "0-2047")],
        &blob[..2048],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let loc = location(&r);
    let r = c.req(
        "PUT ?digest + 2048-4095",
        "PUT",
        &format!("{loc}?digest={d}"),
        &[octet, ("content-range", "2048-4095")],
        &blob[2048..],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let chunked = c.total_since(from);
    c.print("chunked (POST, PATCH, PUT with the last chunk)", from);

    // monolithic POST ?digest=
    let blob = random_bytes(3, 4096);
    let d = Digest::sha256_of(&blob);
    let from = c.table.len();
    let r = c.req(
        "POST ?digest",
        "POST",
        &format!("/v2/{name}/blobs/uploads/?digest={d}"),
        &[octet],
        &blob,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let monolithic = c.total_since(from);
    c.print("monolithic POST ?digest=", from);

    // POST, then PUT with the whole blob
    let blob = random_bytes(4, 4096);
    let d = Digest::sha256_of(&blob);
    let from = c.table.len();
    let r = c.req(
        "POST",
        "POST",
        &format!("/v2/{name}/blobs/uploads/"),
        &[],
        b"",
    );
    let loc = location(&r);
    let r = c.req(
        "PUT ?digest + 4 KiB",
        "PUT",
        &format!("{loc}?digest={d}"),
        &[octet],
        &blob,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let put_only = c.total_since(from);
    c.print("POST then PUT with the blob", from);

    println!(
        "\nskopeo {skopeo}, pull {pull}, chunked {chunked}, monolithic {monolithic}, put-only {put_only}"
    );
    assert!(skopeo <= 99, "skopeo-style push: {skopeo} S3 requests");
}
