//! [`Ctx`]: what a check works with — the client, the repository, the shared test data —
//! and the recorder every request goes through, so that a check's report shows exactly
//! what it sent and received.

use std::time::Instant;

use berth_distribution::{Client, RawRequest, RawResponse};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::data::{Blob, Fixtures, Manifest};
use crate::existing::PullTarget;
use crate::model::{Exchange, Verdict};
use crate::redact;

/// Largest response body read (a 4 MiB manifest and some).
const BODY_LIMIT: usize = 8 << 20;

/// A request a check makes.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    method: Method,
    target: String,
    headers: HeaderMap,
    body: Bytes,
    anonymous: bool,
}

impl Req {
    pub(crate) fn new(method: Method, target: impl Into<String>) -> Req {
        Req {
            method,
            target: target.into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            anonymous: false,
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Req {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(HeaderName::from_static(name), v);
        }
        self
    }

    pub(crate) fn body(mut self, body: Bytes) -> Req {
        self.body = body;
        self
    }

    /// Without credentials, the `401` not answered.
    pub(crate) fn anonymous(mut self) -> Req {
        self.anonymous = true;
        self
    }
}

/// A response, with helpers checks use to judge it.
#[derive(Debug, Clone)]
pub(crate) struct Resp {
    pub raw: RawResponse,
    /// `METHOD url-path`, for reasons.
    pub what: String,
}

impl Resp {
    pub(crate) fn status(&self) -> u16 {
        self.raw.status
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.raw.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn body(&self) -> &Bytes {
        &self.raw.body
    }

    /// The `code`s of an `{"errors":[…]}` body.
    pub(crate) fn error_codes(&self) -> Vec<String> {
        serde_json::from_slice::<serde_json::Value>(&self.raw.body)
            .ok()
            .and_then(|v| {
                v.get("errors").and_then(|e| e.as_array()).map(|errs| {
                    errs.iter()
                        .filter_map(|e| e.get("code").and_then(|c| c.as_str()))
                        .map(str::to_owned)
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// `404 MANIFEST_UNKNOWN`-style summary of status and codes.
    pub(crate) fn summary(&self) -> String {
        let codes = self.error_codes();
        if codes.is_empty() {
            self.status().to_string()
        } else {
            format!("{} {}", self.status(), codes.join(","))
        }
    }

    /// Err(violation) unless the status is one of `ok`.
    pub(crate) fn expect_status(&self, ok: &[u16]) -> Result<&Resp, Verdict> {
        if ok.contains(&self.status()) {
            return Ok(self);
        }
        let want: Vec<String> = ok.iter().map(u16::to_string).collect();
        Err(Verdict::violation(format!(
            "{}: expected {}, got {}",
            self.what,
            want.join(" or "),
            self.summary()
        )))
    }

    /// Err(violation) unless `name` is present.
    pub(crate) fn require(&self, name: &str) -> Result<&str, Verdict> {
        self.header(name).ok_or_else(|| {
            Verdict::violation(format!(
                "{}: answered {} without a {name} header",
                self.what,
                self.status()
            ))
        })
    }

    /// The `Location` header resolved against the URL that answered.
    pub(crate) fn location(&self) -> Result<String, Verdict> {
        let loc = self.require("location")?;
        Ok(resolve(&self.raw.url, loc))
    }
}

/// `reference` (absolute URL, absolute path or relative path) resolved against `base`.
pub(crate) fn resolve(base: &str, reference: &str) -> String {
    if reference.contains("://") {
        return reference.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    let authority = rest.split('/').next().unwrap_or(rest);
    if reference.starts_with('/') {
        return format!("{scheme}://{authority}{reference}");
    }
    let path = base.split('?').next().unwrap_or(base);
    let dir = path.rsplit_once('/').map_or(path, |(d, _)| d);
    format!("{dir}/{reference}")
}

/// The path and query of a URL (for reasons and comparisons).
pub(crate) fn path_of(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => url,
    }
}

/// `path_and_query` with long query values (opaque upload state) cut, for reasons.
fn short(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if v.len() > 72 => format!("{k}=…"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// What checks share during one run.
#[derive(Debug)]
pub(crate) struct Ctx {
    client: Client,
    pub registry: String,
    /// The repository under test.
    pub repo: String,
    /// A second repository (cross-repository mounts): `<repo>-mount`.
    pub other_repo: String,
    pub fx: Fixtures,
    /// Why the shared test data could not be pushed, if it could not.
    pub setup_error: Option<String>,
    /// Whether credentials were given.
    pub has_credentials: bool,
    /// Manifests (repository, digest) and blobs pushed, for the cleanup.
    pub pushed_manifests: Vec<(String, String)>,
    pub pushed_blobs: Vec<(String, String)>,
    /// `OCI-Subject` of the setup's artifact push (whether the registry processed it).
    pub setup_oci_subject: Option<String>,
    /// The tag or digest of existing content to check read-only (nothing is written).
    pub read_only: Option<String>,
    /// What the pull checks pull: the pushed test data, or the existing image resolved
    /// by the setup of a read-only run (`None` until then).
    pub target: Option<PullTarget>,
    log: Vec<Exchange>,
    scopes: Vec<String>,
}

impl Ctx {
    pub(crate) fn new(client: Client, registry: &str, repo: &str, has_credentials: bool) -> Ctx {
        let other_repo = format!("{repo}-mount");
        let scopes = vec![
            format!("repository:{repo}:pull,push,delete"),
            format!("repository:{other_repo}:pull,push,delete"),
        ];
        let fx = Fixtures::generate();
        Ctx {
            client,
            registry: registry.to_owned(),
            repo: repo.to_owned(),
            other_repo,
            target: Some(PullTarget::of_fixtures(&fx)),
            read_only: None,
            fx,
            setup_error: None,
            has_credentials,
            pushed_manifests: Vec::new(),
            pushed_blobs: Vec::new(),
            setup_oci_subject: None,
            log: Vec::new(),
            scopes,
        }
    }

    /// The credentials the client sends to the registry, if any (for the auth checks that
    /// follow the token flow themselves, so that each step is recorded).
    pub(crate) async fn credential(&self) -> Option<berth_distribution::Credential> {
        self.client.credential(&self.registry).await.ok().flatten()
    }

    /// Ask for `scope` in tokens from now on.
    pub(crate) fn add_scope(&mut self, scope: String) {
        if !self.scopes.contains(&scope) {
            self.scopes.push(scope);
        }
    }

    /// The exchanges recorded since the last call.
    pub(crate) fn take_log(&mut self) -> Vec<Exchange> {
        std::mem::take(&mut self.log)
    }

    /// `/v2/<repo>/<rest>`.
    pub(crate) fn path(&self, rest: &str) -> String {
        format!("/v2/{}/{rest}", self.repo)
    }

    /// Check `reference` (a tag or digest in the repository) read-only from now on: the
    /// setup resolves it instead of pushing, and nothing but `GET` and `HEAD` is sent.
    pub(crate) fn set_read_only(&mut self, reference: &str) {
        self.read_only = Some(reference.to_owned());
        self.target = None;
    }

    /// What the pull checks pull; Err(not run) when the setup could not provide it.
    pub(crate) fn pull_target(&self) -> Result<PullTarget, Verdict> {
        crate::checks::need_setup(self)?;
        self.target
            .clone()
            .ok_or_else(|| Verdict::NotRun("no content to pull was resolved".into()))
    }

    /// Err(not run) in a read-only run: the check has to write.
    pub(crate) fn need_writes(&self) -> Result<(), Verdict> {
        match &self.read_only {
            Some(r) => Err(Verdict::NotRun(format!(
                "read-only run (checking {r}): this check writes to the registry"
            ))),
            None => Ok(()),
        }
    }

    /// Send `req`, record it; a transport failure is a violation. In a read-only run a
    /// request that could write is refused here, before it is sent.
    pub(crate) async fn send(&mut self, req: Req) -> Result<Resp, Verdict> {
        if self.read_only.is_some() && req.method != Method::GET && req.method != Method::HEAD {
            self.need_writes()?;
        }
        let url = self.client.url_of(&self.registry, &req.target);
        let mut exchange = Exchange {
            method: req.method.to_string(),
            url: redact::url(&url),
            request_headers: redact::headers(&req.headers),
            request_body: redact::body(&req.body),
            status: None,
            response_headers: Vec::new(),
            response_body: None,
            error: None,
            duration_ms: 0,
        };
        let what = format!("{} {}", req.method, short(path_of(&redact::url(&url))));
        let raw = RawRequest {
            method: req.method,
            target: req.target,
            headers: req.headers,
            body: req.body,
            scopes: self.scopes.clone(),
            anonymous: req.anonymous,
        };
        let start = Instant::now();
        let result = self.client.exchange(&self.registry, raw, BODY_LIMIT).await;
        exchange.duration_ms = start.elapsed().as_millis() as u64;
        match result {
            Ok(raw) => {
                exchange.status = Some(raw.status);
                exchange.response_headers = redact::headers(&raw.headers);
                exchange.response_body = redact::body(&raw.body);
                if raw.url != url {
                    exchange.url = redact::url(&raw.url);
                }
                self.log.push(exchange);
                Ok(Resp { raw, what })
            }
            Err(e) => {
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg.push_str(": ");
                    msg.push_str(&s.to_string());
                    src = s.source();
                }
                exchange.error = Some(msg.clone());
                self.log.push(exchange);
                Err(Verdict::violation(format!("{what}: no response: {msg}")))
            }
        }
    }

    /// Upload `blob` to `repo` with POST then PUT (the one upload method every pushing
    /// registry must offer); returns the blob's `Location`.
    pub(crate) async fn upload(&mut self, repo: &str, blob: &Blob) -> Result<String, Verdict> {
        let post = self
            .send(Req::new(Method::POST, format!("/v2/{repo}/blobs/uploads/")))
            .await?;
        post.expect_status(&[202])?;
        let loc = post.location()?;
        let put = self
            .send(
                Req::new(
                    Method::PUT,
                    with_query(&loc, "digest", blob.digest.as_str()),
                )
                .header("content-type", "application/octet-stream")
                .body(blob.data.clone()),
            )
            .await?;
        put.expect_status(&[201])?;
        self.pushed_blobs
            .push((repo.to_owned(), blob.digest.to_string()));
        put.location()
    }

    /// PUT `manifest` to `repo` under `reference` (a tag or its digest).
    pub(crate) async fn put_manifest(
        &mut self,
        repo: &str,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<Resp, Verdict> {
        let resp = self
            .send(
                Req::new(Method::PUT, format!("/v2/{repo}/manifests/{reference}"))
                    .header("content-type", manifest.media_type)
                    .body(manifest.blob.data.clone()),
            )
            .await?;
        if resp.status() == 201 {
            self.pushed_manifests
                .push((repo.to_owned(), manifest.digest().to_string()));
        }
        Ok(resp)
    }

    /// Push the shared test data (or, in a read-only run, resolve the content named); on
    /// failure, remember why (checks needing it are skipped).
    pub(crate) async fn setup(&mut self) {
        let result = match self.read_only.clone() {
            Some(reference) => crate::existing::resolve(self, &reference).await,
            None => self.try_setup().await,
        };
        if let Err(v) = result {
            let mut reason = match v {
                Verdict::Violation(r) | Verdict::Unsupported(r) | Verdict::NotRun(r) => r,
                Verdict::Pass => String::new(),
            };
            let refused = self.log.iter().any(|e| {
                e.method != "GET"
                    && e.method != "HEAD"
                    && matches!(e.status, Some(401 | 403 | 405 | 503))
            });
            if refused {
                reason.push_str(
                    "; the registry refuses writes (read-only, a mirror, or no push rights?): \
                     name an existing image to check it without writing \
                     (berth conformance check REGISTRY/REPOSITORY:TAG --only pull)",
                );
            }
            self.setup_error = Some(reason);
        }
    }

    async fn try_setup(&mut self) -> Result<(), Verdict> {
        let repo = self.repo.clone();
        let fx = self.fx.clone();
        for blob in [&fx.layer, &fx.config, &fx.empty_json] {
            self.upload(&repo, blob).await?;
        }
        for tag in fx.tags() {
            self.put_manifest(&repo, &tag, &fx.image)
                .await?
                .expect_status(&[201])?;
        }
        let index_tag = format!("{}-index", fx.tag());
        self.put_manifest(&repo, &index_tag, &fx.index)
            .await?
            .expect_status(&[201])?;
        let a = self
            .put_manifest(&repo, fx.artifact_a.digest().as_str(), &fx.artifact_a)
            .await?;
        a.expect_status(&[201])?;
        self.setup_oci_subject = a.header("oci-subject").map(str::to_owned);
        self.put_manifest(&repo, fx.artifact_b.digest().as_str(), &fx.artifact_b)
            .await?
            .expect_status(&[201])?;
        Ok(())
    }

    /// Delete what the run pushed (manifests, then blobs), where the registry allows it.
    pub(crate) async fn cleanup(&mut self) {
        let manifests = std::mem::take(&mut self.pushed_manifests);
        let mut seen = std::collections::HashSet::new();
        for (repo, digest) in manifests.iter().rev() {
            if seen.insert((repo.clone(), digest.clone())) {
                let _ = self
                    .send(Req::new(
                        Method::DELETE,
                        format!("/v2/{repo}/manifests/{digest}"),
                    ))
                    .await;
            }
        }
        let blobs = std::mem::take(&mut self.pushed_blobs);
        for (repo, digest) in blobs.iter().rev() {
            if seen.insert((repo.clone(), digest.clone())) {
                let _ = self
                    .send(Req::new(
                        Method::DELETE,
                        format!("/v2/{repo}/blobs/{digest}"),
                    ))
                    .await;
            }
        }
    }
}

/// `url` with `key=value` appended to its query.
pub(crate) fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve() {
        let base = "http://127.0.0.1:5000/v2/a/blobs/uploads/?x=1";
        assert_eq!(
            resolve(base, "/v2/a/blobs/uploads/u1"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/u1"
        );
        assert_eq!(
            resolve(base, "https://s3.example/b?sig=1"),
            "https://s3.example/b?sig=1"
        );
        assert_eq!(
            resolve(base, "u2"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/u2"
        );
        assert_eq!(path_of("http://h:1/v2/a?b=c"), "/v2/a?b=c");
        assert_eq!(
            with_query("/u?_state=x", "digest", "d"),
            "/u?_state=x&digest=d"
        );
    }
}
