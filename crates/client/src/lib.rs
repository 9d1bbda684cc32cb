//! A typed client of Latchkey's HTTP API, and the remote verifier built on it.
//!
//! [`Client`] speaks the wire formats of `latchkey-proto` to a Latchkey server, over HTTPS with
//! the system's roots or a private CA (`--cacert`). [`RemoteVerifier`] answers verifications
//! from a local cache that the change stream keeps right, so a service in front of which it
//! runs asks the server once per credential, not once per request.

pub mod remote;
pub mod sse;

pub use remote::{RemoteOptions, RemoteVerifier};

use latchkey_proto::{VerifyAnswer, VerifyRequest};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use std::time::Duration;
use url::Url;

/// Why a call to the server did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, timed out, or answered 5xx: no verdict.
    #[error("the Latchkey server is unavailable: {0}")]
    Unavailable(String),
    /// The server refused this client's own credential (401/403): a configuration problem.
    #[error("the Latchkey server refused this client's credential ({status})")]
    Refused { status: u16 },
    /// The server answered something this client does not understand.
    #[error("unexpected answer from the Latchkey server: {0}")]
    Protocol(String),
    /// The client's own configuration is wrong (URL, CA file).
    #[error("{0}")]
    Config(String),
}

/// How a [`Client`] connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// A PEM file of CA certificates to trust besides the system's (a private CA).
    pub ca_cert: Option<std::path::PathBuf>,
    /// The whole of one request, from connecting to the last byte of the answer.
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            ca_cert: None,
            timeout: Duration::from_secs(5),
        }
    }
}

/// A Latchkey server, and the API key this client presents to it.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The same, without an overall timeout: for the change stream, which stays open.
    streaming: reqwest::Client,
    base: Url,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish()
    }
}

impl Client {
    pub fn new(
        base_url: &str,
        api_key: &str,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let mut base = Url::parse(base_url)
            .map_err(|e| ClientError::Config(format!("invalid Latchkey URL {base_url:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ClientError::Config(format!(
                "the Latchkey URL must be http:// or https://, not {base_url:?}"
            )));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {api_key}"))
            .map_err(|_| ClientError::Config("the API key is not a valid header value".into()))?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let builder = || {
            let mut b = reqwest::Client::builder()
                .default_headers(headers.clone())
                .connect_timeout(options.timeout)
                .user_agent(concat!("latchkey-client/", env!("CARGO_PKG_VERSION")));
            if let Some(path) = &options.ca_cert {
                let pem = std::fs::read(path).map_err(|e| {
                    ClientError::Config(format!("reading the CA file {}: {e}", path.display()))
                })?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    ClientError::Config(format!("the CA file {} is not PEM: {e}", path.display()))
                })?;
                for c in certs {
                    b = b.add_root_certificate(c);
                }
            }
            Ok::<_, ClientError>(b)
        };
        let http = builder()?
            .timeout(options.timeout)
            .build()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let streaming = builder()?
            .build()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        Ok(Self {
            http,
            streaming,
            base,
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("a relative API path")
    }

    /// `POST /v1/verify`.
    pub async fn verify(&self, request: &VerifyRequest) -> Result<VerifyAnswer, ClientError> {
        let resp = self
            .http
            .post(self.url("v1/verify"))
            .json(request)
            .send()
            .await
            .map_err(unavailable)?;
        let resp = check(resp)?;
        resp.json()
            .await
            .map_err(|e| ClientError::Protocol(format!("verify answer: {e}")))
    }

    /// `GET /v1/changes`, resuming after `after`: the open response, to read as a stream.
    pub async fn changes(&self, after: Option<i64>) -> Result<reqwest::Response, ClientError> {
        let mut req = self
            .streaming
            .get(self.url("v1/changes"))
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(a) = after {
            req = req.header("last-event-id", a.to_string());
        }
        let resp = req.send().await.map_err(unavailable)?;
        check(resp)
    }
}

fn unavailable(e: reqwest::Error) -> ClientError {
    // The error names the URL, never a header.
    ClientError::Unavailable(e.to_string())
}

fn check(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = resp.status();
    if status.is_success() {
        Ok(resp)
    } else if status == 401 || status == 403 {
        Err(ClientError::Refused {
            status: status.as_u16(),
        })
    } else if status.is_server_error() || status == 429 {
        Err(ClientError::Unavailable(format!("HTTP {status}")))
    } else {
        Err(ClientError::Protocol(format!("HTTP {status}")))
    }
}
