//! object_store's HTTP seam filled with berth's transport: hyper's pooled client over
//! rustls with the ring provider, roots from the system store plus the configured CA file.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use object_store::client::{
    HttpClient, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody, HttpResponse,
    HttpResponseBody, HttpService,
};
use object_store::{ClientOptions, client::HttpConnector as StoreConnector};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// How long a request may wait for its response's head (connecting included); bodies stream
/// for as long as they flow. object_store retries what times out.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("storage.s3.ca_file: {0}")]
    Roots(String),
    #[error("no usable TLS protocol versions")]
    Tls(#[source] rustls::Error),
}

/// Builds the client object_store sends its requests through.
#[derive(Debug, Clone)]
pub struct Connector {
    tls: Arc<rustls::ClientConfig>,
}

impl Connector {
    /// System roots plus `extra_roots` (PEM) when given.
    pub fn new(extra_roots: Option<&[u8]>) -> Result<Connector, TransportError> {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        if let Some(pem) = extra_roots {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<_, _>>()
                .map_err(|e| TransportError::Roots(format!("invalid PEM: {e}")))?;
            if certs.is_empty() {
                return Err(TransportError::Roots("no CERTIFICATE block".into()));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| TransportError::Roots(format!("not a usable CA: {e}")))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TransportError::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Connector { tls: Arc::new(tls) })
    }
}

impl StoreConnector for Connector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*self.tls).clone())
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_timer(TokioTimer::new())
            .build(https);
        Ok(HttpClient::new(Service { client }))
    }
}

#[derive(Debug)]
struct Service {
    client: Client<Https, HttpRequestBody>,
}

#[async_trait::async_trait]
impl HttpService for Service {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let resp = match tokio::time::timeout(RESPONSE_TIMEOUT, self.client.request(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let kind = if e.is_connect() {
                    HttpErrorKind::Connect
                } else {
                    HttpErrorKind::Request
                };
                return Err(HttpError::new(kind, e));
            }
            Err(e) => return Err(HttpError::new(HttpErrorKind::Timeout, e)),
        };
        let (parts, body) = resp.into_parts();
        let body = body.map_err(|e| HttpError::new(HttpErrorKind::Interrupted, e));
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}
