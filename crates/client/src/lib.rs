//! A typed client of Latchkey's HTTP API, and the remote verifier built on it.
//!
//! [`Client`] speaks the wire formats of `latchkey-proto` to a Latchkey server, over HTTPS with
//! the built-in roots and, if given, a private CA (`--cacert`). Each endpoint is a method that
//! returns a [`Call`]: await it for the typed answer, or ask it for the answer as some other
//! type (`serde_json::Value` to pass the server's JSON on as received):
//!
//! ```no_run
//! # async fn demo() -> Result<(), latchkey_client::ClientError> {
//! use latchkey_client::{Client, ClientOptions};
//! use latchkey_proto::keys::CreateKey;
//! let client = Client::new("https://latchkey.internal", "sk_live_…", &ClientOptions::default())?;
//! let created = client.keys().create(&CreateKey { name: "ci".into(), ..Default::default() }).await?;
//! println!("{} {}", created.key.id, created.secret.expose());
//! let raw: serde_json::Value = client.keys().get(&created.key.id).send_as().await?;
//! # Ok(()) }
//! ```
//!
//! [`RemoteVerifier`] answers verifications from a local cache that the change stream keeps
//! right, so a service in front of which it runs asks the server once per credential, not once
//! per request.

pub mod api;
pub mod call;
pub mod remote;
pub mod sse;

pub use call::Call;
pub use latchkey_proto::Problem;
pub use remote::{RemoteOptions, RemoteVerifier};

use latchkey_proto::{VerifyAnswer, VerifyRequest};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use std::fmt;
use std::time::Duration;
use url::Url;

/// Why a call to the server did not produce an answer. No variant ever holds the API key.
#[derive(Debug)]
pub enum ClientError {
    /// The server could not be reached, timed out, or answered 5xx: no verdict.
    Unavailable(String),
    /// The server refused this client's own credential for verification or the change
    /// stream (401/403): a configuration problem, never a verdict on the key being verified.
    Refused { status: u16 },
    /// The server answered a call of the Admin API with a 4xx problem: the message for
    /// people is its `detail` (with any field errors), the `code` is for programs.
    Api {
        status: u16,
        /// Boxed: it is large, and `Result<_, ClientError>` is on the verifier's hot path.
        problem: Box<Problem>,
        /// `Retry-After` of a 429, in seconds.
        retry_after: Option<u64>,
    },
    /// The server answered with a redirect, which this client does not follow (it would
    /// turn a POST into a GET, and take the key elsewhere): the URL is probably wrong.
    Redirected {
        status: u16,
        location: Option<String>,
    },
    /// The server answered something this client does not understand.
    Protocol(String),
    /// The client's own configuration is wrong (URL, CA file).
    Config(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unavailable(m) | ClientError::Config(m) => f.write_str(m),
            ClientError::Refused { status } => write!(
                f,
                "the Latchkey server refused this client's credential ({status})"
            ),
            ClientError::Api {
                status,
                problem,
                retry_after,
            } => {
                write!(f, "{problem}")?;
                match retry_after {
                    Some(s) if *status == 429 => write!(f, " (retry after {s} seconds)"),
                    _ => Ok(()),
                }
            }
            ClientError::Redirected { status, location } => {
                write!(f, "the Latchkey server answered with a redirect ({status})")?;
                match location {
                    Some(l) => write!(f, " to {l}"),
                    None => Ok(()),
                }
            }
            ClientError::Protocol(m) => {
                write!(f, "unexpected answer from the Latchkey server: {m}")
            }
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// The HTTP status of an answer the server gave, if it gave one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status }
            | ClientError::Api { status, .. }
            | ClientError::Redirected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The problem's `code` (`not_found`, `conflict`, …) of an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { problem, .. } => Some(&problem.code),
            _ => None,
        }
    }
}

/// How a [`Client`] connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// A PEM file of CA certificates to trust besides the built-in roots (a private CA).
    pub ca_cert: Option<std::path::PathBuf>,
    /// The whole of one request, from connecting to the last byte of the answer.
    pub timeout: Duration,
    /// Connecting alone; `None` is `timeout`.
    pub connect_timeout: Option<Duration>,
    /// The `User-Agent` (it shows in the audit log); `None` is `latchkey-client/{version}`.
    pub user_agent: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            ca_cert: None,
            timeout: Duration::from_secs(5),
            connect_timeout: None,
            user_agent: None,
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
    /// `base` as messages show it: without a user name or password.
    shown: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("Client").field("base", &self.shown).finish()
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
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::Config(format!(
                "the Latchkey URL must be http:// or https://, not {base_url:?}"
            )));
        }
        base.set_query(None);
        base.set_fragment(None);
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {api_key}")).map_err(|_| {
            ClientError::Config(
                "the API key contains characters not allowed in an HTTP header".into(),
            )
        })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let roots = match &options.ca_cert {
            Some(path) => read_ca(path)?,
            None => Vec::new(),
        };
        let user_agent = options
            .user_agent
            .clone()
            .unwrap_or_else(|| concat!("latchkey-client/", env!("CARGO_PKG_VERSION")).into());
        let builder = || {
            let mut b = reqwest::Client::builder()
                .default_headers(headers.clone())
                .connect_timeout(options.connect_timeout.unwrap_or(options.timeout))
                .user_agent(user_agent.clone())
                // A redirect would turn a POST into a GET: report it instead.
                .redirect(reqwest::redirect::Policy::none());
            for c in &roots {
                b = b.add_root_certificate(c.clone());
            }
            b
        };
        let http = builder()
            .timeout(options.timeout)
            .build()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let streaming = builder()
            .build()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let shown = shown(&base);
        Ok(Self {
            http,
            streaming,
            base,
            shown,
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The base URL plus percent-encoded path segments, so an id can never change the route.
    pub(crate) fn endpoint<S: AsRef<str>>(&self, segments: &[S]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(segments.iter().map(AsRef::as_ref));
        }
        url
    }

    /// `POST /v1/verify`.
    pub async fn verify(&self, request: &VerifyRequest) -> Result<VerifyAnswer, ClientError> {
        let resp = self
            .http
            .post(self.endpoint(&["v1", "verify"]))
            .json(request)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        let resp = check_verifier(resp)?;
        resp.json()
            .await
            .map_err(|e| ClientError::Protocol(format!("verify answer: {e}")))
    }

    /// `GET /v1/changes`, resuming after `after`: the open response, to read as a stream.
    pub async fn changes(&self, after: Option<i64>) -> Result<reqwest::Response, ClientError> {
        let mut req = self
            .streaming
            .get(self.endpoint(&["v1", "changes"]))
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(a) = after {
            req = req.header("last-event-id", a.to_string());
        }
        let resp = req.send().await.map_err(|e| self.transport(&e))?;
        check_verifier(resp)
    }

    /// A failed exchange with the server, in words that name it (never a header).
    pub(crate) fn transport(&self, e: &reqwest::Error) -> ClientError {
        let at = &self.shown;
        let mut cause: &dyn std::error::Error = e;
        while let Some(source) = cause.source() {
            cause = source;
        }
        ClientError::Unavailable(if e.is_timeout() {
            format!("timed out waiting for the Latchkey server at {at}")
        } else if e.is_connect() {
            format!("cannot connect to the Latchkey server at {at}: {cause}")
        } else {
            format!("request to the Latchkey server at {at} failed: {cause}")
        })
    }

    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }
}

fn read_ca(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let pem = std::fs::read(path)
        .map_err(|e| ClientError::Config(format!("reading the CA file {}: {e}", path.display())))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        ClientError::Config(format!("the CA file {} is not PEM: {e}", path.display()))
    })?;
    if certs.is_empty() {
        // Else a wrong file would pass silently, and every connection fail later.
        return Err(ClientError::Config(format!(
            "the CA file {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// The URL as messages may show it: without any user name or password in it.
fn shown(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// The verifier's reading of a status: its own key refused is [`ClientError::Refused`], and
/// anything that is not an answer (5xx, 429) is [`ClientError::Unavailable`], so a verifier
/// fails closed without mistaking either for a verdict.
fn check_verifier(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> Client {
        Client::new(url, "sk_live_notreallyakey", &ClientOptions::default()).unwrap()
    }

    #[test]
    fn endpoints_encode_ids_and_keep_a_base_path() {
        let c = client("https://api.example.com/latchkey");
        assert_eq!(
            c.endpoint(&["v1", "keys", "key_1/../x?y"]).as_str(),
            "https://api.example.com/latchkey/v1/keys/key_1%2F..%2Fx%3Fy"
        );
        let c = client("http://127.0.0.1:8080/?q=1#f");
        assert_eq!(
            c.endpoint(&["v1", "users"]).as_str(),
            "http://127.0.0.1:8080/v1/users"
        );
        assert!(Client::new("ftp://x", "k", &ClientOptions::default()).is_err());
        assert!(Client::new("127.0.0.1:8080", "k", &ClientOptions::default()).is_err());
        assert!(Client::new("http://x", "bad\nkey", &ClientOptions::default()).is_err());
    }

    #[test]
    fn debug_and_messages_show_neither_the_key_nor_url_credentials() {
        let c = client("https://u:p@h.example/");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("notreallyakey") && !debug.contains("u:p"),
            "{debug}"
        );
        assert_eq!(c.shown(), "https://h.example/");
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("latchkey-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        for (path, wanted) in [
            (dir.join("missing.pem"), "reading the CA file"),
            (not_pem, "holds no PEM certificate"),
        ] {
            let options = ClientOptions {
                ca_cert: Some(path),
                ..Default::default()
            };
            let err = Client::new("https://h.example", "k", &options).unwrap_err();
            assert!(matches!(err, ClientError::Config(_)), "{err:?}");
            assert!(err.to_string().contains(wanted), "{err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn api_errors_read_as_their_problem() {
        let problem: Problem = serde_json::from_str(
            r#"{"type":"urn:latchkey:problem:rate_limited","title":"Too Many Requests",
                "status":429,"detail":"Rate limit exceeded","code":"rate_limited"}"#,
        )
        .unwrap();
        let e = ClientError::Api {
            status: 429,
            problem: Box::new(problem),
            retry_after: Some(3),
        };
        assert_eq!(e.to_string(), "Rate limit exceeded (retry after 3 seconds)");
        assert_eq!((e.status(), e.code()), (Some(429), Some("rate_limited")));
        let e = ClientError::Redirected {
            status: 301,
            location: Some("https://elsewhere/".into()),
        };
        assert_eq!(
            e.to_string(),
            "the Latchkey server answered with a redirect (301) to https://elsewhere/"
        );
    }

    #[tokio::test]
    async fn connection_failure_names_the_url_but_not_the_key() {
        let c = client("http://127.0.0.1:1");
        let err = c.me().await.unwrap_err();
        assert!(matches!(err, ClientError::Unavailable(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("http://127.0.0.1:1/"), "{text}");
        assert!(!text.contains("notreallyakey"), "{text}");
    }
}
