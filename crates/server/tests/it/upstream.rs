//! The API a provider protects, as the enforcement tests need it: a small HTTP server on
//! loopback that answers with what it received, so a test sees exactly which headers crossed
//! forward auth, a proxy or the gateway, and counts its requests, so a test can tell that a
//! refused request never reached it.
//!
//! - any path: `{"method", "uri", "version", "headers": {name: [values]}}` (`version` as
//!   `HTTP/1.1` or `HTTP/2.0`; over HTTP/2 `uri` is absolute, from `:scheme` and `:authority`);
//! - `POST|PUT /upload`: reads the body as a stream, answers `{"bytes", "sha256"}`;
//! - `GET /download?bytes=N`: streams N bytes of [`pattern`];
//! - `GET /slow?ms=N`: answers after N milliseconds;
//! - `GET /ws` with `Connection: upgrade` and `Upgrade: P`: answers 101 (with the
//!   `X-Latchkey-Key-Id` it received as `X-Echo-Key-Id`), then echoes every byte sent on the
//!   upgraded connection (a WebSocket's handshake and frames as a proxy sees them).
//!
//! Every route also answers under `/api` (`/api/upload`, …), for a gateway whose upstream
//! URL has a base path.
//!
//! [`Upstream::start_tls`] serves the same over TLS (HTTP/2 or HTTP/1.1 by ALPN).

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{any, get};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub struct Upstream {
    /// `http://127.0.0.1:PORT` (`https://localhost:PORT` over TLS), no trailing slash.
    pub url: String,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = app(hits.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}"),
            hits,
            task,
        }
    }

    /// Over TLS with the PEM files `cert` (valid for `localhost`, as the URL names it) and
    /// `key`. A client whose handshake fails is never counted: no request reached the API.
    pub async fn start_tls(cert: &Path, key: &Path) -> Self {
        // axum-server is built without a default provider (as `serve` installs it).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
            .await
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let app = app(hits.clone());
        let task = tokio::spawn(async move {
            axum_server::from_tcp_rustls(listener, tls)
                .serve(app.into_make_service())
                .await
                .unwrap();
        });
        Self {
            url: format!("https://localhost:{port}"),
            hits,
            task,
        }
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Every route, each request counted into `hits`.
fn app(hits: Arc<AtomicUsize>) -> Router {
    let routes = Router::new()
        .route("/upload", any(upload))
        .route("/download", get(download))
        .route("/slow", get(slow))
        .route("/ws", get(upgrade));
    Router::new()
        .merge(routes.clone())
        .nest("/api", routes)
        .fallback(echo)
        .layer(axum::middleware::from_fn(
            move |req: Request, next: axum::middleware::Next| {
                hits.fetch_add(1, Ordering::SeqCst);
                next.run(req)
            },
        ))
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The headers of an echo answer, by lower-case name.
pub fn echoed_headers(answer: &Value) -> &Map<String, Value> {
    answer["headers"].as_object().expect("an echo answer")
}

/// The one value of header `name` in an echo answer (`None` when it did not arrive).
pub fn echoed<'a>(answer: &'a Value, name: &str) -> Option<&'a str> {
    let values = echoed_headers(answer).get(name)?.as_array()?;
    assert_eq!(values.len(), 1, "{name} arrived {} times", values.len());
    values[0].as_str()
}

/// Byte `i` of a download: not constant, so a reordered or dropped chunk changes the checksum.
pub fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 8)) as u8
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

async fn echo(req: Request) -> Json<Value> {
    Json(json!({
        "method": req.method().as_str(),
        "uri": req.uri().to_string(),
        "version": format!("{:?}", req.version()),
        "headers": headers_json(req.headers()),
    }))
}

fn headers_json(h: &HeaderMap) -> Value {
    let mut out = Map::new();
    for name in h.keys() {
        let values: Vec<Value> = h
            .get_all(name)
            .iter()
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        out.insert(name.as_str().to_owned(), Value::Array(values));
    }
    Value::Object(out)
}

async fn upload(body: Body) -> Json<Value> {
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("the upload arrives whole");
        bytes += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Json(json!({ "bytes": bytes, "sha256": hex(&hasher.finalize()) }))
}

#[derive(Deserialize)]
struct Size {
    bytes: u64,
}

async fn download(Query(size): Query<Size>) -> Body {
    const CHUNK: u64 = 64 * 1024;
    let total = size.bytes;
    let chunks = futures::stream::iter((0..total.div_ceil(CHUNK)).map(move |c| {
        let start = c * CHUNK;
        let end = (start + CHUNK).min(total);
        Ok::<_, std::convert::Infallible>(Bytes::from(
            (start..end).map(pattern).collect::<Vec<u8>>(),
        ))
    }));
    Body::from_stream(chunks)
}

#[derive(Deserialize)]
struct Delay {
    ms: u64,
}

async fn slow(Query(delay): Query<Delay>) -> Json<Value> {
    tokio::time::sleep(std::time::Duration::from_millis(delay.ms)).await;
    Json(json!({ "slept_ms": delay.ms }))
}

async fn upgrade(mut req: Request) -> axum::response::Response {
    let asked = req.headers().get("upgrade").cloned();
    let on_upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let (Some(protocol), Some(on_upgrade)) = (asked, on_upgrade) else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let (mut read, mut write) = tokio::io::split(hyper_util::rt::TokioIo::new(upgraded));
            let _ = tokio::io::copy(&mut read, &mut write).await;
        }
    });
    let mut resp = axum::response::Response::new(Body::empty());
    *resp.status_mut() = axum::http::StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(
        "connection",
        axum::http::HeaderValue::from_static("upgrade"),
    );
    h.insert("upgrade", protocol);
    if let Some(key) = req.headers().get("x-latchkey-key-id") {
        h.insert("x-echo-key-id", key.clone());
    }
    resp
}

/// The upstream itself: what the enforcement tests believe about it.
#[tokio::test]
async fn the_upstream_echoes_counts_and_checksums() {
    let up = Upstream::start().await;
    let http = reqwest::Client::new();
    let a: Value = http
        .get(format!("{}/a/b?c=d", up.url))
        .header("x-test", "1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a["method"], "GET");
    assert_eq!(a["uri"], "/a/b?c=d");
    assert_eq!(echoed(&a, "x-test"), Some("1"));
    let body: Vec<u8> = (0..300_000u64).map(pattern).collect();
    let u: Value = http
        .post(format!("{}/upload", up.url))
        .body(body.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(u["bytes"], 300_000);
    assert_eq!(u["sha256"], sha256_hex(&body));
    let d = http
        .get(format!("{}/download?bytes=300000", up.url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256_hex(&d), sha256_hex(&body));
    let nested: Value = http
        .get(format!("{}/api/slow?ms=1", up.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nested["slept_ms"], 1, "routes answer under /api too");
    assert_eq!(up.hits(), 4);
}
