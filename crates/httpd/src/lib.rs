//! `berth-httpd`: the HTTP server core shared by the registry and the admission webhook.
//!
//! Owns the accept loop (TCP, optionally TLS, → hyper-util's HTTP/1.1 + HTTP/2 builder → an
//! axum [`Router`](axum::Router)), TLS configuration from PEM files, graceful drain on
//! shutdown, the per-connection limits, and the request span and access log
//! ([`AccessLogLayer`]) any router can put in front of its handlers. It owns no routes, no
//! authentication and no metrics: those belong to the server that uses it.
//!
//! Design decision: a server is a bound [`Server`] plus the router it is given at
//! [`Server::serve`]: what a server does is entirely its router's, so the registry and the
//! webhook share every line between the socket and their handlers and nothing after it.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Router, routing::get};
//! use berth_httpd::{AccessLogLayer, Config, Server};
//!
//! let app = Router::new().route("/healthz", get(|| async { "ok" })).layer(AccessLogLayer);
//! let server = Server::bind(Config::new("127.0.0.1:8443".parse()?)).await?;
//! server.serve(app, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```

pub mod access_log;
pub mod server;
pub mod tls;

pub use access_log::{AccessLogLayer, RouteLabel};
pub use server::{Config, Limits, Server, ServerError, TlsFiles};
pub use tls::TlsError;
