//! The floor Latchkey is measured against: an HTTP server that, per request, reads the same
//! headers and body, does one SHA-256 of the credential and one hash-map lookup, and answers
//! with a JSON body of the same size as Latchkey's. Everything Latchkey does beyond that is
//! its own overhead.
//!
//! Usage: latchkey-bench-baseline <listen addr> <keys file> <verify body size> <me body size>

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

struct Baseline {
    keys: HashMap<[u8; 32], u32>,
    verify_body: Bytes,
    me_body: Bytes,
}

/// A JSON object padded to `size` bytes.
fn body_of_size(size: usize) -> Bytes {
    let head = r#"{"valid":true,"code":"VALID","pad":""#;
    let pad = size.saturating_sub(head.len() + 2);
    Bytes::from(format!("{head}{}\"}}", "x".repeat(pad)))
}

fn credential(req: &Request<Incoming>) -> Option<&str> {
    let v = req.headers().get("authorization")?.to_str().ok()?;
    Some(v.strip_prefix("Bearer ").unwrap_or(v))
}

async fn handle(
    b: Arc<Baseline>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let is_verify = req.uri().path() == "/v1/verify";
    let header_key = credential(&req).map(str::to_owned);
    let body = req.into_body().collect().await?.to_bytes();
    // The caller's own credential, then (for verify) the key in the body.
    let mut found = header_key.is_some_and(|k| {
        b.keys
            .contains_key(&<[u8; 32]>::from(Sha256::digest(k.as_bytes())))
    });
    if is_verify {
        let key = serde_json::from_slice::<serde_json::Value>(&body).ok();
        let key = key.as_ref().and_then(|v| v["key"].as_str()).unwrap_or("");
        found = b
            .keys
            .contains_key(&<[u8; 32]>::from(Sha256::digest(key.as_bytes())));
    }
    let payload = if is_verify {
        b.verify_body.clone()
    } else {
        b.me_body.clone()
    };
    Ok(Response::builder()
        .status(if found || is_verify { 200 } else { 401 })
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Full::new(payload))
        .expect("valid response"))
}

// The same allocator as Latchkey, so the comparison measures the work, not the allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, keys_file, verify_size, me_size] = &args[..] else {
        eprintln!(
            "usage: latchkey-bench-baseline <listen> <keys file> <verify body size> <me body size>"
        );
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(keys_file).expect("keys file");
    let keys = text
        .lines()
        .enumerate()
        .map(|(i, k)| (<[u8; 32]>::from(Sha256::digest(k.as_bytes())), i as u32))
        .collect();
    let b = Arc::new(Baseline {
        keys,
        verify_body: body_of_size(verify_size.parse().expect("size")),
        me_body: body_of_size(me_size.parse().expect("size")),
    });
    let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let b = b.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(b.clone(), req));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
