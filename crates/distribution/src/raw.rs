//! [`Client::exchange`]: one request exactly as the caller built it, and the whole response
//! exactly as the registry sent it — for tools that judge a registry's answers (the
//! conformance checks) rather than use them. Authentication is still the client's (the
//! challenge is answered and the token flow followed, unless the caller asks for an
//! anonymous request), and so are TLS and the plain-HTTP policy; nothing else is
//! interpreted: any status is returned, redirects are followed only for `GET` and `HEAD`.

use bytes::Bytes;
use http::{HeaderMap, Method};

use crate::auth::Scopes;
use crate::body::{Body, read_body};
use crate::client::Client;
use crate::error::{Error, Target};
use crate::transport::{Endpoint, Op, Outgoing, SendAuth};

/// A request for [`Client::exchange`].
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// The method.
    pub method: Method,
    /// A path and query under the registry (`/v2/…`), or an absolute URL (an upload
    /// `Location`).
    pub target: String,
    /// Headers sent as they are (`Authorization` is the client's and is added after).
    pub headers: HeaderMap,
    /// The body (empty for none).
    pub body: Bytes,
    /// Token scopes the request needs (`repository:<name>:pull,push`); empty for `/v2/`.
    pub scopes: Vec<String>,
    /// Send without credentials and without answering a `401` (to see the challenge).
    pub anonymous: bool,
}

impl RawRequest {
    /// A `method` request to `target` with no headers, body or scopes.
    pub fn new(method: Method, target: impl Into<String>) -> RawRequest {
        RawRequest {
            method,
            target: target.into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            scopes: Vec::new(),
            anonymous: false,
        }
    }
}

/// A response read whole by [`Client::exchange`].
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The URL that answered (after redirects).
    pub url: String,
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, at most the limit given to [`Client::exchange`].
    pub body: Bytes,
}

impl Client {
    /// The absolute URL `target` (a `/v2/…` path or an absolute URL) means on `registry`.
    pub fn url_of(&self, registry: &str, target: &str) -> String {
        self.inner.transport.url(registry, &endpoint(target)).0
    }

    /// Send `req` to `registry` and read the whole response (at most `body_limit` bytes,
    /// else an error). A `401` is answered with credentials or a token unless
    /// `req.anonymous`; one that cannot be answered is returned as a response, not an
    /// error. Errors are transport failures only.
    #[tracing::instrument(level = "debug", skip_all, fields(registry = %registry, method = %req.method))]
    pub async fn exchange(
        &self,
        registry: &str,
        req: RawRequest,
        body_limit: usize,
    ) -> Result<RawResponse, Error> {
        let op = Op {
            name: "exchange",
            target: Target::registry_only(registry),
        };
        let mut out = Outgoing::new(req.method.clone(), endpoint(&req.target));
        out.headers = req.headers;
        if !req.body.is_empty() {
            out = out.body(Body::Bytes(req.body));
        }
        let reply = if req.anonymous {
            self.inner
                .transport
                .send(&op, registry, &out, SendAuth::None)
                .await?
        } else {
            let mut scopes = Scopes::default();
            for s in req.scopes {
                scopes = scopes.with(s);
            }
            match self.call(&op, registry, scopes, out.clone()).await {
                Ok(reply) => reply,
                // The challenge could not be answered: show the registry's 401 itself.
                Err(Error::Unauthorized { .. } | Error::Denied { .. }) => {
                    self.inner
                        .transport
                        .send(&op, registry, &out, SendAuth::None)
                        .await?
                }
                Err(e) => return Err(e),
            }
        };
        let url = reply.url;
        let status = reply.resp.status().as_u16();
        let headers = reply.resp.headers().clone();
        let body = if req.method == Method::HEAD {
            Bytes::new()
        } else {
            read_body(&op, reply.resp, body_limit, self.idle()).await?
        };
        Ok(RawResponse {
            url,
            status,
            headers,
            body,
        })
    }
}

fn endpoint(target: &str) -> Endpoint {
    if target.starts_with("http://") || target.starts_with("https://") {
        Endpoint::Url(target.to_owned())
    } else {
        Endpoint::Path(target.to_owned())
    }
}
