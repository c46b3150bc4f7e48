//! The two things the webhook asks the Kubernetes API server, with the Pod's service account
//! token, over TLS verified against the cluster's CA: every Namespace's labels
//! (`GET /api/v1/namespaces`, for `namespaceSelector` rules, instead of a labels file), and
//! one Secret by name (`GET /api/v1/namespaces/NS/secrets/NAME`, a reviewed Pod's
//! `imagePullSecrets`; parsed by [`crate::pull_secrets`]).
//!
//! The token is read from its file at every request (the kubelet rotates projected tokens).
//! The namespace list is read up to [`MAX_LIST_BYTES`]; its `items[].metadata.{name,labels}`
//! are all that is kept. A Secret is read up to [`MAX_SECRET_RESPONSE_BYTES`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::NamespaceLabels;

/// Largest namespace list read (a cluster's namespaces with their metadata).
pub const MAX_LIST_BYTES: usize = 64 * 1024 * 1024;
/// Largest answer read for one Secret: the API server stores at most 1 MiB of data per
/// Secret, which base64 in JSON makes 4/3 larger, plus metadata.
pub const MAX_SECRET_RESPONSE_BYTES: usize = 2 * 1024 * 1024;

/// What failed while asking the API server.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("invalid API server address {url:?}: {reason}")]
    Url { url: String, reason: String },
    /// The CA or token file cannot be read.
    #[error(transparent)]
    File(#[from] crate::config::ConfigError),
    #[error("no CA certificate in {path}")]
    NoCa { path: PathBuf },
    #[error("failed to reach the API server {url}")]
    Connect {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the API server {url} did not answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("HTTP to the API server {url} failed")]
    Http {
        url: String,
        #[source]
        source: hyper::Error,
    },
    #[error("the API server answered {status} to GET {path}: {body}")]
    Status {
        status: u16,
        path: String,
        body: String,
    },
    #[error("the API server's answer to GET {path} is unreadable or over {max} bytes")]
    Body { path: String, max: usize },
    #[error("the API server's namespace list is not a NamespaceList: {detail}")]
    Json { detail: String },
}

/// Where the API server is, and how the webhook authenticates to it.
#[derive(Debug, Clone)]
pub struct KubeApi {
    url: String,
    authority: String,
    server_name: ServerName<'static>,
    token_file: PathBuf,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
}

impl KubeApi {
    /// `url` is `https://HOST:PORT`; `ca_file` the cluster CA (PEM); `token_file` the
    /// service account token.
    pub fn new(
        url: &str,
        ca_file: &Path,
        token_file: &Path,
        timeout: Duration,
    ) -> Result<KubeApi, KubeError> {
        let bad = |reason: &str| KubeError::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let authority = url
            .strip_prefix("https://")
            .ok_or_else(|| bad("it must start with https://"))?
            .trim_end_matches('/')
            .to_string();
        if authority.is_empty() || authority.contains('/') {
            return Err(bad("expected https://HOST[:PORT]"));
        }
        let host = match authority.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => h,
            _ => authority.as_str(),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|_| bad("the host is not a DNS name or IP address"))?;
        let pem = std::fs::read(ca_file).map_err(|source| crate::config::ConfigError::Read {
            what: "the API server's CA",
            path: ca_file.to_path_buf(),
            source,
        })?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            return Err(KubeError::NoCa {
                path: ca_file.to_path_buf(),
            });
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| bad("no TLS protocol version available"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(KubeApi {
            url: url.trim_end_matches('/').to_string(),
            authority,
            server_name,
            token_file: token_file.to_path_buf(),
            tls: Arc::new(tls),
            timeout,
        })
    }

    /// `GET path`, the body of a `200` (at most `max` bytes).
    async fn get(&self, path: &str, max: usize) -> Result<Bytes, KubeError> {
        let token = std::fs::read_to_string(&self.token_file).map_err(|source| {
            crate::config::ConfigError::Read {
                what: "the service account token",
                path: self.token_file.clone(),
                source,
            }
        })?;
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::ACCEPT, "application/json")
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", token.trim()),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|_| KubeError::Url {
                url: self.url.clone(),
                reason: "the token is not a valid header value".to_string(),
            })?;
        let exchange = async {
            let connect = |source| KubeError::Connect {
                url: self.url.clone(),
                source,
            };
            let tcp = TcpStream::connect(&self.authority).await.map_err(connect)?;
            let tls = TlsConnector::from(self.tls.clone())
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(connect)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                    .await
                    .map_err(|source| KubeError::Http {
                        url: self.url.clone(),
                        source,
                    })?;
            let driver = tokio::spawn(conn);
            let response =
                sender
                    .send_request(request)
                    .await
                    .map_err(|source| KubeError::Http {
                        url: self.url.clone(),
                        source,
                    })?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), max)
                .collect()
                .await
                .map_err(|_| KubeError::Body {
                    path: path.to_string(),
                    max,
                })?
                .to_bytes();
            driver.abort();
            if status != 200 {
                let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                return Err(KubeError::Status {
                    status,
                    path: path.to_string(),
                    body: text,
                });
            }
            Ok(body)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| KubeError::Timeout {
                url: self.url.clone(),
                secs: self.timeout.as_secs(),
            })?
    }

    /// Every namespace's labels.
    pub async fn namespace_labels(&self) -> Result<NamespaceLabels, KubeError> {
        let body = self.get("/api/v1/namespaces", MAX_LIST_BYTES).await?;
        parse_namespace_list(&body)
    }

    /// The Secret `name` of `namespace`, as the API server answers it (JSON); `Ok(None)`
    /// when it does not exist. Both names must be DNS subdomains (checked here: they become
    /// the request's path).
    pub async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Bytes>, KubeError> {
        for n in [namespace, name] {
            if !is_dns_subdomain(n) {
                return Err(KubeError::Url {
                    url: self.url.clone(),
                    reason: format!("{n:?} is not a valid object name"),
                });
            }
        }
        let path = format!("/api/v1/namespaces/{namespace}/secrets/{name}");
        match self.get(&path, MAX_SECRET_RESPONSE_BYTES).await {
            Ok(b) => Ok(Some(b)),
            Err(KubeError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A Kubernetes object name (RFC 1123 subdomain): at most 253 characters of lowercase
/// letters, digits, `-` and `.`, starting and ending with a letter or digit.
pub fn is_dns_subdomain(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 253
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `items[].metadata.{name,labels}` of a `NamespaceList`.
pub fn parse_namespace_list(body: &[u8]) -> Result<NamespaceLabels, KubeError> {
    #[derive(Deserialize)]
    struct List {
        kind: Option<String>,
        #[serde(default)]
        items: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        metadata: Metadata,
    }
    #[derive(Deserialize)]
    struct Metadata {
        name: String,
        #[serde(default)]
        labels: std::collections::BTreeMap<String, String>,
    }
    let list: List = serde_json::from_slice(body).map_err(|e| KubeError::Json {
        detail: e.to_string(),
    })?;
    if list.kind.as_deref().is_some_and(|k| k != "NamespaceList") {
        return Err(KubeError::Json {
            detail: format!("its kind is {:?}", list.kind.unwrap_or_default()),
        });
    }
    Ok(list
        .items
        .into_iter()
        .map(|i| (i.metadata.name, i.metadata.labels))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_namespace_list() {
        let body = br#"{"kind":"NamespaceList","apiVersion":"v1","metadata":{"resourceVersion":"1"},
          "items":[{"metadata":{"name":"default","labels":{"kubernetes.io/metadata.name":"default"}}},
                   {"metadata":{"name":"bare"}}]}"#;
        let l = parse_namespace_list(body).unwrap();
        assert_eq!(l["default"]["kubernetes.io/metadata.name"], "default");
        assert!(l["bare"].is_empty());
        assert!(parse_namespace_list(br#"{"kind":"PodList","items":[]}"#).is_err());
        assert!(parse_namespace_list(b"[").is_err());
        assert!(parse_namespace_list(br#"{"items":[{"metadata":{}}]}"#).is_err());
    }

    #[test]
    fn object_names_are_dns_subdomains() {
        for ok in ["regcred", "a", "my-secret.v2", "0abc"] {
            assert!(is_dns_subdomain(ok), "{ok}");
        }
        for bad in ["", "../x", "a/b", "A", "-a", "a-", "a?b", &"a".repeat(254)] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
    }

    #[test]
    fn refuses_what_is_not_https() {
        let ca = Path::new("/nonexistent");
        for url in ["http://10.0.0.1:443", "https://", "https://h/x"] {
            assert!(matches!(
                KubeApi::new(url, ca, ca, Duration::from_secs(1)),
                Err(KubeError::Url { .. })
            ));
        }
        assert!(matches!(
            KubeApi::new("https://10.0.0.1:443", ca, ca, Duration::from_secs(1)),
            Err(KubeError::File(_))
        ));
    }
}
