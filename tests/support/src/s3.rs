//! [`S3Server`]: a real S3-compatible object store on 127.0.0.1 for the registry's S3
//! driver, the replica tests and docker-registry's S3 driver — `s3s-fs` (crates.io; checks
//! every request's SigV4 signature) or moto's server (PyPI `moto[server]`; a second,
//! independent implementation) — in a temporary directory, killed by PID on `Drop`.
//!
//! [`S3Server::request`] speaks S3 through curl's `--aws-sigv4`, so a test can check what
//! the server itself does (conditional puts, multipart rules, signing) without the driver
//! under test. What the two servers do, as measured by `tests/e2e/tests/it/s3.rs`:
//!
//! | | s3s-fs 0.14.1 | moto 5.2.5 (server mode) |
//! |---|---|---|
//! | unsigned request | 403 AccessDenied | `PUT` accepted and stored; `GET` 403 |
//! | signature with a wrong secret | 403 SignatureDoesNotMatch | accepted (moto checks no signature unless its IAM mode is on) |
//! | `x-amz-content-sha256` that does not match the body | refused (500 InternalError), nothing stored | not checked: stored |
//! | `PUT` + `If-None-Match: *` on an existing key | 412 PreconditionFailed, content kept | 412 PreconditionFailed, content kept |
//! | multipart part under 5 MiB (not the last) | completion refused: 400 EntityTooSmall | completion refused: 400 EntityTooSmall |
//! | `CompleteMultipartUpload` + `If-None-Match: *` on an existing key | 412 | 412 |
//! | `PUT` + `If-Match` with a stale ETag | 412, content kept | 412, content kept |
//! | `PUT` + `If-Match` on a missing key | 412 | 404 NoSuchKey (as AWS) |
//! | `DELETE` + `If-Match` with a stale ETag | **ignored: deletes (204)** | 412, kept |
//! | presigned `GET` (boto3's query-string SigV4) | served; a changed signature or an expired URL 403 | served; a changed signature served too (expiry not tested) |
//! | a key over about 160 bytes (S3: 1024) | 500 ("File name too long": its checksum record is a file named after the base64 key) | stored |
//! | `ListMultipartUploads` | 501 NotImplemented (so docker-registry 2.8's S3 driver cannot push to it) | 200 |
//!
//! curl 7.88 (Debian 12) quirks the helpers hide: it does not send `x-amz-content-sha256`
//! itself (s3s-fs refuses a request without it), it signs a bare query key (`?uploads`)
//! differently from the servers (write `?uploads=`), and without a `Content-Type` moto's
//! web framework reads a `--data-binary` body as a form and stores an empty object.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::docker_registry::{clear_aws_env, free_port, spawn_listening};
use crate::{
    ChildGuard, RegistryOptions, run_with_timeout, skip_or_fail, tool_available, write_file,
};

/// The variable `scripts/test` sets to moto's server (it installs it into a venv, off `PATH`).
pub const MOTO_SERVER_ENV: &str = "BERTH_MOTO_SERVER";

/// The access key every test server is started with.
pub const S3_ACCESS_KEY: &str = "berth-test-access";
/// The secret every test server is started with.
pub const S3_SECRET_KEY: &str = "berth-test-secret-0123456789";
/// The region the tests sign for.
pub const S3_REGION: &str = "us-east-1";
/// The bucket each server is started with.
pub const S3_BUCKET: &str = "registry";

/// How long one curl request to a test server may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Which S3 implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Kind {
    /// `s3s-fs` (crates.io `s3s-fs --features binary`): objects as files under a root.
    S3sFs,
    /// moto's server (PyPI `moto[server]`), in memory.
    Moto,
}

impl S3Kind {
    pub fn name(self) -> &'static str {
        match self {
            S3Kind::S3sFs => "s3s-fs",
            S3Kind::Moto => "moto",
        }
    }

    /// The server's executable: `s3s-fs` on `PATH`; moto's from `$BERTH_MOTO_SERVER` (when
    /// that file exists), else `moto_server` on `PATH`.
    pub fn binary(self) -> Option<PathBuf> {
        match self {
            S3Kind::S3sFs => tool_available("s3s-fs").then(|| PathBuf::from("s3s-fs")),
            S3Kind::Moto => match crate::tools::env_os(MOTO_SERVER_ENV) {
                Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
                None => tool_available("moto_server").then(|| PathBuf::from("moto_server")),
            },
        }
    }

    /// Whether the test should return because the server is missing: skips on a laptop,
    /// panics under `BERTH_TEST_REQUIRE_TOOLS=1` (as `requires_tool!`).
    pub fn missing(self) -> bool {
        if self.binary().is_some() {
            return false;
        }
        let how = match self {
            S3Kind::S3sFs => "the tool `s3s-fs` is not on PATH (cargo install s3s-fs@0.14.1 --features binary --locked)".to_owned(),
            S3Kind::Moto => format!(
                "moto's server is missing (${MOTO_SERVER_ENV} names no file, or it is unset and `moto_server` is not on PATH; scripts/test installs it)"
            ),
        };
        skip_or_fail(&how)
    }
}

/// What one request answered.
#[derive(Debug, Clone)]
pub struct S3Response {
    pub status: u16,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl S3Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The text of the first `<tag>…</tag>` in the XML body.
    pub fn xml_field(&self, tag: &str) -> Option<String> {
        let text = self.text();
        let open = format!("<{tag}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{tag}>"))? + start;
        Some(text[start..end].to_owned())
    }
}

/// How a request is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing<'a> {
    /// SigV4 with the server's keys.
    Valid,
    /// SigV4 with the right access key and this secret.
    Secret(&'a str),
    /// SigV4 with the server's keys, claiming this `x-amz-content-sha256` (hex) for the body.
    PayloadHash(&'a str),
    /// No `Authorization` at all.
    Unsigned,
}

/// An S3 server on 127.0.0.1 with one bucket ([`S3_BUCKET`]), killed by PID on drop.
#[derive(Debug)]
pub struct S3Server {
    _child: ChildGuard,
    pub kind: S3Kind,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl S3Server {
    /// `s3s-fs` with [`S3_ACCESS_KEY`]/[`S3_SECRET_KEY`] and the bucket [`S3_BUCKET`].
    pub fn s3s_fs() -> S3Server {
        S3Server::start(S3Kind::S3sFs)
    }

    /// moto's server with the bucket [`S3_BUCKET`] (created with a signed `PUT /bucket`).
    pub fn moto() -> S3Server {
        S3Server::start(S3Kind::Moto)
    }

    pub fn start(kind: S3Kind) -> S3Server {
        let bin = kind
            .binary()
            .unwrap_or_else(|| panic!("{} is not installed (see S3Kind::missing)", kind.name()));
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).expect("create the s3s-fs root");
        let mut last = String::new();
        for _ in 0..3 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.path().join("server.log"))
                .expect("log file");
            let mut cmd = Command::new(&bin);
            match kind {
                S3Kind::S3sFs => {
                    cmd.args(["--host", "127.0.0.1", "--port", &addr.port().to_string()])
                        .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
                        .arg(&root);
                }
                S3Kind::Moto => {
                    cmd.args(["-H", "127.0.0.1", "-p", &addr.port().to_string()]);
                }
            }
            cmd.stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log);
            clear_aws_env(&mut cmd);
            if let Some(child) = spawn_listening(&mut cmd, addr, Duration::from_secs(60)) {
                let server = S3Server {
                    _child: child,
                    kind,
                    addr,
                    dir,
                };
                server.create_bucket(S3_BUCKET);
                return server;
            }
            last = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
        }
        panic!("{} did not start:\n{last}", kind.name());
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn region(&self) -> &'static str {
        S3_REGION
    }

    pub fn bucket(&self) -> &'static str {
        S3_BUCKET
    }

    pub fn access_key(&self) -> &'static str {
        S3_ACCESS_KEY
    }

    pub fn secret_key(&self) -> &'static str {
        S3_SECRET_KEY
    }

    /// The environment a client of this server needs (for `Command::envs`).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.to_owned()),
            ("AWS_REGION", S3_REGION.to_owned()),
        ]
    }

    /// berth's registry configuration for this server's bucket, every key under `prefix`
    /// (the `[storage.s3]` table; credentials come from [`S3Server::env`]).
    pub fn berth_config(&self, prefix: &str) -> String {
        format!(
            "[storage]\ndriver = \"s3\"\n\n[storage.s3]\nbucket = \"{}\"\nregion = \"{}\"\nendpoint = \"{}\"\nprefix = \"{prefix}\"\npath_style = true\nallow_http = true\n",
            S3_BUCKET,
            S3_REGION,
            self.endpoint()
        )
    }

    /// Write [`S3Server::berth_config`] to `path`.
    pub fn write_berth_config(&self, path: &Path, prefix: &str) {
        write_file(path, self.berth_config(prefix).as_bytes());
    }

    /// Options for a `berth registry serve` on this server's bucket under `prefix`: the
    /// configuration written to `config` (a path the caller keeps; a replica's is written
    /// again, the same), `--config`, and in its environment exactly this server's
    /// credentials (none of the machine's `AWS_*`). Replicas are registries started with
    /// the same prefix.
    pub fn berth_options(&self, config: &Path, prefix: &str) -> RegistryOptions {
        self.berth_options_with(config, prefix, "")
    }

    /// [`S3Server::berth_options`] with `extra` appended to the `[storage.s3]` table
    /// (`redirect = true`).
    pub fn berth_options_with(&self, config: &Path, prefix: &str, extra: &str) -> RegistryOptions {
        write_file(
            config,
            format!("{}{extra}", self.berth_config(prefix)).as_bytes(),
        );
        let mut opts = RegistryOptions::new()
            .arg("--config")
            .arg(config)
            .env_remove_prefixed("AWS_");
        for (k, v) in self.env() {
            opts = opts.env(k, v);
        }
        opts
    }

    /// Its log (s3s-fs logs errors with their cause; moto logs one line per request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Create `bucket` (a signed `PUT /bucket`); panics unless the server answers 200.
    pub fn create_bucket(&self, bucket: &str) {
        let r = self.request("PUT", &format!("/{bucket}"), &[], None, Signing::Valid);
        assert_eq!(
            r.status,
            200,
            "{} refused to create bucket {bucket}: {}\n{}",
            self.kind.name(),
            r.text(),
            self.log()
        );
    }

    /// One request through curl: `path_and_query` is `/bucket/key?query` (write a bare
    /// query key as `uploads=`), `headers` are `Name: value` lines, `body` is sent as
    /// `application/octet-stream` with its SHA-256 as `x-amz-content-sha256`.
    pub fn request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[&str],
        body: Option<&[u8]>,
        signing: Signing<'_>,
    ) -> S3Response {
        let work = tempfile::tempdir().expect("tempdir");
        let head_file = work.path().join("headers");
        let body_file = work.path().join("body");
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-X", method, "-o"])
            .arg(&body_file)
            .arg("-D")
            .arg(&head_file)
            .args(["-w", "%{http_code}"]);
        let payload = body.unwrap_or_default();
        let payload_hash = crate::sha256(payload);
        match signing {
            Signing::Unsigned => {}
            Signing::Valid | Signing::Secret(_) | Signing::PayloadHash(_) => {
                let secret = match signing {
                    Signing::Secret(s) => s,
                    _ => S3_SECRET_KEY,
                };
                let claimed = match signing {
                    Signing::PayloadHash(h) => h,
                    _ => payload_hash.hex(),
                };
                cmd.arg("--aws-sigv4")
                    .arg(format!("aws:amz:{S3_REGION}:s3"))
                    .arg("--user")
                    .arg(format!("{S3_ACCESS_KEY}:{secret}"))
                    .arg("-H")
                    .arg(format!("x-amz-content-sha256:{claimed}"));
            }
        }
        if let Some(b) = body {
            let file = work.path().join("payload");
            write_file(&file, b);
            cmd.args([
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
            ])
            .arg(format!("@{}", file.display()));
        }
        for h in headers {
            cmd.arg("-H").arg(h);
        }
        cmd.arg(format!("{}{path_and_query}", self.endpoint()));
        let out = run_with_timeout(&mut cmd, REQUEST_TIMEOUT);
        assert!(
            out.status.success(),
            "curl {method} {path_and_query} to {} failed: {}",
            self.kind.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        let status = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("curl wrote no status: {out:?}"));
        let raw = std::fs::read_to_string(&head_file).unwrap_or_default();
        // the last header block (after any 100 Continue)
        let block = raw.trim_end().rsplit("\r\n\r\n").next().unwrap_or_default();
        let headers = block
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        S3Response {
            status,
            headers,
            body: std::fs::read(&body_file).unwrap_or_default(),
        }
    }

    /// `PUT` the object `key` in [`S3_BUCKET`] (signed), with extra `headers`.
    pub fn put(&self, key: &str, data: &[u8], headers: &[&str]) -> S3Response {
        self.request(
            "PUT",
            &format!("/{S3_BUCKET}/{key}"),
            headers,
            Some(data),
            Signing::Valid,
        )
    }

    /// The keys of [`S3_BUCKET`] under `prefix` (signed `ListObjectsV2`; `prefix` as it goes
    /// in the query string).
    pub fn list(&self, prefix: &str) -> S3Response {
        self.request(
            "GET",
            &format!("/{S3_BUCKET}?list-type=2&prefix={prefix}"),
            &[],
            None,
            Signing::Valid,
        )
    }

    /// `GET` the object `key` in [`S3_BUCKET`] (signed).
    pub fn get(&self, key: &str) -> S3Response {
        self.request(
            "GET",
            &format!("/{S3_BUCKET}/{key}"),
            &[],
            None,
            Signing::Valid,
        )
    }

    /// A presigned (query-string SigV4) `GET` URL for `key`, valid `expires_secs`, made by
    /// boto3 — a real AWS SDK's signer — from moto's virtualenv (it comes with moto[server]).
    pub fn presign_get(&self, key: &str, expires_secs: u32) -> String {
        let python = S3Kind::Moto
            .binary()
            .and_then(|m| std::fs::canonicalize(m).ok())
            .map(|m| m.with_file_name("python3"))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!("presigning needs boto3 from moto's virtualenv (${MOTO_SERVER_ENV})")
            });
        let script = format!(
            "import boto3\nfrom botocore.config import Config\n\
             c = boto3.client('s3', endpoint_url='{}', aws_access_key_id='{S3_ACCESS_KEY}', \
             aws_secret_access_key='{S3_SECRET_KEY}', region_name='{S3_REGION}', \
             config=Config(signature_version='s3v4', s3={{'addressing_style': 'path'}}))\n\
             print(c.generate_presigned_url('get_object', Params={{'Bucket': '{S3_BUCKET}', 'Key': '{key}'}}, ExpiresIn={expires_secs}))\n",
            self.endpoint()
        );
        let mut cmd = Command::new(python);
        cmd.arg("-c").arg(script);
        clear_aws_env(&mut cmd);
        let out = run_with_timeout(&mut cmd, REQUEST_TIMEOUT);
        assert!(
            out.status.success(),
            "boto3 could not presign {key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `GET` an absolute URL (a presigned one) with nothing added.
    pub fn get_url(&self, url: &str) -> S3Response {
        let path = url
            .strip_prefix(&self.endpoint())
            .unwrap_or_else(|| panic!("{url} is not on {}", self.endpoint()));
        self.request("GET", path, &[], None, Signing::Unsigned)
    }

    /// A multipart upload of `parts` to `key` (create, one `UploadPart` each, complete with
    /// `complete_headers`); returns the completion's response. Panics if any step before
    /// completion fails.
    pub fn multipart_upload(
        &self,
        key: &str,
        parts: &[&[u8]],
        complete_headers: &[&str],
    ) -> S3Response {
        let path = format!("/{S3_BUCKET}/{key}");
        let created = self.request(
            "POST",
            &format!("{path}?uploads="),
            &[],
            None,
            Signing::Valid,
        );
        let id = created.xml_field("UploadId").unwrap_or_else(|| {
            panic!(
                "{}: CreateMultipartUpload {key} answered {} without an UploadId: {}",
                self.kind.name(),
                created.status,
                created.text()
            )
        });
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, part) in parts.iter().enumerate() {
            let n = i + 1;
            let r = self.request(
                "PUT",
                &format!("{path}?partNumber={n}&uploadId={id}"),
                &[],
                Some(part),
                Signing::Valid,
            );
            let etag = r.header("etag").unwrap_or_else(|| {
                panic!(
                    "{}: UploadPart {n} of {key} answered {} without an ETag: {}",
                    self.kind.name(),
                    r.status,
                    r.text()
                )
            });
            xml.push_str(&format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        self.request(
            "POST",
            &format!("{path}?uploadId={id}"),
            complete_headers,
            Some(xml.as_bytes()),
            Signing::Valid,
        )
    }
}
