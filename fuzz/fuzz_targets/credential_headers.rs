//! Reading credentials from a request (SPEC §4): `presented_credentials` over arbitrary header
//! maps (duplicates, either order, values that are not UTF-8 or not visible ASCII),
//! `basic_credentials`, `query_has_credential`, and the JSON extractor's `Content-Type` check.
//!
//! Input: one header per line, `name: value`, the value as raw bytes (so it may be any octet a
//! header value may hold); a line without a `:` is a query string.
#![no_main]

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Request};
use base64::Engine;
use latchkey_core::token::looks_like_jwt;
use latchkey_core::ApiKey;
use latchkey_server::auth::{basic_credentials, presented_credentials, query_has_credential};
use latchkey_server::error::ApiError;
use latchkey_server::extract::ApiJson;
use libfuzzer_sys::fuzz_target;
use url::form_urlencoded::byte_serialize;

const MAX_LINES: usize = 32;

fuzz_target!(|data: &[u8]| {
    let mut headers = Vec::new();
    let mut queries = Vec::new();
    for line in data.split(|&b| b == b'\n').take(MAX_LINES) {
        match line.iter().position(|&b| b == b':') {
            Some(i) => {
                // As hyper hands them over: name as sent, value without surrounding whitespace.
                let value = line[i + 1..].trim_ascii();
                let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(&line[..i]),
                    HeaderValue::from_bytes(value),
                ) else {
                    continue;
                };
                check_basic_round_trip(name.as_str(), value.as_bytes());
                headers.push((name, value));
            }
            None => queries.push(String::from_utf8_lossy(line).into_owned()),
        }
    }
    check_headers(&headers);
    check_content_type(&headers);
    for q in &queries {
        check_query(q, &queries);
    }
});

fn map(headers: &[(HeaderName, HeaderValue)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in headers {
        m.append(k.clone(), v.clone());
    }
    m
}

fn is_credential_header(name: &HeaderName) -> bool {
    name == header::AUTHORIZATION || name.as_str() == "x-api-key"
}

/// The outcome without borrowing the map, to compare runs over different maps.
fn outcome(m: &HeaderMap) -> Result<(Option<String>, Option<String>), &'static str> {
    match presented_credentials(m) {
        Ok(p) => Ok((
            p.key.map(|c| c.into_owned()),
            p.token.map(|c| c.into_owned()),
        )),
        Err(ApiError::BadRequest { code, .. }) => Err(code),
        Err(e) => panic!("presented_credentials failed with {e:?}, not a 400"),
    }
}

fn check_headers(headers: &[(HeaderName, HeaderValue)]) {
    let m = map(headers);
    for v in m.values() {
        // Basic is tried on whatever follows a scheme; it must never panic.
        if let Some((_, rest)) = v.to_str().ok().and_then(|s| s.split_once(' ')) {
            let _ = basic_credentials(rest);
        }
    }
    let got = outcome(&m);
    if let Err(code) = got {
        assert_eq!(code, "ambiguous_credentials");
    }
    let any = headers.iter().any(|(k, _)| is_credential_header(k));
    if let Ok((key, token)) = &got {
        // Every credential header yields something; no header yields nothing.
        assert_eq!(
            any,
            key.is_some() || token.is_some(),
            "{headers:?} → {got:?}"
        );
        if let Some(t) = token {
            assert!(looks_like_jwt(t), "token slot holds {t:?}");
        }
        // A key that checks out came from the request, verbatim or Basic-decoded.
        if let Some(k) = key.as_deref().filter(|k| ApiKey::check(k).is_ok()) {
            let from_request = headers
                .iter()
                .filter(|(n, _)| is_credential_header(n))
                .filter_map(|(_, v)| v.to_str().ok())
                .any(|v| {
                    v.contains(k)
                        || v.split_once(' ')
                            .and_then(|(_, rest)| basic_credentials(rest))
                            .is_some_and(|(user, pass)| user == k || pass == k)
                });
            assert!(from_request, "{k:?} was not in {headers:?}");
        }
    }
    // Order does not matter: the same headers reversed give the same answer.
    let reversed: Vec<_> = headers.iter().rev().cloned().collect();
    assert_eq!(outcome(&map(&reversed)), got, "order changed the outcome");
    // Sending a credential header twice with the same value changes nothing.
    if let Some(dup) = headers.iter().find(|(k, _)| is_credential_header(k)) {
        let mut twice = headers.to_vec();
        twice.push(dup.clone());
        assert_eq!(
            outcome(&map(&twice)),
            got,
            "a repeated header changed the outcome"
        );
    }
}

/// `Basic` as curl and OAuth clients send it: the header's name as user, its value as password.
fn check_basic_round_trip(user: &str, pass: &[u8]) {
    let pass = String::from_utf8_lossy(pass);
    let enc = |s: &str| byte_serialize(s.as_bytes()).collect::<String>();
    let b64 =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(user), enc(&pass)));
    assert_eq!(
        basic_credentials(&b64),
        Some((user.to_owned(), pass.clone().into_owned())),
        "Basic {b64}"
    );
    let _ = basic_credentials(&pass);
}

/// The JSON extractor's `Content-Type` check, over the same headers.
fn check_content_type(headers: &[(HeaderName, HeaderValue)]) {
    let mut req = Request::new(Body::from("{}"));
    *req.headers_mut() = map(headers);
    let result = futures::executor::block_on(ApiJson::<serde_json::Value>::from_request(req, &()));
    let ct = headers.iter().find(|(k, _)| k == header::CONTENT_TYPE);
    match (ct, &result) {
        (None, r) => assert!(matches!(r, Err(ApiError::UnsupportedMediaType))),
        (Some(_), Ok(_)) | (Some(_), Err(ApiError::UnsupportedMediaType)) => {}
        (Some(v), Err(e)) => panic!("{v:?} with body {{}} gave {e:?}"),
    }
    if let (Some((_, v)), Ok(_)) = (ct, &result) {
        let v = v
            .to_str()
            .expect("a JSON content type is ASCII")
            .to_ascii_lowercase();
        assert!(
            v.trim_start().starts_with("application/"),
            "{v:?} taken for JSON"
        );
    }
}

fn check_query(q: &str, all: &[String]) {
    let found = query_has_credential(q);
    // More parameters never hide one: a credential stays found.
    for other in all {
        if found {
            assert!(
                query_has_credential(&format!("{q}&{other}")),
                "{q:?} & {other:?}"
            );
        }
    }
    assert!(query_has_credential(&format!("{q}&api_key=x")));
    assert!(query_has_credential(&format!("{q}&ACCESS_TOKEN=x")));
}
